/**
 * Upstream's kvstore key layout (Documentation/kvstore.rst), so that the keys read the same as in a
 * Cilium cluster's etcd. Keys are raw strings; label keys may contain `/`, which is why lookups under
 * a label key check where the last `/` falls (prefixMatchesKey).
 */

export const STATE_PREFIX = 'cilium/state';
/** `id/<numericID>` → label key (permanent); `value/<labelKey>/<node>` → ID (leased, one per node). */
export const IDENTITIES_PREFIX = `${STATE_PREFIX}/identities/v1`;
export const IDENTITY_ID_PREFIX = `${IDENTITIES_PREFIX}/id/`;
export const IDENTITY_VALUE_PREFIX = `${IDENTITIES_PREFIX}/value/`;
export const IDENTITY_LOCK_PREFIX = `${IDENTITIES_PREFIX}/locks/`;
/** `ip/v1/<cluster>/<ip>` → JSON IPIdentityPair of an endpoint (leased by its node's agent). */
export const IP_PREFIX = `${STATE_PREFIX}/ip/v1/`;
/** `nodes/v1/<cluster>/<node>` → JSON node (leased). */
export const NODES_PREFIX = `${STATE_PREFIX}/nodes/v1/`;

export function identityIdKey(id: number): string {
  return `${IDENTITY_ID_PREFIX}${id}`;
}

export function identityValuePrefix(labelKey: string): string {
  return `${IDENTITY_VALUE_PREFIX}${labelKey}/`;
}

export function identityValueKey(labelKey: string, node: string): string {
  return `${identityValuePrefix(labelKey)}${node}`;
}

export function identityLockKey(labelKey: string): string {
  return `${IDENTITY_LOCK_PREFIX}${labelKey}`;
}

export function nodeKey(cluster: string, name: string): string {
  return `${NODES_PREFIX}${cluster}/${name}`;
}

/**
 * Whether `key` is `prefix` + one last path element: under `value/a;/` the key `value/a;/n1`
 * matches but `value/a;/b;/n1` (label key `a;/b;`) does not.
 */
export function prefixMatchesKey(prefix: string, key: string): boolean {
  return key.startsWith(prefix) && key.length > prefix.length && !key.includes('/', prefix.length);
}
