/**
 * The per-node Observer: parses datapath events into flows, keeps them in the
 * flow ring, feeds the metrics, accounts lost events, and answers flow queries
 * (last/first N, since/until, follow, white/blacklists) independently of gRPC.
 */

import { RequestError } from './errors.js';
import { compileFilters } from './filter.js';
import type { HubbleMetrics } from './metrics.js';
import {
  assembleFlow,
  bootTimeFromClocks,
  decodeEvent,
  type EndpointInfo,
  eventTime,
  flowUuid,
  type ParserContext,
  parseTimestamp,
  type ResolvedEvent,
  resolveEvent,
  type ServiceName,
  type ServiceProtocol,
} from './parser.js';
import { VERSION } from './proto.js';
import { DEFAULT_RING_CAPACITY, FlowRing } from './ring.js';
import type { Flow, FlowFilter, HubbleEvent, LostEvent } from './types.js';

/**
 * A datapath event in the ring: its bytes and what the node's state said of it when it was seen
 * (endpoints, services, interface), its flow built when somebody reads it. Held for the ring's
 * whole turn, a built flow (some twenty objects) would be copied by the young generation and then
 * promoted; this is a few, the bytes outside the heap.
 */
class DatapathRingEvent implements HubbleEvent {
  readonly timeMs: number;
  #flow: Flow | undefined;

  constructor(
    readonly sec: number,
    readonly nsec: number,
    private readonly bytes: Uint8Array,
    private readonly resolved: ResolvedEvent,
    private readonly uuid: string | undefined,
    private readonly ctx: ParserContext,
  ) {
    this.timeMs = sec * 1000 + nsec / 1e6;
  }

  get flow(): Flow {
    // decodeEvent accepted these bytes when they came in
    this.#flow ??= assembleFlow(
      decodeEvent(this.bytes)!,
      this.resolved,
      this.ctx,
      this.sec,
      this.nsec,
      this.uuid,
    );
    return this.#flow;
  }
}

export interface ObserverLogger {
  warn(obj: object, msg: string): void;
}

export interface ObserverOptions {
  nodeName: string;
  /** Flow ring capacity (default 4095, like upstream). */
  capacity?: number;
  endpointByIp?(ip: string): EndpointInfo | undefined;
  identityLabels?(identity: number): readonly string[] | undefined;
  interfaceName?(ifindex: number): string | undefined;
  /**
   * The Service that `ip:port/protocol` is a frontend or a backend of (the agent's service state).
   * Flows get `destination_service` from the destination address of requests (and of flows whose
   * direction is unknown, such as drops) and `source_service` from the source address of replies.
   * Backends must answer too: with socket-LB the packets already carry the backend's address.
   * Without it flows carry no service.
   */
  serviceByAddress?(ip: string, port: number, protocol: ServiceProtocol): ServiceName | undefined;
  /** Wall-clock time of ktime 0 (default: from this process's clocks). */
  bootTime?: ParserContext['bootTime'];
  metrics?: HubbleMetrics;
  logger?: ObserverLogger;
  /** Give flows uuids (default true). */
  uuid?: boolean;
  /**
   * Whether the reader that feeds this observer from the datapath's ring buffer is running. The
   * health check and ServerStatus report NOT_SERVING / an unavailable node while it is not (or
   * while it throws). Without it the observer counts as serving: it is fed by ingest() only.
   */
  readerUp?(): boolean;
}

export interface FlowsQuery {
  number?: number;
  first?: boolean;
  follow?: boolean;
  /** ms since the epoch */
  sinceMs?: number;
  untilMs?: number;
  whitelist?: readonly FlowFilter[];
  blacklist?: readonly FlowFilter[];
}

export interface ObserverStatus {
  num_flows: number;
  max_flows: number;
  seen_flows: number;
  uptime_ns: number;
  flows_rate: number;
  version: string;
  lost_events_datapath: number;
  lost_events_followers: number;
  parse_errors: number;
  /** The ring-buffer reader feeding this observer is running (see ObserverOptions.readerUp). */
  reader_up: boolean;
}

const RATE_WINDOW_S = 60;

export class Observer {
  readonly ring: FlowRing;
  readonly nodeName: string;
  readonly version = VERSION;
  private readonly ctx: ParserContext;
  private readonly metrics: HubbleMetrics | undefined;
  private readonly logger: ObserverLogger | undefined;
  private readonly readerUpSource: (() => boolean) | undefined;
  private readonly started = process.hrtime.bigint();
  private seen = 0;
  private parseErrors = 0;
  private lastErrorLog = 0;
  private lostDatapath = 0;
  private lastLostCounter: number | undefined;
  // flows per second over the last minute: one bucket per second
  private readonly rateBuckets = new Float64Array(RATE_WINDOW_S);
  private rateSecond = Math.floor(Date.now() / 1000);

