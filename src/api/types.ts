/**
 * The agent's REST API (on its unix socket): every route with its method, path, request and response
 * types, shared by the agent's handlers, the typed client (AgentApi) and the lab. Types describe the
 * JSON on the wire: 64-bit counters (bigint in the agent) travel as decimal strings.
 *
 * Errors: any route may answer a status >= 400 with ApiErrorBody (src/api/errors.ts); the CNI routes
 * answer a CNI error object instead, as the CNI plugin expects.
 */
import {
  CNI_API,
  type CniAgentGcRequest,
  type CniAgentOkResponse,
  type CniAgentRequest,
  type NetConf,
} from '../cni/types.js';
import type { ConntrackGCStatus, FlushResult, GcRun } from '../conntrack/index.js';
import type { CtListEntry, MetricsEntry } from '../datapath/index.js';
import type { RingBufStats } from '../ebpf/ringbuf.js';
import type { PodMeta } from '../endpoint/manager.js';
import type { EndpointRecord } from '../endpoint/types.js';
import type { Flow } from '../hubble/types.js';
import type { IdentityScope } from '../identity/index.js';
import type { TraceResult, ValidationIssue } from '../policy/index.js';
import type { ReconcilerStatus } from '../statedb/reconciler.js';

/** A value as it reads back from JSON: bigints become decimal strings. */
export type Wire<T> = T extends bigint
  ? string
  : T extends readonly (infer E)[]
    ? Wire<E>[]
    : T extends object
      ? { -readonly [K in keyof T]: Wire<T[K]> }
      : T;

export type Empty = Record<string, never>;

/** A value as JSON carries it: bigints become decimal strings (what the router's send() writes). */
export function toWire<T>(v: T): Wire<T> {
  if (typeof v === 'bigint') return v.toString() as Wire<T>;
  if (Array.isArray(v)) return v.map(toWire) as Wire<T>;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toWire(x);
    return out as Wire<T>;
  }
  return v as Wire<T>;
}

// ---- node ----

export interface HealthzResponse {
  ok: boolean;
}

export interface StatusResponse {
  lab: string;
  node: string;
  uptimeSeconds: number;
  ready: boolean;
  kvstore: string;
  ipam: {
    podCidrV4: string;
    podCidrV6?: string;
    ipv4?: { used: number; capacity: string };
    ipv6?: { used: number; capacity: string };
  };
  endpoints: number;
  identities: number;
  /** Identity allocations waiting for an unreachable kvstore (new pods wait with them). */
  identitiesWaiting?: string;
  policy: { revision: number; policies: number };
  datapath: { open: false } | { open: true; bpffs: string; policyMaps: number; eventsLost: string };
  monitor: {
    events: number;
    dropped: number;
    subscribers: number;
    ring?: RingBufStats;
    readerError?: string;
  };
  /** Observer API addresses (`unix:///...`, `127.0.0.1:PORT`) and the flow ring's fill. */
  hubble: { unix?: string; tcp?: string; flows: number; maxFlows: number };
  /** Prometheus endpoint URL, when enabled. */
  metrics?: string;
  /** Nodes this agent knows (itself included). */
  nodes?: number;
  /** How other nodes' pods are reached: the VXLAN overlay (its device, tunnels to nodes) or native routes. */
  routing?:
    | { mode: 'vxlan'; device: string; ifindex: number; port: number; mtu: number; tunnels: number }
    | { mode: 'native' };
  /** IPv4 BIG TCP: the GSO/GRO packet size of the node's devices and new pods (0: off, 64 KiB). */
  bigTcp?: { ipv4: number };
  /** Each BPF map reconciler: objects, pending, failing objects with their errors, full passes. */
  reconcilers?: ReconcilerStatus[];
  conntrackGC?: Wire<ConntrackGCStatus>;
  /** Services in eBPF instead of kube-proxy: what is on. */
  kubeProxyReplacement?: { enabled: boolean; features: string[]; services: number; socketLbCgroup?: string };
  /** The node's L7 proxies: parser, port, listening, open client connections. */
  proxies?: { parser: string; port: number; running: boolean; connections: number }[];
}

