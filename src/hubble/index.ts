/**
 * Hubble: datapath events → flows, flow ring, filters, Observer gRPC server, metrics. Its commands
 * live with the others in src/cli/hubble.ts (the library does not depend on a CLI framework).
 */
export * from './client.js';
export * from './constants.js';
export * from './errors.js';
export * from './filter.js';
export * from './format.js';
export * from './layout.js';
export * from './metrics.js';
export * from './observer.js';
export * from './parser.js';
export * from './peer.js';
export * from './proto.js';
export * from './ring.js';
export * from './server.js';
export * from './types.js';
