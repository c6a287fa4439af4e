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
import { diffMapState, policyKeyId } from '../policy/mapstate.js';
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

/** The per-endpoint policy maps as the policy reconciler writes them. */
export interface PolicyMapTarget {
  endpoints(): number[];
  has(endpointId: number): boolean;
  replace(endpointId: number, entries: Iterable<MapEntry>, enforcement?: Enforcement): unknown;
  apply(endpointId: number, diff: MapDiff, enforcement?: Enforcement): unknown;
  dump(endpointId: number): { key: PolicyKey; entry: MapEntry['entry'] }[] | undefined;
  delete(endpointId: number): boolean;
}

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

type PendingChange = { key: PolicyKey; entry?: MapEntry['entry'] };

const ENFORCE_ALL: Enforcement = { ingressEnforced: true, egressEnforced: true };
const EMPTY = new Map<number, MapEntry>();

export function endpointOwner(id: number): string {
  return `endpoint:${id}`;
}

export class EndpointDatapathState implements DatapathOps {
  readonly lxc = new Table<LxcInfo>('lxc', { equals: sameLxc });
  readonly policy = new Table<PolicyRow>('policy');
  readonly reconcilers: ReconcilerHandle[];
  /** Diffs not yet written, per endpoint: policy key id → the entry to write, or the key to delete. */
  readonly #pending = new Map<number, Map<number, PendingChange>>();
  #seq = 0;
  /** Prelinks running, per endpoint ID (they never reject). */
  readonly #prelinks = new Map<number, Promise<unknown>>();
  #spare = new Set<number>();

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
    const p = getOrInsert(this.#pending, epId, () => new Map());
    for (const k of diff.deletes) p.set(policyKeyId(k), { key: k });
    for (const e of diff.upserts) p.set(policyKeyId(e.key), e);
    const state = enforcement.state ?? this.#stateFromPending(epId);
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
    this.#pending.delete(epId);
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

  #stateFromPending(epId: number): ReadonlyMap<number, MapEntry> {
    const prev = this.policy.get(String(epId))?.state ?? EMPTY;
    const next = new Map(prev);
    for (const [k, c] of this.#pending.get(epId) ?? []) {
      if (c.entry) next.set(k, c as MapEntry);
      else next.delete(k);
    }
    return next;
  }

  #policyOps(): Operations<PolicyRow> {
    const t = this.targets.policy;
    return {
      update: (key, row, applied) => {
        const id = Number(key);
        const pending = this.#pending.get(id);
        if (applied !== undefined && t.has(id)) {
          // Written before and not failed since: only what changed after that write.
          const upserts: MapEntry[] = [];
          const deletes: PolicyKey[] = [];
          for (const c of pending?.values() ?? []) {
            if (c.entry) upserts.push(c as MapEntry);
            else deletes.push(c.key);
          }
          t.apply(id, { upserts, deletes }, row.enforcement);
        } else if (t.has(id)) {
          // What the map holds is unknown (start, full pass, after a failure): diff against its content.
          const held = new Map((t.dump(id) ?? []).map((e) => [policyKeyId(e.key), e]));
          t.apply(id, diffMapState(held, row.state), row.enforcement);
        } else {
          t.replace(id, row.state.values(), row.enforcement);
        }
        this.#pending.delete(id);
      },
      delete: (key) => {
        this.#pending.delete(Number(key));
        t.delete(Number(key));
      },
      prune: (desired) => {
        for (const id of t.endpoints()) if (!desired.has(String(id))) t.delete(id);
      },
    };
  }
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
