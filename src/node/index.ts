export * from './kvstore-sync.js';
export * from './registry.js';
export * from './types.js';
