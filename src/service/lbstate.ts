/**
 * The node's load-balancer desired state: from Services and EndpointSlices (and the node's name
 * and addresses), the rows of the LB BPF maps, one table row per map entry, kept up to date
 * incrementally (a changed slice rewrites only its service's rows). Reconcilers push each table
 * into its map; the row shapes below are the maps' fields (upstream's layouts, A1 of the facts),
 * in host values: the map codec decides byte order (upstream keeps addresses, ports and
 * rev_nat_index in network order, backend_id, count and backend_slot in host order).
 *
 * Maps and rows (IPv4 and IPv6 maps are separate; rows carry the family and the writer picks the
 * map; rev-NAT indexes and backend IDs are unique across both families):
 *
 *   services (lb4_services_v2)  {address, dport, backend_slot, proto, scope} → lb4_service
 *                               slot 0 = the frontend ("master") entry, slots 1..N = backends
 *   backends (lb4_backends_v3)  backend_id → lb4_backend {address, port, proto, flags = state}
 *   revNat   (lb4_reverse_nat)  rev_nat_index → {address, port} of the frontend
 *   maglev   (lb4_maglev)       rev_nat_index → u32[M] backend IDs (inner array of a map-in-map)
 *   affinityMatch (lb_affinity_match, shared) {backend_id, rev_nat_id} → presence
 *   sourceRange (lb4_source_range, LPM) {rev_nat_id, prefix} → presence
 *
 * plus frontends(): one row per frontend with its ID and backends, for `service list` and
 * `bpf lb list` (computed when asked, not a map).
 *
 * Write order matters to a datapath reading concurrently: backends before the service slots that
 * name them, slots and Maglev tables before the master entry that makes them reachable, and the
 * reverse on removal. Pure.
 */
import { getOrInsert } from '../common/collections.js';
import { type IpFamily, parseIp } from '../labels/cidr.js';
import { Table } from '../statedb/table.js';
import { LbError } from './errors.js';
import {
  BACKEND_STATE,
  type BackendState,
  formatServiceFlags,
  IPPROTO,
  LB_SCOPE,
  type LbScope,
  masterWord,
  SVC_FLAG,
  splitFlags,
} from './flags.js';
import {
  type BackendSpec,
  type FrontendSpec,
  type LbConfig,
  l3n4Key,
  type NodeContext,
  serviceFrontends,
} from './frontends.js';
import { BackendIdAllocator, ServiceIdAllocator } from './ids.js';
import { Maglev, type MaglevOptions } from './maglev.js';
import { type EndpointSlice, type Protocol, type Service, serviceKey, sliceServiceKey } from './types.js';

// ---- Row shapes --------------------------------------------------------------------------------

/** Key of a services-map entry (`struct lb4_key` / `lb6_key`). */
export interface LbServiceKey {
  readonly family: IpFamily;
  /** Frontend address; `0.0.0.0` / `::` for NodePort wildcards. */
  readonly address: string;
  /** Frontend port; 0 on the per-address wildcard entry. */
  readonly port: number;
  /** 0 = master entry, 1..N = backend slots. */
  readonly backendSlot: number;
  /** IPPROTO_TCP / IPPROTO_UDP; 0 (ANY) on the per-address wildcard entry. */
  readonly protocol: number;
  /** LB_SCOPE: 0 external, 1 internal. */
  readonly scope: number;
}

/** Value of a services-map entry (`struct lb4_service`). */
export interface LbServiceValue {
  /**
   * The u32 union. Slots ≥ 1: the backend ID. Master (slot 0): the algorithm in the upper 8 bits
   * (LB_ALGORITHM: 1 random, 2 maglev) and the ClientIP affinity timeout in seconds in the lower 24.
   */
  readonly backendId: number;
  /** Master: backends selection picks from (slots 1..count); 0 on slots. */
  readonly count: number;
  readonly revNatIndex: number;
  /** Low byte of the service flags (SVC_FLAG). */
  readonly flags: number;
  /** High byte of the service flags. */
  readonly flags2: number;
  /** Master: slotted backends after `count` (terminating while others are active, quarantined). */
  readonly qcount: number;
}

