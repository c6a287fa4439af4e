/**
 * Upstream FlowFilter semantics: inside one filter every set field must match
 * (AND), values inside a field are alternatives (OR); a flow is returned when it
 * matches any whitelist filter (or there is none) and no blacklist filter.
 * Filters are compiled once into predicates. Pure, no I/O.
 */
import { FilterError } from './errors.js';
import { ipv6 } from './parser.js';
import type { Endpoint, Flow, FlowFilter, NetworkInterface, Service, TCPFlags } from './types.js';

export type FlowPredicate = (flow: Flow) => boolean;

// ---------- addresses ----------

/** Parse an IPv4/IPv6 text address into 4 or 16 bytes; undefined when invalid. */
export function parseIp(s: string): Uint8Array | undefined {
  if (s.includes(':')) return parseIpv6(s);
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(s: string): Uint8Array | undefined {
  let text = s;
  let tail: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) >= 0) {
    tail = parseIp(text.slice(lastColon + 1));
    if (tail?.length !== 4) return undefined;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const groups = halves.length === 2 ? head.length + rest.length : head.length;
  if (halves.length === 2 ? groups > 7 : groups !== 8) return undefined;
  const all = [...head, ...new Array(8 - groups).fill(0), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

function canonicalIp(bytes: Uint8Array): string {
  return bytes.length === 4 ? bytes.join('.') : ipv6(bytes, 0);
}

function compileIpFilter(field: string, values: readonly string[]): (ip: string | undefined) => boolean {
  const exact = new Set<string>();
  const cidrs: { net: Uint8Array; bits: number }[] = [];
  for (const v of values) {
    const slash = v.indexOf('/');
    const addr = parseIp(slash >= 0 ? v.slice(0, slash) : v);
    if (!addr) throw new FilterError(field, `invalid IP address or CIDR "${v}"`);
    if (slash < 0) {
      exact.add(canonicalIp(addr));
      continue;
    }
    const bits = Number(v.slice(slash + 1));
    if (!Number.isInteger(bits) || bits < 0 || bits > addr.length * 8) {
      throw new FilterError(field, `invalid prefix length in "${v}"`);
    }
    cidrs.push({ net: addr, bits });
  }
  return (ip) => {
    if (ip === undefined) return false;
    if (exact.has(ip)) return true;
    if (cidrs.length === 0) return false;
    const b = parseIp(ip);
    if (!b) return false;
    for (const { net, bits } of cidrs) {
      if (net.length !== b.length) continue;
      let ok = true;
      const full = bits >> 3;
      for (let i = 0; i < full && ok; i++) ok = net[i] === b[i];
      const rem = bits & 7;
      if (ok && rem) {
        const mask = (0xff << (8 - rem)) & 0xff;
        ok = (net[full]! & mask) === (b[full]! & mask);
      }
      if (ok) return true;
    }
    return false;
  };
}

// ---------- pods ----------

function compilePodFilter(field: string, values: readonly string[]): (ep: Endpoint | undefined) => boolean {
  const filters = values.map((v) => {
    const i = v.indexOf('/');
    const ns = i >= 0 ? v.slice(0, i) : '';
    const prefix = i >= 0 ? v.slice(i + 1) : v;
    if (ns === '' && prefix === '') throw new FilterError(field, 'invalid empty pod filter prefix');
    return { ns, prefix };
  });
  return (ep) => {
    if (!ep) return false;
    const ns = ep.namespace ?? '';
    const pod = ep.pod_name ?? '';
    for (const f of filters) {
      if (f.ns !== '' && f.ns !== ns) continue;
      if (f.prefix !== '' && !pod.startsWith(f.prefix)) continue;
      if (f.ns === '' && pod === '') continue;
      return true;
    }
    return false;
  };
}

// ---------- services ----------

/**
 * Upstream's service filter (filterByNamespacedName over k8s.ParseNamespaceName): `ns/prefix`,
 * `ns/` (any service in ns), or a bare `prefix`, which means namespace `default`. The namespace must
 * equal the service's, so `/prefix` only matches services without a namespace.
 */
function compileServiceFilter(
  field: string,
  values: readonly string[],
): (svc: Service | undefined) => boolean {
  const filters = values.map((v) => {
    const parts = v.split('/');
    const [ns, prefix] = parts.length === 2 ? parts : ['', ''];
    if (parts.length === 1 && v !== '') return { ns: 'default', prefix: v };
    if ((ns === '' && prefix === '') || parts.length > 2)
      throw new FilterError(field, `invalid filter, must be [namespace/][<name>], got "${v}"`);
    return { ns: ns!, prefix: prefix! };
  });
  return (svc) => {
    const ns = svc?.namespace ?? '';
    const name = svc?.name ?? '';
    if (ns === '' && name === '') return false;
    return filters.some((f) => f.ns === ns && (f.prefix === '' || name.startsWith(f.prefix)));
  };
}

// ---------- labels ----------

interface ParsedLabel {
  source: string;
  key: string;
  value: string;
}

/** `k8s:app=web` → { source: 'k8s', key: 'app', value: 'web' }; no source → 'any'. */
export function parseLabel(label: string): ParsedLabel {
  const eq = label.indexOf('=');
  const keyPart = eq >= 0 ? label.slice(0, eq) : label;
  const value = eq >= 0 ? label.slice(eq + 1) : '';
  const { source, key } = splitSource(keyPart);
  return { source, key, value };
}

function splitSource(keyPart: string): { source: string; key: string } {
  const c = keyPart.indexOf(':');
  if (c > 0) return { source: keyPart.slice(0, c), key: keyPart.slice(c + 1) };
  return { source: 'any', key: c === 0 ? keyPart.slice(1) : keyPart };
}

type Op = 'exists' | 'notexists' | 'eq' | 'neq' | 'in' | 'notin';
interface Requirement {
  source: string;
  key: string;
  op: Op;
  values: string[];
}

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

const KEY_RE = /^[A-Za-z0-9_.\-/:]+$/;

/**
 * A Kubernetes label selector whose keys may carry a source prefix
 * (`k8s:app=web`, `app in (a,b)`, `!k8s:test`, `reserved:world`), as upstream's
 * label filters accept.
 */
export function parseLabelSelector(field: string, sel: string): Requirement[] {
  const reqs: Requirement[] = [];
  for (const term of splitTopLevel(sel)) {
    let req: Requirement;
    const set = /^(\S+)\s+(in|notin)\s+\((.*)\)$/.exec(term);
    const not = set ? null : /^!\s*(\S+)$/.exec(term);
    const cmp = set || not ? null : /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (set) {
      const values = set[3]!
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '');
      req = { ...splitSource(set[1]!), op: set[2] === 'in' ? 'in' : 'notin', values };
    } else if (not) {
      req = { ...splitSource(not[1]!), op: 'notexists', values: [] };
    } else if (cmp) {
      req = { ...splitSource(cmp[1]!), op: cmp[2] === '!=' ? 'neq' : 'eq', values: [cmp[3]!] };
    } else if (KEY_RE.test(term)) {
      req = { ...splitSource(term), op: 'exists', values: [] };
    } else {
      throw new FilterError(field, `invalid label selector "${sel}"`);
    }
    if (!KEY_RE.test(req.key) || req.key === '')
      throw new FilterError(field, `invalid label key in "${sel}"`);
    reqs.push(req);
  }
  if (reqs.length === 0) throw new FilterError(field, 'empty label selector');
  return reqs;
}

function labelValues(labels: readonly ParsedLabel[], source: string, key: string): string[] {
  const out: string[] = [];
  for (const l of labels) {
    if (l.key === key && (source === 'any' || l.source === source)) out.push(l.value);
  }
  return out;
}

export function selectorMatches(reqs: readonly Requirement[], labels: readonly ParsedLabel[]): boolean {
  for (const r of reqs) {
    const vals = labelValues(labels, r.source, r.key);
    switch (r.op) {
      case 'exists':
        if (vals.length === 0) return false;
        break;
      case 'notexists':
        if (vals.length > 0) return false;
        break;
      case 'eq':
      case 'in':
        if (!vals.some((v) => r.values.includes(v))) return false;
        break;
      case 'neq':
      case 'notin':
        if (vals.some((v) => r.values.includes(v))) return false;
        break;
    }
  }
  return true;
}

const parsedLabelCache = new WeakMap<readonly string[], ParsedLabel[]>();

function parsedLabels(labels: readonly string[] | undefined): ParsedLabel[] {
  if (!labels) return [];
  let p = parsedLabelCache.get(labels);
  if (!p) {
    p = labels.map(parseLabel);
    parsedLabelCache.set(labels, p);
  }
  return p;
}

function compileLabelFilter(field: string, values: readonly string[]): (ep: Endpoint | undefined) => boolean {
  const selectors = values.map((v) => parseLabelSelector(field, v));
  return (ep) => {
    const labels = parsedLabels(ep?.labels);
    return selectors.some((s) => selectorMatches(s, labels));
  };
}

// ---------- L4 ----------

function ports(flow: Flow): [number, number] | undefined {
  const l4 = flow.l4;
  const p = l4?.TCP ?? l4?.UDP ?? l4?.SCTP;
  if (!p) return undefined;
  return [p.source_port ?? 0, p.destination_port ?? 0];
}

function compilePorts(field: string, values: readonly string[]): Set<number> {
  const out = new Set<number>();
  for (const v of values) {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || n > 65535) throw new FilterError(field, `invalid port "${v}"`);
    out.add(n);
  }
  return out;
}

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'icmp', 'icmpv4', 'icmpv6', 'http', 'dns', 'kafka', 'l7']);

