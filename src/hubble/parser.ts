/**
 * Datapath events (bpf/lib/defs.h) → `flow.Flow` objects, as upstream Hubble's
 * L3/L4 parser does: verdict, drop reason, Ethernet/IP/L4 from the captured
 * packet bytes, source/destination endpoints resolved through injected getters,
 * traffic direction, observation point, reply flag, event type and summary.
 *
 * Pure: no I/O; everything about the node comes from the ParserContext.
 */
import { formatIpv6Groups, ipv6GroupsOfBytes } from '../common/ip.js';
import {
  dropReasonName,
  icmpTypeCodeString,
  MessageType,
  NotifyType,
  TRACE_REASON_CT_REPLY,
  TRACE_REASON_ENCRYPT_MASK,
  TraceObsPointEnum,
  TraceReasonEnum,
} from './constants.js';
import { EventVersionError, TruncatedEventError, UnknownEventTypeError } from './errors.js';
import {
  CILIUM_TS_EVENT_VERSION,
  DropNotify,
  EVENT_CAPTURE_LEN,
  EventHdr,
  POLICY_INGRESS,
  PolicyVerdictNotify,
  TraceNotify,
} from './layout.js';
import type {
  CiliumEventType,
  Endpoint,
  Ethernet,
  Flow,
  IP,
  Layer4,
  LostEvent,
  NetworkInterface,
  Service,
  TrafficDirection,
  Verdict,
} from './types.js';

/*
 * A flow is never changed once built (the ring, followers, filters and metrics only read it), so
 * the parts many flows have alike are built once and shared, frozen: an endpoint's description, the
 * TCP flags of a flag byte and their summary, the emitter, the event type, the interface. Fewer
 * objects per flow is less for the young generation to copy while the ring holds them.
 */

/** What the agent knows about an address: a local endpoint, or a remote pod/identity from the ipcache. */
export interface EndpointInfo {
  /** Local endpoint ID; absent/0 for addresses not on this node. */
  id?: number;
  identity?: number;
  clusterName?: string;
  namespace?: string;
  podName?: string;
  /** `source:key=value` labels (e.g. `k8s:app=web`), sorted. */
  labels?: readonly string[];
}

/** A Kubernetes Service by name, as the agent's service state names it. */
export interface ServiceName {
  name: string;
  namespace: string;
}

/** L4 protocols a service address is looked up with. */
export type ServiceProtocol = 'TCP' | 'UDP';

/** CLOCK_MONOTONIC zero (bpf_ktime_get_ns() = 0) in wall-clock time. */
export interface BootTime {
  sec: number;
  nsec: number;
}

export interface ParserContext {
  nodeName: string;
  bootTime: BootTime;
  /** Local endpoint or ipcache entry owning an address (agent state; also remote pods). */
  endpointByIp?(ip: string): EndpointInfo | undefined;
  /** Labels of a security identity (`k8s:app=web`, `reserved:world`...). */
  identityLabels?(identity: number): readonly string[] | undefined;
  /** Interface name of an ifindex on this node. */
  interfaceName?(ifindex: number): string | undefined;
  /**
   * The Service whose frontend or backend is `ip:port/protocol`. Backends count because with
   * socket-LB the packet already carries the backend's address. Used for destination_service
   * (flows that are not replies) and source_service (replies).
   */
  serviceByAddress?(ip: string, port: number, protocol: ServiceProtocol): ServiceName | undefined;
  /** Emitter version reported in flows (default "0.1.0"). */
  version?: string;
  /** Give each flow a random uuid as upstream does (default true). */
  uuid?: boolean;
}

/**
 * Flow uuids: version 4 like upstream's, cheaper to make than one crypto.randomUUID() each (which
 * builds its string from 20 pieces; one flow per traced packet, two per proxied request): the
 * first 30 characters of a random uuid are shared by UUID_RUN flows, its last 6 hex digits count
 * up from their random value (small integers, written from a table of 3-digit strings).
 */
const UUID_RUN = 4096;
const HEX3 = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, '0'));
let uuidPrefix = '';
let uuidNext = 0;
let uuidLeft = 0;

