/**
 * The Hubble UI's service map: flows aggregated into nodes (one per workload, plus world, host,
 * remote-node and the other reserved identities) and edges (one per source, destination,
 * destination port and protocol), as upstream's hubble-ui keys them. Pure and incremental: each
 * flow touches at most two nodes and one edge, and every touched item gets the map's new version
 * number, so a reader asks for what changed since the version it last saw. The browser bundle
 * imports this module too (names and ids are computed the same way on both sides).
 */
import { ReservedIdentityNames } from '../constants.js';
import type { Endpoint, Flow } from '../types.js';

/** Fields of upstream's flow.Flow that flows from L7 proxies and the DNS proxy carry. */
export interface FlowExtras {
  source_names?: string[];
  destination_names?: string[];
  l7?: {
    type?: string;
    latency_ns?: number | string;
    http?: { code?: number; method?: string; url?: string; protocol?: string };
    dns?: { query?: string; rcode?: number; ips?: string[] };
    kafka?: { api_key?: string; topic?: string; error_code?: number };
  };
}
export type UiFlow = Flow & FlowExtras;

export type NodeKind =
  | 'workload'
  | 'world'
  | 'host'
  | 'remote-node'
  | 'kube-apiserver'
  | 'health'
  | 'init'
  | 'unmanaged'
  | 'ingress'
  | 'unknown';

export interface MapNode {
  id: string;
  name: string;
  kind: NodeKind;
  /** Workloads only. */
  namespace?: string;
  identity?: number;
  /** The labels of the last flow seen from or to it (`k8s:app=web`...). */
  labels: string[];
  /** Pods seen (at most MAX_PODS). */
  pods: string[];
  /** World nodes: the DNS name they stand for, when the flow carried one. */
  dnsName?: string;
  /** Flows seen from or to it. */
  flows: number;
  /** Map version of its last change. */
  version: number;
}

export type EdgeVerdict = 'forwarded' | 'dropped' | 'mixed' | 'other';

export interface MapEdge {
  /** `<source> <PROTO> <destination>:<port>`, as upstream's ServiceLink id. */
  id: string;
  source: string;
  target: string;
  protocol: string;
  /** Destination port (ICMP: the type; 0 when there is none). */
  port: number;
  flows: number;
  forwarded: number;
  dropped: number;
  /** Flows of any other verdict (AUDIT, ERROR, REDIRECTED, ...). */
  other: number;
  /**
   * Forwarded flows still on their way to a pod (leaving the source's node: from-endpoint,
   * to-stack, to-overlay...). They prove no delivery: the destination's node may drop them, so
   * they count as forwarded only on an edge without drops and deliveries.
   */
  transit: number;
  verdict: EdgeVerdict;
  /** Drop reasons with their counts. */
  dropReasons: Record<string, number>;
  /** HTTP requests seen on the edge: `GET /path` → count (at most MAX_L7_KEYS kinds). */
  http: Record<string, number>;
  /** HTTP requests the L7 policy denied: `PUT /path` → count. */
  httpDropped: Record<string, number>;
  /** HTTP response codes (from the responses, which travel the edge backwards) → count. */
  httpCodes: Record<string, number>;
  lastSeen: string;
  version: number;
}

/** A table row: the columns, the map ids the row belongs to, and a sequence number to fetch the flow by. */
export interface FlowRow {
  seq: number;
  time: string;
  source: string;
  destination: string;
  /** `ns/pod` or IP of each side, as hubble observe prints them. */
  sourcePod: string;
  destinationPod: string;
  sourceNode: string;
  destinationNode: string;
  edge?: string;
  protocol: string;
  port: number;
  l7: string;
  verdict: string;
  dropReason: string;
  reply: boolean;
  summary: string;
}

export interface MapView {
  version: number;
  namespace: string;
  nodes: MapNode[];
  edges: MapEdge[];
}

const MAX_PODS = 20;
const MAX_L7_KEYS = 32;
const MAX_NAMES = 10_000;

