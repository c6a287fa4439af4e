/** The network policy conformance suite (netpol-suite.ts) on a one-node dual-stack lab, over IPv6. */
import { netpolConformance } from './netpol-suite.js';

netpolConformance({ nodes: 1, ipv6: true });