export interface LbServiceRow {
  readonly key: LbServiceKey;
  readonly value: LbServiceValue;
}

/** A backends-map entry: backend_id → `struct lb4_backend`. */
export interface LbBackendRow {
  readonly id: number;
  readonly family: IpFamily;
  readonly address: string;
  readonly port: number;
  readonly protocol: number;
  /** BACKEND_STATE (the C `flags` byte): 0 active, 1 terminating, 2 quarantined, 3 maintenance. */
  readonly state: number;
  readonly clusterId: number;
  readonly zone: number;
}

/** A reverse-NAT entry: rev_nat_index → the frontend's address and port. */
export interface LbRevNatRow {
  readonly revNatIndex: number;
  readonly family: IpFamily;
  readonly address: string;
  readonly port: number;
}

/** A Maglev table: rev_nat_index → M backend IDs. */
export interface LbMaglevRow {
  readonly revNatIndex: number;
  readonly family: IpFamily;
  readonly backendIds: Uint32Array;
}

/** An affinity-match entry (shared by both families): this backend may keep ClientIP affinity. */
export interface LbAffinityMatchRow {
  readonly backendId: number;
  readonly revNatIndex: number;
}

/** A source-range entry: traffic from `address/prefixLen` may use the frontend `revNatIndex`. */
export interface LbSourceRangeRow {
  readonly revNatIndex: number;
  readonly family: IpFamily;
  /** Network address of the allowed prefix. */
  readonly address: string;
  readonly prefixLen: number;
}

export interface LbFrontendBackend {
  readonly id: number;
  readonly slot: number;
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly state: BackendState;
  readonly nodeName?: string;
  readonly local: boolean;
}

/** One frontend as the CLI shows it (`service list`, `bpf lb list`). Not a BPF map. */
export interface LbFrontendRow extends Omit<FrontendSpec, 'backends'> {
  /** The rev-NAT index, upstream's service ID. */
  readonly id: number;
  /** As `bpf lb list` prints them: `NodePort, Local, two-scopes, ...`. */
  readonly flagsText: string;
  readonly backends: readonly LbFrontendBackend[];
}

// ---- Table keys --------------------------------------------------------------------------------
// Each table is keyed by a string that names the map entry; the parse functions give the map key back
// (a map writer deleting or pruning by key needs them).

const PROTO_NAME: Record<number, string> = {
  [IPPROTO.ANY]: 'ANY',
  [IPPROTO.TCP]: 'TCP',
  [IPPROTO.UDP]: 'UDP',
};
const PROTO_NUMBER: Record<string, number> = { ANY: IPPROTO.ANY, TCP: IPPROTO.TCP, UDP: IPPROTO.UDP };

/** The frontend (L3n4 + scope) a services-map key belongs to: `10.96.0.10:80/TCP`, `.../i` internal. */
export function frontendKeyOf(k: Omit<LbServiceKey, 'backendSlot'>): string {
  return l3n4Key(
    k.address,
    k.family,
    k.port,
    PROTO_NAME[k.protocol] ?? String(k.protocol),
    scopeName(k.scope),
  );
}

/** The backend (address:port/protocol) a backends-map row is: `10.0.1.5:8080/TCP`. */
export function backendKeyOf(r: Pick<LbBackendRow, 'family' | 'address' | 'port' | 'protocol'>): string {
  return l3n4Key(r.address, r.family, r.port, PROTO_NAME[r.protocol] ?? String(r.protocol));
}

function scopeName(scope: number): LbScope {
  return scope === LB_SCOPE.internal ? 'internal' : 'external';
}

/** `10.96.0.10:80/TCP#0`, `[fd00::a]:53/UDP/i#2`, wildcard `10.96.0.10:0/ANY#0`. */
export function serviceRowKey(k: LbServiceKey): string {
  return `${frontendKeyOf(k)}#${k.backendSlot}`;
}

const SERVICE_KEY_RE = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d+)\/(TCP|UDP|ANY)(\/i)?#(\d+)$/;

