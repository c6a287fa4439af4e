/**
 * Flow printing as the `hubble` CLI does it: compact, dict, table, json (the
 * Flow), jsonpb (the GetFlowsResponse). Pure functions over JSON-style flows.
 */
import {
  dropReasonText,
  MessageType,
  PolicyMatchTypeNames,
  ReservedIdentityNames,
  TraceObsPointNames,
} from './constants.js';
import type { Endpoint, Flow, LostEvent, Service } from './types.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => String(n).padStart(2, '0');

/** Go's time.StampMilli (`Jan _2 15:04:05.000`) in local time; `N/A` for a missing time. */
export function formatStampMilli(time: string | undefined): string {
  if (!time) return 'N/A';
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) return 'N/A';
  const d = new Date(ms);
  const day = String(d.getDate()).padStart(2, ' ');
  const milli = String(d.getMilliseconds()).padStart(3, '0');
  return `${MONTHS[d.getMonth()]} ${day} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${milli}`;
}

/** Upstream's Hostname(): `ns/pod:port`, else `ns/service:port`, else `ip:port` (`[v6]:port`). */
export function hostname(
  ip: string,
  port: number | undefined,
  ns?: string,
  pod?: string,
  service?: string,
): string {
  const name = pod || service;
  const host = name ? (ns ? `${ns}/${name}` : name) : ip;
  if (port) return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return host;
}

function flowPorts(f: Flow): [number | undefined, number | undefined] {
  const p = f.l4?.TCP ?? f.l4?.UDP ?? f.l4?.SCTP;
  return p ? [p.source_port ?? 0, p.destination_port ?? 0] : [undefined, undefined];
}

/** A side's namespace as upstream's printer takes it: the service's when the flow names one. */
function sideNamespace(ep: Endpoint | undefined, svc: Service | undefined): string | undefined {
  return svc ? (svc.namespace ?? '') : ep?.namespace;
}

/** Source and destination as the printer shows them (the pod name first, then the service name). */
export function hostNames(f: Flow): [string, string] {
  if (!f.IP) return f.ethernet ? [f.ethernet.source, f.ethernet.destination] : ['', ''];
  const [sp, dp] = flowPorts(f);
  const src = f.source_service;
  const dst = f.destination_service;
  return [
    hostname(f.IP.source, sp, sideNamespace(f.source, src), f.source?.pod_name, src?.name),
    hostname(f.IP.destination, dp, sideNamespace(f.destination, dst), f.destination?.pod_name, dst?.name),
  ];
}

/** `(ID:1234)`, or `(world)` for reserved identities. */
export function formatIdentity(id: number | undefined): string {
  const n = id ?? 0;
  if (n > 0 && n < 256) return `(${ReservedIdentityNames[n] ?? n})`;
  return `(ID:${n})`;
}

/** Upstream's GetFlowType(): `to-endpoint`, `Policy denied`, `policy-verdict:L3-L4 INGRESS`... */
export function flowTypeString(f: Flow): string {
  const t = f.event_type?.type ?? 0;
  const sub = f.event_type?.sub_type ?? 0;
  switch (t) {
    case MessageType.TRACE:
      return TraceObsPointNames[sub] ?? String(sub);
    case MessageType.DROP:
      return dropReasonText(sub);
    case MessageType.POLICY_VERDICT:
      return `policy-verdict:${PolicyMatchTypeNames[f.policy_match_type ?? 0] ?? 'unknown'} ${f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN'}`;
    case MessageType.ACCESS_LOG: {
      // upstream: <protocol>-<request|response>
      const l7 = f.l7;
      const proto = l7?.http ? 'http' : l7?.dns ? 'dns' : l7?.kafka ? 'kafka' : 'l7';
      return `${proto}-${(l7?.type ?? 'UNKNOWN_L7_TYPE').toLowerCase()}`;
    }
    default:
      return 'UNKNOWN';
  }
}

