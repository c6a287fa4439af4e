/**
 * The datapath layer: typed node maps, the object loader, the per-endpoint loader and the socket-LB
 * loader, and their errors.
 */
export * from './errors.js';
export * from './loader.js';
export * from './maps/index.js';
export * from './object-loader.js';
export * from './sock-loader.js';