// ---- endpoints and identities ----

export interface EndpointView extends EndpointRecord {
  identityLabels: string[];
  policyEnabled: { ingress: boolean; egress: boolean };
}

export interface IdentityView {
  id: number;
  labels: string[];
  scope: IdentityScope;
  refCount: number;
}

// ---- policy ----

/** PUT /v1/policy and POST /v1/policy/validate take this as JSON, or raw multi-document YAML. */
export interface PolicyDocumentsRequest {
  documents: Record<string, unknown>[];
}

export interface PolicyImportResponse {
  revision: number;
  /** `Kind/namespace/name` of each imported policy. */
  policies: string[];
}

export interface PolicyValidateResponse {
  valid: boolean;
  issues: ValidationIssue[];
}

export interface PolicyListResponse {
  revision: number;
  policies: {
    kind: string;
    namespace: string;
    name: string;
    revision: number;
    rules: number;
    /** The document as imported. */
    document?: Record<string, unknown>;
  }[];
}

export interface PolicyDeleteRequest {
  /** Which policies (`kind`: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or NetworkPolicy). */
  refs?: { kind: string; namespace: string; name: string }[];
  /** Delete every policy (refs are ignored). */
  all?: boolean;
}

export interface PolicyDeleteResponse {
  revision: number;
  deleted: string[];
}

/** One side of a trace: a pod (`ns/name` or `name` in default), an identity, or labels. */
export interface TraceSide {
  pod?: string;
  identity?: number;
  labels?: string[];
}

export interface TraceRequest {
  src?: TraceSide;
  dst?: TraceSide;
  /** Destination port (ICMP: the type); 0 = any. */
  dport?: number;
  /** TCP (default), UDP, SCTP, ICMP, ICMPv6. */
  protocol?: string;
}

export interface TraceResponse extends Wire<TraceResult> {
  src: { labels: string[] };
  dst: { labels: string[] };
  dport: number;
  protocol: string;
  revision: number;
}

// ---- datapath maps ----

export interface BpfPolicyEntry {
  direction: 'Ingress' | 'Egress';
  identity: number | 'ANY';
  protocol: string;
  /** `ANY`, a port or a range `80-81`. */
  port: string;
  action: 'allow' | 'deny';
  flags: number;
  proxyPort: number | '';
  cookie: number;
}

export interface BpfPolicyResponse {
  endpoint: number;
  entries: BpfPolicyEntry[];
}

export type BpfCtEntry = Wire<CtListEntry>;

export interface BpfIpcacheEntry {
  prefix: string;
  identity: number;
  /** '' when the prefix is local or has no tunnel endpoint. */
  tunnelEndpoint: string;
  flags: number;
}

export interface BpfEndpointEntry {
  ip: string;
  endpoint: number;
  identity: number;
  ifindex: number;
  mac: string;
  nodeMac: string;
  flags: number;
}

export type BpfMetricsEntry = Wire<MetricsEntry>;

/** Query of DELETE /v1/bpf/ct (`bpf ct flush`): one family, or both when absent. */
export interface CtFlushQuery {
  family?: 'ipv4' | 'ipv6';
}

export type CtFlushResponse = FlushResult;
export type CtGcStatusResponse = ConntrackGCStatus;
export type CtGcRunResponse = GcRun;

// ---- monitor ----

export type MonitorEventKind = 'drop' | 'trace' | 'policy-verdict';

/** Query of GET /v1/monitor: event kinds (repeatable `type=`) and one endpoint ID. */
export interface MonitorQuery {
  type?: MonitorEventKind[];
  endpoint?: number;
}

/** One line of the newline-delimited JSON stream of GET /v1/monitor. */
export interface MonitorEvent {
  kind: MonitorEventKind;
  /** The event in `cilium monitor` form. */
  text: string;
  flow: Flow;
}

// ---- resources pushed by the orchestrator (the lab) ----

