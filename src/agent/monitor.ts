/**
 * The monitor: drains the datapath's ring buffer, hands each event to the flow observer (which
 * parses it once, with names from the agent's state, into its ring and metrics), and fans the flow
 * out to `cilium-ts monitor` streams. Slow stream clients are cut off rather than slowing the reader.
 */
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StatusResponse } from '../api/types.js';
import type { RingBufReader } from '../ebpf/index.js';
import type { Observer } from '../hubble/observer.js';
import type { Flow } from '../hubble/types.js';
import { ApiError, type Request, STREAMING } from './http.js';

/** The datapath's event ring buffer. */
export interface EventsSource {
  reader(): RingBufReader;
  /** Events the datapath could not put in the ring (cumulative). */
  lost(): bigint | number;
}

interface Subscriber {
  res: ServerResponse;
  types: Set<string>;
  endpoint?: number;
}

/** The pause before the next drain of the ring buffer after one that found events: a flow shows up
 * at most this much later, against a wake-up per event. */
const DRAIN_PAUSE_MS = 2;

export class Monitor {
  private reader?: RingBufReader;
  private running = false;
  private failed: string | undefined;
  private loop?: Promise<void>;
  private readonly subs = new Set<Subscriber>();
  private lostTimer?: NodeJS.Timeout;
  readonly stats = { events: 0, dropped: 0 };

  /** Every event goes through the observer, which parses it once into a flow (ring, metrics). */
  constructor(
    private readonly events: EventsSource,
    private readonly observer: Observer,
  ) {}

  async start(): Promise<void> {
    this.reader = this.events.reader();
    this.running = true;
    this.loop = this.run();
    // Events the datapath could not put in the ring are counted there; report them as lost.
    this.lostTimer = setInterval(() => this.observer.recordLostCounter(Number(this.events.lost())), 1000);
    this.lostTimer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.lostTimer);
    this.reader?.close();
    for (const s of this.subs) s.res.end();
    this.subs.clear();
    await this.loop;
  }

  /** The reader is draining the ring buffer (Hubble's health follows it). */
  get readerUp(): boolean {
    return this.running && !this.failed;
  }

  private async run(): Promise<void> {
    const reader = this.reader!;
    try {
      while (this.running) {
        const n = reader.poll((rec) => this.dispatch(rec));
        if (!this.running) break;
        // Events gather for a moment before the next drain: one wake-up (a worker thread's epoll,
        // the event loop's) per batch instead of one per event, at busy times. Not while the ring
        // fills up: it would lose events then.
        if (n > 0 && reader.pending() < reader.size / 4) await sleep(DRAIN_PAUSE_MS);
        await reader.wait(500);
      }
    } catch (err) {
      // A dead reader must show as such (NOT_SERVING), not as a quiet datapath.
      this.failed = err instanceof Error ? err.message : String(err);
    }
  }

  private dispatch(rec: Uint8Array): void {
    this.stats.events++;
    const flow = this.observer.ingest(rec);
    if (!flow || this.subs.size === 0) return;
    const kind = eventKind(flow);
    let line: string | undefined;
    for (const s of this.subs) {
      if (s.types.size && !s.types.has(kind)) continue;
      if (s.endpoint !== undefined && flow.source?.ID !== s.endpoint && flow.destination?.ID !== s.endpoint)
        continue;
      line ??= `${JSON.stringify({ kind, text: monitorLine(flow), flow })}\n`;
      // A client that cannot keep up is disconnected instead of buffering without bound.
      if (s.res.writableLength > 4 << 20) {
        this.stats.dropped++;
        s.res.end();
        this.subs.delete(s);
        continue;
      }
      s.res.write(line);
    }
  }

  /** GET /v1/monitor: newline-delimited JSON events until the client goes away. */
  stream(q: Request): typeof STREAMING {
    const types = new Set(q.query.getAll('type'));
    for (const t of types)
      if (!['drop', 'trace', 'policy-verdict'].includes(t))
        throw new ApiError(400, `type: unknown event type "${t}" (drop, trace, policy-verdict)`);
    const sub: Subscriber = { res: q.res, types };
    const ep = q.query.get('endpoint');
    if (ep) sub.endpoint = Number(ep);
    q.res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    q.res.flushHeaders();
    this.subs.add(sub);
    q.raw.on('close', () => this.subs.delete(sub));
    return STREAMING;
  }

  status(): StatusResponse['monitor'] {
    return {
      ...this.stats,
      subscribers: this.subs.size,
      ring: this.reader?.stats,
      ...(this.failed ? { readerError: this.failed } : {}),
    };
  }
}

