/**
 * L7 flows: what a proxy (src/proxy) reports about one request or response, as a Hubble flow of
 * Type L7 (upstream's access-log flows: event type 129, Layer7 with REQUEST / RESPONSE, the latency
 * on responses). A request the proxy refused is DROPPED, one it could not complete ERROR.
 */
import { MessageType } from './constants.js';
import type { Observer } from './observer.js';
import { flowUuid, formatTimestamp, type ParserContext, resolveEndpoint } from './parser.js';
import type { DNS, Flow, HTTP, HTTPHeader, HubbleEvent, Kafka, Layer7, Verdict } from './types.js';

/** What a proxy reports (src/proxy/framework.ts L7Record extends it with its redirect record). */
export interface L7Event {
  readonly type: 'request' | 'response';
  /** forwarded: passed upstream; denied: refused by policy; error: the proxy could not complete it. */
  readonly verdict: 'forwarded' | 'denied' | 'error';
  readonly time: Date;
  /** Response: from the request's arrival to the response's first byte. */
  readonly latencyNs?: bigint;
  readonly info: {
    readonly protocol: 'tcp' | 'udp';
    readonly client: { readonly address: string; readonly port: number };
    readonly original: { readonly address: string; readonly port: number };
    readonly egress: boolean;
    readonly srcIdentity: number;
    readonly dstIdentity: number;
    readonly proxyPort: number;
  };
  readonly http?: {
    readonly code?: number;
    readonly method: string;
    readonly url: string;
    readonly protocol: string;
    readonly headers: readonly { key: string; value: string }[];
  };
  readonly dns?: {
    readonly query: string;
    readonly ips?: readonly string[];
    readonly ttl?: number;
    readonly cnames?: readonly string[];
    readonly rcode?: number;
    readonly qtypes?: readonly string[];
    readonly rrtypes?: readonly string[];
  };
  readonly kafka?: {
    readonly errorCode?: number;
    readonly apiVersion: number;
    readonly apiKey: string;
    readonly correlationId: number;
    readonly topic?: string;
  };
}

/** What a flow is built from: an L7Event but its time, which is given apart. */
type FlowParts = Omit<L7Event, 'time' | 'latencyNs'> & { readonly latencyNs?: bigint | number | undefined };

const VERDICTS: Record<L7Event['verdict'], Verdict> = {
  forwarded: 'FORWARDED',
  denied: 'DROPPED',
  error: 'ERROR',
};

/**
 * The Layer7 part of a flow. Built field by field (object spreads cost more than the rest of the
 * flow together, two flows per proxied request); the event's header list is taken as it is: a
 * proxy hands over a list of its own for each event.
 */
function layer7(e: FlowParts): Layer7 {
  const l7: Layer7 = { type: e.type === 'request' ? 'REQUEST' : 'RESPONSE' };
  if (e.latencyNs !== undefined) l7.latency_ns = Number(e.latencyNs);
  const h = e.http;
  if (h) {
    const http: HTTP = {
      method: h.method,
      url: h.url,
      protocol: h.protocol,
      headers: h.headers as HTTPHeader[],
    };
    if (h.code !== undefined) http.code = h.code;
    l7.http = http;
  }
  const d = e.dns;
  if (d) {
    const dns: DNS = { query: d.query, observation_source: 'proxy' };
    if (d.ips) dns.ips = [...d.ips];
    if (d.ttl !== undefined) dns.ttl = d.ttl;
    if (d.cnames) dns.cnames = [...d.cnames];
    if (d.rcode !== undefined) dns.rcode = d.rcode;
    if (d.qtypes) dns.qtypes = [...d.qtypes];
    if (d.rrtypes) dns.rrtypes = [...d.rrtypes];
    l7.dns = dns;
  }
  const k = e.kafka;
  if (k) {
    const kafka: Kafka = { api_version: k.apiVersion, api_key: k.apiKey, correlation_id: k.correlationId };
    if (k.errorCode !== undefined) kafka.error_code = k.errorCode;
    if (k.topic !== undefined) kafka.topic = k.topic;
    l7.kafka = kafka;
  }
  return l7;
}

