/**
 * The endpoints' desired datapath state and its reconcilers. The endpoint manager says what it
 * wants (local delivery entries, ipcache claims, policy map state); this module keeps it in
 * tables and the reconcilers are the only writers of the maps. Programs are attached only after
 * the reconcilers have written the endpoint's policy, so no packet meets a half-written policy.
 * Pure: the maps and the program loader come in as targets (real BPF maps, or fakes in tests).
 */
import { getOrInsert } from '../common/collections.js';
import type { IpcacheInfo, IpcacheMetadata } from '../ipcache/ipcache.js';
import type { MapDiff, MapEntry, PolicyKey } from '../policy/index.js';
import { diffMapState, LayeredMapState, policyKeyId, sharableEntry } from '../policy/mapstate.js';
import type {
  LbAffinityMatchRow,
  LbBackendRow,
  LbMaglevRow,
  LbRevNatRow,
  LbServiceRow,
  LbSourceRangeRow,
} from '../service/lbstate.js';
import { type KeyedMap, mapTarget } from '../statedb/map-target.js';
import {
  type Operations,
  Reconciler,
  type ReconcilerHandle,
  type ReconcilerOptions,
  type ReconcilerStatus,
} from '../statedb/reconciler.js';
import { Table } from '../statedb/table.js';
import type { DatapathOps, Enforcement } from './manager.js';
import type { EndpointRecord } from './types.js';

/** cilium_lxc value: how to deliver to a local endpoint. */
export interface LxcInfo {
  ifindex: number;
  endpointId: number;
  identity: number;
  mac: string;
  nodeMac: string;
}

/**
 * The per-endpoint policy maps as the policy reconciler writes them. With setLayers/layersOf, deny
 * entries many endpoints share are written once, as shared layers the endpoints reference
 * (src/datapath/maps/policy.ts); dump then shows them too, unless `own`.
 */
export interface PolicyMapTarget {
  endpoints(): number[];
  /** With `cached`, the target may answer from what it wrote itself. */
  has(endpointId: number, opts?: { cached?: boolean }): boolean;
  replace(endpointId: number, entries: Iterable<MapEntry>, enforcement?: Enforcement): unknown;
  /** replace() without holding the agent's thread while the new trie is published (an RCU wait). */
  replaceAsync?(endpointId: number, entries: Iterable<MapEntry>, enforcement?: Enforcement): Promise<unknown>;
  apply(endpointId: number, diff: MapDiff, enforcement?: Enforcement): unknown;
  dump(
    endpointId: number,
    opts?: { own?: boolean },
  ): { key: PolicyKey; entry: MapEntry['entry'] }[] | undefined;
  delete(endpointId: number): boolean;
  setLayers?(endpointId: number, layers: readonly (readonly MapEntry[])[]): void;
  layersOf?(endpointId: number): readonly (readonly MapEntry[])[];
  pruneLayers?(): unknown;
  /** Keeps this many empty layer tries ready (publishing one waits for an RCU grace period). */
  prepareLayers?(n: number): unknown;
}

/** At most this many shared layers per endpoint (bpf/lib/policy.h POLICY_MAX_LAYERS). */
export const MAX_SHARED_LAYERS = 4;
/** Fewer entries than this are written into the endpoint's own trie (a layer costs lookups). */
export const MIN_SHARED_LAYER = 32;
/** Empty layer tries kept ready, refilled after a change has used them. */
export const SPARE_LAYERS = 2;

/** Endpoint programs: verified ahead, attached (or swapped in place), detached, listed as pinned. */
export interface ProgramTarget {
  preload(ep: EndpointRecord): Promise<unknown>;
  discard(preloaded: Promise<unknown>): void;
  attach(ep: EndpointRecord, preloaded?: Promise<unknown>): Promise<void>;
  /** Holds the endpoint's hooks with a drop-all program, for attach() to swap (see DatapathLoader.prelink). */
  prelink?(ep: EndpointRecord, ifindex: number): Promise<void>;
  detach(endpointId: number): void;
  /** Endpoint IDs whose programs are pinned (they outlive the agent). */
  pinned(): number[];
}

