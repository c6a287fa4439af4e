export * from './errors.js';
export * from './keys.js';
export * from './lock.js';
export * from './memory.js';
export * from './prefix-cache.js';
export type * from './types.js';