/** The node kind of a reserved identity (its name, world-ipv4 and world-ipv6 being world). */
function reservedKind(id: number | undefined): NodeKind | undefined {
  if (id === undefined || id === 0) return undefined;
  if (id === 9 || id === 10) return 'world';
  return ReservedIdentityNames[id] as NodeKind | undefined;
}

const RESERVED_LABELS: Record<string, NodeKind> = {
  host: 'host',
  world: 'world',
  'world-ipv4': 'world',
  'world-ipv6': 'world',
  unmanaged: 'unmanaged',
  health: 'health',
  init: 'init',
  'remote-node': 'remote-node',
  'kube-apiserver': 'kube-apiserver',
  ingress: 'ingress',
};

/** Label keys naming a workload, in upstream's order, after NAME_KEY_PREFIXES are stripped. */
const NAME_KEYS = ['app', 'name', 'functionName', 'k8s-app'];
const NAME_KEY_PREFIXES = ['io.kubernetes.pod.', 'app.kubernetes.io/'];

/** `k8s:app.kubernetes.io/name=web` → ['name', 'web'] (source and upstream's key prefixes stripped). */
function labelKeyValue(label: string): [string, string] {
  const colon = label.indexOf(':');
  const eq = label.indexOf('=');
  const start = colon >= 0 && (eq < 0 || colon < eq) ? colon + 1 : 0;
  let key = eq >= 0 ? label.slice(start, eq) : label.slice(start);
  const value = eq >= 0 ? label.slice(eq + 1) : '';
  for (const p of NAME_KEY_PREFIXES) if (key.startsWith(p)) key = key.slice(p.length);
  return [key, value];
}

/** The kind of node an endpoint is: a reserved identity's, else a workload (or unknown without one). */
export function endpointKind(ep: Endpoint | undefined): NodeKind {
  for (const l of ep?.labels ?? []) {
    if (!l.startsWith('reserved:')) continue;
    const k = RESERVED_LABELS[l.slice('reserved:'.length).split('=')[0]!];
    if (k) return k;
  }
  const byId = reservedKind(ep?.identity);
  if (byId) return byId;
  if (ep?.namespace || ep?.pod_name || (ep?.labels?.length ?? 0) > 0) return 'workload';
  return 'unknown';
}

/**
 * A workload's name: the first of the `app`, `name`, `functionName`, `k8s-app` labels, else the pod's
 * name without its ReplicaSet suffix (`web-5d9c7f-abcde` with pod-template-hash 5d9c7f → `web`),
 * else the pod's name, else the identity.
 */
export function workloadName(ep: Endpoint): string {
  const kv = (ep.labels ?? []).map(labelKeyValue);
  for (const key of NAME_KEYS) {
    const hit = kv.find(([k, v]) => k === key && v !== '');
    if (hit) return hit[1];
  }
  const pod = ep.pod_name;
  if (pod) {
    const hash = kv.find(([k]) => k === 'pod-template-hash')?.[1];
    if (hash) {
      const i = pod.lastIndexOf(`-${hash}-`);
      if (i > 0) return pod.slice(0, i);
    }
    return pod;
  }
  return ep.identity !== undefined ? `identity-${ep.identity}` : 'unknown';
}

/** The DNS name an address was last resolved from, when known. */
export type NamesOf = (ip: string) => string | undefined;

export interface NodeRef {
  id: string;
  name: string;
  kind: NodeKind;
  namespace?: string;
  dnsName?: string;
}

/**
 * The map node of one side of a flow. World is split into a sender and a receiver node (as
 * upstream: an outside peer is drawn on the side it talks from), named after the first DNS name
 * the flow carries for it, else the name `namesOf` knows for its address.
 */
