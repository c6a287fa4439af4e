/**
 * Datapath events (bpf/lib/defs.h) → `flow.Flow` objects, as upstream Hubble's
 * L3/L4 parser does: verdict, drop reason, Ethernet/IP/L4 from the captured
 * packet bytes, source/destination endpoints resolved through injected getters,
 * traffic direction, observation point, reply flag, event type and summary.
 *
 * Pure: no I/O; everything about the node comes from the ParserContext.
 */
import { randomUUID } from 'node:crypto';
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
  Endpoint,
  Ethernet,
  Flow,
  IP,
  Layer4,
  LostEvent,
  Service,
  TrafficDirection,
  Verdict,
} from './types.js';

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
      const f = b[p + 13]!;
      const flags: Record<string, boolean> = {};
      const names: string[] = [];
      // upstream's summary order: SYN ACK RST FIN PSH URG ECE CWR NS
      const bits = [
        (f & 0x02) !== 0,
        (f & 0x10) !== 0,
        (f & 0x04) !== 0,
        (f & 0x01) !== 0,
        (f & 0x08) !== 0,
        (f & 0x20) !== 0,
        (f & 0x40) !== 0,
        (f & 0x80) !== 0,
        (b[p + 12]! & 0x01) !== 0,
      ];
      // proto field order for the object: FIN SYN RST PSH ACK URG ECE CWR NS
      if (bits[3]) flags.FIN = true;
      if (bits[0]) flags.SYN = true;
      if (bits[2]) flags.RST = true;
      if (bits[4]) flags.PSH = true;
      if (bits[1]) flags.ACK = true;
      if (bits[5]) flags.URG = true;
      if (bits[6]) flags.ECE = true;
      if (bits[7]) flags.CWR = true;
      if (bits[8]) flags.NS = true;
      for (let i = 0; i < 9; i++) if (bits[i]) names.push(TCP_FLAG_NAMES[i]!);
      const tcp: Layer4['TCP'] = {};
      if (sport) tcp.source_port = sport;
      if (dport) tcp.destination_port = dport;
      tcp.flags = flags;
      out.l4 = { TCP: tcp };
      out.srcPort = sport;
      out.dstPort = dport;
      out.summary = `TCP Flags: ${names.join(', ')}`;
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