/** The event type of every L7 flow (shared: flows are never changed once built). */
const ACCESS_LOG_EVENT: Flow['event_type'] = { type: MessageType.ACCESS_LOG };

function summary(e: FlowParts): string {
  const t = e.type === 'request' ? 'request' : 'response';
  if (e.http) {
    // upstream's summaries: "HTTP/1.1 PUT http://host/path", "HTTP/1.1 403 1ms (PUT http://host/path)"
    if (e.type === 'request') return `${e.http.protocol} ${e.http.method} ${e.http.url}`;
    const ms = e.latencyNs !== undefined ? ` ${Math.round(Number(e.latencyNs) / 1e6)}ms` : '';
    return `${e.http.protocol} ${e.http.code ?? 0}${ms} (${e.http.method} ${e.http.url})`;
  }
  if (e.dns) return `DNS ${t} ${e.dns.query}${e.dns.rcode !== undefined ? ` rcode ${e.dns.rcode}` : ''}`;
  if (e.kafka) return `Kafka ${t} ${e.kafka.apiKey} topic ${e.kafka.topic ?? ''}`;
  return `L7 ${t}`;
}

/** The flow of one L7 event: a request goes client → destination, a response back. */
export function l7Flow(e: L7Event, ctx: ParserContext): Flow {
  const ms = e.time.getTime();
  const x = ends(e.info, e.type === 'response', ctx, ms);
  return buildFlow(e, x, Math.floor(ms / 1000), (ms % 1000) * 1_000_000, true);
}

/**
 * An L7 event as the flow ring holds it: its flow is built when something reads it (a query, a
 * follower) and kept from then on. The ring holds 4,095 events, longer than the young generation
 * lives, so every flow built at once was copied into the old generation and marked there until
 * overwritten: about a fifth of the proxy's CPU per request on loopback. The event and the ends
 * it is held with (shared by its connection, resolved when it was recorded) are a fraction of it.
 */
class L7RingEvent implements HubbleEvent, FlowParts {
  readonly timeMs: number;
  // what the flow is built from, copied out of the event (not its Date, nor the latency's BigInt)
  readonly type: L7Event['type'];
  readonly verdict: L7Event['verdict'];
  readonly info: L7Event['info'];
  readonly latencyNs: number | undefined;
  readonly http: L7Event['http'];
  readonly dns: L7Event['dns'];
  readonly kafka: L7Event['kafka'];
  #ends: Ends;
  #flow: Flow | undefined;

  constructor(
    e: L7Event,
    ends: Ends,
    readonly sec: number,
    readonly nsec: number,
  ) {
    this.timeMs = sec * 1000 + nsec / 1e6;
    this.type = e.type;
    this.verdict = e.verdict;
    this.info = e.info;
    this.latencyNs = e.latencyNs === undefined ? undefined : Number(e.latencyNs);
    this.http = e.http;
    this.dns = e.dns;
    this.kafka = e.kafka;
    this.#ends = ends;
  }

  get flow(): Flow {
    this.#flow ??= buildFlow(this, this.#ends, this.sec, this.nsec, true);
    return this.#flow;
  }
}

/**
 * Records an L7 event in the observer: the ring gets it as an L7RingEvent, the metrics count its
 * flow now (built without the parts they never read: time, summary, uuid, and left to the young
 * generation).
 */
export function recordL7(observer: Observer, e: L7Event): void {
  const ms = e.time.getTime();
  const sec = Math.floor(ms / 1000);
  const nsec = (ms % 1000) * 1_000_000;
  const ctx = observer.parserContext;
  const x = ends(e.info, e.type === 'response', ctx, ms);
  observer.ingestEvent(new L7RingEvent(e, x, sec, nsec), buildFlow(e, x, sec, nsec, false));
}

/** How long L7 events wait to be recorded together, and how many make a batch go at once. */
export const L7_BATCH_MS = 10;
export const L7_BATCH_MAX = 512;