export function flowUuid(): string {
  if (uuidLeft === 0) {
    const u = crypto.randomUUID();
    uuidPrefix = u.slice(0, 30);
    uuidNext = Number.parseInt(u.slice(30), 16);
    uuidLeft = UUID_RUN;
  }
  uuidLeft--;
  const n = uuidNext;
  uuidNext = (n + 1) & 0xffffff;
  return uuidPrefix + HEX3[n >>> 12]! + HEX3[n & 0xfff]!;
}

/** Boot time from this process's clocks: Node's hrtime is CLOCK_MONOTONIC, like bpf_ktime_get_ns(). */
export function bootTimeFromClocks(): BootTime {
  const mono = process.hrtime.bigint();
  const wallNs = BigInt(Date.now()) * 1_000_000n;
  const boot = wallNs - mono;
  return { sec: Number(boot / 1_000_000_000n), nsec: Number(boot % 1_000_000_000n) };
}

/** Result of turning an event into a flow: the flow and its time (exact, and in ms since the epoch). */
export interface ParsedFlow {
  flow: Flow;
  sec: number;
  nsec: number;
  timeMs: number;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function mac(b: Uint8Array, o: number): string {
  return `${HEX[b[o]!]}:${HEX[b[o + 1]!]}:${HEX[b[o + 2]!]}:${HEX[b[o + 3]!]}:${HEX[b[o + 4]!]}:${HEX[b[o + 5]!]}`;
}

function ipv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** RFC 5952 text form (what Go's netip prints): longest run of ≥2 zero groups as `::`, lowercase. */
export function ipv6(b: Uint8Array, o: number): string {
  const g = ipv6GroupsOfBytes(b, o);
  // IPv4-mapped ::ffff:a.b.c.d
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${ipv4(b, o + 12)}`;
  }
  return formatIpv6Groups(g);
}

/** Decoded layers of a captured packet. */
export interface DecodedPacket {
  ethernet?: Ethernet;
  ip?: IP;
  l4?: Layer4;
  srcPort: number;
  dstPort: number;
  summary: string;
}

const TCP_FLAG_NAMES = ['SYN', 'ACK', 'RST', 'FIN', 'PSH', 'URG', 'ECE', 'CWR', 'NS'] as const;

/** The flags object and summary of TCP flag bits (the flag byte, NS as bit 8). */
interface TcpFlagsView {
  flags: NonNullable<NonNullable<Layer4['TCP']>['flags']>;
  summary: string;
}

function tcpFlagsView(bits9: number): TcpFlagsView {
  const on = [
    (bits9 & 0x02) !== 0,
    (bits9 & 0x10) !== 0,
    (bits9 & 0x04) !== 0,
    (bits9 & 0x01) !== 0,
    (bits9 & 0x08) !== 0,
    (bits9 & 0x20) !== 0,
    (bits9 & 0x40) !== 0,
    (bits9 & 0x80) !== 0,
    (bits9 & 0x100) !== 0,
  ];
  const flags: Record<string, boolean> = {};
  // proto field order for the object: FIN SYN RST PSH ACK URG ECE CWR NS
  if (on[3]) flags.FIN = true;
  if (on[0]) flags.SYN = true;
  if (on[2]) flags.RST = true;
  if (on[4]) flags.PSH = true;
  if (on[1]) flags.ACK = true;
  if (on[5]) flags.URG = true;
  if (on[6]) flags.ECE = true;
  if (on[7]) flags.CWR = true;
  if (on[8]) flags.NS = true;
  // upstream's summary order: SYN ACK RST FIN PSH URG ECE CWR NS
  const names = TCP_FLAG_NAMES.filter((_, i) => on[i]);
  return Object.freeze({ flags: Object.freeze(flags), summary: `TCP Flags: ${names.join(', ')}` });
}

const TCP_FLAGS: readonly TcpFlagsView[] = Array.from({ length: 512 }, (_, i) => tcpFlagsView(i));

/** Decode Ethernet → IPv4/IPv6 → TCP/UDP/SCTP/ICMP from `len` bytes at `off`. */
export function decodePacket(b: Uint8Array, off: number, len: number): DecodedPacket {
  const out: DecodedPacket = { srcPort: 0, dstPort: 0, summary: '' };
  const end = off + len;
  if (len < 14) return out;
  out.ethernet = { source: mac(b, off + 6), destination: mac(b, off) };
  out.summary = 'Ethernet';
  let ethertype = (b[off + 12]! << 8) | b[off + 13]!;
  let p = off + 14;
  if (ethertype === 0x8100 && end >= p + 4) {
    ethertype = (b[p + 2]! << 8) | b[p + 3]!;
    p += 4;
  }
  let proto: number;
  let v6 = false;
  if (ethertype === 0x0800) {
    if (end < p + 20) return out;
    const ihl = (b[p]! & 0x0f) * 4;
    out.ip = { source: ipv4(b, p + 12), destination: ipv4(b, p + 16), ipVersion: 'IPv4' };
    out.summary = 'IPv4';
    proto = b[p + 9]!;
    const fragOff = ((b[p + 6]! & 0x1f) << 8) | b[p + 7]!;
    if (fragOff !== 0 || ihl < 20) return out;
    p += ihl;
  } else if (ethertype === 0x86dd) {
    if (end < p + 40) return out;
    out.ip = { source: ipv6(b, p + 8), destination: ipv6(b, p + 24), ipVersion: 'IPv6' };
    out.summary = 'IPv6';
    v6 = true;
    proto = b[p + 6]!;
    p += 40;
    // extension headers: hop-by-hop, routing, destination options, fragment
    for (let n = 0; n < 8; n++) {
      if (proto === 0 || proto === 43 || proto === 60) {
        if (end < p + 2) return out;
        const next = b[p]!;
        p += (b[p + 1]! + 1) * 8;
        proto = next;
      } else if (proto === 44) {
        if (end < p + 8) return out;
        const fragOff = ((b[p + 2]! << 8) | b[p + 3]!) >> 3;
        proto = b[p]!;
        p += 8;
        if (fragOff !== 0) return out;
      } else break;
    }
  } else {
    return out;
  }
  switch (proto) {
    case 6: {
      if (end < p + 14) return out;
      const sport = (b[p]! << 8) | b[p + 1]!;
      const dport = (b[p + 2]! << 8) | b[p + 3]!;
      const view = TCP_FLAGS[b[p + 13]! | ((b[p + 12]! & 0x01) << 8)]!;
      const tcp: Layer4['TCP'] = {};
      if (sport) tcp.source_port = sport;
      if (dport) tcp.destination_port = dport;
      tcp.flags = view.flags;
      out.l4 = { TCP: tcp };
      out.srcPort = sport;
      out.dstPort = dport;
      out.summary = view.summary;
      return out;
    }
    case 17:
    case 132: {
      if (end < p + 4) return out;
      const sport = (b[p]! << 8) | b[p + 1]!;
      const dport = (b[p + 2]! << 8) | b[p + 3]!;
      const ports: { source_port?: number; destination_port?: number } = {};
      if (sport) ports.source_port = sport;
      if (dport) ports.destination_port = dport;
      out.l4 = proto === 17 ? { UDP: ports } : { SCTP: ports };
      out.srcPort = sport;
      out.dstPort = dport;
      out.summary = proto === 17 ? 'UDP' : 'SCTP';
      return out;
    }
    case 1:
    case 58: {
      if (end < p + 2 || (proto === 1) === v6) return out;
      const type = b[p]!;
      const code = b[p + 1]!;
      const icmp: { type?: number; code?: number } = {};
      if (type) icmp.type = type;
      if (code) icmp.code = code;
      out.l4 = v6 ? { ICMPv6: icmp } : { ICMPv4: icmp };
      out.summary = `${v6 ? 'ICMPv6' : 'ICMPv4'} ${icmpTypeCodeString(v6, type, code)}`;
      return out;
    }
    default:
      return out;
  }
}

let isoSec = -1;
let isoPrefix = '';

/** RFC 3339 UTC with 0, 3, 6 or 9 fractional digits, as protojson writes a Timestamp. */
export function formatTimestamp(sec: number, nsec: number): string {
  if (sec !== isoSec) {
    isoSec = sec;
    isoPrefix = new Date(sec * 1000).toISOString().slice(0, 19);
  }
  if (nsec === 0) return `${isoPrefix}Z`;
  let frac = String(nsec).padStart(9, '0');
  if (nsec % 1_000_000 === 0) frac = frac.slice(0, 3);
  else if (nsec % 1000 === 0) frac = frac.slice(0, 6);
  return `${isoPrefix}.${frac}Z`;
}

/** Parse an RFC 3339 timestamp to { sec, nsec } (nanosecond precision kept). */
export function parseTimestamp(s: string): BootTime {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) {
    const ms = Date.parse(s);
    if (Number.isNaN(ms)) throw new RangeError(`not an RFC 3339 timestamp: ${s}`);
    return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
  }
  const ms = Date.parse(`${m[1]}${m[3]}`);
  return { sec: Math.floor(ms / 1000), nsec: Number((m[2] ?? '').padEnd(9, '0')) };
}

/** Endpoints described so far: per EndpointInfo object (the context hands out the same object
 * while nothing about the address changed), and per identity for addresses it knows nothing of,
 * with the labels array the description was made from (what the entry is valid for). */
const byInfo = new WeakMap<EndpointInfo, Endpoint>();
const byIdentity = new WeakMap<
  ParserContext,
  Map<number, { labels: readonly string[] | undefined; ep: Endpoint }>
>();

/** The flow's description of the endpoint at `ip` whose packet carried `identity` (0: unknown). */
export function resolveEndpoint(ctx: ParserContext, ip: string | undefined, identity: number): Endpoint {
  const info = ip !== undefined && ctx.endpointByIp ? ctx.endpointByIp(ip) : undefined;
  const id = identity === 0 && info?.identity ? info.identity : identity;
  if (info) {
    const known = byInfo.get(info);
    if (known !== undefined && (known.identity ?? 0) === id) return known;
    const ep = describeEndpoint(
      info,
      id,
      info.labels ?? (id && ctx.identityLabels ? ctx.identityLabels(id) : undefined),
    );
    // only what the info alone decides is kept: identity labels could change under the same info
    if (info.labels || !id) byInfo.set(info, ep);
    return ep;
  }
  const labels = id && ctx.identityLabels ? ctx.identityLabels(id) : undefined;
  let cache = byIdentity.get(ctx);
  if (!cache) {
    cache = new Map();
    byIdentity.set(ctx, cache);
  }
  const known = cache.get(id);
  // the context hands out the same labels array while the identity's labels stay the same
  if (known !== undefined && known.labels === labels) return known.ep;
  const ep = describeEndpoint(undefined, id, labels);
  if (cache.size >= 4096) cache.clear(); // identities come and go: bounded
  cache.set(id, { labels, ep });
  return ep;
}

function describeEndpoint(
  info: EndpointInfo | undefined,
  id: number,
  labels: readonly string[] | undefined,
): Endpoint {
  const ep: Endpoint = {};
  if (info?.id) ep.ID = info.id;
  if (id) ep.identity = id;
  if (info?.clusterName) ep.cluster_name = info.clusterName;
  if (info?.namespace) ep.namespace = info.namespace;
  if (labels && labels.length > 0) ep.labels = Object.freeze(labels.slice()) as string[];
  if (info?.podName) ep.pod_name = info.podName;
  return Object.freeze(ep);
}

function lookupService(
  ctx: ParserContext,
  ip: string | undefined,
  port: number,
  protocol: ServiceProtocol | undefined,
): Service | undefined {
  if (!ctx.serviceByAddress || ip === undefined || port === 0 || protocol === undefined) return undefined;
  const s = ctx.serviceByAddress(ip, port, protocol);
  if (!s?.name) return undefined;
  return s.namespace ? { name: s.name, namespace: s.namespace } : { name: s.name };
}

function readKtime(dv: DataView, off: number): number {
  return dv.getUint32(off + 4, true) * 4294967296 + dv.getUint32(off, true);
}

/**
 * Turn one datapath event into a flow. Returns undefined for event types that
 * carry no flow (debug messages and captures); throws UnknownEventTypeError for
 * types the datapath does not define, TruncatedEventError for short records.
 */
export function parseEvent(bytes: Uint8Array, ctx: ParserContext): Flow | undefined {
  return parseEventTimed(bytes, ctx)?.flow;
}

/** parseEvent, also returning the flow's time (exact, and in ms since the epoch). The observer runs
 * the same three steps itself, as it keeps the decoded and resolved parts for its ring. */
export function parseEventTimed(bytes: Uint8Array, ctx: ParserContext): ParsedFlow | undefined {
  const e = decodeEvent(bytes);
  if (!e) return undefined;
  const r = resolveEvent(e, ctx);
  const { sec, nsec } = eventTime(e, ctx);
  return { timeMs: sec * 1000 + nsec / 1e6, sec, nsec, flow: assembleFlow(e, r, ctx, sec, nsec) };
}

/** What an event's bytes alone say (stage 1 of 3: decode, resolve, assemble). */
export interface DecodedEvent {
  type: number;
  subtype: number;
  source: number;
  pkt: DecodedPacket;
  verdict: Verdict;
  dropReason: number;
  srcIdentity: number;
  dstIdentity: number;
  isReply: boolean | undefined;
  traceReason: number;
  ktime: number;
  eventType: number;
  eventSubType: number;
  matchType: number;
  ifindex: number;
  /** From the event (policy verdicts); traces and drops get theirs when resolved. */
  direction: TrafficDirection;
  dropFile: number;
}

/**
 * Stage 1: the event's header and packet, decoded. Undefined for event types that carry no flow
 * (debug messages and captures); throws UnknownEventTypeError for types the datapath does not
 * define, TruncatedEventError for short records, EventVersionError for another layout.
 */
export function decodeEvent(bytes: Uint8Array): DecodedEvent | undefined {
  if (bytes.length === 0) throw new TruncatedEventError(-1, 0, EventHdr.size);
  const type = bytes[0]!;
  let size: number;
  switch (type) {
    case NotifyType.TRACE:
      size = TraceNotify.data;
      break;
    case NotifyType.DROP:
      size = DropNotify.data;
      break;
    case NotifyType.POLICY_VERDICT:
    case NotifyType.POLICY_VERDICT_CTS:
      size = PolicyVerdictNotify.data;
      break;
    case NotifyType.DEBUG:
    case NotifyType.CAPTURE:
      return undefined;
    default:
      throw new UnknownEventTypeError(type);
  }
  if (bytes.length < size) throw new TruncatedEventError(type, bytes.length, size);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(EventHdr.version, true);
  if (version !== CILIUM_TS_EVENT_VERSION && version !== 0) throw new EventVersionError(version);
  const subtype = bytes[EventHdr.subtype]!;
  const lenCap = dv.getUint16(EventHdr.len_cap, true);
  const capLen = Math.min(lenCap, EVENT_CAPTURE_LEN, bytes.length - size);
  const e: DecodedEvent = {
    type,
    subtype,
    source: dv.getUint16(EventHdr.source, true),
    pkt: decodePacket(bytes, size, capLen),
    verdict: 'FORWARDED',
    dropReason: 0,
    srcIdentity: 0,
    dstIdentity: 0,
    isReply: undefined,
    traceReason: -1,
    ktime: 0,
    eventType: 0,
    eventSubType: 0,
    matchType: 0,
    ifindex: 0,
    direction: 'TRAFFIC_DIRECTION_UNKNOWN',
    dropFile: 0,
  };

  if (type === NotifyType.TRACE) {
    e.srcIdentity = dv.getUint32(TraceNotify.src_label, true);
    e.dstIdentity = dv.getUint32(TraceNotify.dst_label, true);
    e.traceReason = bytes[TraceNotify.reason]!;
    e.isReply = (e.traceReason & ~TRACE_REASON_ENCRYPT_MASK) === TRACE_REASON_CT_REPLY;
    e.ifindex = dv.getUint32(TraceNotify.ifindex, true);
    e.ktime = readKtime(dv, TraceNotify.ktime_ns);
    e.eventType = MessageType.TRACE;
    e.eventSubType = subtype;
  } else if (type === NotifyType.DROP) {
    e.verdict = 'DROPPED';
    e.dropReason = subtype;
    e.srcIdentity = dv.getUint32(DropNotify.src_label, true);
    e.dstIdentity = dv.getUint32(DropNotify.dst_label, true);
    e.ktime = readKtime(dv, DropNotify.ktime_ns);
    e.eventType = MessageType.DROP;
    e.eventSubType = subtype;
    e.dropFile = bytes[DropNotify.file]!;
  } else {
    const v = dv.getInt32(PolicyVerdictNotify.verdict, true);
    const audited = bytes[PolicyVerdictNotify.audited]! !== 0;
    const ingress = bytes[PolicyVerdictNotify.dir] === POLICY_INGRESS;
    const remote = dv.getUint32(PolicyVerdictNotify.remote_label, true);
    e.srcIdentity = ingress ? remote : 0;
    e.dstIdentity = ingress ? 0 : remote;
    if (audited) e.verdict = 'AUDIT';
    else if (v < 0) {
      e.verdict = 'DROPPED';
      e.dropReason = -v;
    } else e.verdict = v > 0 ? 'REDIRECTED' : 'FORWARDED';
    if (e.verdict !== 'DROPPED') e.isReply = false;
    e.matchType = bytes[PolicyVerdictNotify.match_type]!;
    e.direction = ingress ? 'INGRESS' : 'EGRESS';
    e.ktime = readKtime(dv, PolicyVerdictNotify.ktime_ns);
    e.eventType = MessageType.POLICY_VERDICT;
  }
  return e;
}

/** What the node's state said of an event when it was seen (stage 2): its endpoints, services,
 * interface and direction. A flow read later from the ring keeps these, whatever changed since. */
export interface ResolvedEvent {
  src: Endpoint;
  dst: Endpoint;
  srcService: Service | undefined;
  dstService: Service | undefined;
  iface: NetworkInterface | undefined;
  direction: TrafficDirection;
}

/** Stage 2: the event's endpoints, services and interface, from the node's state now. */
export function resolveEvent(e: DecodedEvent, ctx: ParserContext): ResolvedEvent {
  const pkt = e.pkt;
  const src = resolveEndpoint(ctx, pkt.ip?.source, e.srcIdentity);
  const dst = resolveEndpoint(ctx, pkt.ip?.destination, e.dstIdentity);
  let direction = e.direction;
  if (e.type === NotifyType.DROP) {
    if (e.source !== 0) direction = e.source === (src.ID ?? 0) ? 'EGRESS' : 'INGRESS';
  } else if (e.type === NotifyType.TRACE) {
    if (e.source !== 0) direction = (e.source === (src.ID ?? 0)) !== e.isReply ? 'EGRESS' : 'INGRESS';
  }
  // The service side of the flow: the destination of a request (or of a flow whose direction is
  // unknown, such as a drop), the source of a reply.
  const l4proto: ServiceProtocol | undefined = pkt.l4?.TCP ? 'TCP' : pkt.l4?.UDP ? 'UDP' : undefined;
  return {
    src,
    dst,
    srcService: e.isReply === true ? lookupService(ctx, pkt.ip?.source, pkt.srcPort, l4proto) : undefined,
    dstService:
      e.isReply !== true ? lookupService(ctx, pkt.ip?.destination, pkt.dstPort, l4proto) : undefined,
    iface: e.ifindex ? interfaceOf(e.ifindex, ctx.interfaceName?.(e.ifindex)) : undefined,
    direction,
  };
}

/** The event's time: its CLOCK_MONOTONIC stamp on the node's boot time. */
export function eventTime(e: DecodedEvent, ctx: ParserContext): { sec: number; nsec: number } {
  const total = ctx.bootTime.nsec + e.ktime;
  return { sec: ctx.bootTime.sec + Math.floor(total / 1e9), nsec: total % 1e9 };
}

/** Stage 3: the flow of a decoded and resolved event (`uuid`: the one it has, else a new one). */
export function assembleFlow(
  e: DecodedEvent,
  r: ResolvedEvent,
  ctx: ParserContext,
  sec: number,
  nsec: number,
  uuid?: string,
): Flow {
  const pkt = e.pkt;
  // keys assigned in proto field order, so JSON output reads like upstream's
  const flow = { time: formatTimestamp(sec, nsec) } as Flow;
  if (ctx.uuid !== false) flow.uuid = uuid ?? flowUuid();
  flow.emitter = emitterOf(ctx.version ?? '0.1.0');
  flow.verdict = e.verdict;
  if (e.dropReason) flow.drop_reason = e.dropReason;
  if (pkt.ethernet) flow.ethernet = pkt.ethernet;
  if (pkt.ip) {
    if (e.traceReason >= 0 && e.traceReason & TRACE_REASON_ENCRYPT_MASK) pkt.ip.encrypted = true;
    flow.IP = pkt.ip;
  }
  if (pkt.l4) flow.l4 = pkt.l4;
  flow.source = r.src;
  flow.destination = r.dst;
  flow.Type = 'L3_L4';
  if (ctx.nodeName) flow.node_name = ctx.nodeName;
  if (e.isReply) flow.reply = true;
  flow.event_type = eventTypeOf(e.eventType, e.eventSubType);
  if (r.srcService) flow.source_service = r.srcService;
  if (r.dstService) flow.destination_service = r.dstService;
  if (r.direction !== 'TRAFFIC_DIRECTION_UNKNOWN') flow.traffic_direction = r.direction;
  if (e.matchType) flow.policy_match_type = e.matchType;
  if (e.type === NotifyType.TRACE) {
    flow.trace_observation_point = TraceObsPointEnum[e.subtype] ?? 'UNKNOWN_POINT';
    const tr = TraceReasonEnum[e.traceReason & ~TRACE_REASON_ENCRYPT_MASK];
    if (tr) flow.trace_reason = tr;
  }
  const file = e.type === NotifyType.DROP ? DROP_FILES[e.dropFile] : undefined;
  if (file) flow.file = { name: file };
  if (e.dropReason) flow.drop_reason_desc = dropReasonName(e.dropReason);
  if (e.isReply !== undefined) flow.is_reply = e.isReply;
  if (r.iface) flow.interface = r.iface;
  flow.Summary = pkt.summary;
  return flow;
}

const emitters = new Map<string, { name: string; version: string }>();
function emitterOf(version: string): { name: string; version: string } {
  let e = emitters.get(version);
  if (!e) {
    e = Object.freeze({ name: 'Hubble', version });
    emitters.set(version, e);
  }
  return e;
}

const eventTypes = new Map<number, CiliumEventType>();
function eventTypeOf(type: number, subType: number): CiliumEventType {
  const key = type * 256 + subType;
  let e = eventTypes.get(key);
  if (!e) {
    e = Object.freeze(subType ? { type, sub_type: subType } : { type });
    eventTypes.set(key, e);
  }
  return e;
}

const interfaces = new Map<number, NetworkInterface>();
function interfaceOf(index: number, name: string | undefined): NetworkInterface {
  const known = interfaces.get(index);
  if (known !== undefined && known.name === name) return known;
  const i: NetworkInterface = Object.freeze(name ? { index, name } : { index });
  if (interfaces.size >= 4096) interfaces.clear(); // interfaces come and go: bounded
  interfaces.set(index, i);
  return i;
}

/** drop_notify.file (DROP_FILE_* in defs.h) → the datapath source file that dropped. */
const DROP_FILES: Record<number, string> = { 1: 'bpf_lxc.c', 2: 'bpf_host.c', 3: 'bpf_overlay.c' };

/** A `flow.LostEvent` for events the BPF ring buffer (or our own queues) dropped. */
export function lostEvent(
  source: LostEvent['source'],
  count: number,
  now: Date = new Date(),
  cpu?: number,
): LostEvent {
  const ev: LostEvent = { source, num_events_lost: count };
  if (cpu !== undefined) ev.cpu = cpu;
  const iso = now.toISOString();
  ev.first = iso;
  ev.last = iso;
  return ev;
}