  constructor(opts: ObserverOptions) {
    this.nodeName = opts.nodeName;
    this.ring = new FlowRing(opts.capacity ?? DEFAULT_RING_CAPACITY);
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.readerUpSource = opts.readerUp;
    this.ctx = {
      nodeName: opts.nodeName,
      bootTime: opts.bootTime ?? bootTimeFromClocks(),
      version: VERSION,
      ...(opts.uuid === false ? { uuid: false } : {}),
      ...(opts.endpointByIp ? { endpointByIp: opts.endpointByIp } : {}),
      ...(opts.identityLabels ? { identityLabels: opts.identityLabels } : {}),
      ...(opts.interfaceName ? { interfaceName: opts.interfaceName } : {}),
      ...(opts.serviceByAddress ? { serviceByAddress: opts.serviceByAddress } : {}),
    };
  }

  /** The parser context flows are decoded with (node name, boot time, getters). */
  get parserContext(): ParserContext {
    return this.ctx;
  }

  /**
   * One ring-buffer record from the datapath. Returns the flow, or undefined
   * when the record carries none or cannot be parsed (counted in parse_errors,
   * logged at most once per second; never throws into the agent's read loop).
   */
  ingest(bytes: Uint8Array): Flow | undefined {
    let flow: Flow;
    let event: DatapathRingEvent;
    try {
      const e = decodeEvent(bytes);
      if (!e) return undefined;
      const r = resolveEvent(e, this.ctx);
      const { sec, nsec } = eventTime(e, this.ctx);
      const uuid = this.ctx.uuid !== false ? flowUuid() : undefined;
      // the flow the metrics (and the monitor) see now, left to the young generation
      flow = assembleFlow(e, r, this.ctx, sec, nsec, uuid);
      event = new DatapathRingEvent(sec, nsec, Buffer.from(bytes), r, uuid, this.ctx);
    } catch (err) {
      this.parseErrors++;
      const now = Date.now();
      if (this.logger && now - this.lastErrorLog > 1000) {
        this.lastErrorLog = now;
        this.logger.warn({ err, parseErrors: this.parseErrors }, 'hubble: cannot parse datapath event');
      }
      return undefined;
    }
    this.ingestEvent(event, flow);
    return flow;
  }

  /**
   * A flow built elsewhere (tests, L7 proxies). Its time is read from `flow.time` unless given
   * (`sec`, `nsec`: the same instant, spared a parse when the caller has it as numbers).
   */
  ingestFlow(flow: Flow, sec?: number, nsec?: number): void {
    if (sec === undefined || nsec === undefined) {
      const t = parseTimestamp(flow.time);
      sec = t.sec;
      nsec = t.nsec;
    }
    this.push(flow, sec, nsec, sec * 1000 + nsec / 1e6);
  }

  /**
   * An event whose flow the ring builds when it is read (L7 events: src/hubble/l7.ts); `counted` is
   * the same flow as the metrics see it now.
   */
  ingestEvent(ev: HubbleEvent, counted: Flow): void {
    this.seen++;
    this.countRate();
    this.ring.push(ev);
    this.metrics?.processFlow(counted);
  }

  private push(flow: Flow, sec: number, nsec: number, timeMs: number): void {
    this.ingestEvent({ timeMs, sec, nsec, flow }, flow);
  }

  private countRate(): void {
    const s = Math.floor(Date.now() / 1000);
    if (s !== this.rateSecond) {
      const gap = Math.min(s - this.rateSecond, RATE_WINDOW_S);
      for (let i = 1; i <= gap; i++) this.rateBuckets[(this.rateSecond + i) % RATE_WINDOW_S] = 0;
      this.rateSecond = s;
    }
    this.rateBuckets[s % RATE_WINDOW_S]!++;
  }

  /** Approximate flows per second over the last minute. */
  flowsRate(): number {
    const s = Math.floor(Date.now() / 1000);
    let sum = 0;
    for (let i = 0; i < RATE_WINDOW_S; i++) {
      const sec = s - i;
      if (sec > this.rateSecond || this.rateSecond - sec >= RATE_WINDOW_S) continue;
      sum += this.rateBuckets[sec % RATE_WINDOW_S]!;
    }
    const upS = Number(process.hrtime.bigint() - this.started) / 1e9;
    return sum / Math.max(1, Math.min(RATE_WINDOW_S, upS));
  }

