/**
 * Conntrack garbage collection. The datapath only ignores expired entries (and the LRU evicts when
 * the map is full); this removes them: periodically, with an interval that follows how much each
 * run found (interval.ts, upstream's rule), on demand (`runOnce`), for a deleted endpoint (every
 * entry to or from its addresses, so a pod reusing the address starts clean) and for
 * `bpf ct flush`. Runs are synchronous: one batched read and one batched delete per map.
 *
 * Metrics, upstream names: cilium_datapath_conntrack_gc_runs_total{family,status},
 * cilium_datapath_conntrack_gc_entries{family,status} (alive/deleted at the end of the last run),
 * cilium_datapath_conntrack_gc_duration_seconds{family,status}. family is ipv4/ipv6, run status
 * completed/uncompleted. The protocol label upstream adds distinguishes its separate TCP and
 * non-TCP maps; here one map per family holds every protocol, so runs carry no protocol.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { monotonicNs, parseIp } from '../datapath/index.js';
import type { BpfMap } from '../ebpf/index.js';
import { ConntrackArgumentError } from './errors.js';
import { DEFAULT_GC_INTERVAL, type GcIntervalConfig, nextGcInterval } from './interval.js';
import { type Doom, expiredAt, type SweepResult, sweep, touchesAddress } from './sweep.js';

export type CtFamily = 'ipv4' | 'ipv6';

/** The node's conntrack maps (the datapath's ConntrackMaps fits); ct6 may be absent. */
export interface ConntrackMapSet {
  readonly ct4: BpfMap;
  readonly ct6?: BpfMap;
}

export interface GcLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ConntrackGCOptions {
  maps: ConntrackMapSet;
  /** Where the metrics go (the agent's registry); none: no metrics. */
  registry?: Registry;
  log?: GcLogger;
  /** CLOCK_MONOTONIC in ns, the clock of the datapath's bpf_ktime_get_ns() (default: this process's). */
  clock?: () => bigint;
  interval?: Partial<GcIntervalConfig>;
}

export interface FamilyRun extends SweepResult {
  family: CtFamily;
  /** Seconds the pass took. */
  durationS: number;
  completed: boolean;
  error?: string;
}

export interface GcRun {
  /** Wall-clock start, ISO 8601. */
  at: string;
  families: FamilyRun[];
  deleted: number;
  /** Highest deleted / max entries over the maps: what the next interval follows. */
  maxDeleteRatio: number;
}

export interface FlushResult {
  deleted: number;
  families: Partial<Record<CtFamily, number>>;
}

export interface ConntrackGCStatus {
  /** The periodic GC is started. */
  running: boolean;
  runs: number;
  deletedTotal: number;
  /** The interval chosen after the last periodic run (0 before the first). */
  intervalMs: number;
  /** When the next periodic run is due (ISO 8601). */
  nextRunAt?: string;
  lastRun?: GcRun;
}

const NAMES = {
  runs: 'cilium_datapath_conntrack_gc_runs_total',
  entries: 'cilium_datapath_conntrack_gc_entries',
  duration: 'cilium_datapath_conntrack_gc_duration_seconds',
} as const;

interface GcMetrics {
  runs: Counter<'family' | 'status'>;
  entries: Gauge<'family' | 'status'>;
  duration: Histogram<'family' | 'status'>;
}

function registerMetrics(registry: Registry): GcMetrics {
  // A new GC on the same registry (agent restarted in one process) replaces the old series.
  for (const n of Object.values(NAMES)) if (registry.getSingleMetric(n)) registry.removeSingleMetric(n);
  const labelNames = ['family', 'status'] as const;
  return {
    runs: new Counter({
      name: NAMES.runs,
      help: 'Number of times that the conntrack garbage collector process was run labeled by completion status',
      labelNames,
      registers: [registry],
    }),
    entries: new Gauge({
      name: NAMES.entries,
      help: 'The number of alive and deleted conntrack entries at the end of a garbage collector run labeled by datapath family.',
      labelNames,
      registers: [registry],
    }),
    duration: new Histogram({
      name: NAMES.duration,
      help: 'Duration in seconds of the garbage collector process labeled by datapath family and completion status',
      labelNames,
      registers: [registry],
    }),
  };
}

export class ConntrackGC {
  private readonly maps: [CtFamily, BpfMap][];
  private readonly metrics: GcMetrics | undefined;
  private readonly log: GcLogger | undefined;
  private readonly clock: () => bigint;
  private readonly cfg: GcIntervalConfig;
  private timer: NodeJS.Timeout | undefined;
  private nextAt: number | undefined;
  private intervalMs = 0;
  private prevStart = 0;
  private runs = 0;
  private deletedTotal = 0;
  private last: GcRun | undefined;

  constructor(opts: ConntrackGCOptions) {
    this.maps = [['ipv4', opts.maps.ct4]];
    if (opts.maps.ct6) this.maps.push(['ipv6', opts.maps.ct6]);
    this.metrics = opts.registry ? registerMetrics(opts.registry) : undefined;
    this.log = opts.log;
    this.clock = opts.clock ?? monotonicNs;
    this.cfg = { ...DEFAULT_GC_INTERVAL, ...opts.interval };
    for (const [k, v] of Object.entries(this.cfg))
      if (!(Number.isFinite(v) && v >= 0)) throw new ConntrackArgumentError(`interval.${k}`, `invalid ${v}`);
  }

