/**
 * The datapath layer: typed node maps, the object loader, the per-endpoint loader, the socket-LB
 * loader, the external-device loader, the Maglev flow hash, and their errors.
 */
export * from './errors.js';
export * from './flow-hash.js';
export * from './host-loader.js';
export * from './loader.js';
export * from './maps/index.js';
export * from './object-loader.js';
export * from './overlay.js';
export * from './sock-loader.js';
