/**
 * Desired policy-map state of one endpoint, keyed exactly like the datapath's `struct policy_key`
 * (bpf/lib/defs.h): identity (0 = any), direction, protocol (0 = any), destination port, with an
 * LPM prefix length over the 64 bits identity(32)+direction(8)+protocol(8)+dport(16):
 *   40 = identity+direction only, 48 = +protocol, 49..64 = +the high bits of the port (ranges are
 *   split into aligned power-of-two blocks), 64 = one port. ICMP/ICMPv6 entries put the ICMP type in
 *   dport (prefix 64).
 *
 * Deny over allow. The datapath does two longest-prefix lookups for a packet from/to identity X:
 * one keyed with X ("exact") and one keyed with 0 ("any"), and combines them with deny winning.
 * A deny entry D therefore already beats any allow found in the *other* lookup. What it cannot beat
 * is a *longer* allow in its *own* lookup: with D = (X, TCP, any port) deny and A = (X, TCP, 80)
 * allow, the exact lookup for X:80 returns A and never sees D. So every allow entry that is covered
 * by a deny entry of the same identity (same or broader protocol/port) is turned into a deny. We also
 * turn allows covered by an identity-0 deny into denies: not needed for correctness (the any lookup
 * finds the deny) but it keeps each entry self-describing for `bpf policy get` and trace. Allows
 * broader than a deny stay allows: the longer deny wins the LPM lookup for the packets it covers.
 */
import { PREFIX_FULL, PREFIX_IDENTITY_ONLY, PREFIX_PROTO_ONLY, Proto, portRangeBlocks } from './ports.js';

export interface PolicyKey {
  readonly identity: number;
  /** 0 ingress, 1 egress (the C struct's `egress` byte). */
  readonly egress: 0 | 1;
  readonly protocol: number;
  readonly dport: number;
  /** LPM prefix length over the data after the prefixlen field: 40..64. */
  readonly prefixLen: number;
}

export interface PolicyEntry {
  readonly deny: boolean;
  /** L7 redirect port (host order; 0 = none): the connection goes through that proxy (src/proxy). */
  readonly proxyPort: number;
  readonly ruleCookie: number;
}

export interface MapEntry {
  readonly key: PolicyKey;
  readonly entry: PolicyEntry;
}

/** policyKeyId(key) → entry */
export type MapState = Map<number, MapEntry>;

export function policyKeyString(k: PolicyKey): string {
  return `${k.identity}/${k.egress ? 'egress' : 'ingress'}/${k.protocol}/${k.dport}/${k.prefixLen}`;
}

const PORT_SPACE = 2 ** 17;
const L4_SPACE = 2 ** 26;
const ID_SCALE = 2 ** 27;
const MAX_IDENTITY = 2 ** 26;

/**
 * The L4 and direction part of a key's id: 0 for identity+direction only, else the protocol and
 * the port block (its fixed high bits, marked by a leading one bit) packed into 26 bits, plus the
 * direction. Bits past the prefix length do not count, as in the LPM trie.
 */
export function policyKeyLow(egress: 0 | 1, protocol: number, dport: number, prefixLen: number): number {
  let l4 = 0;
  if (prefixLen > PREFIX_IDENTITY_ONLY) {
    const bits = Math.max(0, Math.min(16, prefixLen - PREFIX_PROTO_ONLY));
    const portCode = bits === 0 ? 1 : (dport >>> (16 - bits)) | (1 << bits);
    l4 = 1 + (protocol & 0xff) * PORT_SPACE + portCode;
  }
  return egress * L4_SPACE + l4;
}

/** A key as one exact integer (< 2^53): identity × 2^27 + policyKeyLow. Equal in the trie ⇔ equal id. */
export function policyKeyId(k: PolicyKey): number {
  if (k.identity < 0 || k.identity >= MAX_IDENTITY)
    throw new RangeError(`identity ${k.identity} out of range`);
  return k.identity * ID_SCALE + policyKeyLow(k.egress, k.protocol, k.dport, k.prefixLen);
}

/** policyKeyId from an identity and a precomputed policyKeyLow. */
export function policyKeyIdOf(identity: number, low: number): number {
  return identity * ID_SCALE + low;
}

export function makeKey(
  identity: number,
  egress: 0 | 1,
  protocol: number,
  dport: number,
  prefixLen: number,
): PolicyKey {
  return Object.freeze({ identity, egress, protocol, dport, prefixLen });
}

/** Keys for identity+direction with protocol/port constraints ([start,end] port range; start 0 & end 65535 = any). */
export function l4Keys(
  identity: number,
  egress: 0 | 1,
  protocol: number,
  start: number,
  end: number,
): PolicyKey[] {
  if (protocol === Proto.ANY) return [makeKey(identity, egress, 0, 0, PREFIX_IDENTITY_ONLY)];
  if (start === 0 && end === 65535) return [makeKey(identity, egress, protocol, 0, PREFIX_PROTO_ONLY)];
  return portRangeBlocks(start, end).map((b) =>
    makeKey(identity, egress, protocol, b.port, PREFIX_PROTO_ONLY + b.bits),
  );
}

