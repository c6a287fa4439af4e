/**
 * From a Service, its EndpointSlices and the node's context, the load-balancer frontends this node
 * programs, each with its flags, scope and backends in slot order, as upstream computes them
 * (pkg/loadbalancer: convertService, shouldUseLocalBackends, NewSvcFlag, the BPF reconciler's
 * slot layout). No numbering here: rev-NAT and backend IDs are node-local and given out by
 * lbstate.ts. Pure.
 *
 * Frontends per type:
 *  - ClusterIP: every cluster IP × port, scope external only (internalTrafficPolicy=Local keeps
 *    node-local backends in it). Not routable unless `externalClusterIP`.
 *  - NodePort (also for LoadBalancer services with node ports): a wildcard `0.0.0.0:nodePort`
 *    (`[::]` for IPv6) per IP family of the service (the surrogate socket-LB looks up for
 *    loopback/host addresses; not routable, no Maglev), plus `<nodeIP>:nodePort` per node address.
 *  - LoadBalancer: every `status.loadBalancer.ingress` IP × port.
 *  - externalIPs: every external IP × port.
 * NodePort, LoadBalancer and external-IP frontends get a second, internal-scope entry when exactly
 * one of externalTrafficPolicy / internalTrafficPolicy is Local (flag TWO_SCOPES): the external entry
 * serves traffic from outside, the internal one traffic from inside the cluster.
 */
import { getOrInsert } from '../common/collections.js';
import { formatPrefix, type IpFamily, parseIp, parsePrefix } from '../labels/cidr.js';
import { BACKEND_STATE, type BackendState, type LbAlgorithm, type LbScope, SVC_FLAG } from './flags.js';
import { canonicalIp, ipv4Value } from './ip.js';
import {
  affinityTimeoutSeconds,
  type EndpointSlice,
  type Protocol,
  type Service,
  serviceKey,
} from './types.js';

export type FrontendType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalIPs';

/** What the node is: its name (to tell local backends) and the addresses NodePorts open on. */
export interface NodeContext {
  readonly nodeName: string;
  /** Node addresses for NodePort frontends (IPv4 and/or IPv6). */
  readonly nodeIPs: readonly string[];
}

/** Agent-wide load-balancer settings (upstream's names in brackets). */
export interface LbConfig {
  /** Default backend selection [bpf-lb-algorithm]: random (default) or maglev. */
  readonly algorithm?: LbAlgorithm;
  /** ClusterIPs reachable from outside the cluster, so routable and Maglev-backed [bpf-lb-external-clusterip]. */
  readonly externalClusterIP?: boolean;
}

/** A backend as a frontend uses it. */
export interface BackendSpec {
  /** `10.0.1.5:8080/TCP`, `[fd00::5]:8080/UDP`: the backend's identity across services. */
  readonly key: string;
  readonly address: string;
  readonly family: IpFamily;
  readonly port: number;
  readonly protocol: Protocol;
  readonly state: BackendState;
  readonly nodeName?: string;
  /** Runs on this node. */
  readonly local: boolean;
  readonly zone?: string;
}

export interface FrontendSpec {
  /** `10.96.0.10:80/TCP`, `[fd00::a]:53/UDP`, internal scope with `/i`: unique per map entry set. */
  readonly key: string;
  /** `namespace/name` of the service. */
  readonly service: string;
  readonly portName: string;
  /** The service port (the frontend's own port differs for NodePorts). */
  readonly servicePort: number;
  readonly type: FrontendType;
  readonly address: string;
  readonly family: IpFamily;
  readonly port: number;
  readonly protocol: Protocol;
  readonly scope: LbScope;
  /** Upstream's u16 ServiceFlags (flags | flags2 << 8), see SVC_FLAG. */
  readonly flags: number;
  /** Backends that get a slot, in slot order: slot = index + 1. */
  readonly backends: readonly BackendSpec[];
  /** Backends selection picks from (slots 1..count): the active ones, or the terminating ones if none is active. */
  readonly count: number;
  /** The other slotted backends (terminating while some are active, quarantined). */
  readonly qcount: number;
  /** ClientIP affinity timeout in seconds, 0 without affinity. */
  readonly affinityTimeout: number;
  readonly algorithm: LbAlgorithm;
  /** A Maglev table is provisioned (Maglev selected, not a wildcard, and some backend to pick). */
  readonly maglev: boolean;
  /** The loadBalancerSourceRanges of this frontend's family, canonical (`192.0.2.0/24`). */
  readonly sourceRanges: readonly string[];
}

