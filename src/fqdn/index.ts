/** FQDN policy: name matching, the cache of DNS answers and the identities of the IPs they gave. */
export * from './cache.js';
export * from './identities.js';
export * from './match.js';
