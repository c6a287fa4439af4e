/**
 * cilium_policy_maps: endpoint ID → that endpoint's policy LPM trie (bpf/README.md "Policy
 * encoding"). Takes the control plane's shapes (src/policy/mapstate.ts) and writes them with the
 * datapath's flags: POLICY_F_DENY, POLICY_F_L4 on keys naming a protocol, POLICY_F_UNENFORCED on
 * the identity-0/prefix-40 allow of a direction no rule enforces.
 *
 * An endpoint's trie is filled completely before it is published in the outer map, and a full
 * replacement swaps in a new trie with one outer-map update: the datapath never sees a half-written
 * policy (an empty trie would mean default-deny in both directions).
 *
 * Shared layers (cilium_policy_layers, cilium_policy_ep_layers; bpf/lib/policy.h): a list of
 * entries many endpoints hold (one policy's denies and identity-wide allows, `sharableEntry`) is
 * written once into a trie of its own, and each endpoint lists the layers it references instead of
 * holding copies. The caller decides which entries go there (src/endpoint/datapath-state.ts) and
 * keeps them out of the endpoint's trie.
 */
import { BpfMap, type MapSpec, NotSupportedError } from '../../ebpf/index.js';
import {
  type MapDiff,
  type MapEntry,
  type PolicyEntry,
  type PolicyKey,
  policyKeyId,
  sharableEntry,
} from '../../policy/mapstate.js';
import { fromNet, toNet } from './codec.js';
import { DEFS, MAPS, policyEntry, policyKey } from './generated/layouts.js';

/** Which directions some rule enforces (EndpointPolicy.ingressEnforced / egressEnforced). */
export interface PolicyEnforcement {
  ingressEnforced: boolean;
  egressEnforced: boolean;
}

export interface PolicyMapEntry {
  key: PolicyKey;
  entry: PolicyEntry;
  /** POLICY_F_* as stored. */
  flags: number;
}

export interface ApplyResult {
  written: number;
  deleted: number;
  /** True when the endpoint had no trie and a new one was published. */
  created: boolean;
}

const KS = policyKey.size;
const VS = policyEntry.size;
const KF = policyKey.fields;
const VF = policyEntry.fields;
const IDENTITY_DIR_PREFIX = DEFS.POLICY_IDENTITY_DIR_PREFIX;
const INNER = MAPS.cilium_policy_maps.inner;
/** How many shared layers one endpoint may reference (the datapath tries each in turn). */
export const POLICY_MAX_LAYERS = DEFS.POLICY_MAX_LAYERS;

/** The maps holding the shared layers and which endpoint references which. */
export interface PolicyLayerMaps {
  /** cilium_policy_layers: layer ID → trie of shared entries. */
  layers: BpfMap;
  /** cilium_policy_ep_layers: endpoint ID → up to POLICY_MAX_LAYERS layer IDs (0 = end). */
  epLayers: BpfMap;
}

interface Layer {
  readonly id: number;
  readonly map: BpfMap;
  readonly entries: readonly MapEntry[];
  refs: number;
}

function isWildcardAllow(k: PolicyKey, e: PolicyEntry): boolean {
  return k.identity === 0 && k.prefixLen === IDENTITY_DIR_PREFIX && !e.deny;
}

/** POLICY_F_* for an entry; without `enforcement`, a cookie-0 wildcard allow counts as unenforced. */
export function policyFlags(k: PolicyKey, e: PolicyEntry, enforcement?: PolicyEnforcement): number {
  let f = 0;
  if (e.deny) f |= DEFS.POLICY_F_DENY;
  if (k.prefixLen > IDENTITY_DIR_PREFIX && k.protocol !== 0) f |= DEFS.POLICY_F_L4;
  if (isWildcardAllow(k, e)) {
    const enforced = enforcement
      ? k.egress
        ? enforcement.egressEnforced
        : enforcement.ingressEnforced
      : e.ruleCookie !== 0;
    if (!enforced) f |= DEFS.POLICY_F_UNENFORCED;
  }
  return f;
}

