/** Conntrack: garbage collection of the datapath's CT maps, endpoint and full flushes, their REST routes. */
export * from './api.js';
export * from './errors.js';
export * from './gc.js';
export * from './interval.js';
export * from './sweep.js';