export interface NamespaceRequest {
  labels?: Record<string, string>;
}

export interface PodRequest {
  labels?: Record<string, string>;
  namedPorts?: PodMeta['namedPorts'];
  serviceAccount?: string;
}

export type PodsResponse = Record<string, PodMeta>;

/** A node this agent knows (`node list`): itself and the others the kvstore told it about. */
/** One name an endpoint resolved through the DNS proxy (`fqdn cache list`). */
export interface FqdnCacheEntry {
  endpoint: number;
  /** `lookup`: learnt from a DNS answer the proxy let through. */
  source: 'lookup';
  name: string;
  /** When the last answer for the name arrived (ISO 8601). */
  lookupTime: string;
  ips: { ip: string; ttl: number; expiresAt: string }[];
}

export interface NodeView {
  name: string;
  cluster: string;
  local: boolean;
  addresses: { type: string; ip: string }[];
  ipv4PodCidr?: string;
  ipv6PodCidr?: string;
  labels: Record<string, string>;
}

/** One frontend of a service with its backends (`service list`). */
export interface ServiceView {
  id: number;
  /** `10.96.0.10:53/UDP`, `[fd00::1]:80/TCP` */
  frontend: string;
  type: string;
  /** `namespace/name` */
  service: string;
  /** The service port's name ('' when unnamed). */
  port: string;
  flags: string;
  backends: {
    id: number;
    address: string;
    port: number;
    protocol: string;
    state: string;
    nodeName?: string;
  }[];
}

/** One frontend as the LB maps hold it (`bpf lb list`): master entry and backend slots. */
export interface BpfLbEntry {
  frontend: string;
  revNatIndex: number;
  flags: string;
  count: number;
  qcount: number;
  /** Slot 1..N → backend. */
  slots: { slot: number; backendId: number; backend: string; state: string }[];
}

/** A Kubernetes Service or discovery.k8s.io/v1 EndpointSlice object, as in a manifest. */
export type KubeObject = Record<string, unknown>;

/** `namespace/name` → object. */
export type KubeObjectsResponse = Record<string, KubeObject>;

// ---- the route table ----

export type HttpMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** Names of the `:param` segments of a path pattern. */
export type PathParams<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
  ? Name | PathParams<`/${Rest}`>
  : P extends `${string}:${infer Name}`
    ? Name
    : never;

/** Carries a type at compile time only. */
export interface Phantom<T> {
  readonly __phantom?: T;
}

export interface RouteDef<Req, Res, P extends string = string> {
  readonly method: HttpMethod;
  readonly path: P;
  /** The response is a stream of newline-delimited JSON values of type Res. */
  readonly stream?: true;
  readonly types?: { req: Req; res: Res };
}

export type RequestOf<R> = R extends RouteDef<infer Req, unknown> ? Req : never;
export type ResponseOf<R> = R extends RouteDef<unknown, infer Res> ? Res : never;

export function returns<T>(): Phantom<T> {
  return {};
}
export function body<T>(): Phantom<T> {
  return {};
}

function route<P extends string, Res, Req = void>(
  method: HttpMethod,
  path: P,
  _res: Phantom<Res>,
  _req?: Phantom<Req>,
): RouteDef<Req, Res, P> {
  return { method, path };
}

/** CNI plugin → agent (served by src/cni/agent-side.ts; errors are CNI error objects). */
const cniRoutes = {
  cniAdd: route('POST', CNI_API.add, returns<CniAgentOkResponse>(), body<CniAgentRequest>()),
  cniDel: route('POST', CNI_API.del, returns<Empty>(), body<CniAgentRequest>()),
  cniCheck: route('POST', CNI_API.check, returns<Empty>(), body<CniAgentRequest>()),
  cniStatus: route('POST', CNI_API.status, returns<Empty>(), body<{ config: NetConf }>()),
  cniGc: route('POST', CNI_API.gc, returns<{ removed: string[] }>(), body<CniAgentGcRequest>()),
};