export function eventKind(f: Flow): 'drop' | 'trace' | 'policy-verdict' {
  const t = f.event_type.type;
  return t === 1 ? 'drop' : t === 5 ? 'policy-verdict' : 'trace';
}

function endpointText(e: Flow['source']): string {
  if (!e) return '';
  const who = e.pod_name
    ? `${e.namespace}/${e.pod_name}`
    : (e.labels?.find((l) => l.startsWith('reserved:'))?.slice(9) ?? 'unknown');
  return `${who} (ID:${e.identity ?? 0}${e.ID ? `, EP:${e.ID}` : ''})`;
}

function l4Text(f: Flow): string {
  const ip = f.IP;
  const l4 = f.l4;
  if (!ip) return '';
  const tcp = l4?.TCP;
  const udp = l4?.UDP;
  const icmp = l4?.ICMPv4 ?? l4?.ICMPv6;
  if (tcp) {
    const flags = Object.entries(tcp.flags ?? {})
      .filter(([, v]) => v)
      .map(([k]) => k)
      .join(', ');
    return `${ip.source}:${tcp.source_port} -> ${ip.destination}:${tcp.destination_port} tcp ${flags}`;
  }
  if (udp) return `${ip.source}:${udp.source_port} -> ${ip.destination}:${udp.destination_port} udp`;
  if (icmp)
    return `${ip.source} -> ${ip.destination} ${l4?.ICMPv6 ? 'icmpv6' : 'icmp'} type ${icmp.type} code ${icmp.code}`;
  return `${ip.source} -> ${ip.destination}`;
}

/** One line per event, in the spirit of `cilium monitor`, with pods and identities spelled out. */
export function monitorLine(f: Flow): string {
  const src = endpointText(f.source);
  const dst = endpointText(f.destination);
  const kind = eventKind(f);
  if (kind === 'drop') {
    return `xx drop (${reasonText(f)}) ${f.traffic_direction === 'INGRESS' ? 'ingress' : 'egress'}: ${src} -> ${dst}: ${l4Text(f)}`;
  }
  if (kind === 'policy-verdict') {
    const action = f.verdict === 'FORWARDED' ? 'allow' : f.verdict === 'AUDIT' ? 'audit' : 'deny';
    return `Policy verdict: ${f.traffic_direction?.toLowerCase() ?? ''}, action ${action}${f.drop_reason_desc ? ` (${reasonText(f)})` : ''}, match ${matchName(f.policy_match_type)}: ${src} -> ${dst}: ${l4Text(f)}`;
  }
  const point = (f.trace_observation_point ?? '').toLowerCase().replace(/_/g, '-');
  return `-> ${point} ${f.is_reply ? 'reply ' : ''}${f.trace_reason ? `(${f.trace_reason.toLowerCase()}) ` : ''}${f.verdict}: ${src} -> ${dst}: ${l4Text(f)}`;
}

/** POLICY_DENIED -> "Policy denied", as `cilium monitor` prints reasons. */
export function reasonText(f: Flow): string {
  const d = f.drop_reason_desc;
  if (!d) return String(f.drop_reason ?? 'unknown');
  const s = d.toLowerCase().replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function matchName(m: number | undefined): string {
  return ['none', 'L3-only', 'L3-L4', 'L4-only', 'all', 'L7'][m ?? 0] ?? String(m);
}
