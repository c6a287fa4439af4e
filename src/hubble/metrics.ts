/**
 * Hubble flow metrics in a prom-client registry, configured like upstream's
 * `--hubble-metrics` list: `drop,tcp,flow,port-distribution,icmp`, each with
 * optional `;`-separated options after a colon, e.g.
 * `flow:sourceContext=namespace;destinationContext=pod`. The same registry
 * takes the agent's cilium_* series, and a small HTTP server serves /metrics.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, type Metric, Registry } from 'prom-client';
import { icmpTypeName, MessageType, TraceObsPointNames } from './constants.js';
import { HubbleError } from './errors.js';
import type { Endpoint, Flow } from './types.js';

export const SUPPORTED_METRICS = ['flow', 'drop', 'tcp', 'port-distribution', 'icmp', 'dns', 'http'] as const;
export type MetricName = (typeof SUPPORTED_METRICS)[number];

export interface MetricConfig {
  name: MetricName;
  options: Record<string, string>;
}

export class MetricsConfigError extends HubbleError {
  override readonly code = 'invalid-argument';
  override name = 'MetricsConfigError';
}

/** Parse `drop,tcp,flow:sourceContext=namespace;destinationContext=pod` (or a list of such entries). */
export function parseMetricsConfig(spec: string | readonly string[]): MetricConfig[] {
  const entries = (
    typeof spec === 'string' ? spec.split(/[,\s]+/) : spec.flatMap((s) => s.split(/[,\s]+/))
  ).filter((s) => s !== '');
  const out: MetricConfig[] = [];
  for (const e of entries) {
    const colon = e.indexOf(':');
    const name = (colon >= 0 ? e.slice(0, colon) : e) as MetricName;
    if (!SUPPORTED_METRICS.includes(name)) {
      throw new MetricsConfigError(
        `unknown hubble metric "${name}" (supported: ${SUPPORTED_METRICS.join(', ')})`,
      );
    }
    const options: Record<string, string> = {};
    if (colon >= 0) {
      for (const kv of e.slice(colon + 1).split(';')) {
        if (kv === '') continue;
        const eq = kv.indexOf('=');
        // dns takes upstream's two flags: `query` (a query label) and `ignoreAAAA`.
        if (name === 'dns' && eq < 0 && DNS_FLAGS.has(kv)) {
          options[kv] = 'true';
          continue;
        }
        if (eq <= 0) throw new MetricsConfigError(`metric ${name}: option "${kv}" is not key=value`);
        const key = kv.slice(0, eq);
        if (key !== 'sourceContext' && key !== 'destinationContext') {
          throw new MetricsConfigError(
            `metric ${name}: unknown option "${key}" (sourceContext, destinationContext)`,
          );
        }
        const val = kv.slice(eq + 1);
        for (const v of val.split('|')) {
          if (!CONTEXT_VALUES.has(v)) {
            throw new MetricsConfigError(
              `metric ${name}: unknown ${key} "${v}" (${[...CONTEXT_VALUES].join('|')})`,
            );
          }
        }
        options[key] = val;
      }
    }
    if (out.some((o) => o.name === name)) throw new MetricsConfigError(`hubble metric "${name}" given twice`);
    out.push({ name, options });
  }
  return out;
}

const DNS_FLAGS = new Set(['query', 'ignoreAAAA']);

/** Upstream's names of DNS response codes (the `rcode` label of the dns metrics). */
const DNS_RCODE_NAMES: Readonly<Record<number, string>> = {
  0: 'No Error',
  1: 'Format Error',
  2: 'Server Failure',
  3: 'Non-Existent Domain',
  4: 'Not Implemented',
  5: 'Query Refused',
  6: 'Name Exists when it should not',
  7: 'RR Set Exists when it should not',
  8: 'RR Set that should exist does not',
  9: 'Not Authorized',
  10: 'Name not contained in zone',
  11: 'DSO-TYPE Not Implemented',
  16: 'Bad OPT Version',
  17: 'Key not recognized',
};

const CONTEXT_VALUES = new Set(['namespace', 'pod', 'pod-name', 'identity', 'reserved-identity', 'ip']);

