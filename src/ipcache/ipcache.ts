/**
 * The ipcache's desired state: prefix → security identity (+ tunnel endpoint), with every claim
 * on a prefix kept under its owner. Several subsystems may claim one prefix (the node's own
 * address as `host`, and a policy's `toCIDR` of that same /32, say); the claim from the
 * highest-precedence source is what the datapath sees, and withdrawing one claim leaves the
 * others standing. Resolved entries land in a table the ipcache reconciler writes to the map.
 * Pure: no I/O.
 */
import { getOrInsert } from '../common/collections.js';
import { formatPrefix, parsePrefix } from '../labels/index.js';
import { Table } from '../statedb/table.js';

/** Where a claim comes from; a higher rank wins (after upstream's source precedence). */
export const IPCACHE_SOURCES = {
  /** The node's own addresses and its router IPs (identity host). */
  node: 60,
  /** Endpoints of this node. */
  endpoint: 50,
  /** Endpoints and nodes learnt from the cluster's kvstore. */
  kvstore: 40,
  /** Identities generated for policy CIDR selectors. */
  generated: 20,
} as const;

export type IpcacheSource = keyof typeof IPCACHE_SOURCES;

export interface IpcacheInfo {
  identity: number;
  /** IPv4 address of the node that hosts the prefix (overlay); undefined = this node or none. */
  tunnelEndpoint?: string | undefined;
}

interface Claim {
  source: IpcacheSource;
  info: IpcacheInfo;
}

export interface PrefixClaims {
  prefix: string;
  owners: { owner: string; source: IpcacheSource; identity: number; tunnelEndpoint?: string }[];
  /** The winning claim. */
  resolved: IpcacheInfo;
}

/** "10.0.0.1" → "10.0.0.1/32"; "10.1.0.0/16" stays; the address part is normalised. */
export function normalizePrefix(prefix: string): string {
  const withLen = prefix.includes('/') ? prefix : `${prefix}/${prefix.includes(':') ? 128 : 32}`;
  return formatPrefix(parsePrefix(withLen));
}

export class IpcacheMetadata {
  /** prefix → owner → claim */
  readonly #claims = new Map<string, Map<string, Claim>>();
  /** owner → prefixes it claims */
  readonly #byOwner = new Map<string, Set<string>>();
  /** Resolved desired entries, keyed by normalised prefix: what the reconciler writes. */
  readonly table = new Table<IpcacheInfo>('ipcache', { equals: sameInfo });

  /** Sets `owner`'s claim on `prefix` (replacing its previous claim there). */
  upsert(prefix: string, owner: string, source: IpcacheSource, info: IpcacheInfo): void {
    const p = normalizePrefix(prefix);
    getOrInsert(this.#claims, p, () => new Map()).set(owner, { source, info: { ...info } });
    getOrInsert(this.#byOwner, owner, () => new Set()).add(p);
    this.#resolve(p);
  }

  /** Withdraws `owner`'s claim on `prefix`; other owners' claims stay. */
  remove(prefix: string, owner: string): void {
    const p = normalizePrefix(prefix);
    const claims = this.#claims.get(p);
    if (!claims?.delete(owner)) return;
    if (claims.size === 0) this.#claims.delete(p);
    const owned = this.#byOwner.get(owner);
    owned?.delete(p);
    if (owned?.size === 0) this.#byOwner.delete(owner);
    this.#resolve(p);
  }

  /** Withdraws every claim of `owner`. */
  removeOwner(owner: string): void {
    this.table.batch(() => {
      for (const p of [...(this.#byOwner.get(owner) ?? [])]) this.remove(p, owner);
    });
  }

  /** Makes `owner`'s claims exactly `wanted` (prefix → info), all from `source`, in one batch. */
  replaceOwner(owner: string, source: IpcacheSource, wanted: ReadonlyMap<string, IpcacheInfo>): void {
    this.table.batch(() => {
      const keep = new Set([...wanted.keys()].map(normalizePrefix));
      for (const p of [...(this.#byOwner.get(owner) ?? [])]) if (!keep.has(p)) this.remove(p, owner);
      for (const [p, info] of wanted) this.upsert(p, owner, source, info);
    });
  }

  /** Prefixes `owner` claims. */
  prefixesOf(owner: string): string[] {
    return [...(this.#byOwner.get(owner) ?? [])];
  }

  claims(prefix: string): PrefixClaims | undefined {
    const p = normalizePrefix(prefix);
    const claims = this.#claims.get(p);
    const resolved = this.table.get(p);
    if (!claims || !resolved) return undefined;
    return {
      prefix: p,
      owners: [...claims].map(([owner, c]) => ({
        owner,
        source: c.source,
        identity: c.info.identity,
        ...(c.info.tunnelEndpoint ? { tunnelEndpoint: c.info.tunnelEndpoint } : {}),
      })),
      resolved,
    };
  }

  #resolve(p: string): void {
    const claims = this.#claims.get(p);
    if (!claims || claims.size === 0) {
      this.table.delete(p);
      return;
    }
    // Highest rank wins; among equals the lowest owner name, so the result never depends on order.
    let best: [string, Claim] | undefined;
    for (const e of claims) {
      if (!best) best = e;
      else {
        const d = IPCACHE_SOURCES[e[1].source] - IPCACHE_SOURCES[best[1].source];
        if (d > 0 || (d === 0 && e[0] < best[0])) best = e;
      }
    }
    this.table.upsert(p, best![1].info);
  }
}

function sameInfo(a: IpcacheInfo, b: IpcacheInfo): boolean {
  return a.identity === b.identity && (a.tunnelEndpoint ?? '') === (b.tunnelEndpoint ?? '');
}