  /** Starts the periodic GC: a first run right away, then at the adaptive interval. */
  start(): void {
    if (this.timer) return;
    this.schedule(0);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.nextAt = undefined;
  }

  private schedule(ms: number): void {
    this.nextAt = Date.now() + ms;
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref();
  }

  private tick(): void {
    const start = Date.now();
    const actual = this.prevStart ? start - this.prevStart : 0;
    this.prevStart = start;
    let ratio = 0;
    try {
      ratio = this.runOnce().maxDeleteRatio;
    } catch (err) {
      this.log?.warn({ err }, 'conntrack GC run failed');
    }
    this.intervalMs = nextGcInterval(actual, this.intervalMs, ratio, this.cfg);
    if (this.timer) this.schedule(this.intervalMs);
  }

  /** One GC pass over every map: deletes expired entries, counts the rest. */
  runOnce(): GcRun {
    const at = new Date().toISOString();
    const families: FamilyRun[] = [];
    let maxDeleteRatio = 0;
    for (const [family, m] of this.maps) {
      const r = this.pass(family, m, expiredAt(this.clock()));
      families.push(r);
      maxDeleteRatio = Math.max(maxDeleteRatio, r.deleted / m.maxEntries);
      if (!r.completed) continue;
      this.metrics?.entries.set({ family, status: 'alive' }, r.alive);
      this.metrics?.entries.set({ family, status: 'deleted' }, r.deleted);
    }
    const deleted = families.reduce((n, f) => n + f.deleted, 0);
    this.runs++;
    this.deletedTotal += deleted;
    this.last = { at, families, deleted, maxDeleteRatio };
    this.log?.info(
      {
        families: Object.fromEntries(families.map((f) => [f.family, { alive: f.alive, deleted: f.deleted }])),
        durationMs: Math.round(families.reduce((s, f) => s + f.durationS, 0) * 1000),
      },
      'conntrack garbage collection',
    );
    return this.last;
  }

  private pass(family: CtFamily, m: BpfMap, doom: Doom): FamilyRun {
    const t0 = process.hrtime.bigint();
    let r: FamilyRun;
    try {
      r = { family, ...sweep(m, doom), durationS: 0, completed: true };
    } catch (err) {
      r = { family, scanned: 0, deleted: 0, alive: 0, durationS: 0, completed: false, error: String(err) };
      this.log?.warn({ err, family }, 'conntrack GC pass did not finish');
    }
    r.durationS = Number(process.hrtime.bigint() - t0) / 1e9;
    const status = r.completed ? 'completed' : 'uncompleted';
    this.metrics?.runs.inc({ family, status });
    this.metrics?.duration.observe({ family, status }, r.durationS);
    return r;
  }

  /**
   * Deletes every entry (`bpf ct flush`), or those of one family. Throws ConntrackArgumentError
   * on an unknown family, before deleting anything.
   */
  flush(filter: { family?: string } = {}): FlushResult {
    const only = filter.family === undefined ? undefined : familyOf(filter.family, 'family');
    return this.deleteWhere(() => () => true, only);
  }

  /**
   * Deletes the entries to or from an endpoint's addresses (on endpoint deletion). Every address is
   * checked before anything is deleted.
   */
  flushEndpoint(ips: readonly string[]): FlushResult {
    if (!Array.isArray(ips) || ips.length === 0)
      throw new ConntrackArgumentError('ips', 'give at least one endpoint address');
    const byFamily: Record<CtFamily, Uint8Array[]> = { ipv4: [], ipv6: [] };
    ips.forEach((ip, i) => {
      let a: ReturnType<typeof parseIp>;
      try {
        a = parseIp(String(ip));
      } catch {
        throw new ConntrackArgumentError(`ips[${i}]`, `"${ip}" is not an IP address`);
      }
      byFamily[a.family === 4 ? 'ipv4' : 'ipv6'].push(a.bytes);
    });
    return this.deleteWhere((family) =>
      byFamily[family].length ? touchesAddress(byFamily[family]) : undefined,
    );
  }

  private deleteWhere(doomOf: (family: CtFamily) => Doom | undefined, only?: CtFamily): FlushResult {
    const out: FlushResult = { deleted: 0, families: {} };
    for (const [family, m] of this.maps) {
      if (only && family !== only) continue;
      const doom = doomOf(family);
      if (!doom) continue;
      const n = sweep(m, doom).deleted;
      out.families[family] = n;
      out.deleted += n;
    }
    this.deletedTotal += out.deleted;
    return out;
  }

  status(): ConntrackGCStatus {
    const s: ConntrackGCStatus = {
      running: this.timer !== undefined,
      runs: this.runs,
      deletedTotal: this.deletedTotal,
      intervalMs: this.intervalMs,
    };
    if (this.nextAt !== undefined) s.nextRunAt = new Date(this.nextAt).toISOString();
    if (this.last) s.lastRun = this.last;
    return s;
  }
}

/** 'ipv4' | '4' → ipv4, 'ipv6' | '6' → ipv6. */
export function familyOf(v: string, field: string): CtFamily {
  if (v === 'ipv4' || v === '4') return 'ipv4';
  if (v === 'ipv6' || v === '6') return 'ipv6';
  throw new ConntrackArgumentError(field, `unknown family "${v}" (ipv4 or ipv6)`);
}