export function nodeOf(f: UiFlow, side: 'source' | 'destination', namesOf?: NamesOf): NodeRef {
  const ep = f[side];
  const kind = endpointKind(ep);
  if (kind === 'world') {
    const ip = side === 'source' ? f.IP?.source : f.IP?.destination;
    const dns =
      (side === 'source' ? f.source_names : f.destination_names)?.[0] ?? (ip ? namesOf?.(ip) : undefined);
    const role = side === 'source' ? 'sender' : 'receiver';
    return dns
      ? { id: `${dns}-${role}`, name: dns, kind, dnsName: dns }
      : { id: `world-${role}`, name: 'world', kind };
  }
  if (kind === 'workload') {
    const ns = ep?.namespace ?? '';
    const name = workloadName(ep!);
    return { id: ns ? `${ns}/${name}` : name, name, kind, ...(ns ? { namespace: ns } : {}) };
  }
  if (kind === 'unknown') {
    const ip = side === 'source' ? f.IP?.source : f.IP?.destination;
    const name = ip ?? 'unknown';
    return { id: `ip:${name}`, name, kind };
  }
  return { id: kind, name: kind, kind };
}

/** Protocol name and destination port (ICMP type) of a flow; undefined without an L4 header. */
export function l4Of(f: Flow): { protocol: string; port: number } | undefined {
  const l4 = f.l4;
  if (!l4) return undefined;
  if (l4.TCP) return { protocol: 'TCP', port: l4.TCP.destination_port ?? 0 };
  if (l4.UDP) return { protocol: 'UDP', port: l4.UDP.destination_port ?? 0 };
  if (l4.SCTP) return { protocol: 'SCTP', port: l4.SCTP.destination_port ?? 0 };
  if (l4.ICMPv4) return { protocol: 'ICMPv4', port: l4.ICMPv4.type ?? 0 };
  if (l4.ICMPv6) return { protocol: 'ICMPv6', port: l4.ICMPv6.type ?? 0 };
  return undefined;
}

export function edgeId(source: string, protocol: string, target: string, port: number): string {
  return `${source} ${protocol} ${target}:${port}`;
}

/** Where a flow lands on the map: its nodes and edge (no edge for replies and flows without L4). */
export interface FlowPlace {
  source: NodeRef;
  destination: NodeRef;
  edge?: string;
  /** Replies: the edge of the request they answer. */
  replyTo?: string;
}

/**
 * Replies travel an edge backwards: they draw no reversed edge; an HTTP response's code counts on
 * its request's edge (`replyTo`: from the reply's destination to its source, on its source port).
 */
export function placeFlow(f: UiFlow, namesOf?: NamesOf): FlowPlace {
  const source = nodeOf(f, 'source', namesOf);
  const destination = nodeOf(f, 'destination', namesOf);
  const l4 = l4Of(f);
  if (!l4) return { source, destination };
  if (f.is_reply !== true)
    return { source, destination, edge: edgeId(source.id, l4.protocol, destination.id, l4.port) };
  const sport = (f.l4?.TCP ?? f.l4?.UDP ?? f.l4?.SCTP)?.source_port;
  if (sport === undefined) return { source, destination };
  return { source, destination, replyTo: edgeId(destination.id, l4.protocol, source.id, sport) };
}

/** One line for the table's L7 column: `GET /path`, `200 GET /path`, `DNS a.example`... ('' without L7). */
export function l7Summary(f: UiFlow): string {
  const l7 = f.l7;
  if (!l7) return '';
  if (l7.http) {
    const h = l7.http;
    const req = [h.method, h.url ? pathOf(h.url) : undefined].filter(Boolean).join(' ');
    return h.code ? `${h.code} ${req}`.trim() : req;
  }
  if (l7.dns) return `DNS ${l7.dns.query ?? ''}${l7.dns.rcode ? ` rcode ${l7.dns.rcode}` : ''}`.trim();
  if (l7.kafka) return `Kafka ${l7.kafka.api_key ?? ''} ${l7.kafka.topic ?? ''}`.trim();
  return l7.type ?? '';
}

