export * from './allocator.js';
export * from './async.js';
export * from './kvstore-allocator.js';
export * from './numbering.js';