const FAMILY_OF_NAME = { IPv4: 4, IPv6: 6 } as const;

/** `10.0.0.1:80/TCP`, `[fd00::1]:80/TCP`, with `/i` for the internal scope (upstream's L3n4Addr text). */
export function l3n4Key(
  address: string,
  family: IpFamily,
  port: number,
  protocol: string,
  scope?: LbScope,
): string {
  const host = family === 6 ? `[${address}]` : address;
  return `${host}:${port}/${protocol}${scope === 'internal' ? '/i' : ''}`;
}

/** Backends of a service port: address, port, protocol, state and where it runs. */
interface EndpointBackend extends BackendSpec {
  /** The address as a number (IPv4) or bigint (IPv6), for slot order. */
  readonly value: number | bigint;
}

/**
 * The state of an endpoint for load-balancing, as upstream reads the slice conditions: not ready
 * (ready=false) is skipped unless it is serving and terminating; ready (true or unknown) is active
 * unless terminating.
 */
export function endpointState(c: {
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}): BackendState | undefined {
  if (c.ready === false) return c.serving === true && c.terminating === true ? 'terminating' : undefined;
  return c.terminating === true ? 'terminating' : 'active';
}

type PortBackends = Map<string, EndpointBackend[]>;

/** Per slice (slices are immutable once parsed): its backends per port, for the node they were computed for. */
const sliceCache = new WeakMap<EndpointSlice, { nodeName: string; byPort: PortBackends }>();

/**
 * The backends of one slice per port `name/protocol` (a backend listed twice keeps its most usable
 * state). Cached: a service recomputed for another reason does not parse its slices again.
 */
function sliceBackends(slice: EndpointSlice, nodeName: string): PortBackends {
  const hit = sliceCache.get(slice);
  if (hit && hit.nodeName === nodeName) return hit.byPort;
  const byPort: PortBackends = new Map();
  for (const sp of slice.ports) {
    if (sp.port === undefined) continue; // "all ports": not something a service port can map to
    const m = new Map<string, EndpointBackend>();
    const what = () => `EndpointSlice ${slice.metadata.namespace}/${slice.metadata.name}`;
    // l3n4Key of each address, the port part built once: `:8080/TCP`.
    const portPart = l3n4Key('', 4, sp.port, sp.protocol);
    for (const ep of slice.endpoints) {
      const state = endpointState(ep.conditions);
      if (state === undefined) continue;
      for (const a of ep.addresses) {
        // IPv4 (nearly every address) without the canonical form's object: already canonical.
        const v4 = ipv4Value(a);
        const ip = v4 === undefined ? canonicalIp(a, what) : undefined;
        const address = ip?.address ?? a;
        const family = ip?.family ?? 4;
        const key = family === 4 ? address + portPart : `[${address}]${portPart}`;
        const prev = m.get(key);
        if (prev && BACKEND_STATE[prev.state] <= BACKEND_STATE[state]) continue;
        const be: { -readonly [K in keyof EndpointBackend]: EndpointBackend[K] } = {
          key,
          address,
          family,
          value: ip?.value ?? v4!,
          port: sp.port,
          protocol: sp.protocol,
          state,
          local: ep.nodeName !== undefined && ep.nodeName === nodeName,
        };
        if (ep.nodeName !== undefined) be.nodeName = ep.nodeName;
        if (ep.zone !== undefined) be.zone = ep.zone;
        m.set(key, be);
      }
    }
    byPort.set(`${sp.name}/${sp.protocol}`, [...m.values()]);
  }
  sliceCache.set(slice, { nodeName, byPort });
  return byPort;
}