/** Upstream's getVerdict(): policy verdict events say ALLOWED / DENIED / AUDITED. */
export function verdictString(f: Flow): string {
  const pv = f.event_type?.type === MessageType.POLICY_VERDICT;
  switch (f.verdict) {
    case 'FORWARDED':
    case 'REDIRECTED':
      return pv ? 'ALLOWED' : f.verdict;
    case 'DROPPED':
    case 'ERROR':
      return pv ? 'DENIED' : f.verdict;
    case 'AUDIT':
      return pv ? 'AUDITED' : f.verdict;
    default:
      return f.verdict ?? 'VERDICT_UNKNOWN';
  }
}

export interface FormatOptions {
  /** Print `[node]` after the time (compact) or a NODE column (table/dict). */
  nodeName?: boolean;
}

/** One compact line, e.g. `Nov 21 20:01:02.123: default/a:51234 (ID:1234) -> default/b:80 (ID:5678) to-endpoint FORWARDED (TCP Flags: SYN)`. */
export function formatCompact(f: Flow, opts: FormatOptions = {}): string {
  let [src, dst] = hostNames(f);
  let srcId = formatIdentity(f.source?.identity);
  let dstId = formatIdentity(f.destination?.identity);
  let arrow = '->';
  if (f.is_reply === undefined) arrow = '<>';
  else if (f.is_reply) {
    [src, dst] = [dst, src];
    [srcId, dstId] = [dstId, srcId];
    arrow = '<-';
  }
  const node = opts.nodeName ? ` [${f.node_name ?? ''}]` : '';
  return `${formatStampMilli(f.time)}${node}: ${src} ${srcId} ${arrow} ${dst} ${dstId} ${flowTypeString(f)} ${verdictString(f)} (${f.Summary ?? ''})`;
}

/** The dict block of one flow (without the separator line printed between flows). */
export function formatDict(f: Flow, opts: FormatOptions = {}): string {
  const [src, dst] = hostNames(f);
  const lines = [`  TIMESTAMP: ${formatStampMilli(f.time)}`];
  if (opts.nodeName) lines.push(`       NODE: ${f.node_name ?? ''}`);
  lines.push(
    `     SOURCE: ${src}`,
    `DESTINATION: ${dst}`,
    `       TYPE: ${flowTypeString(f)}`,
    `    VERDICT: ${verdictString(f)}`,
    `    SUMMARY: ${f.Summary ?? ''}`,
  );
  return lines.join('\n');
}

export const DICT_SEPARATOR = '------------';

export function tableHeader(opts: FormatOptions = {}): string[] {
  return [
    'TIMESTAMP',
    ...(opts.nodeName ? ['NODE'] : []),
    'SOURCE',
    'DESTINATION',
    'TYPE',
    'VERDICT',
    'SUMMARY',
  ];
}

export function tableRow(f: Flow, opts: FormatOptions = {}): string[] {
  const [src, dst] = hostNames(f);
  return [
    formatStampMilli(f.time),
    ...(opts.nodeName ? [f.node_name ?? ''] : []),
    src,
    dst,
    flowTypeString(f),
    verdictString(f),
    f.Summary ?? '',
  ];
}

/** Align rows like Go's tabwriter (minwidth 2, padding 3, last column unpadded). */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) {
    for (let i = 0; i < r.length; i++) widths[i] = Math.max(widths[i] ?? 2, r[i]!.length);
  }
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3))).join(''))
    .join('\n');
}

/** `-o json`: the Flow, one line. */
export function formatJson(f: Flow): string {
  return JSON.stringify(f);
}

/** `-o jsonpb`: the GetFlowsResponse, one line. */
export function formatJsonPb(res: {
  flow?: Flow;
  lost_events?: LostEvent;
  node_name?: string;
  time?: string;
}): string {
  return JSON.stringify(res);
}

/** What the CLI prints (on stderr) for a loss notice. */
export function formatLost(l: LostEvent): string {
  return `EVENTS LOST: ${l.source} CPU(${l.cpu ?? 0}) ${l.num_events_lost}`;
}