function protocolMatches(flow: Flow, p: string): boolean {
  const l4 = flow.l4;
  switch (p) {
    case 'tcp':
      return l4?.TCP !== undefined;
    case 'udp':
      return l4?.UDP !== undefined;
    case 'sctp':
      return l4?.SCTP !== undefined;
    case 'icmp':
      return l4?.ICMPv4 !== undefined || l4?.ICMPv6 !== undefined;
    case 'icmpv4':
      return l4?.ICMPv4 !== undefined;
    case 'icmpv6':
      return l4?.ICMPv6 !== undefined;
    case 'http':
      return flow.l7?.http !== undefined;
    case 'dns':
      return flow.l7?.dns !== undefined;
    case 'kafka':
      return flow.l7?.kafka !== undefined;
    case 'l7':
      return flow.l7 !== undefined;
    default:
      return false;
  }
}

/** `404`, `5+` (any 5xx), `40+`: upstream's status code prefixes. */
function compileHttpStatus(values: readonly string[]): FlowPredicate {
  const tests = values.map((v) => {
    const m = /^([1-5][0-9]{0,2})(\+?)$/.exec(v.trim());
    if (!m || (m[2] === '' && m[1]!.length !== 3) || (m[2] === '+' && m[1]!.length === 3))
      throw new FilterError('http_status_code', `invalid status code "${v}" (e.g. 404, 5+, 40+)`);
    const prefix = m[1]!;
    return m[2] === '+' ? (c: string) => c.startsWith(prefix) : (c: string) => c === prefix;
  });
  return (fl) => {
    const code = fl.l7?.http?.code;
    if (code === undefined || code === 0) return false;
    const c = String(code);
    return tests.some((t) => t(c));
  };
}