/** The backends of every service port (`name/protocol`), merged over the service's slices. */
function endpointBackends(slices: readonly EndpointSlice[], nodeName: string): PortBackends {
  if (slices.length === 1) return sliceBackends(slices[0]!, nodeName);
  const merged = new Map<string, Map<string, EndpointBackend>>();
  for (const slice of slices)
    for (const [portKey, list] of sliceBackends(slice, nodeName)) {
      const m = getOrInsert(merged, portKey, () => new Map<string, EndpointBackend>());
      for (const be of list) {
        const prev = m.get(be.key);
        if (!prev || BACKEND_STATE[be.state] < BACKEND_STATE[prev.state]) m.set(be.key, be);
      }
    }
  const out: PortBackends = new Map();
  for (const [k, m] of merged) out.set(k, [...m.values()]);
  return out;
}

/** Slot order: by state (active first), then address, then port (the BPF reconciler's order). */
function slotOrder(a: EndpointBackend, b: EndpointBackend): number {
  const s = BACKEND_STATE[a.state] - BACKEND_STATE[b.state];
  if (s !== 0) return s;
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  return a.port - b.port;
}

/** Already in slot order (slices usually list their endpoints so): no sort, which copies the list. */
function inOrder(list: readonly EndpointBackend[]): boolean {
  for (let i = 1; i < list.length; i++) if (slotOrder(list[i - 1]!, list[i]!) > 0) return false;
  return true;
}

/** The families a service's NodePorts open on: spec.ipFamilies, else those of its cluster IPs. */
function serviceFamilies(svc: Service): IpFamily[] {
  if (svc.spec.ipFamilies && svc.spec.ipFamilies.length > 0)
    return svc.spec.ipFamilies.map((f) => FAMILY_OF_NAME[f]);
  const ips = svc.spec.clusterIPs ?? (svc.spec.clusterIP ? [svc.spec.clusterIP] : []);
  const out: IpFamily[] = [];
  for (const ip of ips) {
    const f = parseIp(ip)?.family;
    if (f !== undefined && !out.includes(f)) out.push(f);
  }
  return out;
}

interface FrontendDraft {
  type: FrontendType;
  address: string;
  family: IpFamily;
  port: number;
  protocol: Protocol;
  scope: LbScope;
  portName: string;
  servicePort: number;
  wildcard: boolean;
}

/**
 * The frontends of one service on this node, in a stable order. A headless service has none; parts
 * not allocated yet (no cluster IP, no node port, no ingress IP) have none either.
 */
