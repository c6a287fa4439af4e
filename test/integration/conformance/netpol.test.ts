/** The network policy conformance suite (netpol-suite.ts) on a lab of one node. */
import { netpolConformance } from './netpol-suite.js';

netpolConformance({ nodes: 1 });