/** True if every packet matched by `inner` is matched by `outer`, ignoring identity. */
export function keyCoversL4(outer: PolicyKey, inner: PolicyKey): boolean {
  if (outer.egress !== inner.egress || outer.prefixLen > inner.prefixLen) return false;
  if (outer.prefixLen <= PREFIX_IDENTITY_ONLY) return true;
  if (outer.protocol !== inner.protocol) return false;
  const portBits = outer.prefixLen - PREFIX_PROTO_ONLY;
  if (portBits <= 0) return true;
  const shift = 16 - portBits;
  return outer.dport >>> shift === inner.dport >>> shift;
}

/** Does a key match a concrete packet (identity already chosen by the caller)? */
export function keyMatchesPacket(k: PolicyKey, egress: 0 | 1, protocol: number, dport: number): boolean {
  return keyCoversL4(k, makeKey(k.identity, egress, protocol, dport, PREFIX_FULL));
}

/**
 * Two entries of one kind (both allow or both deny) on one key: the lowest non-zero cookie names
 * it, and an allow through a proxy stays one (the proxy allows what an L4-only rule allows, and
 * keeps the requests visible). Returns `prev` itself when nothing changes.
 */
export function mergeEntries(prev: PolicyEntry, entry: PolicyEntry): PolicyEntry {
  const cookie =
    entry.ruleCookie !== 0 && (prev.ruleCookie === 0 || entry.ruleCookie < prev.ruleCookie)
      ? entry.ruleCookie
      : prev.ruleCookie;
  const proxyPort = prev.proxyPort !== 0 ? prev.proxyPort : entry.proxyPort;
  if (cookie === prev.ruleCookie && proxyPort === prev.proxyPort) return prev;
  return { ...prev, ruleCookie: cookie, proxyPort };
}

/** Adds an entry; on a key collision deny wins, else mergeEntries. */
export function addEntry(state: MapState, key: PolicyKey, entry: PolicyEntry): void {
  const id = policyKeyId(key);
  const prev = state.get(id);
  if (prev === undefined || (entry.deny && !prev.entry.deny)) {
    state.set(id, { key, entry });
  } else if (prev.entry.deny === entry.deny) {
    const merged = mergeEntries(prev.entry, entry);
    if (merged !== prev.entry) state.set(id, { key, entry: merged });
  }
}

/**
 * Turns allow entries covered by a deny of the same identity (or identity 0) into denies. The deny
 * named is the first one (in insertion order) that covers the allow. Returns the keys turned.
 */
export function resolveDenyOverAllow(state: MapState): Set<number> {
  const converted = new Set<number>();
  const byIdentity = new Map<number, [number, MapEntry][]>();
  let i = 0;
  for (const e of state.values()) {
    i++;
    if (!e.entry.deny) continue;
    let l = byIdentity.get(e.key.identity);
    if (l === undefined) {
      l = [];
      byIdentity.set(e.key.identity, l);
    }
    l.push([i, e]);
  }
  if (byIdentity.size === 0) return converted;
  const zero = byIdentity.get(0);
  for (const [id, e] of state) {
    if (e.entry.deny) continue;
    const d = firstCovering(e.key, byIdentity.get(e.key.identity), e.key.identity === 0 ? undefined : zero);
    if (d !== undefined) {
      state.set(id, { key: e.key, entry: { deny: true, proxyPort: 0, ruleCookie: d.entry.ruleCookie } });
      converted.add(id);
    }
  }
  return converted;
}

/** The earliest deny of `a` or `b` (lists of [insertion index, entry]) covering `key`. */
export function firstCovering(
  key: PolicyKey,
  a: readonly (readonly [number, MapEntry])[] | undefined,
  b: readonly (readonly [number, MapEntry])[] | undefined,
): MapEntry | undefined {
  let best: readonly [number, MapEntry] | undefined;
  for (const l of [a, b]) {
    if (l === undefined) continue;
    for (const d of l) {
      if (best !== undefined && d[0] >= best[0]) break;
      if (keyCoversL4(d[1].key, key)) {
        best = d;
        break;
      }
    }
  }
  return best?.[1];
}

export interface MapDiff {
  readonly upserts: readonly MapEntry[];
  readonly deletes: readonly PolicyKey[];
}

function entryEquals(a: PolicyEntry, b: PolicyEntry): boolean {
  return a.deny === b.deny && a.proxyPort === b.proxyPort && a.ruleCookie === b.ruleCookie;
}

/** What to write to go from `oldState` to `newState`: changed/new entries, then removed keys. */
export function diffMapState(
  oldState: ReadonlyMap<number, MapEntry>,
  newState: ReadonlyMap<number, MapEntry>,
): MapDiff {
  const upserts: MapEntry[] = [];
  const deletes: PolicyKey[] = [];
  for (const [id, e] of newState) {
    const o = oldState.get(id);
    if (o === undefined || !entryEquals(o.entry, e.entry)) upserts.push(e);
  }
  for (const [id, e] of oldState) if (!newState.has(id)) deletes.push(e.key);
  return { upserts, deletes };
}

/** Entries sorted for display / stable output. */
export function sortedEntries(state: ReadonlyMap<number, MapEntry>): MapEntry[] {
  return [...state.values()].sort(
    (a, b) =>
      a.key.egress - b.key.egress ||
      a.key.identity - b.key.identity ||
      a.key.protocol - b.key.protocol ||
      a.key.dport - b.key.dport ||
      a.key.prefixLen - b.key.prefixLen,
  );
}
