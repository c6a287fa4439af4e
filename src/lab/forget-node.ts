/**
 * What a removed node leaves in the kvstore: its node entry, its endpoints' IP → identity entries
 * and its references to identities. They are leased and would expire with the node's agent, but
 * `lab node remove` deletes them at once, so every other agent drops the node's routes and ipcache
 * entries now (and identities only it used become collectable). Keys follow upstream's layout.
 */
import { IDENTITY_VALUE_PREFIX, IP_PREFIX, type KvStore, nodeKey } from '../kvstore/index.js';

/** `cilium/state/ip/v1/<cluster>/<ip>` → IPIdentityPair JSON (the publishing node in `Metadata`). */

export interface ForgottenKeys {
  node: number;
  ips: number;
  identityRefs: number;
}

/** Deletes the node's keys; an entry rewritten meanwhile (a new owner of the IP) is left alone. */
export async function forgetNode(store: KvStore, cluster: string, node: string): Promise<ForgottenKeys> {
  const out: ForgottenKeys = { node: 0, ips: 0, identityRefs: 0 };
  if (await store.delete(nodeKey(cluster, node))) out.node++;
  for (const kv of (await store.list(`${IP_PREFIX}${cluster}/`)).pairs) {
    let owner: unknown;
    try {
      owner = (JSON.parse(kv.value) as { Metadata?: unknown }).Metadata;
    } catch {
      continue; // not an entry of this project's agents
    }
    if (owner === node && (await store.deleteIf(kv.key, { modRevision: kv.modRevision }))) out.ips++;
  }
  // `value/<label key>/<node>`: the node is the last path element (label keys may hold '/').
  for (const kv of (await store.list(IDENTITY_VALUE_PREFIX)).pairs)
    if (kv.key.endsWith(`/${node}`) && (await store.deleteIf(kv.key, { modRevision: kv.modRevision })))
      out.identityRefs++;
  return out;
}