function compileRegexes(field: string, values: readonly string[]): RegExp[] {
  return values.map((v) => {
    try {
      return new RegExp(v);
    } catch {
      throw new FilterError(field, `invalid regular expression "${v}"`);
    }
  });
}

/** The path (with query) of an L7 HTTP flow's URL. */
function httpPath(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(url);
  const rest = m ? m[1]! : url;
  return rest === '' ? '/' : rest;
}

const TCP_FLAG_KEYS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'] as const;

function tcpFlagsMatch(want: TCPFlags, have: TCPFlags | undefined): boolean {
  let any = false;
  for (const k of TCP_FLAG_KEYS) {
    if (want[k]) {
      any = true;
      if (!have?.[k]) return false;
    }
  }
  return any;
}

/**
 * As upstream: a flow without an interface never matches; in each wanted interface, an index > 0
 * and a non-empty name must both equal the flow's (an empty entry matches any interface).
 */
function compileInterfaces(field: string, wants: readonly NetworkInterface[]): FlowPredicate {
  for (const w of wants) {
    if (w.index !== undefined && !(Number.isInteger(w.index) && w.index >= 0))
      throw new FilterError(field, `invalid interface index ${w.index}`);
  }
  return (fl) => {
    const have = fl.interface;
    if (!have) return false;
    return wants.some(
      (w) => (!w.index || w.index === have.index) && (!w.name || w.name === (have.name ?? '')),
    );
  };
}

