/** Services and kube-proxy replacement, the pure control-plane half: model, frontends, Maglev, LB rows. */
export * from './errors.js';
export * from './flags.js';
export * from './frontends.js';
export * from './ids.js';
export * from './ip.js';
export * from './lbstate.js';
export * from './maglev.js';
export * from './murmur3.js';
export * from './types.js';
export * from './validate.js';