export interface DatapathTargets {
  ipcache: KeyedMap<IpcacheInfo>;
  lxc: KeyedMap<LxcInfo>;
  policy: PolicyMapTarget;
  programs: ProgramTarget;
  /** Whether a host-side interface still exists (a restored endpoint whose veth vanished is dropped). */
  interfaceExists(name: string): boolean;
  /** The load-balancer maps (services, backends, rev-NAT, Maglev, affinity match, source ranges). */
  lb: LbMapTargets;
}

/**
 * The LB maps as reconciler targets, rows as src/service/lbstate.ts shapes them, plus what the
 * maps hold at start (so rev-NAT indexes and backend IDs survive a restart).
 */
export interface LbMapTargets {
  services: KeyedMap<LbServiceRow>;
  backends: KeyedMap<LbBackendRow>;
  revNat: KeyedMap<LbRevNatRow>;
  maglev: KeyedMap<LbMaglevRow>;
  affinityMatch: KeyedMap<LbAffinityMatchRow>;
  sourceRange: KeyedMap<LbSourceRangeRow>;
  /** Master entries (slot 0) and backends as the maps hold them now. */
  held(): { services: LbServiceRow[]; backends: LbBackendRow[] };
}

/** One row per endpoint ID: its policy (the engine's live state) or an empty spare trie. */
interface PolicyRow {
  state: ReadonlyMap<number, MapEntry>;
  enforcement: Enforcement;
  /** Bumped on every change so the table sees one. */
  seq: number;
}

/** Past this many queued diffs for one endpoint, they are merged into one. */
const MAX_QUEUED_DIFFS = 16;

const ENFORCE_ALL: Enforcement = { ingressEnforced: true, egressEnforced: true };
const EMPTY = new Map<number, MapEntry>();

export function endpointOwner(id: number): string {
  return `endpoint:${id}`;
}

export class EndpointDatapathState implements DatapathOps {
  readonly lxc = new Table<LxcInfo>('lxc', { equals: sameLxc });
  readonly policy = new Table<PolicyRow>('policy');
  readonly reconcilers: ReconcilerHandle[];
  /**
   * Diffs not yet written, per endpoint, in order: the engine's lists as they came, so a list
   * shared by many endpoints stays one list (encoded once for all of them).
   */
  readonly #pending = new Map<number, MapDiff[]>();
  #seq = 0;
  /** Prelinks running, per endpoint ID (they never reject). */
  readonly #prelinks = new Map<number, Promise<unknown>>();
  #spare = new Set<number>();
  #layerRefill: NodeJS.Immediate | undefined;

