export * from './allocator.js';
export * from './numbering.js';
