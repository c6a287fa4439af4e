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

/**
 * A map state holding, next to its own entries, read-only layers shared with other endpoints: a
 * policy added to many endpoints gives each of them its entries as one layer (the same Map for all)
 * instead of a copy, when none of those keys is in the endpoint's state and no deny of one side
 * covers an allow of the other. Layers and own entries never share a key; writing or deleting a
 * key of a layer first copies that layer into the own entries (copy on write). Do not write while
 * iterating a state that has layers.
 */
export class LayeredMapState extends Map<number, MapEntry> {
  /** Past this many layers they are copied in before a new one is added (lookups try each layer). */
  static readonly MAX_LAYERS = 8;
  #layers: ReadonlyMap<number, MapEntry>[] = [];

  get layerCount(): number {
    return this.#layers.length;
  }

  /**
   * The shared layers, oldest first. Each one is wholly in this state, unchanged: a write to one
   * of its keys copies it in and it is no longer listed (the datapath may share them, see
   * src/endpoint/datapath-state.ts).
   */
  get layers(): readonly ReadonlyMap<number, MapEntry>[] {
    return [...this.#layers];
  }

  /** Adds a layer; the caller guarantees that none of its keys is in this state. */
  addLayer(layer: ReadonlyMap<number, MapEntry>): void {
    if (layer.size === 0) return;
    if (this.#layers.length >= LayeredMapState.MAX_LAYERS) this.#copyIn(this.#layers.length);
    this.#layers.push(layer);
  }

  /** Takes back a layer added last (nothing was written to its keys since). */
  removeLayer(layer: ReadonlyMap<number, MapEntry>): void {
    const i = this.#layers.lastIndexOf(layer);
    if (i >= 0) this.#layers.splice(i, 1);
  }

  override get size(): number {
    let n = super.size;
    for (const l of this.#layers) n += l.size;
    return n;
  }

  override get(k: number): MapEntry | undefined {
    const v = super.get(k);
    if (v !== undefined || this.#layers.length === 0) return v;
    for (const l of this.#layers) {
      const x = l.get(k);
      if (x !== undefined) return x;
    }
    return undefined;
  }

  override has(k: number): boolean {
    return super.has(k) || this.#layers.some((l) => l.has(k));
  }

  override set(k: number, v: MapEntry): this {
    if (this.#layers.length > 0) this.#own(k);
    return super.set(k, v);
  }

  override delete(k: number): boolean {
    if (this.#layers.length > 0) this.#own(k);
    return super.delete(k);
  }

  override clear(): void {
    this.#layers = [];
    super.clear();
  }

  override entries(): MapIterator<[number, MapEntry]> {
    return this.#layers.length === 0 ? super.entries() : this.#entries();
  }

  override keys(): MapIterator<number> {
    return this.#layers.length === 0 ? super.keys() : this.#keys();
  }

  override values(): MapIterator<MapEntry> {
    return this.#layers.length === 0 ? super.values() : this.#values();
  }

  override [Symbol.iterator](): MapIterator<[number, MapEntry]> {
    return this.entries();
  }

  override forEach(
    fn: (value: MapEntry, key: number, map: Map<number, MapEntry>) => void,
    thisArg?: unknown,
  ): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }

  *#entries(): MapIterator<[number, MapEntry]> {
    yield* super.entries();
    for (const l of this.#layers) yield* l.entries();
  }

  *#keys(): MapIterator<number> {
    yield* super.keys();
    for (const l of this.#layers) yield* l.keys();
  }

  *#values(): MapIterator<MapEntry> {
    yield* super.values();
    for (const l of this.#layers) yield* l.values();
  }

  /** The layer holding `k`, if any, becomes own entries. */
  #own(k: number): void {
    const i = this.#layers.findIndex((l) => l.has(k));
    if (i >= 0) this.#copyIn(i + 1, i);
  }

  /** Copies layers [from, to) into the own entries and drops them. */
  #copyIn(to: number, from = 0): void {
    for (const l of this.#layers.slice(from, to)) for (const [k, v] of l) super.set(k, v);
    this.#layers.splice(from, to - from);
  }
}

/**
 * Whether an entry may sit in a trie shared by many endpoints instead of each endpoint's own
 * (bpf/lib/policy.h, shared layers): a deny (it wins wherever the datapath finds it), or an allow
 * of one identity for a whole direction (the shortest key an identity has: whatever the endpoint's
 * own trie holds for that identity and matches is longer, and the datapath tries that first).
 */
export function sharableEntry(e: MapEntry): boolean {
  return (
    e.entry.deny ||
    (e.key.identity !== 0 && e.key.prefixLen === PREFIX_IDENTITY_ONLY && e.entry.proxyPort === 0)
  );
}

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

/** The policyKeyLow part of a key id. */
export function policyKeyLowOf(keyId: number): number {
  return keyId % ID_SCALE;
}

const lowKeys = new Map<number, PolicyKey>();

/** The identity-0 key whose policyKeyLow is `low` (the inverse of policyKeyLow). */
export function keyOfLow(low: number): PolicyKey {
  let k = lowKeys.get(low);
  if (k !== undefined) return k;
  const egress: 0 | 1 = low >= L4_SPACE ? 1 : 0;
  const l4 = low - egress * L4_SPACE;
  if (l4 === 0) k = makeKey(0, egress, 0, 0, PREFIX_IDENTITY_ONLY);
  else {
    const protocol = Math.floor((l4 - 1) / PORT_SPACE);
    const portCode = (l4 - 1) % PORT_SPACE;
    const bits = 31 - Math.clz32(portCode);
    const dport = bits === 0 ? 0 : (portCode ^ (1 << bits)) << (16 - bits);
    k = makeKey(0, egress, protocol, dport, PREFIX_PROTO_ONLY + bits);
  }
  if (lowKeys.size >= 1 << 16) lowKeys.clear();
  lowKeys.set(low, k);
  return k;
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