type ContextFn = (flow: Flow, ep: Endpoint | undefined, ip: string | undefined) => string;

function contextFn(spec: string | undefined): ContextFn | undefined {
  if (!spec) return undefined;
  const parts = spec.split('|');
  const one = (p: string): ContextFn => {
    switch (p) {
      case 'namespace':
        return (_f, ep) => ep?.namespace ?? '';
      case 'pod':
        return (_f, ep) => (ep?.pod_name ? `${ep.namespace ?? ''}/${ep.pod_name}` : '');
      case 'pod-name':
        return (_f, ep) => ep?.pod_name ?? '';
      case 'identity':
        return (_f, ep) => (ep?.identity ? String(ep.identity) : '');
      case 'reserved-identity':
        return (_f, ep) => {
          const id = ep?.identity ?? 0;
          return id > 0 && id < 256 ? (ep?.labels?.find((l) => l.startsWith('reserved:')) ?? '') : '';
        };
      default:
        return (_f, _ep, ip) => ip ?? '';
    }
  };
  const fns = parts.map(one);
  return (f, ep, ip) => {
    for (const fn of fns) {
      const v = fn(f, ep, ip);
      if (v !== '') return v;
    }
    return '';
  };
}

/** Upstream's FlowProtocol(): the L4 protocol name of a flow. */
export function flowProtocol(flow: Flow): string {
  const l4 = flow.l4;
  if (!l4) return 'Unknown L4';
  if (l4.TCP) return 'TCP';
  if (l4.UDP) return 'UDP';
  if (l4.ICMPv4) return 'ICMPv4';
  if (l4.ICMPv6) return 'ICMPv6';
  if (l4.SCTP) return 'SCTP';
  return 'Unknown L4';
}

interface Handler {
  process(flow: Flow): void;
}

/** A counter with per-label-set children cached by a joined key (prom-client hashes labels on every inc otherwise). */
/**
 * A counter whose increments are tallied in a plain map and handed to prom-client when Prometheus
 * scrapes: per flow that is one map lookup instead of prom-client's label hashing.
 */
class CachedCounter {
  private readonly children = new Map<string, { labels: Record<string, string>; pending: number }>();
  readonly counter: Counter<string>;
  private readonly labelNames: string[];
  constructor(name: string, help: string, labelNames: string[], registry: Registry) {
    const children = this.children;
    this.counter = new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        for (const c of children.values()) {
          if (c.pending === 0) continue;
          this.inc(c.labels, c.pending);
          c.pending = 0;
        }
      },
    });
    this.labelNames = labelNames;
  }
  inc(values: string[]): void {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (!c) {
      const labels: Record<string, string> = {};
      for (const [i, n] of this.labelNames.entries()) labels[n] = values[i] ?? '';
      c = { labels, pending: 0 };
      this.children.set(key, c);
    }
    c.pending++;
  }
}

export interface HubbleMetricsOptions {
  /** Registry to register into (default: a new one). */
  registry?: Registry;
  /** `--hubble-metrics` list; default `drop,tcp,flow,port-distribution,icmp`. */
  metrics?: string | readonly string[];
}

export const DEFAULT_METRICS = 'drop,tcp,flow,port-distribution,icmp,http';

/** Flow → Prometheus counters. Call processFlow() for every flow the observer sees. */
export class HubbleMetrics {
  readonly registry: Registry;
  readonly config: MetricConfig[];
  private readonly handlers: Handler[] = [];

  constructor(opts: HubbleMetricsOptions = {}) {
    this.registry = opts.registry ?? new Registry();
    this.config = parseMetricsConfig(opts.metrics ?? DEFAULT_METRICS);
    for (const c of this.config) this.handlers.push(this.makeHandler(c));
  }

  /** Register agent (cilium_*) or other metrics in the same registry. */
  register(metric: Metric): void {
    this.registry.registerMetric(metric);
  }

  processFlow(flow: Flow): void {
    for (const h of this.handlers) h.process(flow);
  }

  private counter(name: string, help: string, labels: string[]): CachedCounter {
    return new CachedCounter(name, help, labels, this.registry);
  }