  constructor(
    private readonly ipcache: IpcacheMetadata,
    private readonly targets: DatapathTargets,
    private readonly ipcacheReconciler: Reconciler<IpcacheInfo>,
    opts: ReconcilerOptions = {},
  ) {
    const lxcR = new Reconciler('lxc', this.lxc, mapTarget(targets.lxc, sameLxc), opts);
    const polR = new Reconciler('policy', this.policy, this.#policyOps(), opts);
    this.reconcilers = [lxcR, polR];
  }

  /** Writes every pending change of the ipcache, lxc and policy tables. */
  async flush(): Promise<void> {
    await this.ipcacheReconciler.flush();
    for (const r of this.reconcilers) await r.flush();
  }

  status(): ReconcilerStatus[] {
    return this.reconcilers.map((r) => r.status());
  }

  // ---- DatapathOps ----

  upsertEndpoint(ep: EndpointRecord): void {
    const info: LxcInfo = {
      ifindex: ep.hostIfindex,
      endpointId: ep.id,
      identity: ep.identity,
      mac: ep.mac,
      nodeMac: ep.hostMac,
    };
    const ips = [ep.ipv4, ep.ipv6].filter((ip): ip is string => !!ip);
    this.lxc.batch(() => {
      for (const ip of ips) this.lxc.upsert(ip, info);
    });
    this.ipcache.replaceOwner(
      endpointOwner(ep.id),
      'endpoint',
      new Map(ips.map((ip) => [ip, { identity: ep.identity }])),
    );
  }

  deleteEndpoint(ep: EndpointRecord): void {
    this.lxc.batch(() => {
      for (const ip of [ep.ipv4, ep.ipv6])
        if (ip && this.lxc.get(ip)?.endpointId === ep.id) this.lxc.delete(ip);
    });
    this.ipcache.removeOwner(endpointOwner(ep.id));
  }

  applyPolicy(
    epId: number,
    diff: MapDiff,
    enforcement: Enforcement & { state?: ReadonlyMap<number, MapEntry> },
  ): void {
    const queue = getOrInsert(this.#pending, epId, () => []);
    if (diff.upserts.length > 0 || diff.deletes.length > 0) queue.push(diff);
    if (queue.length > MAX_QUEUED_DIFFS) queue.splice(0, queue.length, mergeDiffs(queue));
    const state = enforcement.state ?? this.#stateFromPending(epId, diff);
    this.#spare.delete(epId);
    this.policy.upsert(String(epId), { state, enforcement: pickEnforcement(enforcement), seq: ++this.#seq });
  }

  syncPolicy(epId: number, entries: readonly MapEntry[], enforcement: Enforcement): void {
    this.#pending.delete(epId);
    this.#spare.delete(epId);
    const state = new Map(entries.map((e) => [policyKeyId(e.key), e]));
    this.policy.upsert(String(epId), { state, enforcement: pickEnforcement(enforcement), seq: ++this.#seq });
  }

  /** The endpoint is gone: its trie is emptied and kept as a spare for the next endpoint. */
  removePolicy(epId: number): void {
    // Every key the endpoint's state held goes, after the diffs not yet written: the trie is handed
    // to the next endpoint, which must not inherit any of it.
    const held = this.policy.get(String(epId))?.state ?? EMPTY;
    if (held.size > 0) {
      const deletes = [...held.values()].map((e) => e.key);
      getOrInsert(this.#pending, epId, () => []).push({ upserts: [], deletes });
    }
    this.#spare.add(epId);
    this.policy.upsert(String(epId), { state: EMPTY, enforcement: ENFORCE_ALL, seq: ++this.#seq });
  }

  /**
   * Keeps empty tries ready for the endpoint IDs about to be used (publishing a trie waits for an
   * RCU grace period, which should not be paid on the CNI ADD path); older spares are dropped.
   */
  prewarm(epIds: readonly number[]): void {
    const want = new Set(epIds);
    this.policy.batch(() => {
      for (const id of [...this.#spare])
        if (!want.has(id)) {
          this.#spare.delete(id);
          this.policy.delete(String(id));
        }
      for (const id of want)
        if (!this.policy.has(String(id))) {
          this.#spare.add(id);
          this.policy.upsert(String(id), { state: EMPTY, enforcement: ENFORCE_ALL, seq: ++this.#seq });
        }
    });
  }

  preload(ep: EndpointRecord): Promise<unknown> {
    return this.targets.programs.preload(ep);
  }

  discard(preloaded: Promise<unknown>): void {
    this.targets.programs.discard(preloaded);
  }

  /** Programs go in only once the maps hold the endpoint's entries and policy. */
  async attach(ep: EndpointRecord, preloaded?: Promise<unknown>): Promise<void> {
    await this.flush();
    await this.#prelinked(ep.id);
    const st = this.reconcilers[1]!.objectStatus(String(ep.id));
    if (st?.state === 'error') throw new Error(`policy map of endpoint ${ep.id} not written: ${st.error}`);
    await this.targets.programs.attach(ep, preloaded);
  }

  detach(ep: EndpointRecord): void {
    this.targets.programs.detach(ep.id);
  }

  /**
   * Once the endpoint's interfaces exist: its hooks held by a placeholder, so attach() is a swap (no
   * RCU wait there). Runs while the endpoint is created; attach() waits for it. A failed prelink only
   * means attach() creates the links itself. The promise (it never rejects) tells when it is done.
   */
  prelink(ep: EndpointRecord, ifindex: number, onError?: (err: unknown) => void): Promise<unknown> {
    const p = Promise.resolve()
      .then(() => this.targets.programs.prelink?.(ep, ifindex))
      .catch((err) => onError?.(err));
    this.#prelinks.set(ep.id, p);
    return p;
  }

  /** The prelink of an endpoint, if one ran: awaited (once) before its programs go in. */
  async #prelinked(id: number): Promise<unknown> {
    const p = this.#prelinks.get(id);
    this.#prelinks.delete(id);
    return p;
  }

  /** Detaches pinned programs of endpoints that no longer exist (left by a restart). */
  prunePrograms(live: ReadonlySet<number>): number[] {
    const gone = this.targets.programs.pinned().filter((id) => !live.has(id));
    for (const id of gone) this.targets.programs.detach(id);
    return gone;
  }

  /** The row's state with one more diff applied (for callers that do not pass the state). */
  #stateFromPending(epId: number, diff: MapDiff): ReadonlyMap<number, MapEntry> {
    const next = new Map(this.policy.get(String(epId))?.state ?? EMPTY);
    for (const e of diff.upserts) next.set(policyKeyId(e.key), e);
    for (const k of diff.deletes) next.delete(policyKeyId(k));
    return next;
  }

  /**
   * Publishes spare layer tries again once the current writes are done (off the path of the change
   * that used them). A failure only means the next new layer publishes its own trie.
   */
  #refillLayers(): void {
    const t = this.targets.policy;
    if (!t.prepareLayers || this.#layerRefill) return;
    this.#layerRefill = setImmediate(() => {
      this.#layerRefill = undefined;
      try {
        t.prepareLayers!(SPARE_LAYERS);
      } catch {}
    });
    this.#layerRefill.unref();
  }

  /**
   * Writes an endpoint's policy row: its shared layers (unless `share` is false) and its own trie,
   * only the queued diffs when `written` and the trie is there, else against the trie's content.
   */
  #writePolicy(id: number, row: PolicyRow, written: boolean, share: boolean): void {
    const t = this.targets.policy;
    const queued = this.#pending.get(id) ?? [];
    const want = share && t.setLayers ? sharedLayers(row.state) : [];
    const had = t.layersOf?.(id) ?? [];
    const shared = layerEntrySet(want);
    const layers = (l: readonly (readonly MapEntry[])[]) => t.setLayers?.(id, l);
    // New layers are referenced before the own trie changes (a new allow never goes in ahead of
    // the denies of its policy); dropped ones only after their entries are back in the own trie.
    // When old and new do not fit in the list together, the new ones follow the own writes.
    const both = [...want, ...had.filter((l) => !want.includes(l))];
    const ahead = both.length <= MAX_SHARED_LAYERS;
    if (written && t.has(id, { cached: true })) {
      // Written before and not failed since: only what changed after that write, diff by diff.
      if (ahead && both.length > had.length) layers(both);
      const sig = layerSignature(want);
      const diffs = queued.map((d) => ({
        upserts: withoutShared(d.upserts, sig, shared),
        deletes: d.deletes,
      }));
      const back = backFromLayers(had, want, row.state, shared);
      if (back.length > 0) diffs.push({ upserts: back, deletes: [] });
      if (diffs.length === 0) diffs.push({ upserts: [], deletes: [] });
      for (const d of diffs) t.apply(id, d, row.enforcement);
      if (want.length > 0 || had.length > 0) layers(want);
    } else if (t.has(id)) {
      // What the map holds is unknown (start, full pass, after a failure): diff against its own
      // trie; the stored layer list is rewritten whatever it was.
      if (ahead) layers(both);
      const held = new Map((t.dump(id, { own: true }) ?? []).map((e) => [policyKeyId(e.key), e]));
      t.apply(id, diffMapState(held, ownState(row.state, shared)), row.enforcement);
      layers(want);
    } else {
      // The layers count only once the endpoint has a trie: listed first, then the trie published.
      layers(want);
      t.replace(id, ownState(row.state, shared).values(), row.enforcement);
    }
    this.#pending.delete(id);
    if (want.length > 0) this.#refillLayers();
  }

  /** #writePolicy's first write of an empty row, with the trie published by replaceAsync. */
  async #publishEmpty(id: number, row: PolicyRow): Promise<void> {
    const t = this.targets.policy;
    t.setLayers?.(id, []);
    // diffs queued while the trie is published stay for the next write of the row
    this.#pending.delete(id);
    await t.replaceAsync!(id, [], row.enforcement);
  }

  #policyOps(): Operations<PolicyRow> {
    const t = this.targets.policy;
    return {
      update: (key, row, applied) => {
        // An empty trie not published yet (a spare readied ahead by prewarm, mostly): published
        // without holding the agent's thread, which an ADD may be waiting for.
        if (row.state.size === 0 && t.replaceAsync && !t.has(Number(key)))
          return this.#publishEmpty(Number(key), row);
        try {
          this.#writePolicy(Number(key), row, applied !== undefined, true);
        } catch (err) {
          // A shared layer that cannot be written (e.g. cilium_policy_layers is full): the same
          // writes with every entry in the endpoint's own trie.
          if (!t.setLayers || sharedLayers(row.state).length === 0) throw err;
          this.#writePolicy(Number(key), row, applied !== undefined, false);
        }
        return undefined;
      },
      delete: (key) => {
        this.#pending.delete(Number(key));
        t.delete(Number(key));
      },
      prune: (desired) => {
        for (const id of t.endpoints()) if (!desired.has(String(id))) t.delete(id);
        t.pruneLayers?.();
        t.prepareLayers?.(SPARE_LAYERS);
      },
    };
  }
}

/** Diffs applied in order, as one diff. */
function mergeDiffs(diffs: readonly MapDiff[]): MapDiff {
  const m = new Map<number, { key: PolicyKey; entry?: MapEntry['entry'] }>();
  for (const d of diffs) {
    for (const e of d.upserts) m.set(policyKeyId(e.key), e);
    for (const k of d.deletes) m.set(policyKeyId(k), { key: k });
  }
  const upserts: MapEntry[] = [];
  const deletes: PolicyKey[] = [];
  for (const c of m.values()) {
    if (c.entry) upserts.push(c as MapEntry);
    else deletes.push(c.key);
  }
  return { upserts, deletes };
}

/** The sharable entries of a shared state layer, as one frozen list (the same for every endpoint). */
const sharableOf = new WeakMap<ReadonlyMap<number, MapEntry>, readonly MapEntry[]>();

/**
 * The shared layers an endpoint's trie can reference: the sharable entries (`sharableEntry`) of the
 * state's shared layers (one policy's entries held by many endpoints, each wholly in the state and
 * sharing no key with the rest of it), the largest ones, when they have at least MIN_SHARED_LAYER
 * entries. Taking them out of the own trie changes no verdict (bpf/lib/policy.h).
 */
export function sharedLayers(state: ReadonlyMap<number, MapEntry>): readonly (readonly MapEntry[])[] {
  if (!(state instanceof LayeredMapState) || state.layerCount === 0) return [];
  const lists: (readonly MapEntry[])[] = [];
  for (const layer of state.layers) {
    let list = sharableOf.get(layer);
    if (list === undefined) {
      list = Object.freeze([...layer.values()].filter(sharableEntry));
      sharableOf.set(layer, list);
    }
    if (list.length >= MIN_SHARED_LAYER) lists.push(list);
  }
  return lists.sort((a, b) => b.length - a.length).slice(0, MAX_SHARED_LAYERS);
}

const entrySets = new WeakMap<readonly MapEntry[], ReadonlySet<MapEntry>>();

/** The entries of the layers (by identity: a state holds a layer's very entry objects). */
function layerEntrySet(layers: readonly (readonly MapEntry[])[]): (e: MapEntry) => boolean {
  const sets = layers.map((l) => {
    let s = entrySets.get(l);
    if (s === undefined) {
      s = new Set(l);
      entrySets.set(l, s);
    }
    return s;
  });
  return (e) => sets.some((s) => s.has(e));
}

const layerNumbers = new WeakMap<readonly MapEntry[], number>();
let nextLayerNumber = 1;

/** A set of layers as a string: the key of the filtered lists below. */
function layerSignature(layers: readonly (readonly MapEntry[])[]): string {
  return layers
    .map((l) => {
      let n = layerNumbers.get(l);
      if (n === undefined) {
        n = nextLayerNumber++;
        layerNumbers.set(l, n);
      }
      return n;
    })
    .join(',');
}

/** Engine lists without the shared layers' entries, per list and set of layers. */
const filtered = new WeakMap<readonly MapEntry[], Map<string, readonly MapEntry[]>>();

/**
 * A list without the shared layers' entries. For a frozen list (one the engine hands every
 * endpoint a policy selects) the result is cached per set of layers, so it is filtered, and then
 * encoded, once; a list with none of them is returned as it is.
 */
function withoutShared(
  list: readonly MapEntry[],
  sig: string,
  shared: (e: MapEntry) => boolean,
): readonly MapEntry[] {
  if (sig === '' || list.length === 0) return list;
  const frozen = Object.isFrozen(list);
  let bySig = frozen ? filtered.get(list) : undefined;
  let out = bySig?.get(sig);
  if (out !== undefined) return out;
  const kept = list.filter((e) => !shared(e));
  out = kept.length === list.length ? list : Object.freeze(kept);
  if (frozen) {
    if (bySig === undefined) {
      bySig = new Map();
      filtered.set(list, bySig);
    }
    bySig.set(sig, out);
  }
  return out;
}

/** The state without the shared layers' entries: what the endpoint's own trie holds. */
function ownState(
  state: ReadonlyMap<number, MapEntry>,
  shared: (e: MapEntry) => boolean,
): ReadonlyMap<number, MapEntry> {
  const out = new Map<number, MapEntry>();
  for (const [k, e] of state) if (!shared(e)) out.set(k, e);
  return out;
}

/** Entries of layers the endpoint stops referencing that its state still holds: back into its own trie. */
function backFromLayers(
  had: readonly (readonly MapEntry[])[],
  want: readonly (readonly MapEntry[])[],
  state: ReadonlyMap<number, MapEntry>,
  shared: (e: MapEntry) => boolean,
): MapEntry[] {
  const out: MapEntry[] = [];
  for (const l of had) {
    if (want.includes(l)) continue;
    for (const e of l) {
      const cur = state.get(policyKeyId(e.key));
      if (cur !== undefined && !shared(cur)) out.push(cur);
    }
  }
  return out;
}

function pickEnforcement(e: Enforcement): Enforcement {
  return { ingressEnforced: e.ingressEnforced, egressEnforced: e.egressEnforced };
}

function sameLxc(a: LxcInfo, b: LxcInfo): boolean {
  return (
    a.ifindex === b.ifindex &&
    a.endpointId === b.endpointId &&
    a.identity === b.identity &&
    a.mac === b.mac &&
    a.nodeMac === b.nodeMac
  );
}
