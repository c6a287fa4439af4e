/**
 * The network policy conformance suite (netpol-suite.ts) with its pods spread over three nodes, once
 * per routing mode the lab offers: policy by label and namespace must hold across nodes as on one.
 */
import { ROUTING_MODES } from '../../../src/lab/state.js';
import { netpolConformance } from './netpol-suite.js';

for (const routingMode of ROUTING_MODES) netpolConformance({ nodes: 3, routingMode });
