/**
 * L7 flows: what a proxy (src/proxy) reports about one request or response, as a Hubble flow of
 * Type L7 (upstream's access-log flows: event type 129, Layer7 with REQUEST / RESPONSE, the latency
 * on responses). A request the proxy refused is DROPPED, one it could not complete ERROR.
 */
import { MessageType } from './constants.js';
import { formatTimestamp, type ParserContext, resolveEndpoint } from './parser.js';
import type { Flow, Layer7, Verdict } from './types.js';

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

const VERDICTS: Record<L7Event['verdict'], Verdict> = {
  forwarded: 'FORWARDED',
  denied: 'DROPPED',
  error: 'ERROR',
};

function layer7(e: L7Event): Layer7 {
  const l7: Layer7 = { type: e.type === 'request' ? 'REQUEST' : 'RESPONSE' };
  if (e.latencyNs !== undefined) l7.latency_ns = Number(e.latencyNs);
  if (e.http)
    l7.http = {
      ...(e.http.code !== undefined ? { code: e.http.code } : {}),
      method: e.http.method,
      url: e.http.url,
      protocol: e.http.protocol,
      headers: e.http.headers.map((h) => ({ key: h.key, value: h.value })),
    };
  if (e.dns)
    l7.dns = {
      query: e.dns.query,
      ...(e.dns.ips ? { ips: [...e.dns.ips] } : {}),
      ...(e.dns.ttl !== undefined ? { ttl: e.dns.ttl } : {}),
      ...(e.dns.cnames ? { cnames: [...e.dns.cnames] } : {}),
      ...(e.dns.rcode !== undefined ? { rcode: e.dns.rcode } : {}),
      ...(e.dns.qtypes ? { qtypes: [...e.dns.qtypes] } : {}),
      ...(e.dns.rrtypes ? { rrtypes: [...e.dns.rrtypes] } : {}),
      observation_source: 'proxy',
    };
  if (e.kafka)
    l7.kafka = {
      ...(e.kafka.errorCode !== undefined ? { error_code: e.kafka.errorCode } : {}),
      api_version: e.kafka.apiVersion,
      api_key: e.kafka.apiKey,
      correlation_id: e.kafka.correlationId,
      ...(e.kafka.topic !== undefined ? { topic: e.kafka.topic } : {}),
    };
  return l7;
}

function summary(e: L7Event): string {
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
  const reply = e.type === 'response';
  const [src, dst] = reply ? [e.info.original, e.info.client] : [e.info.client, e.info.original];
  const [srcId, dstId] = reply
    ? [e.info.dstIdentity, e.info.srcIdentity]
    : [e.info.srcIdentity, e.info.dstIdentity];
  const ports = { source_port: src.port, destination_port: dst.port };
  const flow: Flow = {
    time: formatTimestamp(Math.floor(ms / 1000), (ms % 1000) * 1_000_000),
    verdict: VERDICTS[e.verdict],
    IP: {
      source: src.address,
      destination: dst.address,
      ipVersion: src.address.includes(':') ? 'IPv6' : 'IPv4',
    },
    l4: e.info.protocol === 'tcp' ? { TCP: ports } : { UDP: ports },
    source: resolveEndpoint(ctx, src.address, srcId),
    destination: resolveEndpoint(ctx, dst.address, dstId),
    Type: 'L7',
    node_name: ctx.nodeName,
    event_type: { type: MessageType.ACCESS_LOG },
    traffic_direction: e.info.egress ? 'EGRESS' : 'INGRESS',
    is_reply: reply,
    l7: layer7(e),
    Summary: summary(e),
  };
  if (e.info.proxyPort) flow.proxy_port = e.info.proxyPort;
  if (ctx.uuid !== false) flow.uuid = crypto.randomUUID();
  return flow;
}