export const routes = {
  healthz: route('GET', '/v1/healthz', returns<HealthzResponse>()),
  status: route('GET', '/v1/status', returns<StatusResponse>()),

  endpointList: route('GET', '/v1/endpoint', returns<EndpointView[]>()),
  /** `:id` is an endpoint ID, an IP, `namespace/pod` (URL-encoded) or a pod in `default`. */
  endpointGet: route('GET', '/v1/endpoint/:id', returns<EndpointView>()),
  identityList: route('GET', '/v1/identity', returns<IdentityView[]>()),
  identityGet: route('GET', '/v1/identity/:id', returns<IdentityView>()),

  policyList: route('GET', '/v1/policy', returns<PolicyListResponse>()),
  policyImport: route('PUT', '/v1/policy', returns<PolicyImportResponse>(), body<PolicyDocumentsRequest>()),
  policyValidate: route(
    'POST',
    '/v1/policy/validate',
    returns<PolicyValidateResponse>(),
    body<PolicyDocumentsRequest>(),
  ),
  policyDelete: route('DELETE', '/v1/policy', returns<PolicyDeleteResponse>(), body<PolicyDeleteRequest>()),
  policyTrace: route('POST', '/v1/policy/trace', returns<TraceResponse>(), body<TraceRequest>()),

  bpfPolicy: route('GET', '/v1/bpf/policy/:id', returns<BpfPolicyResponse>()),
  bpfCt: route('GET', '/v1/bpf/ct', returns<BpfCtEntry[]>()),
  bpfIpcache: route('GET', '/v1/bpf/ipcache', returns<BpfIpcacheEntry[]>()),
  bpfEndpoints: route('GET', '/v1/bpf/endpoints', returns<BpfEndpointEntry[]>()),
  bpfMetrics: route('GET', '/v1/bpf/metrics', returns<BpfMetricsEntry[]>()),
  /** Served by src/conntrack/api.ts. Query: CtFlushQuery. */
  bpfCtFlush: route('DELETE', '/v1/bpf/ct', returns<CtFlushResponse>()),
  bpfCtGcStatus: route('GET', '/v1/bpf/ct/gc', returns<CtGcStatusResponse>()),
  bpfCtGcRun: route('POST', '/v1/bpf/ct/gc', returns<CtGcRunResponse>()),

  monitor: { ...route('GET', '/v1/monitor', returns<MonitorEvent>()), stream: true as const },

  pods: route('GET', '/v1/k8s/pods', returns<PodsResponse>()),
  namespacePut: route('PUT', '/v1/k8s/namespaces/:name', returns<Empty>(), body<NamespaceRequest>()),
  podPut: route('PUT', '/v1/k8s/pods/:ns/:name', returns<Empty>(), body<PodRequest>()),
  podDelete: route('DELETE', '/v1/k8s/pods/:ns/:name', returns<Empty>()),
  serviceList: route('GET', '/v1/service', returns<ServiceView[]>()),
  nodeList: route('GET', '/v1/node', returns<NodeView[]>()),
  bpfLb: route('GET', '/v1/bpf/lb', returns<BpfLbEntry[]>()),
  fqdnCache: route('GET', '/v1/fqdn/cache', returns<FqdnCacheEntry[]>()),
  services: route('GET', '/v1/k8s/services', returns<KubeObjectsResponse>()),
  servicePut: route('PUT', '/v1/k8s/services/:ns/:name', returns<Empty>(), body<KubeObject>()),
  serviceDelete: route('DELETE', '/v1/k8s/services/:ns/:name', returns<Empty>()),
  endpointSlices: route('GET', '/v1/k8s/endpointslices', returns<KubeObjectsResponse>()),
  endpointSlicePut: route('PUT', '/v1/k8s/endpointslices/:ns/:name', returns<Empty>(), body<KubeObject>()),
  endpointSliceDelete: route('DELETE', '/v1/k8s/endpointslices/:ns/:name', returns<Empty>()),

  ...cniRoutes,
} as const;

export type Routes = typeof routes;
export type RouteName = keyof Routes;