export function serviceFrontends(
  svc: Service,
  slices: readonly EndpointSlice[],
  node: NodeContext,
  config: LbConfig = {},
): FrontendSpec[] {
  const spec = svc.spec;
  if (spec.clusterIP === 'None') return [];
  const extLocal = spec.externalTrafficPolicy === 'Local';
  const intLocal = spec.internalTrafficPolicy === 'Local';
  const scopes: LbScope[] = extLocal !== intLocal ? ['external', 'internal'] : ['external'];

  const drafts: FrontendDraft[] = [];
  const add = (
    type: FrontendType,
    ip: string,
    port: number,
    sp: (typeof spec.ports)[number],
    scope: LbScope,
    wildcard = false,
  ) => {
    const c = canonicalIp(ip, () => `Service ${serviceKey(svc)}`);
    drafts.push({
      type,
      address: c.address,
      family: c.family,
      port,
      protocol: sp.protocol,
      scope,
      portName: sp.name,
      servicePort: sp.port,
      wildcard,
    });
  };

  const clusterIPs = [...(spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []))].sort();
  for (const ip of clusterIPs) for (const sp of spec.ports) add('ClusterIP', ip, sp.port, sp, 'external');

  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') {
    const families = serviceFamilies(svc);
    const nodeIPs = node.nodeIPs.map((ip) => canonicalIp(ip, `node ${node.nodeName} address`));
    for (const scope of scopes)
      for (const family of families)
        for (const sp of spec.ports) {
          if (sp.nodePort === undefined) continue;
          add('NodePort', family === 4 ? '0.0.0.0' : '::', sp.nodePort, sp, scope, true);
          for (const nip of nodeIPs)
            if (nip.family === family) add('NodePort', nip.address, sp.nodePort, sp, scope);
        }
  }

  if (spec.type === 'LoadBalancer')
    for (const ing of svc.status?.loadBalancer?.ingress ?? [])
      for (const scope of scopes)
        for (const sp of spec.ports) add('LoadBalancer', ing.ip, sp.port, sp, scope);

  for (const ip of spec.externalIPs ?? [])
    for (const scope of scopes) for (const sp of spec.ports) add('ExternalIPs', ip, sp.port, sp, scope);

  const backendsByPort = endpointBackends(slices, node.nodeName);
  const affinity = affinityTimeoutSeconds(svc);
  const ranges = (spec.loadBalancerSourceRanges ?? []).map((r) => parsePrefix(r));
  const out: FrontendSpec[] = [];
  const service = serviceKey(svc);
  const seen = new Set<string>();
  for (const d of drafts) {
    const key = l3n4Key(d.address, d.family, d.port, d.protocol, d.scope);
    if (seen.has(key)) continue; // e.g. an external IP that is also the LoadBalancer IP
    seen.add(key);

    // Which backends: node-local ones for the scope a Local traffic policy governs.
    const etpApplies = d.type !== 'ClusterIP';
    const onlyLocal = d.scope === 'internal' || !etpApplies ? intLocal : extLocal;
    const all = backendsByPort.get(`${d.portName}/${d.protocol}`) ?? [];
    const slotted = all.filter(
      (b) => b.family === d.family && b.state !== 'maintenance' && (!onlyLocal || b.local),
    );
    if (!inOrder(slotted)) slotted.sort(slotOrder);
    let active = 0;
    let terminating = 0;
    let quarantined = 0;
    for (const b of slotted) {
      if (b.state === 'active') active++;
      else if (b.state === 'terminating') terminating++;
      else quarantined++;
    }
    // KEP-1669: with no active backend, the terminating ones (slotted right after) serve.
    const count = active > 0 ? active : terminating;
    const qcount = active > 0 ? terminating + quarantined : quarantined;

    const routable = !d.wildcard && (d.type !== 'ClusterIP' || config.externalClusterIP === true);
    const useMaglev =
      config.algorithm === 'maglev' &&
      !d.wildcard &&
      (d.type !== 'ClusterIP' || config.externalClusterIP === true);
    const checkSourceRange = d.type === 'LoadBalancer' && ranges.length > 0;

    let flags = 0;
    if (d.type === 'ExternalIPs') flags |= SVC_FLAG.EXTERNAL_IP;
    else if (d.type === 'NodePort') flags |= SVC_FLAG.NODEPORT;
    else if (d.type === 'LoadBalancer') flags |= SVC_FLAG.LOADBALANCER;
    if (extLocal) flags |= SVC_FLAG.EXT_LOCAL_SCOPE;
    if (intLocal) flags |= SVC_FLAG.INT_LOCAL_SCOPE;
    if (affinity > 0) flags |= SVC_FLAG.AFFINITY;
    if (routable) flags |= SVC_FLAG.ROUTABLE;
    if (checkSourceRange) flags |= SVC_FLAG.SOURCE_RANGE;
    if (extLocal !== intLocal && d.type !== 'ClusterIP') flags |= SVC_FLAG.TWO_SCOPES;

    out.push({
      key,
      service,
      portName: d.portName,
      servicePort: d.servicePort,
      type: d.type,
      address: d.address,
      family: d.family,
      port: d.port,
      protocol: d.protocol,
      scope: d.scope,
      flags,
      // The slot-order value stays on the objects (cached per slice, shared): no copy per frontend.
      backends: slotted,
      count,
      qcount,
      affinityTimeout: affinity,
      algorithm: useMaglev ? 'maglev' : 'random',
      maglev: useMaglev && count > 0,
      sourceRanges: checkSourceRange ? ranges.filter((r) => r.family === d.family).map(formatPrefix) : [],
    });
  }
  return out;
}