/**
 * Records a proxy's L7 events in the observer in batches, off the request path: an event waits up
 * to L7_BATCH_MS (or until L7_BATCH_MAX are waiting), then its batch is built and recorded in one
 * go. One flow at a time, right after each answer, cost about half again as much CPU per flow (the
 * code and data of flows, ring and metrics cold again each time) and ran just when the client's
 * next request was due. Order is kept; nothing is dropped.
 */
export class L7Recorder {
  #pending: L7Event[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly observer: Observer,
    readonly onError: (err: unknown) => void = () => {},
    readonly batchMs = L7_BATCH_MS,
    readonly batchMax = L7_BATCH_MAX,
  ) {}

  add(e: L7Event): void {
    const n = this.#pending.push(e);
    if (n === 1) {
      this.#timer = setTimeout(this.flush, this.batchMs);
      this.#timer.unref();
    } else if (n === this.batchMax) {
      clearTimeout(this.#timer);
      setImmediate(this.flush);
    }
  }

  /** Events added and not recorded yet. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Records what waits now. */
  readonly flush = (): void => {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    for (const e of batch) {
      try {
        recordL7(this.observer, e);
      } catch (err) {
        this.onError(err);
      }
    }
  };
}

/**
 * What every flow of one connection and direction shares: addresses, ports and both endpoints
 * (never changed once built, so its flows hold the same objects). Kept per redirect record for
 * ENDS_TTL_MS, so a keep-alive connection's requests spare the endpoint lookups and copies, and a
 * pod's new labels or name show within that time.
 */
interface Ends {
  readonly ctx: ParserContext;
  readonly until: number;
  readonly IP: NonNullable<Flow['IP']>;
  readonly l4: NonNullable<Flow['l4']>;
  readonly source: NonNullable<Flow['source']>;
  readonly destination: NonNullable<Flow['destination']>;
}

const ENDS_TTL_MS = 1000;
/** Per redirect record (one per TCP connection): the request direction's ends, the reply's. */
const endsCache = new WeakMap<L7Event['info'], [Ends | undefined, Ends | undefined]>();

function ends(info: L7Event['info'], reply: boolean, ctx: ParserContext, ms: number): Ends {
  let pair = endsCache.get(info);
  if (pair === undefined) {
    pair = [undefined, undefined];
    endsCache.set(info, pair);
  }
  const i = reply ? 1 : 0;
  const cached = pair[i];
  if (cached !== undefined && cached.ctx === ctx && ms < cached.until && ms >= cached.until - ENDS_TTL_MS)
    return cached;
  const src = reply ? info.original : info.client;
  const dst = reply ? info.client : info.original;
  const ports = { source_port: src.port, destination_port: dst.port };
  const x: Ends = {
    ctx,
    until: ms + ENDS_TTL_MS,
    IP: {
      source: src.address,
      destination: dst.address,
      ipVersion: src.address.includes(':') ? 'IPv6' : 'IPv4',
    },
    l4: info.protocol === 'tcp' ? { TCP: ports } : { UDP: ports },
    source: resolveEndpoint(ctx, src.address, reply ? info.dstIdentity : info.srcIdentity),
    destination: resolveEndpoint(ctx, dst.address, reply ? info.srcIdentity : info.dstIdentity),
  };
  pair[i] = x;
  return x;
}

/** The flow of `e` between the ends `x`; `whole` false: without time, summary and uuid (for the metrics). */
function buildFlow(e: FlowParts, x: Ends, sec: number, nsec: number, whole: boolean): Flow {
  const reply = e.type === 'response';
  const info = e.info;
  const ctx = x.ctx;
  const flow: Flow = {
    time: whole ? formatTimestamp(sec, nsec) : '',
    verdict: VERDICTS[e.verdict],
    IP: x.IP,
    l4: x.l4,
    source: x.source,
    destination: x.destination,
    Type: 'L7',
    node_name: ctx.nodeName,
    event_type: ACCESS_LOG_EVENT,
    traffic_direction: info.egress ? 'EGRESS' : 'INGRESS',
    is_reply: reply,
    l7: layer7(e),
    Summary: whole ? summary(e) : '',
  };
  if (info.proxyPort) flow.proxy_port = info.proxyPort;
  if (whole && ctx.uuid !== false) flow.uuid = flowUuid();
  return flow;
}
