/** The datapath layer: typed node maps, the per-endpoint program loader, and their errors. */
export * from './errors.js';
export * from './loader.js';
export * from './maps/index.js';