/** The path of an URL as hubble prints it (`http://host/a?b` → `/a?b`); the input when it is not one. */
function pathOf(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(url);
  return m ? (m[1] ?? '/') : url;
}

/** Why a flow was dropped: the datapath's reason, or the L7 policy for a proxy's denied request. */
export function dropReason(f: UiFlow): string {
  if (f.drop_reason_desc) return f.drop_reason_desc;
  if (f.l7) return 'L7_POLICY_DENIED';
  return f.drop_reason !== undefined ? String(f.drop_reason) : 'unknown';
}

function edgeVerdict(e: Pick<MapEdge, 'forwarded' | 'dropped' | 'transit'>): EdgeVerdict {
  if (e.dropped > 0 && e.forwarded > 0) return 'mixed';
  if (e.dropped > 0) return 'dropped';
  if (e.forwarded > 0 || e.transit > 0) return 'forwarded';
  return 'other';
}

/** A forwarded flow that proves delivery: seen entering the pod, or by policy or a proxy, or to a non-pod. */
function delivered(f: UiFlow, destination: NodeRef): boolean {
  const point = f.trace_observation_point;
  return destination.kind !== 'workload' || point === undefined || point === 'TO_ENDPOINT';
}

function bump(rec: Record<string, number>, key: string, limit: number): void {
  if (rec[key] !== undefined) rec[key]++;
  else if (Object.keys(rec).length < limit) rec[key] = 1;
  else rec['(other)'] = (rec['(other)'] ?? 0) + 1;
}

/**
 * Bounds of a map: a cluster's workloads are few, but addresses without an identity (each its own
 * node) are not; flows that would need more are counted in `overflow` (the table still shows them).
 */
export interface MapLimits {
  nodes: number;
  edges: number;
}

/** The aggregated map of every flow seen; `add` is O(1) per flow. */
export class ServiceMap {
  private readonly nodes = new Map<string, MapNode>();
  private readonly edges = new Map<string, MapEdge>();
  private readonly namespaceSet = new Set<string>();
  version = 0;
  /** Flows left out of the map because they needed a node or an edge beyond the limits. */
  overflow = 0;

  constructor(private readonly limits: MapLimits = { nodes: 5_000, edges: 20_000 }) {}
  /** Addresses → the DNS name they were resolved from (DNS answers seen in L7 flows), oldest out first. */
  private readonly names = new Map<string, string>();
  private readonly namesOf: NamesOf = (ip) => this.names.get(ip);

  get size(): { nodes: number; edges: number } {
    return { nodes: this.nodes.size, edges: this.edges.size };
  }

  /** Whether the flow's nodes and edge are known, or there is room for them (MapLimits). */
  private fits(place: FlowPlace): boolean {
    const newNodes = [place.source.id, place.destination.id].filter((id) => !this.nodes.has(id)).length;
    if (this.nodes.size + newNodes > this.limits.nodes) return false;
    return !place.edge || this.edges.has(place.edge) || this.edges.size < this.limits.edges;
  }

  namespaces(): string[] {
    return [...this.namespaceSet].sort();
  }

  node(id: string): MapNode | undefined {
    return this.nodes.get(id);
  }

  edge(id: string): MapEdge | undefined {
    return this.edges.get(id);
  }

  /** Aggregates one flow; returns where it landed (the ids its table row can be filtered by). */
  add(f: UiFlow): FlowPlace {
    this.learnNames(f);
    const place = placeFlow(f, this.namesOf);
    if (f.Type === 'SOCK') return place;
    if (!this.fits(place)) {
      this.overflow++;
      return place;
    }
    const v = ++this.version;
    this.touch(place.source, f.source, v);
    this.touch(place.destination, f.destination, v);
    if (place.edge) this.count(place, f, v);
    const code = f.l7?.http?.code;
    const request = place.replyTo !== undefined ? this.edges.get(place.replyTo) : undefined;
    if (request && code) {
      bump(request.httpCodes, String(code), MAX_L7_KEYS);
      request.version = v;
    }
    return place;
  }