  private makeHandler(c: MetricConfig): Handler {
    const src = contextFn(c.options.sourceContext);
    const dst = contextFn(c.options.destinationContext);
    const ctxNames = [...(src ? ['source'] : []), ...(dst ? ['destination'] : [])];
    const ctxValues = (f: Flow): string[] => {
      const out: string[] = [];
      if (src) out.push(src(f, f.source, f.IP?.source));
      if (dst) out.push(dst(f, f.destination, f.IP?.destination));
      return out;
    };
    switch (c.name) {
      case 'flow': {
        const m = this.counter('hubble_flows_processed_total', 'Total number of flows processed', [
          'type',
          'subtype',
          'verdict',
          ...ctxNames,
        ]);
        return {
          process: (f) => {
            const t = f.event_type.type ?? 0;
            let type: string;
            let sub = '';
            switch (t) {
              case MessageType.DROP:
                type = 'Drop';
                break;
              case MessageType.TRACE:
                type = 'Trace';
                sub = TraceObsPointNames[f.event_type.sub_type ?? 0] ?? '';
                break;
              case MessageType.POLICY_VERDICT:
                type = 'PolicyVerdict';
                break;
              case MessageType.CAPTURE:
                type = 'Capture';
                break;
              case MessageType.ACCESS_LOG:
                type = 'L7';
                break;
              default:
                type = 'Unknown';
                sub = String(t);
            }
            m.inc([type, sub, f.verdict, ...ctxValues(f)]);
          },
        };
      }
      case 'drop': {
        const m = this.counter('hubble_drop_total', 'Number of drops', ['reason', 'protocol', ...ctxNames]);
        return {
          process: (f) => {
            if (f.verdict !== 'DROPPED') return;
            m.inc([f.drop_reason_desc ?? 'DROP_REASON_UNKNOWN', flowProtocol(f), ...ctxValues(f)]);
          },
        };
      }
      case 'tcp': {
        const m = this.counter('hubble_tcp_flags_total', 'TCP flag occurrences', [
          'flag',
          'family',
          ...ctxNames,
        ]);
        return {
          process: (f) => {
            if (f.verdict !== 'FORWARDED' && f.verdict !== 'REDIRECTED') return;
            const flags = f.l4?.TCP?.flags;
            if (!flags || !f.IP) return;
            const family = f.IP.ipVersion;
            const cv = ctxValues(f);
            if (flags.SYN) m.inc([flags.ACK ? 'SYN-ACK' : 'SYN', family, ...cv]);
            if (flags.FIN) m.inc(['FIN', family, ...cv]);
            if (flags.RST) m.inc(['RST', family, ...cv]);
          },
        };
      }
      case 'port-distribution': {
        const m = this.counter(
          'hubble_port_distribution_total',
          'Numbers of packets distributed by destination port',
          ['protocol', 'port', ...ctxNames],
        );
        return {
          process: (f) => {
            if (f.verdict !== 'FORWARDED' && f.verdict !== 'REDIRECTED') return;
            if (f.is_reply) return;
            const l4 = f.l4;
            const p = l4?.TCP ?? l4?.UDP ?? l4?.SCTP;
            if (!p) return;
            const proto = l4?.TCP ? 'TCP' : l4?.UDP ? 'UDP' : 'SCTP';
            m.inc([proto, String(p.destination_port ?? 0), ...ctxValues(f)]);
          },
        };
      }
      case 'dns': {
        // Queries (requests, and queries the proxy refused: rcode "Policy denied") and responses,
        // from the DNS proxy's L7 flows, with upstream's labels.
        const query = c.options['query'] === 'true';
        const ignoreAAAA = c.options['ignoreAAAA'] === 'true';
        const labels = [...ctxNames, 'rcode', 'qtypes', 'ips_returned', ...(query ? ['query'] : [])];
        const queries = this.counter('hubble_dns_queries_total', 'Number of DNS queries observed', labels);
        const responses = this.counter(
          'hubble_dns_responses_total',
          'Number of DNS queries observed',
          labels,
        );
        const types = this.counter('hubble_dns_response_types_total', 'Number of DNS queries observed', [
          ...ctxNames,
          'type',
          'qtypes',
          ...(query ? ['query'] : []),
        ]);
        return {
          process: (f) => {
            const dns = f.l7?.dns;
            if (!dns) return;
            const qtypes = dns.qtypes ?? [];
            if (ignoreAAAA && qtypes.length === 1 && qtypes[0] === 'AAAA') return;
            const q = query ? [dns.query ?? ''] : [];
            const ips = String(dns.ips?.length ?? 0);
            const cv = ctxValues(f);
            if (f.verdict === 'DROPPED') queries.inc([...cv, 'Policy denied', qtypes.join(','), ips, ...q]);
            else if (!f.is_reply) queries.inc([...cv, '', qtypes.join(','), ips, ...q]);
            else {
              const rcode = DNS_RCODE_NAMES[dns.rcode ?? 0] ?? '';
              responses.inc([...cv, rcode, qtypes.join(','), ips, ...q]);
              for (const t of dns.rrtypes ?? []) types.inc([...cv, t, qtypes.join(','), ...q]);
            }
          },
        };
      }
      case 'http': {
        // upstream's http metric (v1): requests on REQUEST flows, responses and the request
        // duration (latency_ns) on RESPONSE flows; reporter = client (egress) / server (ingress).
        const requests = this.counter('hubble_http_requests_total', 'Count of HTTP requests', [
          ...ctxNames,
          'method',
          'protocol',
          'reporter',
        ]);
        const responses = this.counter('hubble_http_responses_total', 'Count of HTTP responses', [
          ...ctxNames,
          'method',
          'protocol',
          'status',
          'reporter',
        ]);
        const duration = new Histogram({
          name: 'hubble_http_request_duration_seconds',
          help: 'Quantiles of HTTP request duration in seconds',
          labelNames: [...ctxNames, 'method', 'reporter'],
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers: [this.registry],
        });
        return {
          process: (f) => {
            const http = f.l7?.http;
            if (!http || f.l7 === undefined) return;
            const reporter =
              f.traffic_direction === 'EGRESS'
                ? 'client'
                : f.traffic_direction === 'INGRESS'
                  ? 'server'
                  : 'unknown';
            const cv = ctxValues(f);
            const method = http.method ?? '';
            if (f.l7.type === 'REQUEST') requests.inc([...cv, method, http.protocol ?? '', reporter]);
            else if (f.l7.type === 'RESPONSE') {
              responses.inc([...cv, method, http.protocol ?? '', String(http.code ?? 0), reporter]);
              if (f.l7.latency_ns !== undefined) {
                const labels: Record<string, string> = { method, reporter };
                if (ctxNames[0] !== undefined) labels[ctxNames[0]] = cv[0]!;
                if (ctxNames[1] !== undefined) labels[ctxNames[1]] = cv[1]!;
                duration.observe(labels, Number(f.l7.latency_ns) / 1e9);
              }
            }
          },
        };
      }
      case 'icmp': {
        const m = this.counter('hubble_icmp_total', 'Number of ICMP messages', [
          'family',
          'type',
          ...ctxNames,
        ]);
        return {
          process: (f) => {
            const l4 = f.l4;
            if (l4?.ICMPv4) m.inc(['IPv4', icmpTypeName(false, l4.ICMPv4.type ?? 0), ...ctxValues(f)]);
            else if (l4?.ICMPv6) m.inc(['IPv6', icmpTypeName(true, l4.ICMPv6.type ?? 0), ...ctxValues(f)]);
          },
        };
      }
    }
  }
}

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Serve `GET /metrics` (Prometheus text format) on loopback. port 0 picks a free port. */
export async function startMetricsServer(
  registry: Registry,
  opts: { host?: string; port?: number } = {},
): Promise<MetricsServer> {
  const host = opts.host ?? '127.0.0.1';
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(path === '/metrics' ? 405 : 404, { 'content-type': 'text/plain' });
      res.end(path === '/metrics' ? 'method not allowed\n' : 'not found\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
