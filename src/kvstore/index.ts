export * from './errors.js';
// The etcd backend (src/kvstore/etcd.ts) does I/O: import it from its own file, not from here.
export type { EtcdKvStoreOptions, EtcdMemberStatus, EtcdStatus } from './etcd.js';
export * from './keys.js';
export * from './lock.js';
export * from './memory.js';
export * from './prefix-cache.js';
export * from './retry.js';
export type * from './types.js';