/** Encodes a key; bits past the prefix length are cleared so equal keys are equal bytes. */
export function encodePolicyKey(k: PolicyKey, out: Uint8Array = new Uint8Array(KS), off = 0): Uint8Array {
  if (k.prefixLen < 0 || k.prefixLen > DEFS.POLICY_FULL_PREFIX)
    throw new RangeError(`bad prefixLen ${k.prefixLen}`);
  const portBits = Math.max(0, Math.min(16, k.prefixLen - DEFS.POLICY_PROTO_PREFIX));
  const dport = portBits === 0 ? 0 : k.dport & ((0xffff << (16 - portBits)) & 0xffff);
  policyKey.encodeInto(
    {
      prefixlen: k.prefixLen,
      secLabel: toNet(KF.secLabel, k.identity >>> 0),
      egress: k.egress,
      protocol: k.prefixLen > IDENTITY_DIR_PREFIX ? k.protocol : 0,
      dport: toNet(KF.dport, dport),
    },
    out,
    off,
  );
  return out;
}

export function decodePolicyKey(b: Uint8Array, off = 0): PolicyKey {
  const k = policyKey.decode(b, off);
  return {
    identity: fromNet(KF.secLabel, k.secLabel),
    egress: k.egress ? 1 : 0,
    protocol: k.protocol,
    dport: fromNet(KF.dport, k.dport),
    prefixLen: k.prefixlen,
  };
}

function encodeEntry(e: PolicyEntry, flags: number, out: Uint8Array, off: number): void {
  policyEntry.encodeInto({ proxyPort: e.proxyPort, flags, authType: 0, ruleCookie: e.ruleCookie }, out, off);
}

/**
 * Keys and values of a batch written straight into the batch buffers (one view each, no per-entry
 * objects): the same bytes as encodePolicyKey / the policy_entry codec, which the unit tests check.
 */
export function encodeBatch(
  entries: readonly MapEntry[],
  keys: Uint8Array,
  values: Uint8Array,
  enforcement?: PolicyEnforcement,
): void {
  const kv = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
  const vv = new DataView(values.buffer, values.byteOffset, values.byteLength);
  for (let i = 0; i < entries.length; i++) {
    const { key: k, entry: e } = entries[i]!;
    if (k.prefixLen < 0 || k.prefixLen > DEFS.POLICY_FULL_PREFIX)
      throw new RangeError(`bad prefixLen ${k.prefixLen}`);
    const portBits = Math.max(0, Math.min(16, k.prefixLen - DEFS.POLICY_PROTO_PREFIX));
    const ko = i * KS;
    // sec_label and dport are network order (toNet): written big-endian here.
    kv.setUint32(ko + KF.prefixlen!.offset, k.prefixLen, true);
    kv.setUint32(ko + KF.secLabel!.offset, k.identity >>> 0, false);
    kv.setUint8(ko + KF.egress!.offset, k.egress);
    kv.setUint8(ko + KF.protocol!.offset, k.prefixLen > IDENTITY_DIR_PREFIX ? k.protocol : 0);
    kv.setUint16(
      ko + KF.dport!.offset,
      portBits === 0 ? 0 : k.dport & ((0xffff << (16 - portBits)) & 0xffff),
      false,
    );
    const vo = i * VS;
    vv.setUint16(vo + VF.proxyPort!.offset, e.proxyPort, true);
    vv.setUint8(vo + VF.flags!.offset, policyFlags(k, e, enforcement));
    vv.setUint32(vo + VF.ruleCookie!.offset, e.ruleCookie, true);
  }
}

/**
 * Encoded batches of frozen entry lists, per enforcement: the policy engine hands every endpoint a
 * new policy selects the same frozen list as its upserts, which is then encoded once.
 */
const encodedLists = new WeakMap<
  readonly MapEntry[],
  Map<number, { keys: Uint8Array; values: Uint8Array }>
>();

function encodedBatch(
  entries: readonly MapEntry[],
  enforcement?: PolicyEnforcement,
): { keys: Uint8Array; values: Uint8Array } {
  const n = entries.length;
  const encode = () => {
    const keys = new Uint8Array(n * KS);
    const values = new Uint8Array(n * VS);
    encodeBatch(entries, keys, values, enforcement);
    return { keys, values };
  };
  if (!Object.isFrozen(entries)) return encode();
  const how = enforcementCode(enforcement);
  let byHow = encodedLists.get(entries);
  if (byHow === undefined) {
    byHow = new Map();
    encodedLists.set(entries, byHow);
  }
  let b = byHow.get(how);
  if (b === undefined) {
    b = encode();
    byHow.set(how, b);
  }
  return b;
}