export function parseServiceRowKey(s: string): LbServiceKey {
  const m = SERVICE_KEY_RE.exec(s);
  const ip = m ? parseIp(m[1] ?? m[2]!) : undefined;
  if (!m || !ip) throw new LbError(`not a services-map key: ${JSON.stringify(s)}`);
  return {
    family: ip.family,
    address: m[1] ?? m[2]!,
    port: Number(m[3]),
    protocol: PROTO_NUMBER[m[4]!]!,
    scope: m[5] ? LB_SCOPE.internal : LB_SCOPE.external,
    backendSlot: Number(m[6]),
  };
}

/** `ipv4/17`: rows of the per-family maps keyed by one number (backends, rev-NAT, Maglev). */
export function familyIdKey(family: IpFamily, id: number): string {
  return (family === 4 ? 'ipv4/' : 'ipv6/') + id; // one concatenation: runs per backend
}

export function parseFamilyIdKey(s: string): { family: IpFamily; id: number } {
  const m = /^ipv(4|6)\/(\d+)$/.exec(s);
  if (!m) throw new LbError(`not a family/ID key: ${JSON.stringify(s)}`);
  return { family: Number(m[1]) as IpFamily, id: Number(m[2]) };
}

/** `17/5`: backend ID / rev-NAT index. */
export function affinityMatchKey(backendId: number, revNatIndex: number): string {
  return `${backendId}/${revNatIndex}`;
}

export function parseAffinityMatchKey(s: string): LbAffinityMatchRow {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m) throw new LbError(`not an affinity-match key: ${JSON.stringify(s)}`);
  return { backendId: Number(m[1]), revNatIndex: Number(m[2]) };
}

/** `ipv4/5/192.0.2.0/24`: family / rev-NAT index / prefix. */
export function sourceRangeKey(r: LbSourceRangeRow): string {
  return `ipv${r.family}/${r.revNatIndex}/${r.address}/${r.prefixLen}`;
}

export function parseSourceRangeKey(s: string): LbSourceRangeRow {
  const m = /^ipv(4|6)\/(\d+)\/([0-9a-fA-F:.]+)\/(\d+)$/.exec(s);
  if (!m) throw new LbError(`not a source-range key: ${JSON.stringify(s)}`);
  return {
    family: Number(m[1]) as IpFamily,
    revNatIndex: Number(m[2]),
    address: m[3]!,
    prefixLen: Number(m[4]),
  };
}

