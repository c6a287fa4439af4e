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
  /** L7 redirect port; 0 until proxies exist. */
  readonly proxyPort: number;
  readonly ruleCookie: number;
}

export interface MapEntry {
  readonly key: PolicyKey;
  readonly entry: PolicyEntry;
}

/** key string → entry */
export type MapState = Map<string, MapEntry>;

export function policyKeyString(k: PolicyKey): string {
  return `${k.identity}/${k.egress ? 'egress' : 'ingress'}/${k.protocol}/${k.dport}/${k.prefixLen}`;
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

/** Adds an entry; on a key collision deny wins, else the first writer (lowest cookie) stays. */
export function addEntry(state: MapState, key: PolicyKey, entry: PolicyEntry): void {
  const id = policyKeyString(key);
  const prev = state.get(id);
  if (prev === undefined || (entry.deny && !prev.entry.deny)) {
    state.set(id, { key, entry });
  } else if (
    prev.entry.deny === entry.deny &&
    entry.ruleCookie !== 0 &&
    (prev.entry.ruleCookie === 0 || entry.ruleCookie < prev.entry.ruleCookie)
  ) {
    state.set(id, { key, entry: { ...prev.entry, ruleCookie: entry.ruleCookie } });
  }
}

/** Turns allow entries covered by a deny of the same identity (or identity 0) into denies. */
export function resolveDenyOverAllow(state: MapState): void {
  const denies = [...state.values()].filter((e) => e.entry.deny);
  if (denies.length === 0) return;
  for (const [id, e] of state) {
    if (e.entry.deny) continue;
    const d = denies.find(
      (d) => (d.key.identity === e.key.identity || d.key.identity === 0) && keyCoversL4(d.key, e.key),
    );
    if (d !== undefined)
      state.set(id, { key: e.key, entry: { deny: true, proxyPort: 0, ruleCookie: d.entry.ruleCookie } });
  }
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
  oldState: ReadonlyMap<string, MapEntry>,
  newState: ReadonlyMap<string, MapEntry>,
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
export function sortedEntries(state: ReadonlyMap<string, MapEntry>): MapEntry[] {
  return [...state.values()].sort(
    (a, b) =>
      a.key.egress - b.key.egress ||
      a.key.identity - b.key.identity ||
      a.key.protocol - b.key.protocol ||
      a.key.dport - b.key.dport ||
      a.key.prefixLen - b.key.prefixLen,
  );
}