  /** A DNS answer (an L7 DNS flow with addresses) names those addresses from now on. */
  private learnNames(f: UiFlow): void {
    const dns = f.l7?.dns;
    if (!dns?.query || !dns.ips?.length) return;
    const name = dns.query.replace(/\.$/, '');
    for (const ip of dns.ips) {
      this.names.delete(ip);
      this.names.set(ip, name);
    }
    while (this.names.size > MAX_NAMES) this.names.delete(this.names.keys().next().value!);
  }

  private touch(ref: NodeRef, ep: Endpoint | undefined, v: number): void {
    let n = this.nodes.get(ref.id);
    if (!n) {
      n = { id: ref.id, name: ref.name, kind: ref.kind, labels: [], pods: [], flows: 0, version: v };
      if (ref.namespace !== undefined) {
        n.namespace = ref.namespace;
        this.namespaceSet.add(ref.namespace);
      }
      if (ref.dnsName !== undefined) n.dnsName = ref.dnsName;
      this.nodes.set(ref.id, n);
    }
    n.flows++;
    n.version = v;
    if (ep?.identity !== undefined) n.identity = ep.identity;
    if (ep?.labels && ep.labels.length > 0) n.labels = ep.labels;
    const pod = ep?.pod_name;
    if (pod && n.pods.length < MAX_PODS && !n.pods.includes(pod)) n.pods.push(pod);
  }

  private count(place: FlowPlace, f: UiFlow, v: number): void {
    const id = place.edge!;
    let e = this.edges.get(id);
    if (!e) {
      const l4 = l4Of(f)!;
      e = {
        id,
        source: place.source.id,
        target: place.destination.id,
        protocol: l4.protocol,
        port: l4.port,
        flows: 0,
        forwarded: 0,
        dropped: 0,
        other: 0,
        transit: 0,
        verdict: 'other',
        dropReasons: {},
        http: {},
        httpDropped: {},
        httpCodes: {},
        lastSeen: f.time,
        version: v,
      };
      this.edges.set(id, e);
    }
    e.flows++;
    if (f.verdict === 'FORWARDED') {
      if (delivered(f, place.destination)) e.forwarded++;
      else e.transit++;
    } else if (f.verdict === 'DROPPED') {
      e.dropped++;
      bump(e.dropReasons, dropReason(f), MAX_L7_KEYS);
    } else e.other++;
    e.verdict = edgeVerdict(e);
    const http = f.l7?.http;
    if (http?.method && !http.code) {
      const key = `${http.method} ${http.url ? pathOf(http.url) : '/'}`;
      bump(e.http, key, MAX_L7_KEYS);
      if (f.verdict === 'DROPPED') bump(e.httpDropped, key, MAX_L7_KEYS);
    }
    if (f.time > e.lastSeen) e.lastSeen = f.time;
    e.version = v;
  }

  /**
   * The map of one namespace (every namespace when `namespace` is ''): its workloads, the edges
   * from or to them, and the nodes at the other end of those edges. With `since`, only the items
   * changed after that version (a delta to merge into a view read before).
   */
  view(namespace: string, since = 0): MapView {
    const nodes = new Map<string, MapNode>();
    const edges: MapEdge[] = [];
    const inNs = (id: string) => namespace === '' || this.nodes.get(id)?.namespace === namespace;
    for (const e of this.edges.values()) {
      if (!inNs(e.source) && !inNs(e.target)) continue;
      if (e.version > since) edges.push(e);
      for (const id of [e.source, e.target]) {
        const n = this.nodes.get(id)!;
        if (n.version > since) nodes.set(id, n);
      }
    }
    for (const n of this.nodes.values()) {
      if (n.version > since && n.kind === 'workload' && inNs(n.id)) nodes.set(n.id, n);
    }
    return { version: this.version, namespace, nodes: [...nodes.values()], edges };
  }
}