/** The enforcement as a number: 0-3 by direction, 4 without one (cookie-based, policyFlags). */
function enforcementCode(enforcement?: PolicyEnforcement): number {
  return enforcement === undefined ? 4 : +enforcement.ingressEnforced | (+enforcement.egressEnforced << 1);
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function newInnerTrie(name: string): BpfMap {
  return BpfMap.create({
    name,
    type: INNER.type as MapSpec['type'],
    keySize: INNER.keySize,
    valueSize: INNER.valueSize,
    maxEntries: INNER.maxEntries,
    flags: INNER.flags,
    pinning: 'none',
  });
}

function decodeEntries(m: BpfMap): PolicyMapEntry[] {
  const out: PolicyMapEntry[] = [];
  const push = (k: Uint8Array, ko: number, v: Uint8Array, vo: number): void => {
    const e = policyEntry.decode(v, vo);
    out.push({
      key: decodePolicyKey(k, ko),
      entry: {
        deny: (e.flags & DEFS.POLICY_F_DENY) !== 0,
        proxyPort: e.proxyPort,
        ruleCookie: e.ruleCookie,
      },
      flags: e.flags,
    });
  };
  try {
    const { keys, values, count } = m.lookupBatch(1024);
    for (let i = 0; i < count; i++) push(keys, i * KS, values, i * VS);
  } catch (err) {
    if (!(err instanceof NotSupportedError)) throw err;
    for (const [k, v] of m.entries()) push(k, 0, v, 0);
  }
  return out;
}

export class PolicyMaps implements Disposable {
  private readonly inner = new Map<number, BpfMap>();
  /** Kernel map IDs of the tries opened here (asked once). */
  readonly #ids = new WeakMap<BpfMap, number>();
  /** The enforcement each endpoint's trie was last written with (see enforcementCode). */
  readonly #written = new Map<number, number>();
  /** Shared layers this process wrote: by entry list, and by ID. */
  readonly #layerOf = new Map<readonly MapEntry[], Layer>();
  readonly #layerById = new Map<number, Layer>();
  /** The layers each endpoint references, as last written. */
  readonly #epLayers = new Map<number, readonly Layer[]>();
  /** Empty layer tries published ahead (prepareLayers). */
  readonly #spareLayers: { id: number; map: BpfMap }[] = [];
  #nextLayerId = 1;

  constructor(
    readonly outer: BpfMap,
    readonly layerMaps?: PolicyLayerMaps,
  ) {}

  /** Whether shared layers can be written (the datapath declares their maps). */
  get layersSupported(): boolean {
    return this.layerMaps !== undefined;
  }

  /** Endpoint IDs that have a policy trie. */
  endpoints(): number[] {
    return [...this.outer.keys()].map((k) => new DataView(k.buffer, k.byteOffset).getUint32(0, true));
  }

  /**
   * Whether the endpoint has a trie; the cached handle is dropped if the outer map points elsewhere.
   * With `cached`, a trie this object published or opened counts without asking the kernel (only
   * this object writes the outer map; a writer's periodic full pass asks).
   */
  has(endpointId: number, opts: { cached?: boolean } = {}): boolean {
    if (opts.cached && this.inner.has(endpointId)) return true;
    const v = this.outer.lookup(u32(endpointId));
    const cached = this.inner.get(endpointId);
    if (cached && (!v || this.#idOf(cached) !== new DataView(v.buffer, v.byteOffset).getUint32(0, true))) {
      cached.close();
      this.inner.delete(endpointId);
    }
    return v !== undefined;
  }

  /**
   * Builds a new trie holding exactly `entries` and publishes it for the endpoint in one outer-map
   * update (creating or atomically replacing the previous trie).
   */
  replace(endpointId: number, entries: Iterable<MapEntry>, enforcement?: PolicyEnforcement): number {
    const list = [...entries];
    const m = newInnerTrie(`pol_ep${endpointId}`);
    try {
      this.write(m, list, enforcement);
      this.outer.update(u32(endpointId), u32(m.fd.value));
    } catch (err) {
      m.close();
      throw err;
    }
    return this.#published(endpointId, m, list.length, enforcement);
  }

  /**
   * replace() with the outer-map update made on a worker thread: it waits out an RCU grace period,
   * which should not hold the caller's thread (e.g. empty tries readied ahead for endpoints).
   */
  async replaceAsync(
    endpointId: number,
    entries: Iterable<MapEntry>,
    enforcement?: PolicyEnforcement,
  ): Promise<number> {
    const list = [...entries];
    const m = newInnerTrie(`pol_ep${endpointId}`);
    try {
      this.write(m, list, enforcement);
      await this.outer.updateAsync(u32(endpointId), u32(m.fd.value));
    } catch (err) {
      m.close();
      throw err;
    }
    return this.#published(endpointId, m, list.length, enforcement);
  }

  /** Bookkeeping of a trie just published for the endpoint (the previous one is closed). */
  #published(endpointId: number, m: BpfMap, count: number, enforcement?: PolicyEnforcement): number {
    this.inner.get(endpointId)?.close();
    this.inner.set(endpointId, m);
    this.#written.set(endpointId, enforcementCode(enforcement));
    this.#ids.set(m, m.info().id);
    return count;
  }

  /**
   * Applies a diff (upserts, then deletes). An endpoint without a trie gets a new one holding the
   * upserts. With `enforcement`, the wildcard allow's UNENFORCED flag is also brought in line when
   * enforcement changed without the entry changing.
   */
  apply(endpointId: number, diff: MapDiff, enforcement?: PolicyEnforcement): ApplyResult {
    const m = this.open(endpointId);
    if (!m) {
      const written = this.replace(endpointId, diff.upserts, enforcement);
      return { written, deleted: 0, created: true };
    }
    this.write(m, diff.upserts, enforcement);
    const deleted = this.deleteKeys(m, diff.deletes);
    // The wildcards' flags follow the enforcement every write uses: only a new one needs a look.
    const how = enforcementCode(enforcement);
    const was = this.#written.get(endpointId);
    if (enforcement && was !== how) {
      // Only the directions whose enforcement changed, unless this diff wrote their wildcard.
      let dirs = was === undefined || was === 4 ? 3 : was ^ how;
      for (const e of diff.upserts)
        if (e.key.identity === 0 && e.key.prefixLen === IDENTITY_DIR_PREFIX) dirs &= ~(1 << e.key.egress);
      this.fixWildcards(m, enforcement, dirs);
    }
    if (enforcement || diff.upserts.length > 0) this.#written.set(endpointId, how);
    return { written: diff.upserts.length, deleted, created: false };
  }

  /**
   * The endpoint's entries as the datapath applies them, or undefined without a trie: its own trie's
   * and those of the shared layers it references (a deny there wins over the same key's allow in
   * its own trie). With `own`, only its own trie's.
   */
  dump(endpointId: number, opts: { own?: boolean } = {}): PolicyMapEntry[] | undefined {
    const m = this.has(endpointId) ? this.open(endpointId) : undefined;
    if (!m) return undefined;
    const out = decodeEntries(m);
    if (opts.own) return out;
    const layerIds = this.#storedLayerIds(endpointId);
    if (layerIds.length === 0) return out;
    const at = new Map(out.map((e, i) => [policyKeyId(e.key), i]));
    for (const id of layerIds) {
      const known = this.#layerById.get(id);
      let lm = known?.map;
      if (lm === undefined) {
        const v = this.layerMaps!.layers.lookup(u32(id));
        if (!v) continue;
        lm = BpfMap.fromId(new DataView(v.buffer, v.byteOffset).getUint32(0, true));
      }
      try {
        for (const e of decodeEntries(lm)) {
          const k = policyKeyId(e.key);
          const i = at.get(k);
          if (i === undefined) {
            at.set(k, out.length);
            out.push(e);
          } else if (e.entry.deny && !out[i]!.entry.deny) out[i] = e;
        }
      } finally {
        if (known === undefined) lm.close();
      }
    }
    return out;
  }

  /** The shared layers the endpoint references (their entry lists), as last set here. */
  layersOf(endpointId: number): readonly (readonly MapEntry[])[] {
    return (this.#epLayers.get(endpointId) ?? []).map((l) => l.entries);
  }

  /**
   * Makes the endpoint reference exactly `lists` as its shared layers (at most POLICY_MAX_LAYERS
   * lists of `sharableEntry` entries). A list is written into a trie of its own the first
   * time an endpoint references it and removed when none does any more. The endpoint's own trie is
   * not touched: the caller keeps those entries out of it.
   */
  setLayers(endpointId: number, lists: readonly (readonly MapEntry[])[]): void {
    const prev = this.#epLayers.get(endpointId) ?? [];
    // Unchanged. An endpoint without layers here is written anyway: a previous run may have left a list.
    if (prev.length > 0 && prev.length === lists.length && prev.every((l, i) => l.entries === lists[i]))
      return;
    const lm = this.layerMaps;
    if (!lm) {
      if (lists.length > 0)
        throw new Error('shared policy layers: the datapath has no cilium_policy_layers map');
      return;
    }
    if (lists.length > POLICY_MAX_LAYERS)
      throw new RangeError(
        `shared policy layers: ${lists.length} for endpoint ${endpointId}, at most ${POLICY_MAX_LAYERS}`,
      );
    const next: Layer[] = [];
    try {
      for (const list of lists) next.push(this.#acquire(list));
      if (next.length === 0) lm.epLayers.delete(u32(endpointId));
      else {
        const v = new Uint8Array(4 * POLICY_MAX_LAYERS);
        const dv = new DataView(v.buffer);
        for (const [i, l] of next.entries()) dv.setUint32(4 * i, l.id, true);
        lm.epLayers.update(u32(endpointId), v);
      }
    } catch (err) {
      for (const l of next) this.#release(l);
      throw err;
    }
    if (next.length === 0) this.#epLayers.delete(endpointId);
    else this.#epLayers.set(endpointId, next);
    for (const l of prev) this.#release(l);
  }

  /**
   * Removes what no endpoint of this process references: layer lists of endpoints without a trie,
   * and layer tries no endpoint lists (left by a previous run). Returns the layers removed.
   */
  pruneLayers(): number {
    const lm = this.layerMaps;
    if (!lm) return 0;
    const referenced = new Set<number>();
    for (const k of [...lm.epLayers.keys()]) {
      const ep = new DataView(k.buffer, k.byteOffset).getUint32(0, true);
      if (!this.#epLayers.has(ep) && this.outer.lookup(k) === undefined) {
        lm.epLayers.delete(k);
        continue;
      }
      for (const id of this.#storedLayerIds(ep)) referenced.add(id);
    }
    let removed = 0;
    for (const k of [...lm.layers.keys()]) {
      const id = new DataView(k.buffer, k.byteOffset).getUint32(0, true);
      if (this.#layerById.has(id) || referenced.has(id) || this.#spareLayers.some((x) => x.id === id))
        continue;
      if (lm.layers.delete(k)) removed++;
    }
    return removed;
  }

  /** The layer trie holding `list` (written now if it has none), with one more reference. */
  #acquire(list: readonly MapEntry[]): Layer {
    const known = this.#layerOf.get(list);
    if (known) {
      known.refs++;
      return known;
    }
    for (const e of list)
      if (!sharableEntry(e))
        throw new Error('shared policy layers hold denies and identity-wide allows only (sharableEntry)');
    // A spare is published already: filling it is all (no endpoint lists it yet).
    const spare = this.#spareLayers.shift();
    const { id, map } = spare ?? this.#publishLayer();
    try {
      this.write(map, list);
    } catch (err) {
      this.layerMaps!.layers.delete(u32(id));
      map.close();
      throw err;
    }
    const layer: Layer = { id, map, entries: list, refs: 1 };
    this.#layerOf.set(list, layer);
    this.#layerById.set(id, layer);
    return layer;
  }

  /**
   * Keeps `n` empty layer tries published ahead, so that a new shared layer is only written:
   * publishing a trie in cilium_policy_layers waits for an RCU grace period. Returns how many
   * were published now.
   */
  prepareLayers(n: number): number {
    if (!this.layerMaps) return 0;
    let made = 0;
    while (this.#spareLayers.length < n) {
      this.#spareLayers.push(this.#publishLayer());
      made++;
    }
    return made;
  }

  /** Empty layer tries published ahead (prepareLayers). */
  get spareLayers(): number {
    return this.#spareLayers.length;
  }

  /** A new empty layer trie under an unused ID. */
  #publishLayer(): { id: number; map: BpfMap } {
    const lm = this.layerMaps!;
    let id = this.#nextLayerId;
    const used = (i: number) =>
      this.#layerById.has(i) ||
      this.#spareLayers.some((x) => x.id === i) ||
      lm.layers.lookup(u32(i)) !== undefined;
    // Skip IDs in use, by this process or left in the pinned map by a previous one.
    while (used(id)) id = (id % 0xffffffff) + 1;
    this.#nextLayerId = (id % 0xffffffff) + 1;
    const map = newInnerTrie(`pol_layer${id}`);
    try {
      lm.layers.update(u32(id), u32(map.fd.value));
    } catch (err) {
      map.close();
      throw err;
    }
    return { id, map };
  }

  #release(l: Layer): void {
    if (--l.refs > 0) return;
    this.#layerOf.delete(l.entries);
    this.#layerById.delete(l.id);
    this.layerMaps!.layers.delete(u32(l.id));
    l.map.close();
  }

  /** Layer IDs the endpoint's stored list names. */
  #storedLayerIds(endpointId: number): number[] {
    const v = this.layerMaps?.epLayers.lookup(u32(endpointId));
    if (!v) return [];
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const ids: number[] = [];
    for (let i = 0; i < POLICY_MAX_LAYERS; i++) {
      const id = dv.getUint32(4 * i, true);
      if (id === 0) break;
      ids.push(id);
    }
    return ids;
  }

  /** Removes the endpoint's trie (its policy is then no longer enforced) and its layer list. */
  delete(endpointId: number): boolean {
    this.inner.get(endpointId)?.close();
    this.inner.delete(endpointId);
    this.#written.delete(endpointId);
    const deleted = this.outer.delete(u32(endpointId));
    if (this.#epLayers.has(endpointId)) this.setLayers(endpointId, []);
    else this.layerMaps?.epLayers.delete(u32(endpointId));
    return deleted;
  }

  close(): void {
    for (const m of this.inner.values()) m.close();
    this.inner.clear();
    for (const l of [...this.#layerById.values(), ...this.#spareLayers]) l.map.close();
    this.#layerById.clear();
    this.#spareLayers.length = 0;
    this.#layerOf.clear();
    this.#epLayers.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #idOf(m: BpfMap): number {
    let id = this.#ids.get(m);
    if (id === undefined) {
      id = m.info().id;
      this.#ids.set(m, id);
    }
    return id;
  }

  /**
   * The endpoint's trie: the one this object published or opened (only this object writes the
   * outer map; has() drops a handle the outer map no longer points to), else the outer map's.
   */
  private open(endpointId: number): BpfMap | undefined {
    const cached = this.inner.get(endpointId);
    if (cached) return cached;
    const v = this.outer.lookup(u32(endpointId));
    if (!v) return undefined;
    const id = new DataView(v.buffer, v.byteOffset).getUint32(0, true);
    const m = BpfMap.fromId(id);
    this.#ids.set(m, id);
    this.inner.set(endpointId, m);
    return m;
  }

  private write(m: BpfMap, entries: readonly MapEntry[], enforcement?: PolicyEnforcement): void {
    const n = entries.length;
    if (n === 0) return;
    const { keys, values } = encodedBatch(entries, enforcement);
    try {
      m.updateBatch(keys, values, n);
    } catch (err) {
      if (!(err instanceof NotSupportedError)) throw err;
      for (let i = 0; i < n; i++)
        m.update(keys.subarray(i * KS, (i + 1) * KS), values.subarray(i * VS, (i + 1) * VS));
    }
  }

  private deleteKeys(m: BpfMap, keys: readonly PolicyKey[]): number {
    const n = keys.length;
    if (n === 0) return 0;
    const buf = new Uint8Array(n * KS);
    for (const [i, k] of keys.entries()) encodePolicyKey(k, buf, i * KS);
    let deleted = 0;
    let at = 0;
    while (at < n) {
      let done: number;
      try {
        done = m.deleteBatch(buf.subarray(at * KS), n - at);
      } catch (err) {
        if (!(err instanceof NotSupportedError)) throw err;
        for (; at < n; at++) if (m.delete(buf.subarray(at * KS, (at + 1) * KS))) deleted++;
        return deleted;
      }
      deleted += done;
      at += done + 1; // the batch stops at an absent key: skip it
    }
    return deleted;
  }

  /** Brings the wildcard allows' UNENFORCED flag in line, for the directions in `dirs` (1 ingress, 2 egress). */
  private fixWildcards(m: BpfMap, enforcement: PolicyEnforcement, dirs: number): void {
    for (const egress of [0, 1] as const) {
      if ((dirs & (1 << egress)) === 0) continue;
      const key: PolicyKey = { identity: 0, egress, protocol: 0, dport: 0, prefixLen: IDENTITY_DIR_PREFIX };
      const kb = encodePolicyKey(key);
      const v = m.lookup(kb);
      if (!v) continue;
      const e = policyEntry.decode(v);
      // An LPM lookup at prefix 40 can only hit the prefix-40 entry itself (or a shorter one, none exist).
      const entry: PolicyEntry = {
        deny: (e.flags & DEFS.POLICY_F_DENY) !== 0,
        proxyPort: e.proxyPort,
        ruleCookie: e.ruleCookie,
      };
      const want = policyFlags(key, entry, enforcement);
      if (want !== e.flags) {
        const out = new Uint8Array(VS);
        encodeEntry(entry, want, out, 0);
        m.update(kb, out);
      }
    }
  }
}