  /**
   * Events the BPF ring buffer could not take (a delta). Recorded as a
   * PERF_EVENT_RING_BUFFER LostEvent in the flow ring, so GetFlows clients see it.
   */
  recordLost(n: number, source: LostEvent['source'] = 'PERF_EVENT_RING_BUFFER'): void {
    if (!(n > 0)) return;
    if (source === 'PERF_EVENT_RING_BUFFER') this.lostDatapath += n;
    const now = new Date();
    const ms = now.getTime();
    this.ring.push({
      timeMs: ms,
      sec: Math.floor(ms / 1000),
      nsec: (ms % 1000) * 1e6,
      lost: { source, num_events_lost: n, first: now.toISOString(), last: now.toISOString() },
    });
  }

  /** The datapath's cumulative lost counter (cilium_events_lost, summed over CPUs); records the increase. */
  recordLostCounter(total: number): void {
    const prev = this.lastLostCounter;
    this.lastLostCounter = total;
    if (prev === undefined) {
      this.recordLost(total);
      return;
    }
    if (total > prev) this.recordLost(total - prev);
  }

  /** Whether the datapath reader feeding this observer is running; a failing source counts as down. */
  readerUp(): boolean {
    if (!this.readerUpSource) return true;
    try {
      return this.readerUpSource() === true;
    } catch {
      return false;
    }
  }

  status(): ObserverStatus {
    return {
      num_flows: this.ring.size,
      max_flows: this.ring.capacity,
      seen_flows: this.seen,
      uptime_ns: Number(process.hrtime.bigint() - this.started),
      flows_rate: this.flowsRate(),
      version: this.version,
      lost_events_datapath: this.lostDatapath,
      lost_events_followers: this.ring.followerLost,
      parse_errors: this.parseErrors,
      reader_up: this.readerUp(),
    };
  }

  /** Namespaces seen in the flows held now. */
  namespaces(): string[] {
    const set = new Set<string>();
    for (const ev of this.ring.oldestFirst()) {
      if (ev.flow?.source?.namespace) set.add(ev.flow.source.namespace);
      if (ev.flow?.destination?.namespace) set.add(ev.flow.destination.namespace);
    }
    return [...set].sort();
  }

  /**
   * Events answering a query, oldest first; then, with follow, live ones until
   * the signal aborts. Loss notices pass every filter and do not count towards
   * `number` (as upstream). Throws RequestError/FilterError on a bad query.
   */
  getFlows(q: FlowsQuery, signal?: AbortSignal): AsyncGenerator<HubbleEvent, void, undefined> {
    if (q.first && q.follow) throw new RequestError('first cannot be used with follow');
    const pred = compileFilters(q.whitelist, q.blacklist);
    const since = q.sinceMs;
    const until = q.untilMs;
    const matches = (ev: HubbleEvent): boolean => {
      if (ev.lost) return true;
      if (since !== undefined && ev.timeMs < since) return false;
      if (until !== undefined && ev.timeMs > until) return false;
      return pred(ev.flow!);
    };
    const ring = this.ring;
    const end = ring.written;
    const number = q.number ?? 0;
    const history: HubbleEvent[] = [];
    if (q.first) {
      let count = 0;
      for (let s = ring.oldestSeq; s < end && (number === 0 || count < number); s++) {
        const ev = ring.at(s)!;
        if (!matches(ev)) continue;
        history.push(ev);
        if (ev.flow) count++;
      }
    } else if (number > 0) {
      let count = 0;
      for (let s = end - 1; s >= ring.oldestSeq && count < number; s--) {
        const ev = ring.at(s)!;
        if (!matches(ev)) continue;
        history.push(ev);
        if (ev.flow) count++;
      }
      history.reverse();
    } else if (!q.follow || since !== undefined) {
      for (let s = ring.oldestSeq; s < end; s++) {
        const ev = ring.at(s)!;
        if (matches(ev)) history.push(ev);
      }
    }
    const follow = q.follow === true;
    return (async function* () {
      for (const ev of history) {
        if (signal?.aborted) return;
        yield ev;
      }
      if (!follow) return;
      for await (const ev of ring.follow({ from: end, ...(signal ? { signal } : {}) })) {
        if (until !== undefined && ev.flow && ev.timeMs > until) return;
        if (matches(ev)) yield ev;
      }
    })();
  }
}