export function resolveEndpoint(ctx: ParserContext, ip: string | undefined, identity: number): Endpoint {
  const ep: Endpoint = {};
  const info = ip !== undefined && ctx.endpointByIp ? ctx.endpointByIp(ip) : undefined;
  let id = identity;
  if (info) {
    if (info.id) ep.ID = info.id;
    if (id === 0 && info.identity) id = info.identity;
  }
  if (id) ep.identity = id;
  if (info?.clusterName) ep.cluster_name = info.clusterName;
  if (info?.namespace) ep.namespace = info.namespace;
  const labels = info?.labels ?? (id && ctx.identityLabels ? ctx.identityLabels(id) : undefined);
  if (labels && labels.length > 0) ep.labels = labels.slice();
  if (info?.podName) ep.pod_name = info.podName;
  return ep;
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

/** parseEvent, also returning the flow's time as ms since the epoch (for the ring). */
export function parseEventTimed(bytes: Uint8Array, ctx: ParserContext): ParsedFlow | undefined {
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
  const source = dv.getUint16(EventHdr.source, true);
  const lenCap = dv.getUint16(EventHdr.len_cap, true);
  const capLen = Math.min(lenCap, EVENT_CAPTURE_LEN, bytes.length - size);
  const pkt = decodePacket(bytes, size, capLen);

  let verdict: Verdict;
  let dropReason = 0;
  let srcIdentity: number;
  let dstIdentity: number;
  let isReply: boolean | undefined;
  let traceReason = -1;
  let ktime: number;
  let eventType: number;
  let eventSubType = 0;
  let matchType = 0;
  let ifindex = 0;
  let direction: TrafficDirection = 'TRAFFIC_DIRECTION_UNKNOWN';

  if (type === NotifyType.TRACE) {
    verdict = 'FORWARDED';
    srcIdentity = dv.getUint32(TraceNotify.src_label, true);
    dstIdentity = dv.getUint32(TraceNotify.dst_label, true);
    traceReason = bytes[TraceNotify.reason]!;
    isReply = (traceReason & ~TRACE_REASON_ENCRYPT_MASK) === TRACE_REASON_CT_REPLY;
    ifindex = dv.getUint32(TraceNotify.ifindex, true);
    ktime = readKtime(dv, TraceNotify.ktime_ns);
    eventType = MessageType.TRACE;
    eventSubType = subtype;
  } else if (type === NotifyType.DROP) {
    verdict = 'DROPPED';
    dropReason = subtype;
    srcIdentity = dv.getUint32(DropNotify.src_label, true);
    dstIdentity = dv.getUint32(DropNotify.dst_label, true);
    ktime = readKtime(dv, DropNotify.ktime_ns);
    eventType = MessageType.DROP;
    eventSubType = subtype;
  } else {
    const v = dv.getInt32(PolicyVerdictNotify.verdict, true);
    const audited = bytes[PolicyVerdictNotify.audited]! !== 0;
    const ingress = bytes[PolicyVerdictNotify.dir] === POLICY_INGRESS;
    const remote = dv.getUint32(PolicyVerdictNotify.remote_label, true);
    srcIdentity = ingress ? remote : 0;
    dstIdentity = ingress ? 0 : remote;
    if (audited) verdict = 'AUDIT';
    else if (v < 0) {
      verdict = 'DROPPED';
      dropReason = -v;
    } else verdict = v > 0 ? 'REDIRECTED' : 'FORWARDED';
    if (verdict !== 'DROPPED') isReply = false;
    matchType = bytes[PolicyVerdictNotify.match_type]!;
    direction = ingress ? 'INGRESS' : 'EGRESS';
    ktime = readKtime(dv, PolicyVerdictNotify.ktime_ns);
    eventType = MessageType.POLICY_VERDICT;
  }

  const src = resolveEndpoint(ctx, pkt.ip?.source, srcIdentity);
  const dst = resolveEndpoint(ctx, pkt.ip?.destination, dstIdentity);

  if (type === NotifyType.DROP) {
    if (source !== 0) direction = source === (src.ID ?? 0) ? 'EGRESS' : 'INGRESS';
  } else if (type === NotifyType.TRACE) {
    if (source !== 0) direction = (source === (src.ID ?? 0)) !== isReply ? 'EGRESS' : 'INGRESS';
  }

  // The service side of the flow: the destination of a request (or of a flow whose direction is
  // unknown, such as a drop), the source of a reply.
  const l4proto: ServiceProtocol | undefined = pkt.l4?.TCP ? 'TCP' : pkt.l4?.UDP ? 'UDP' : undefined;
  const srcService = isReply === true ? lookupService(ctx, pkt.ip?.source, pkt.srcPort, l4proto) : undefined;
  const dstService =
    isReply !== true ? lookupService(ctx, pkt.ip?.destination, pkt.dstPort, l4proto) : undefined;

  const total = ctx.bootTime.nsec + ktime;
  const sec = ctx.bootTime.sec + Math.floor(total / 1e9);
  const nsec = total % 1e9;

  // keys assigned in proto field order, so JSON output reads like upstream's
  const flow = { time: formatTimestamp(sec, nsec) } as Flow;
  if (ctx.uuid !== false) flow.uuid = randomUUID();
  flow.emitter = { name: 'Hubble', version: ctx.version ?? '0.1.0' };
  flow.verdict = verdict;
  if (dropReason) flow.drop_reason = dropReason;
  if (pkt.ethernet) flow.ethernet = pkt.ethernet;
  if (pkt.ip) {
    if (traceReason >= 0 && traceReason & TRACE_REASON_ENCRYPT_MASK) pkt.ip.encrypted = true;
    flow.IP = pkt.ip;
  }
  if (pkt.l4) flow.l4 = pkt.l4;
  flow.source = src;
  flow.destination = dst;
  flow.Type = 'L3_L4';
  if (ctx.nodeName) flow.node_name = ctx.nodeName;
  if (isReply) flow.reply = true;
  flow.event_type = eventSubType ? { type: eventType, sub_type: eventSubType } : { type: eventType };
  if (srcService) flow.source_service = srcService;
  if (dstService) flow.destination_service = dstService;
  if (direction !== 'TRAFFIC_DIRECTION_UNKNOWN') flow.traffic_direction = direction;
  if (matchType) flow.policy_match_type = matchType;
  if (type === NotifyType.TRACE) {
    flow.trace_observation_point = TraceObsPointEnum[subtype] ?? 'UNKNOWN_POINT';
    const tr = TraceReasonEnum[traceReason & ~TRACE_REASON_ENCRYPT_MASK];
    if (tr) flow.trace_reason = tr;
  }
  const file = type === NotifyType.DROP ? DROP_FILES[bytes[DropNotify.file]!] : undefined;
  if (file) flow.file = { name: file };
  if (dropReason) flow.drop_reason_desc = dropReasonName(dropReason);
  if (isReply !== undefined) flow.is_reply = isReply;
  if (ifindex) {
    const name = ctx.interfaceName?.(ifindex);
    flow.interface = name ? { index: ifindex, name } : { index: ifindex };
  }
  flow.Summary = pkt.summary;
  return { flow, sec, nsec, timeMs: sec * 1000 + nsec / 1e6 };
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