/** Structural equality of rows (plain objects, arrays, typed arrays). */
export function rowEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!(a instanceof Uint32Array) || !(b instanceof Uint32Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka)
    if (!rowEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

// ---- The state ---------------------------------------------------------------------------------

export interface LbTables {
  readonly services: Table<LbServiceRow>;
  readonly backends: Table<LbBackendRow>;
  readonly revNat: Table<LbRevNatRow>;
  readonly maglev: Table<LbMaglevRow>;
  readonly affinityMatch: Table<LbAffinityMatchRow>;
  readonly sourceRange: Table<LbSourceRangeRow>;
}

type TableName = keyof LbTables;
type RowOf<T extends TableName> = LbTables[T] extends Table<infer V> ? V : never;
const TABLE_NAMES: readonly TableName[] = [
  'backends',
  'revNat',
  'maglev',
  'affinityMatch',
  'sourceRange',
  'services',
];

export interface LbStateOptions extends LbConfig {
  readonly maglev?: MaglevOptions;
  /**
   * A proto-0/port-0 entry per ClusterIP and LoadBalancer address, so traffic to a known VIP on a
   * port it does not serve is dropped instead of routed (newer upstream). Default true.
   */
  readonly wildcardEntries?: boolean;
  /** Highest rev-NAT index / backend ID handed out (default 65535 / 2^32 - 1; lower for tests). */
  readonly maxServiceId?: number;
  readonly maxBackendId?: number;
}

/** A frontend another service already holds (two services claiming one LoadBalancer IP:port). */
export interface LbConflict {
  readonly frontend: string;
  readonly owner: string;
  readonly service: string;
}

/** A frontend with its node-local numbers. */
interface Numbered {
  readonly spec: FrontendSpec;
  readonly revNat: number;
  /** Backend IDs, in slot order. */
  readonly ids: readonly number[];
}

interface ServiceEntry {
  svc: Service | undefined;
  readonly slices: Map<string, EndpointSlice>;
  /** Keys this service's rows have in each table, in the order written. */
  owned: Record<TableName, string[]>;
  /** Frontends it holds. */
  frontends: Map<string, Numbered>;
  /** Backends its frontends use, with the state this service sees. */
  backends: Map<string, BackendSpec>;
  /** Wildcard rows it needs. */
  wildcards: Set<string>;
}

const BACKEND_STATE_NAME = Object.fromEntries(
  Object.entries(BACKEND_STATE).map(([k, v]) => [v, k as BackendState]),
) as Record<number, BackendState>;

const noKeys = (): Record<TableName, string[]> =>
  ({ backends: [], revNat: [], maglev: [], affinityMatch: [], sourceRange: [], services: [] }) as Record<
    TableName,
    string[]
  >;

export class LbState {
  readonly tables: LbTables;
  readonly serviceIds: ServiceIdAllocator;
  readonly backendIds: BackendIdAllocator;
  readonly maglev: Maglev;
  #node: NodeContext;
  readonly #config: LbStateOptions;
  readonly #services = new Map<string, ServiceEntry>();
  /** Slice `namespace/name` → its service. */
  readonly #sliceOwner = new Map<string, string>();
  /** Users of each backend, by its ID (dense: no hashing of 100,000 keys at start). */
  readonly #backendRefs: Refs<number> = new RefsById();
  readonly #wildcardRefs: Refs<string> = new Map();
  readonly #frontendOwner = new Map<string, string>();
  /** Frontend → services that want it but another one holds it. */
  readonly #waiting = new Map<string, Set<string>>();
  /** Inside update(): services to recompute at its end. */
  #deferred: Set<string> | undefined;
  /** Inside #batch(): every table's batch is open. */
  #batching = false;

  constructor(node: NodeContext, opts: LbStateOptions = {}) {
    this.#node = node;
    this.#config = opts;
    this.maglev = new Maglev(opts.maglev);
    this.serviceIds = new ServiceIdAllocator(opts.maxServiceId);
    this.backendIds = new BackendIdAllocator(opts.maxBackendId);
    const t = <V>(name: string) => new Table<V>(`lb-${name}`, { equals: rowEquals });
    this.tables = {
      services: t('services'),
      backends: t('backends'),
      revNat: t('rev-nat'),
      maglev: t('maglev'),
      affinityMatch: t('affinity-match'),
      sourceRange: t('source-range'),
    };
  }

  get node(): NodeContext {
    return this.#node;
  }

  /**
   * Applies several changes as one step (start-up, a resync): each service touched inside `fn` is
   * recomputed once, at the end, and watchers see one batch. A service whose recomputation fails
   * keeps its previous rows; the others are applied and the first error is thrown afterwards.
   */
  update(fn: () => void): void {
    if (this.#deferred) {
      fn();
      return;
    }
    const dirty = new Set<string>();
    this.#deferred = dirty;
    try {
      fn();
    } finally {
      this.#deferred = undefined;
    }
    let first: unknown;
    this.#batch(() => {
      for (const k of dirty)
        try {
          this.#touch(k);
        } catch (err) {
          first ??= err;
        }
    });
    if (first !== undefined) throw first;
  }

  /** Adds or replaces a service (validated by parseService; treated as immutable). */
  upsertService(svc: Service): void {
    const key = serviceKey(svc);
    this.#entry(key).svc = svc;
    this.#touch(key);
  }

  deleteService(key: string): void {
    const e = this.#services.get(key);
    if (!e) return;
    e.svc = undefined;
    this.#touch(key);
  }

  /**
   * Adds or replaces a slice (validated by parseEndpointSlice; treated as immutable); its service
   * may come later.
   */
  upsertEndpointSlice(slice: EndpointSlice): void {
    const sk = `${slice.metadata.namespace}/${slice.metadata.name}`;
    const svcKey = sliceServiceKey(slice);
    const prev = this.#sliceOwner.get(sk);
    if (prev !== undefined && prev !== svcKey)
      this.deleteEndpointSlice(slice.metadata.namespace, slice.metadata.name);
    this.#sliceOwner.set(sk, svcKey);
    this.#entry(svcKey).slices.set(sk, slice);
    this.#touch(svcKey);
  }

  deleteEndpointSlice(namespace: string, name: string): void {
    const sk = `${namespace}/${name}`;
    const svcKey = this.#sliceOwner.get(sk);
    if (svcKey === undefined) return;
    this.#sliceOwner.delete(sk);
    this.#services.get(svcKey)?.slices.delete(sk);
    this.#touch(svcKey);
  }

  /** The node's name or addresses changed: every service is recomputed (NodePort frontends, locality). */
  setNode(node: NodeContext): void {
    this.#node = node;
    this.update(() => {
      for (const key of this.#services.keys()) this.#touch(key);
    });
  }

  /** Every frontend, by rev-NAT index (what `service list` and `bpf lb list` show). */
  frontends(): LbFrontendRow[] {
    const out: LbFrontendRow[] = [];
    for (const e of this.#services.values()) for (const n of e.frontends.values()) out.push(frontendRow(n));
    return out.sort((a, b) => a.id - b.id);
  }

  /** One frontend by its key (`10.96.0.10:53/UDP`, `.../i` for the internal scope). */
  frontend(key: string): LbFrontendRow | undefined {
    const owner = this.#frontendOwner.get(key);
    const n = owner === undefined ? undefined : this.#services.get(owner)?.frontends.get(key);
    return n && frontendRow(n);
  }

  /** The frontends of one service (`namespace/name`), in the order computed. */
  frontendsOf(key: string): LbFrontendRow[] {
    return [...(this.#services.get(key)?.frontends.values() ?? [])].map(frontendRow);
  }

  /** Frontends a service wants but another holds. */
  conflicts(): LbConflict[] {
    const out: LbConflict[] = [];
    for (const [frontend, services] of this.#waiting)
      for (const service of services)
        out.push({ frontend, owner: this.#frontendOwner.get(frontend)!, service });
    return out;
  }

  /**
   * Start-up: takes back the rev-NAT indexes and backend IDs the pinned maps hold, so frontends and
   * backends still desired keep them (conntrack and socket-LB reverse entries name them). Only
   * master entries carry a frontend's index (wildcard entries have none). Returns what could not be
   * restored (an index held twice in a damaged map), for the log. Call before the first update(),
   * and pruneRestoredIds() after it.
   */
  restoreIds(held: { services: Iterable<LbServiceRow>; backends: Iterable<LbBackendRow> }): string[] {
    const problems: string[] = [];
    const attempt = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    for (const s of held.services)
      if (s.key.backendSlot === 0 && s.value.revNatIndex !== 0) {
        const key = frontendKeyOf(s.key);
        attempt(key, () => this.serviceIds.restore(key, s.value.revNatIndex));
      }
    for (const b of held.backends) {
      const key = backendKeyOf(b);
      attempt(key, () => this.backendIds.restore(key, b.id));
    }
    return problems;
  }

  /** After start-up restore: frees rev-NAT and backend IDs found in the maps that nothing claimed. */
  pruneRestoredIds(): { serviceIds: string[]; backendIds: string[] } {
    return { serviceIds: this.serviceIds.pruneRestored(), backendIds: this.backendIds.pruneRestored() };
  }

  /** Recomputes a service now, or at the end of update(). */
  #touch(key: string): void {
    if (this.#deferred) this.#deferred.add(key);
    else if (this.#services.has(key)) this.#recompute(key);
  }

  #entry(key: string): ServiceEntry {
    let e = this.#services.get(key);
    if (!e) {
      e = {
        svc: undefined,
        slices: new Map(),
        owned: noKeys(),
        frontends: new Map(),
        backends: new Map(),
        wildcards: new Set(),
      };
      this.#services.set(key, e);
    }
    return e;
  }

  /**
   * Recomputes one service's rows and applies the difference. IDs are taken before any table is
   * touched, so a failure (an ID space used up, a bad node address) changes nothing.
   */
  #recompute(svcKey: string): void {
    const e = this.#services.get(svcKey)!;
    const wanted = e.svc ? serviceFrontends(e.svc, [...e.slices.values()], this.#node, this.#config) : [];

    // Frontends another service holds are skipped (and waited for).
    for (const [k, w] of this.#waiting) if (w.delete(svcKey) && w.size === 0) this.#waiting.delete(k);
    const specs: FrontendSpec[] = [];
    for (const f of wanted) {
      const owner = this.#frontendOwner.get(f.key);
      if (owner !== undefined && owner !== svcKey)
        getOrInsert(this.#waiting, f.key, () => new Set<string>()).add(svcKey);
      else specs.push(f);
    }

    // Phase 1: node-local IDs, given back if one cannot be had. No table is touched yet.
    // What was taken, as two lists (not a pair per ID: 110,000 at start).
    const takenFrom: (ServiceIdAllocator | BackendIdAllocator)[] = [];
    const takenKeys: string[] = [];
    const take = (alloc: ServiceIdAllocator | BackendIdAllocator, key: string): number => {
      const held = alloc.size;
      const id = alloc.acquire(key);
      if (alloc.size !== held) {
        takenFrom.push(alloc);
        takenKeys.push(key);
      }
      return id;
    };
    const backends = new Map<string, BackendSpec>();
    const backendIds = new Map<string, number>();
    const frontends = new Map<string, Numbered>();
    try {
      for (const spec of specs) {
        const ids = spec.backends.map((b) => {
          backends.set(b.key, b);
          const id = take(this.backendIds, b.key);
          backendIds.set(b.key, id);
          return id;
        });
        frontends.set(spec.key, { spec, revNat: take(this.serviceIds, spec.key), ids });
      }
    } catch (err) {
      for (let i = 0; i < takenFrom.length; i++) takenFrom[i]!.release(takenKeys[i]!);
      throw err;
    }

    // Phase 2: rows.
    const freed: string[] = [];
    this.#batch(() => {
      const oldBackends = e.backends;
      e.backends = backends;
      // forEach: a for-of over a Map's entries allocates a pair per entry (100,000 at start).
      const gone: BackendSpec[] = [];
      // Backends this service no longer uses: their IDs looked up (few), the rest are known.
      let dropped: [key: string, id: number][] | undefined;
      oldBackends.forEach((b, k) => {
        if (backends.has(k)) return;
        const id = this.backendIds.lookup(k)!;
        if (refDrop(this.#backendRefs, id, svcKey)) gone.push(b);
        else {
          dropped ??= [];
          dropped.push([k, id]);
        }
      });
      backends.forEach((b, k) => {
        const id = backendIds.get(k)!;
        const owners = oldBackends.has(k) ? undefined : refAdd(this.#backendRefs, id, svcKey);
        this.#upsertBackend(k, id, svcKey, b, owners);
      });
      // Still used by other services: the row takes the state they see.
      for (const [k, id] of dropped ?? []) this.#upsertBackend(k, id);

      const owned = noKeys();
      const put = <T extends TableName>(table: T, key: string, row: RowOf<T>): void => {
        (this.tables[table] as unknown as Table<RowOf<T>>).upsert(key, row);
        owned[table].push(key);
      };
      const maglevCache = new Map<string, Uint32Array>();
      const wildcards = new Set<string>();
      for (const n of frontends.values()) {
        this.#frontendOwner.set(n.spec.key, svcKey);
        this.#frontendRows(n, put, maglevCache);
        const w = this.#config.wildcardEntries === false ? undefined : wildcardRow(n.spec);
        if (w === undefined) continue;
        const k = serviceRowKey(w.key);
        if (wildcards.has(k)) continue;
        wildcards.add(k);
        if (!e.wildcards.has(k)) {
          refAdd(this.#wildcardRefs, k, svcKey);
          this.tables.services.upsert(k, w);
        }
      }
      for (const k of e.wildcards)
        if (!wildcards.has(k) && refDrop(this.#wildcardRefs, k, svcKey)) this.tables.services.delete(k);
      e.wildcards = wildcards;

      for (const name of TABLE_NAMES) {
        const before = e.owned[name];
        const now = owned[name];
        if (before.length > 0 && !sameKeys(before, now)) {
          const keep = new Set(now);
          for (const k of before) if (!keep.has(k)) (this.tables[name] as Table<unknown>).delete(k);
        }
      }
      e.owned = owned;

      for (const b of gone) {
        this.tables.backends.delete(familyIdKey(b.family, this.backendIds.lookup(b.key)!));
        this.backendIds.release(b.key);
      }
      for (const k of e.frontends.keys())
        if (!frontends.has(k)) {
          this.#frontendOwner.delete(k);
          this.serviceIds.release(k);
          for (const w of this.#waiting.get(k) ?? []) freed.push(w);
        }
      e.frontends = frontends;
    });

    if (!e.svc && e.slices.size === 0) this.#services.delete(svcKey);
    // A service that waited for a frontend this one gave up takes it now.
    for (const w of freed) this.#touch(w);
  }

  /** The rows of one frontend. */
  #frontendRows(
    n: Numbered,
    put: <T extends TableName>(table: T, key: string, row: RowOf<T>) => void,
    maglevCache: Map<string, Uint32Array>,
  ): void {
    const { spec: f, revNat, ids } = n;
    const { flags, flags2 } = splitFlags(f.flags);
    const protocol = PROTO_NUMBER[f.protocol]!;
    const scope = LB_SCOPE[f.scope];
    const slot = (backendSlot: number): LbServiceKey => ({
      family: f.family,
      address: f.address,
      port: f.port,
      backendSlot,
      protocol,
      scope,
    });
    // Slots first, the master entry (which makes them reachable) last. The frontend key is the
    // services-map key without its slot (serviceRowKey).
    const prefix = `${f.key}#`;
    ids.forEach((id, i) => {
      const key = slot(i + 1);
      put('services', prefix + (i + 1), {
        key,
        value: { backendId: id, count: 0, revNatIndex: revNat, flags, flags2, qcount: 0 },
      });
    });
    const master = slot(0);
    put('services', `${prefix}0`, {
      key: master,
      value: {
        backendId: masterWord(f.algorithm, f.affinityTimeout),
        count: f.count,
        revNatIndex: revNat,
        flags,
        flags2,
        qcount: f.qcount,
      },
    });

    put('revNat', familyIdKey(f.family, revNat), {
      revNatIndex: revNat,
      family: f.family,
      address: f.address,
      port: f.port,
    });

    if (f.maglev) {
      const members = f.backends.slice(0, f.count).map((b, i) => ({ ...b, id: ids[i]! }));
      const cacheKey = members.map((m) => `${m.key}=${m.id}`).join(',');
      const table = getOrInsert(maglevCache, cacheKey, () => this.maglev.table(members));
      put('maglev', familyIdKey(f.family, revNat), {
        revNatIndex: revNat,
        family: f.family,
        backendIds: table,
      });
    }

    if (f.flags & SVC_FLAG.AFFINITY)
      f.backends.forEach((b, i) => {
        if (b.state === 'active')
          put('affinityMatch', affinityMatchKey(ids[i]!, revNat), {
            backendId: ids[i]!,
            revNatIndex: revNat,
          });
      });

    for (const p of f.sourceRanges) {
      const [address, len] = p.split('/') as [string, string];
      const r: LbSourceRangeRow = { revNatIndex: revNat, family: f.family, address, prefixLen: Number(len) };
      put('sourceRange', sourceRangeKey(r), r);
    }
  }

  /**
   * Writes a backend's row; its state is the most usable one any service sees. What the caller
   * knows already spares lookups in maps of 100,000 entries: `fromSpec`, how the service `from`
   * sees it (all there is to know when it is the only user), and its users.
   */
  #upsertBackend(
    key: string,
    id: number,
    from?: string,
    fromSpec?: BackendSpec,
    knownOwners?: string | Set<string>,
  ): void {
    const owners = knownOwners ?? this.#backendRefs.get(id);
    let spec: BackendSpec | undefined;
    if (typeof owners === 'string')
      spec = owners === from ? fromSpec : this.#services.get(owners)?.backends.get(key);
    else
      for (const s of owners ?? []) {
        const b = this.#services.get(s)?.backends.get(key);
        if (b && (!spec || BACKEND_STATE[b.state] < BACKEND_STATE[spec.state])) spec = b;
      }
    if (!spec) return;
    this.tables.backends.upsert(familyIdKey(spec.family, id), {
      id,
      family: spec.family,
      address: spec.address,
      port: spec.port,
      protocol: PROTO_NUMBER[spec.protocol]!,
      state: BACKEND_STATE[spec.state],
      clusterId: 0,
      zone: 0,
    });
  }

  /** Every table changes as one batch: watchers see whole steps. */
  #batch(fn: () => void): void {
    if (this.#batching) {
      fn(); // inside update(): its batch is open already
      return;
    }
    const tables = TABLE_NAMES.map((n) => this.tables[n] as Table<unknown>);
    const run = (i: number): void => {
      if (i === tables.length) fn();
      else tables[i]!.batch(() => run(i + 1));
    };
    this.#batching = true;
    try {
      run(0);
    } finally {
      this.#batching = false;
    }
  }
}

/** The per-address drop-unknown-ports entry of a ClusterIP or LoadBalancer frontend. */
function wildcardRow(f: FrontendSpec): LbServiceRow | undefined {
  if (f.scope !== 'external' || (f.type !== 'ClusterIP' && f.type !== 'LoadBalancer')) return undefined;
  const { flags, flags2 } = splitFlags(f.type === 'LoadBalancer' ? SVC_FLAG.LOADBALANCER : 0);
  return {
    key: { family: f.family, address: f.address, port: 0, backendSlot: 0, protocol: IPPROTO.ANY, scope: 0 },
    value: { backendId: 0, count: 0, revNatIndex: 0, flags, flags2, qcount: 0 },
  };
}

function frontendRow({ spec: f, revNat, ids }: Numbered): LbFrontendRow {
  return {
    ...f,
    id: revNat,
    flagsText: formatServiceFlags(f.flags),
    backends: f.backends.map((b, i) => {
      const fb: { -readonly [K in keyof LbFrontendBackend]: LbFrontendBackend[K] } = {
        id: ids[i]!,
        slot: i + 1,
        address: b.address,
        port: b.port,
        protocol: b.protocol,
        state: b.state,
        local: b.local,
      };
      if (b.nodeName !== undefined) fb.nodeName = b.nodeName;
      return fb;
    }),
  };
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The state name of a backend row's state byte. */
export function backendStateName(state: number): BackendState | undefined {
  return BACKEND_STATE_NAME[state];
}

/**
 * Who uses a shared row (a backend, a wildcard entry): most have one user, kept as a plain string;
 * a Set only for the shared ones (100,000 backends would otherwise be 100,000 Sets).
 */
interface Refs<K> {
  get(key: K): string | Set<string> | undefined;
  set(key: K, users: string | Set<string>): void;
  delete(key: K): void;
}

/** Refs keyed by a dense number (a backend ID): a list indexed by it, as ids.ts keeps keys by ID. */
class RefsById implements Refs<number> {
  readonly #users: (string | Set<string> | undefined)[] = [];

  get(id: number): string | Set<string> | undefined {
    return this.#users[id];
  }

  set(id: number, users: string | Set<string>): void {
    this.#users[id] = users;
  }

  delete(id: number): void {
    this.#users[id] = undefined;
  }
}

/** Adds a reference; returns the key's users after it. */
function refAdd<K>(refs: Refs<K>, key: K, owner: string): string | Set<string> {
  const r = refs.get(key);
  if (r === undefined) {
    refs.set(key, owner);
    return owner;
  }
  if (typeof r === 'string') {
    if (r === owner) return r;
    const both = new Set([r, owner]);
    refs.set(key, both);
    return both;
  }
  r.add(owner);
  return r;
}

/** Drops one reference; true when it was the last. */
function refDrop<K>(refs: Refs<K>, key: K, owner: string): boolean {
  const r = refs.get(key);
  if (r === undefined) return false;
  if (typeof r === 'string') {
    if (r !== owner) return false;
    refs.delete(key);
    return true;
  }
  r.delete(owner);
  if (r.size === 1) refs.set(key, r.values().next().value!);
  return false;
}