function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*');
  return new RegExp(`^${esc}$`);
}

function compileNodeNames(values: readonly string[]): (name: string) => boolean {
  const res = values.map((v) => {
    const slash = v.indexOf('/');
    if (slash < 0) return { cluster: undefined, node: globToRegExp(v) };
    const cluster = v.slice(0, slash);
    const node = v.slice(slash + 1);
    return { cluster: globToRegExp(cluster || '*'), node: globToRegExp(node || '*') };
  });
  return (name) => {
    const slash = name.indexOf('/');
    const cluster = slash >= 0 ? name.slice(0, slash) : 'default';
    const node = slash >= 0 ? name.slice(slash + 1) : name;
    return res.some((r) => (r.cluster ? r.cluster.test(cluster) && r.node.test(node) : r.node.test(name)));
  };
}

// ---------- compile ----------

const nonEmpty = <T>(a: readonly T[] | undefined): a is readonly T[] => a !== undefined && a.length > 0;

/** Compile one FlowFilter (all fields AND). Throws FilterError on malformed values. */
export function compileFilter(f: FlowFilter): FlowPredicate {
  const preds: FlowPredicate[] = [];
  if (nonEmpty(f.uuid)) {
    const set = new Set(f.uuid);
    preds.push((fl) => fl.uuid !== undefined && set.has(fl.uuid));
  }
  if (nonEmpty(f.source_ip)) {
    const m = compileIpFilter('source_ip', f.source_ip);
    preds.push((fl) => m(fl.IP?.source));
  }
  if (nonEmpty(f.destination_ip)) {
    const m = compileIpFilter('destination_ip', f.destination_ip);
    preds.push((fl) => m(fl.IP?.destination));
  }
  if (nonEmpty(f.source_pod)) {
    const m = compilePodFilter('source_pod', f.source_pod);
    preds.push((fl) => m(fl.source));
  }
  if (nonEmpty(f.destination_pod)) {
    const m = compilePodFilter('destination_pod', f.destination_pod);
    preds.push((fl) => m(fl.destination));
  }
  if (nonEmpty(f.source_label)) {
    const m = compileLabelFilter('source_label', f.source_label);
    preds.push((fl) => m(fl.source));
  }
  if (nonEmpty(f.destination_label)) {
    const m = compileLabelFilter('destination_label', f.destination_label);
    preds.push((fl) => m(fl.destination));
  }
  if (nonEmpty(f.source_service)) {
    const m = compileServiceFilter('source_service', f.source_service);
    preds.push((fl) => m(fl.source_service));
  }
  if (nonEmpty(f.destination_service)) {
    const m = compileServiceFilter('destination_service', f.destination_service);
    preds.push((fl) => m(fl.destination_service));
  }
  if (nonEmpty(f.source_identity)) {
    const set = new Set(f.source_identity.map(Number));
    preds.push((fl) => set.has(fl.source?.identity ?? 0));
  }
  if (nonEmpty(f.destination_identity)) {
    const set = new Set(f.destination_identity.map(Number));
    preds.push((fl) => set.has(fl.destination?.identity ?? 0));
  }
  if (nonEmpty(f.verdict)) {
    const set = new Set<string>(f.verdict);
    preds.push((fl) => set.has(fl.verdict));
  }
  if (nonEmpty(f.drop_reason_desc)) {
    const set = new Set<string>(f.drop_reason_desc);
    preds.push((fl) => set.has(fl.drop_reason_desc ?? 'DROP_REASON_UNKNOWN'));
  }
  if (nonEmpty(f.traffic_direction)) {
    const set = new Set<string>(f.traffic_direction);
    preds.push((fl) => set.has(fl.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN'));
  }
  if (nonEmpty(f.ip_version)) {
    const set = new Set<string>(f.ip_version);
    preds.push((fl) => set.has(fl.IP?.ipVersion ?? 'IP_NOT_USED'));
  }
  if (nonEmpty(f.interface)) preds.push(compileInterfaces('interface', f.interface));
  if (nonEmpty(f.event_type)) {
    const types = f.event_type.map((t) => ({
      type: t.type ?? 0,
      matchSub: t.match_sub_type ?? false,
      sub: t.sub_type ?? 0,
    }));
    preds.push((fl) => {
      const t = fl.event_type.type ?? 0;
      const s = fl.event_type.sub_type ?? 0;
      return types.some((x) => x.type === t && (!x.matchSub || x.sub === s));
    });
  }
  if (nonEmpty(f.protocol)) {
    const protos = f.protocol.map((p) => p.toLowerCase());
    for (const p of protos)
      if (!PROTOCOLS.has(p)) throw new FilterError('protocol', `unknown protocol "${p}"`);
    preds.push((fl) => protos.some((p) => protocolMatches(fl, p)));
  }
  if (nonEmpty(f.source_port)) {
    const set = compilePorts('source_port', f.source_port);
    preds.push((fl) => {
      const p = ports(fl);
      return p !== undefined && set.has(p[0]);
    });
  }
  if (nonEmpty(f.destination_port)) {
    const set = compilePorts('destination_port', f.destination_port);
    preds.push((fl) => {
      const p = ports(fl);
      return p !== undefined && set.has(p[1]);
    });
  }
  if (nonEmpty(f.reply)) {
    const want = f.reply;
    preds.push((fl) => {
      // as upstream: an unknown reply flag counts as "not a reply" only for drops
      if (fl.is_reply === undefined && fl.verdict !== 'DROPPED') return false;
      return want.includes(fl.is_reply ?? false);
    });
  }
  if (nonEmpty(f.tcp_flags)) {
    const wants = f.tcp_flags;
    preds.push((fl) => {
      const have = fl.l4?.TCP?.flags;
      return have !== undefined && wants.some((w) => tcpFlagsMatch(w, have));
    });
  }
  if (nonEmpty(f.http_status_code)) preds.push(compileHttpStatus(f.http_status_code));
  if (nonEmpty(f.http_method)) {
    const set = new Set(f.http_method.map((m) => m.toUpperCase()));
    preds.push((fl) => fl.l7?.http?.method !== undefined && set.has(fl.l7.http.method.toUpperCase()));
  }
  if (nonEmpty(f.http_path)) {
    const res = compileRegexes('http_path', f.http_path);
    preds.push((fl) => {
      const url = fl.l7?.http?.url;
      if (url === undefined) return false;
      const path = httpPath(url).replace(/\?.*$/, '');
      return res.some((r) => r.test(path));
    });
  }
  if (nonEmpty(f.dns_query)) {
    const res = compileRegexes('dns_query', f.dns_query);
    preds.push((fl) => fl.l7?.dns?.query !== undefined && res.some((r) => r.test(fl.l7!.dns!.query!)));
  }
  if (nonEmpty(f.node_name)) {
    const m = compileNodeNames(f.node_name);
    preds.push((fl) => m(fl.node_name ?? ''));
  }
  if (preds.length === 0) return () => true;
  if (preds.length === 1) return preds[0]!;
  return (fl) => {
    for (const p of preds) if (!p(fl)) return false;
    return true;
  };
}

/** Whitelist (any matches, or empty) minus blacklist (none matches). */
export function compileFilters(
  whitelist: readonly FlowFilter[] | undefined,
  blacklist: readonly FlowFilter[] | undefined,
): FlowPredicate {
  const wl = (whitelist ?? []).map(compileFilter);
  const bl = (blacklist ?? []).map(compileFilter);
  if (wl.length === 0 && bl.length === 0) return () => true;
  return (fl) => {
    if (wl.length > 0) {
      let ok = false;
      for (const p of wl) {
        if (p(fl)) {
          ok = true;
          break;
        }
      }
      if (!ok) return false;
    }
    for (const p of bl) if (p(fl)) return false;
    return true;
  };
}
