/** Hubble Relay: the cluster's flows through one Observer API (see server.ts). */
export * from './discovery.js';
export * from './merge.js';
export * from './peers.js';
export * from './server.js';
export * from './wire.js';
