/**
 * What the API server allocates for a Service, done by the lab for its cluster: a ClusterIP from the
 * service CIDR, NodePorts from 30000-32767, and (in place of a cloud load balancer) a LoadBalancer
 * IP from a pool the world namespace routes to the nodes. Allocation follows the API server's rules:
 * a requested address or port is honoured unless it is taken or out of range (the error names the
 * field), dynamic picks prefer the upper part of the range so that the lower part stays free for
 * static requests (KEP-3070), and what a Service holds is kept when it is applied again. Pure.
 */
import { formatIp, parseIp, parsePrefix, prefixContains } from '../labels/cidr.js';
import { ServiceValidationError } from '../service/errors.js';
import { DEFAULT_NODE_PORT_RANGE, type Service, type ServicePort } from '../service/types.js';

export const SERVICE_CIDR = '10.96.0.0/16';
/** Kept for the cluster DNS service: never handed out dynamically. */
export const CLUSTER_DNS_IP = '10.96.0.10';
/** LoadBalancer IPs: routed from the world namespace to the nodes. */
export const LB_POOL = '192.168.210.0/24';
export const NODE_PORT_RANGE = DEFAULT_NODE_PORT_RANGE;

/** Uniform in [0, 1): injected so tests can pin the picks. */
export type Random = () => number;

interface Range {
  first: number;
  last: number;
}

function v4(s: string): number | undefined {
  const ip = parseIp(s);
  return ip?.family === 4 ? Number(ip.addr) : undefined;
}

function fmt(n: number): string {
  return formatIp(4, BigInt(n));
}

function cidrRange(cidr: string): Range {
  const p = parsePrefix(cidr);
  const first = Number(p.addr);
  return { first, last: first + 2 ** (32 - p.len) - 1 };
}

/**
 * KEP-3070's static band: the lowest min(max(16, size/16), limit) values of a range are handed out
 * only on request; dynamic allocation takes them only when the rest is full.
 */
function staticBandSize(size: number, limit: number): number {
  return Math.min(Math.max(16, Math.floor(size / 16)), limit);
}

/** A free value of [first, last], upper band first, from a random starting point. */
function pickFree(r: Range, band: number, used: (n: number) => boolean, random: Random): number | undefined {
  const scan = (lo: number, hi: number) => {
    const size = hi - lo + 1;
    if (size <= 0) return undefined;
    const start = Math.floor(random() * size);
    for (let i = 0; i < size; i++) {
      const n = lo + ((start + i) % size);
      if (!used(n)) return n;
    }
    return undefined;
  };
  return scan(r.first + band, r.last) ?? scan(r.first, r.first + band - 1);
}

/** Addresses, ports and pool IPs other Services hold (the one being applied left out). */
export interface Allocated {
  clusterIPs: Set<string>;
  nodePorts: Set<number>;
  lbIPs: Set<string>;
}

export function allocatedBy(services: readonly Service[]): Allocated {
  const a: Allocated = { clusterIPs: new Set(), nodePorts: new Set(), lbIPs: new Set() };
  for (const s of services) {
    for (const ip of s.spec.clusterIPs ?? []) if (ip !== 'None') a.clusterIPs.add(ip);
    for (const p of s.spec.ports) if (p.nodePort) a.nodePorts.add(p.nodePort);
    for (const i of s.status?.loadBalancer?.ingress ?? []) a.lbIPs.add(i.ip);
  }
  return a;
}

/** The port of `held` that `p` continues (same name and protocol, or same number and protocol). */
function heldPort(held: Service | undefined, p: ServicePort): ServicePort | undefined {
  const ports = held?.spec.ports ?? [];
  return (
    ports.find((h) => h.name === p.name && h.protocol === p.protocol) ??
    ports.find((h) => h.port === p.port && h.protocol === p.protocol)
  );
}

/**
 * Fills in the ClusterIP, NodePorts and LoadBalancer status of a validated Service. `held` is the
 * Service as the lab stores it when this is an update; `others` every other Service of the lab.
 * Throws ServiceValidationError naming the field when a request cannot be met.
 */
