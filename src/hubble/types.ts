/**
 * Hubble flow types: plain objects mirroring `flow.Flow` (proto/flow/flow.proto)
 * in upstream Hubble's JSON form (proto field names, enum names as strings,
 * `time` as RFC 3339 with nanoseconds, `is_reply` as a bare boolean). Fields at
 * their zero value are left out, as protojson does, so `JSON.stringify(flow)`
 * reads like upstream's `hubble observe -o json`.
 */

export type Verdict =
  | 'VERDICT_UNKNOWN'
  | 'FORWARDED'
  | 'DROPPED'
  | 'ERROR'
  | 'AUDIT'
  | 'REDIRECTED'
  | 'TRACED'
  | 'TRANSLATED';

export type TrafficDirection = 'TRAFFIC_DIRECTION_UNKNOWN' | 'INGRESS' | 'EGRESS';

export type TraceObservationPoint =
  | 'UNKNOWN_POINT'
  | 'TO_PROXY'
  | 'TO_HOST'
  | 'TO_STACK'
  | 'TO_OVERLAY'
  | 'TO_ENDPOINT'
  | 'FROM_ENDPOINT'
  | 'FROM_PROXY'
  | 'FROM_HOST'
  | 'FROM_STACK'
  | 'FROM_OVERLAY'
  | 'FROM_NETWORK'
  | 'TO_NETWORK'
  | 'FROM_CRYPTO'
  | 'TO_CRYPTO';

export type TraceReason = 'TRACE_REASON_UNKNOWN' | 'NEW' | 'ESTABLISHED' | 'REPLY' | 'RELATED';

export type IPVersion = 'IP_NOT_USED' | 'IPv4' | 'IPv6';

export interface Ethernet {
  source: string;
  destination: string;
}

export interface IP {
  source: string;
  destination: string;
  ipVersion: IPVersion;
  encrypted?: boolean;
}

export interface TCPFlags {
  FIN?: boolean;
  SYN?: boolean;
  RST?: boolean;
  PSH?: boolean;
  ACK?: boolean;
  URG?: boolean;
  ECE?: boolean;
  CWR?: boolean;
  NS?: boolean;
}

export interface PortPair {
  source_port?: number;
  destination_port?: number;
}

export interface TCP extends PortPair {
  flags?: TCPFlags;
}

export interface ICMP {
  type?: number;
  code?: number;
}

export interface Layer4 {
  TCP?: TCP;
  UDP?: PortPair;
  SCTP?: PortPair;
  ICMPv4?: ICMP;
  ICMPv6?: ICMP;
}

export interface Endpoint {
  ID?: number;
  identity?: number;
  cluster_name?: string;
  namespace?: string;
  labels?: string[];
  pod_name?: string;
}

/** `flow.Service`: the Kubernetes Service an address of the flow belongs to (as frontend or backend). */
export interface Service {
  name: string;
  namespace?: string;
}

export interface CiliumEventType {
  type?: number;
  sub_type?: number;
}

export interface NetworkInterface {
  index?: number;
  name?: string;
}

export interface Flow {
  time: string;
  uuid?: string;
  emitter?: { name: string; version: string };
  verdict: Verdict;
  drop_reason?: number;
  ethernet?: Ethernet;
  IP?: IP;
  l4?: Layer4;
  source?: Endpoint;
  destination?: Endpoint;
  Type: 'UNKNOWN_TYPE' | 'L3_L4' | 'L7' | 'SOCK';
  node_name?: string;
  reply?: boolean;
  event_type: CiliumEventType;
  source_service?: Service;
  destination_service?: Service;
  traffic_direction?: TrafficDirection;
  policy_match_type?: number;
  trace_observation_point?: TraceObservationPoint;
  trace_reason?: TraceReason;
  file?: { name?: string; line?: number };
  drop_reason_desc?: string;
  is_reply?: boolean;
  interface?: NetworkInterface;
  proxy_port?: number;
  /** Type L7: what an L7 proxy saw (src/hubble/l7.ts). */
  l7?: Layer7;
  Summary?: string;
}

export interface HTTPHeader {
  key: string;
  value: string;
}

export interface HTTP {
  code?: number;
  method?: string;
  url?: string;
  protocol?: string;
  headers?: HTTPHeader[];
}

export interface DNS {
  query?: string;
  ips?: string[];
  ttl?: number;
  cnames?: string[];
  observation_source?: string;
  rcode?: number;
  qtypes?: string[];
  rrtypes?: string[];
}

export interface Kafka {
  error_code?: number;
  api_version?: number;
  api_key?: string;
  correlation_id?: number;
  topic?: string;
}

export type L7FlowType = 'UNKNOWN_L7_TYPE' | 'REQUEST' | 'RESPONSE' | 'SAMPLE';

export interface Layer7 {
  type: L7FlowType;
  /** Responses: from the request to the response, in ns. */
  latency_ns?: number;
  dns?: DNS;
  http?: HTTP;
  kafka?: Kafka;
}

export type LostEventSource =
  | 'UNKNOWN_LOST_EVENT_SOURCE'
  | 'PERF_EVENT_RING_BUFFER'
  | 'OBSERVER_EVENTS_QUEUE'
  | 'HUBBLE_RING_BUFFER';

/** `flow.LostEvent`: events lost before Hubble could hand them out. */
export interface LostEvent {
  source: LostEventSource;
  num_events_lost: number;
  cpu?: number;
  first?: string;
  last?: string;
}

/** An entry of the flow ring: a flow or a loss notice, with its time in ms since the epoch. */
export interface HubbleEvent {
  /** Milliseconds since the Unix epoch (fractional: sub-millisecond precision). */
  timeMs: number;
  /** The same time, exact: seconds and nanoseconds since the epoch. */
  sec: number;
  nsec: number;
  flow?: Flow;
  lost?: LostEvent;
}

/** `flow.FlowFilter` as decoded by proto-loader (keepCase, enums as names). */
export interface FlowFilter {
  uuid?: string[];
  source_ip?: string[];
  source_pod?: string[];
  source_label?: string[];
  /** `[namespace/]name-prefix`, as source_pod (no namespace means `default`). */
  source_service?: string[];
  destination_ip?: string[];
  destination_pod?: string[];
  destination_label?: string[];
  destination_service?: string[];
  traffic_direction?: TrafficDirection[];
  verdict?: Verdict[];
  drop_reason_desc?: string[];
  /** Interfaces the flow was observed at: each set field (index > 0, name non-empty) must match. */
  interface?: NetworkInterface[];
  event_type?: { type?: number; match_sub_type?: boolean; sub_type?: number }[];
  protocol?: string[];
  source_port?: string[];
  destination_port?: string[];
  reply?: boolean[];
  source_identity?: number[];
  destination_identity?: number[];
  tcp_flags?: TCPFlags[];
  node_name?: string[];
  ip_version?: IPVersion[];
  /** L7: HTTP status codes or prefixes (`404`, `5+`). */
  http_status_code?: string[];
  http_method?: string[];
  /** L7: regular expressions over the request path (without the query). */
  http_path?: string[];
  /** L7: regular expressions over the DNS query name. */
  dns_query?: string[];
}