export function allocateService(
  svc: Service,
  held: Service | undefined,
  others: readonly Service[],
  random: Random = Math.random,
): Service {
  const what = `Service ${svc.metadata.namespace}/${svc.metadata.name}`;
  const fail = (path: string, message: string): never => {
    throw new ServiceValidationError(what, [{ path, message }]);
  };
  const taken = allocatedBy(others);
  const spec = structuredClone(svc.spec);

  // IP families: the lab's Services are IPv4-only.
  spec.ipFamilies?.forEach((f, i) => {
    if (f !== 'IPv4')
      fail(`spec.ipFamilies[${i}]`, `Unsupported value: "${f}": the lab's Services are IPv4-only`);
  });
  if (spec.ipFamilyPolicy === 'RequireDualStack')
    fail('spec.ipFamilyPolicy', 'Invalid value: "RequireDualStack": the lab\'s Services are IPv4-only');
  spec.ipFamilies = ['IPv4'];
  spec.ipFamilyPolicy ??= 'SingleStack';

  // ClusterIP: immutable once allocated; requested ones must be free and inside the service CIDR.
  const heldIP = held?.spec.clusterIP;
  const field = 'spec.clusterIP';
  if (spec.clusterIP !== undefined && heldIP !== undefined && spec.clusterIP !== heldIP)
    fail(field, `Invalid value: "${spec.clusterIP}": field is immutable`);
  let clusterIP = spec.clusterIP ?? heldIP;
  if (clusterIP === undefined) {
    const r = cidrRange(SERVICE_CIDR);
    const usable = { first: r.first + 1, last: r.last - 1 };
    const dns = v4(CLUSTER_DNS_IP);
    const n = pickFree(
      usable,
      staticBandSize(r.last - r.first + 1, 256),
      (x) => x === dns || taken.clusterIPs.has(fmt(x)),
      random,
    );
    if (n === undefined) fail(field, `Internal error: the service CIDR ${SERVICE_CIDR} is full`);
    clusterIP = fmt(n!);
  } else if (clusterIP !== 'None' && clusterIP !== heldIP) {
    const n = v4(clusterIP);
    const r = cidrRange(SERVICE_CIDR);
    if (n === undefined || n <= r.first || n >= r.last)
      fail(
        field,
        `Invalid value: "${clusterIP}": failed to allocate IP ${clusterIP}: the provided IP (${clusterIP}) is not in the valid range. The range of valid IPs is ${SERVICE_CIDR}`,
      );
    if (taken.clusterIPs.has(clusterIP))
      fail(
        field,
        `Invalid value: "${clusterIP}": failed to allocate IP ${clusterIP}: provided IP is already allocated`,
      );
  }
  spec.clusterIP = clusterIP;
  spec.clusterIPs = [clusterIP!];

  // NodePorts: for NodePort services and LoadBalancers that want them.
  const wantsNodePorts =
    spec.type === 'NodePort' ||
    (spec.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
  const mine = new Map<number, string>(); // nodePort → protocols taken within this service
  spec.ports.forEach((p, i) => {
    if (!wantsNodePorts) {
      delete p.nodePort;
      return;
    }
    const path = `spec.ports[${i}].nodePort`;
    if (p.nodePort !== undefined) {
      if (taken.nodePorts.has(p.nodePort))
        fail(path, `Invalid value: ${p.nodePort}: provided port is already allocated`);
    } else {
      const h = heldPort(held, p)?.nodePort;
      if (h !== undefined && !taken.nodePorts.has(h) && !mine.get(h)?.includes(p.protocol)) p.nodePort = h;
    }
    if (p.nodePort === undefined) {
      const range = { first: NODE_PORT_RANGE.min, last: NODE_PORT_RANGE.max };
      const n = pickFree(
        range,
        staticBandSize(range.last - range.first + 1, 128),
        (x) => taken.nodePorts.has(x) || mine.has(x),
        random,
      );
      if (n === undefined)
        fail(path, `Internal error: no free port in the NodePort range ${range.first}-${range.last}`);
      p.nodePort = n!;
    }
    mine.set(p.nodePort, `${mine.get(p.nodePort) ?? ''}${p.protocol},`);
  });

  // LoadBalancer IP: the requested one, else the one held, else the lowest free address of the pool.
  const status: Service['status'] = { loadBalancer: {} };
  if (spec.type === 'LoadBalancer') {
    const pool = parsePrefix(LB_POOL);
    const r = cidrRange(LB_POOL);
    const heldLb = held?.status?.loadBalancer?.ingress?.[0]?.ip;
    let ip = spec.loadBalancerIP;
    if (ip !== undefined) {
      if (!prefixContains(pool, parsePrefix(ip)) || v4(ip) === r.first || v4(ip) === r.last)
        fail('spec.loadBalancerIP', `Invalid value: "${ip}": not in the lab's LoadBalancer pool ${LB_POOL}`);
      if (taken.lbIPs.has(ip))
        fail('spec.loadBalancerIP', `Invalid value: "${ip}": already assigned to another service`);
    } else if (heldLb !== undefined && !taken.lbIPs.has(heldLb)) ip = heldLb;
    else {
      for (let n = r.first + 1; n < r.last && ip === undefined; n++)
        if (!taken.lbIPs.has(fmt(n))) ip = fmt(n);
    }
    // A full pool leaves the service pending, as a cloud without capacity would.
    if (ip !== undefined) status.loadBalancer = { ingress: [{ ip, ipMode: 'VIP' }] };
  }
  return { ...svc, spec, status };
}
