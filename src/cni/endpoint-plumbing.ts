/**
 * Endpoint plumbing, run by the agent for CNI ADD/DEL/CHECK: a veth pair between the node namespace
 * and the pod namespace, pod addresses (/32, /128) with an on-link route to the router and a default
 * route via it, and host routes to the pod, through rtnetlink (datapath/linux/rtnetlink.ts); the
 * rest (teardown, CHECK, the node router) through `ip -batch`.
 *
 * Neighbour entries are static on both sides (pod: router IP → host veth MAC; node: pod IP → pod MAC),
 * so the pod reaches its router before any datapath program answers ARP/NDP, and IPv6 needs no DAD or
 * neighbour discovery on the veth.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CiliumTsError } from '../common/errors.js';
import { LinuxCommandError } from '../datapath/linux/errors.js';
import {
  type AddrInfo,
  cmd,
  type IpCommand,
  ipBatch,
  isValidIfName,
  type LinkAddrs,
  type LinkInfo,
  type RouteInfo,
} from '../datapath/linux/ip.js';
import { ifindexIn, NetlinkError, RtNetlink, withNetnsFd } from '../datapath/linux/rtnetlink.js';
import { withNetns } from '../ebpf/index.js';

export interface EndpointAddress {
  /** Pod address (bare), e.g. "10.200.0.5". */
  ip: string;
  /** The node's router IP for this family, e.g. "10.200.0.1". */
  router: string;
}

export interface EndpointPlumbingSpec {
  /** Node namespace path; undefined = the caller's own namespace. */
  nodeNetns?: string | undefined;
  /** Pod namespace path (CNI_NETNS). */
  podNetns: string;
  /** Interface name inside the pod (CNI_IFNAME). */
  ifName: string;
  /** Host-side veth name (see hostVethName). */
  hostIfName: string;
  ipv4?: EndpointAddress | undefined;
  ipv6?: EndpointAddress | undefined;
  mtu?: number | undefined;
  /** IPv4 BIG TCP: both ends take IPv4 GSO/GRO packets of this size (bytes; default 64 KiB). */
  bigTcpIpv4?: number | undefined;
  /** MACs; random locally administered addresses by default. */
  hostMac?: string | undefined;
  podMac?: string | undefined;
  /** Set rp_filter=0 on the host veth (default true). */
  disableRpFilter?: boolean;
  /** Called once both sides are configured, with the host veth's ifindex. */
  onHostLink?: (ifindex: number) => void;
}

export interface EndpointPlumbingResult {
  hostIfName: string;
  hostIfindex: number;
  hostMac: string;
  podIfName: string;
  podIfindex: number;
  podMac: string;
  /** Wall time of each phase in milliseconds. */
  timings: { nodeMs: number; podMs: number; totalMs: number };
}

/** The endpoint's state differs from what was configured (CHECK). */
export class EndpointCheckError extends CiliumTsError {
  override readonly name = 'EndpointCheckError';
  override readonly code = 'failed-precondition';
  constructor(
    /** What is wrong, e.g. "pod route default via 10.200.0.1". */
    override readonly field: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${field}: expected ${expected}, found ${actual}`);
  }
}

/** "lxc" + first 11 hex chars of sha256(containerId + ifName): 14 chars, stable per attachment. */
export function hostVethName(containerId: string, ifName: string): string {
  return `lxc${createHash('sha256').update(`${containerId}${ifName}`).digest('hex').slice(0, 11)}`;
}

/** A random unicast, locally administered MAC address. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function validate(spec: EndpointPlumbingSpec): void {
  if (!isValidIfName(spec.ifName))
    throw new TypeError(`invalid pod interface name ${JSON.stringify(spec.ifName)}`);
  if (!isValidIfName(spec.hostIfName))
    throw new TypeError(`invalid host interface name ${JSON.stringify(spec.hostIfName)}`);
  if (!spec.ipv4 && !spec.ipv6) throw new TypeError('endpoint needs an IPv4 and/or IPv6 address');
  if (!spec.podNetns.startsWith('/'))
    throw new TypeError(`pod netns must be a path, got ${JSON.stringify(spec.podNetns)}`);
}

/** Node side: the veth pair (its peer created in the pod's namespace), host end up, host routes and
 * neighbours to the pod. Returns the host end's ifindex. */
function nodeSide(spec: EndpointPlumbingSpec, hostMac: string, podMac: string): number {
  const nl = RtNetlink.open(spec.nodeNetns);
  try {
    withNetnsFd(spec.podNetns, (peerNetnsFd) =>
      nl.vethAdd({
        name: spec.hostIfName,
        mac: hostMac,
        peer: spec.ifName,
        peerMac: podMac,
        peerNetnsFd,
        mtu: spec.mtu,
        bigTcpIpv4: spec.bigTcpIpv4,
      }),
    );
    const h = ifindexIn(spec.hostIfName, spec.nodeNetns);
    nl.linkUp(h, spec.hostIfName);
    for (const [a, bits] of [
      [spec.ipv4, 32],
      [spec.ipv6, 128],
    ] as const) {
      if (!a) continue;
      nl.routeReplace({ dst: a.ip, len: bits, ifindex: h });
      nl.neighReplace(h, a.ip, podMac);
    }
    return h;
  } finally {
    nl.close();
  }
}

/** Pod side: lo up, the /32 and /128 addresses, interface up, on-link route to the router, default
 * route via it, static neighbour for the router. Returns the pod interface's ifindex. */
function podSide(spec: EndpointPlumbingSpec, hostMac: string): number {
  const nl = RtNetlink.open(spec.podNetns);
  try {
    nl.linkUp(ifindexIn('lo', spec.podNetns), 'lo');
    const d = ifindexIn(spec.ifName, spec.podNetns);
    if (!d) throw new Error(`pod interface ${spec.ifName} missing after creation`);
    if (spec.ipv4) nl.addrReplace(d, spec.ipv4.ip, 32);
    if (spec.ipv6) nl.addrReplace(d, spec.ipv6.ip, 128);
    nl.linkUp(d, spec.ifName);
    for (const [a, bits, any] of [
      [spec.ipv4, 32, '0.0.0.0'],
      [spec.ipv6, 128, '::'],
    ] as const) {
      if (!a) continue;
      nl.routeReplace({ dst: a.router, len: bits, ifindex: d });
      nl.routeReplace({ dst: any, len: 0, ifindex: d, gateway: a.router });
      nl.neighReplace(d, a.router, hostMac);
    }
    return d;
  } finally {
    nl.close();
  }
}

/**
 * Create the endpoint's veth pair and configure both sides (rtnetlink, no `ip` process). If a host
 * veth of that name already exists (a retried ADD), it is replaced.
 */
export async function setupEndpoint(spec: EndpointPlumbingSpec): Promise<EndpointPlumbingResult> {
  validate(spec);
  const t0 = performance.now();
  const hostMac = spec.hostMac ?? randomMac();
  const podMac = spec.podMac ?? randomMac();
  let hostIfindex: number;
  try {
    hostIfindex = nodeSide(spec, hostMac, podMac);
  } catch (e) {
    // Leftover from an earlier attempt, or a step after the veth failed: remove the host veth (its
    // peer goes with it) and, for a leftover, try once more.
    await teardownEndpoint({ nodeNetns: spec.nodeNetns, hostIfName: spec.hostIfName }).catch(() => {});
    if (!(e instanceof NetlinkError && e.isExists)) throw e;
    try {
      hostIfindex = nodeSide(spec, hostMac, podMac);
    } catch (e2) {
      await teardownEndpoint({ nodeNetns: spec.nodeNetns, hostIfName: spec.hostIfName }).catch(() => {});
      throw e2;
    }
  }
  const t1 = performance.now();
  let podIfindex: number;
  try {
    podIfindex = podSide(spec, hostMac);
    // Synchronously, in the node's namespace (/proc/sys/net is the opener's): an async write would
    // queue behind the program verification on libuv's thread pool.
    if (spec.disableRpFilter !== false)
      withNetns(spec.nodeNetns, () =>
        writeFileSync(`/proc/sys/net/ipv4/conf/${spec.hostIfName}/rp_filter`, '0\n'),
      );
  } catch (e) {
    await teardownEndpoint({ nodeNetns: spec.nodeNetns, hostIfName: spec.hostIfName }).catch(() => {});
    throw e;
  }
  const t2 = performance.now();
  // Only now: a tcx attachment waits out its RCU grace period holding the rtnl lock, which every
  // request above needs.
  spec.onHostLink?.(hostIfindex);
  return {
    hostIfName: spec.hostIfName,
    hostIfindex,
    hostMac,
    podIfName: spec.ifName,
    podIfindex,
    podMac,
    timings: { nodeMs: round(t1 - t0), podMs: round(t2 - t1), totalMs: round(t2 - t0) },
  };
}

function lastLink(out: unknown[]): LinkInfo {
  const l = (out[out.length - 1] as LinkInfo[] | undefined)?.[0];
  if (!l) throw new Error('ip printed no link information');
  return l;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Delete the host veth (the pod end and the host routes go with it). False if it did not exist. */
export async function teardownEndpoint(p: {
  nodeNetns?: string | undefined;
  hostIfName: string;
}): Promise<boolean> {
  try {
    await ipBatch([cmd.linkDel(p.hostIfName)], { netns: p.nodeNetns });
    return true;
  } catch (e) {
    if (e instanceof LinuxCommandError && e.isNotFound) return false;
    throw e;
  }
}

function routeDst(r: RouteInfo): string {
  return r.dst;
}

/** Verify the endpoint is configured as `spec` says; throws EndpointCheckError naming the first difference. */
export async function checkEndpoint(spec: EndpointPlumbingSpec): Promise<void> {
  validate(spec);
  let nodeOut: unknown[];
  try {
    nodeOut = await ipBatch([cmd.linkShow(spec.hostIfName), cmd.routeShowAll(spec.hostIfName)], {
      netns: spec.nodeNetns,
      json: true,
    });
  } catch (e) {
    if (e instanceof LinuxCommandError && e.isNotFound)
      throw new EndpointCheckError(`host interface ${spec.hostIfName}`, 'present', 'missing');
    throw e;
  }
  const host = (nodeOut[0] as LinkInfo[])[0]!;
  if (!host.flags.includes('UP'))
    throw new EndpointCheckError(`host interface ${spec.hostIfName}`, 'UP', host.flags.join(','));
  if (spec.mtu && host.mtu !== spec.mtu)
    throw new EndpointCheckError(`host interface ${spec.hostIfName} mtu`, String(spec.mtu), String(host.mtu));
  const hostRoutes = (nodeOut[1] as RouteInfo[]).map(routeDst);
  for (const a of [spec.ipv4, spec.ipv6]) {
    if (a && !hostRoutes.includes(a.ip)) {
      throw new EndpointCheckError(
        `node route ${a.ip} dev ${spec.hostIfName}`,
        'present',
        hostRoutes.join(',') || 'none',
      );
    }
  }

  let podOut: unknown[];
  try {
    podOut = await ipBatch([cmd.addrShow(spec.ifName), cmd.routeShowAll(spec.ifName)], {
      netns: spec.podNetns,
      json: true,
    });
  } catch (e) {
    if (e instanceof LinuxCommandError && e.isNotFound) {
      throw new EndpointCheckError(`pod interface ${spec.ifName}`, 'present', `missing (${e.stderr})`);
    }
    throw e;
  }
  const link = (podOut[0] as LinkAddrs[])[0]!;
  if (!link.flags.includes('UP'))
    throw new EndpointCheckError(`pod interface ${spec.ifName}`, 'UP', link.flags.join(','));
  if (host.link_index !== undefined && host.link_index !== link.ifindex) {
    throw new EndpointCheckError(
      `pod interface ${spec.ifName}`,
      `peer of ${spec.hostIfName} (ifindex ${host.link_index})`,
      `ifindex ${link.ifindex}`,
    );
  }
  const addrs = link.addr_info.filter((x: AddrInfo) => x.scope === 'global');
  for (const [a, bits] of [
    [spec.ipv4, 32],
    [spec.ipv6, 128],
  ] as const) {
    if (!a) continue;
    if (!addrs.some((x) => x.local === a.ip && x.prefixlen === bits)) {
      throw new EndpointCheckError(
        `pod address on ${spec.ifName}`,
        `${a.ip}/${bits}`,
        addrs.map((x) => `${x.local}/${x.prefixlen}`).join(',') || 'none',
      );
    }
  }
  const routes = (podOut[1] as RouteInfo[]).filter((r) => !r.table || r.table === 'main');
  const show = () =>
    routes.map((r) => (r.gateway ? `${r.dst} via ${r.gateway}` : r.dst)).join(', ') || 'none';
  for (const a of [spec.ipv4, spec.ipv6]) {
    if (!a) continue;
    const v6 = a.ip.includes(':');
    if (!routes.some((r) => r.dst === a.router && !r.gateway && (v6 || r.scope === 'link'))) {
      throw new EndpointCheckError(`pod route ${a.router} dev ${spec.ifName} scope link`, 'present', show());
    }
    if (!routes.some((r) => r.dst === 'default' && r.gateway === a.router)) {
      throw new EndpointCheckError(`pod route default via ${a.router} dev ${spec.ifName}`, 'present', show());
    }
  }
}

/**
 * Node-side router device, as upstream does it: a veth pair cilium_host/cilium_net (the kernel may lack
 * the dummy driver), cilium_host holding the router IPs as /32 and /128 so the node answers pods'
 * traffic to their gateway. Idempotent.
 */
export async function setupNodeRouter(p: {
  nodeNetns?: string | undefined;
  device?: string;
  /** Peer of the router device (default cilium_net). */
  peerDevice?: string;
  ipv4Router?: string | undefined;
  ipv6Router?: string | undefined;
  mtu?: number | undefined;
}): Promise<LinkInfo> {
  const dev = p.device ?? 'cilium_host';
  const peer = p.peerDevice ?? 'cilium_net';
  const rest: IpCommand[] = [];
  if (p.ipv4Router) rest.push(cmd.addrAdd(dev, `${p.ipv4Router}/32`, { scope: 'global', replace: true }));
  if (p.ipv6Router)
    rest.push(cmd.addrAdd(dev, `${p.ipv6Router}/128`, { scope: 'global', nodad: true, replace: true }));
  rest.push(cmd.linkSet(peer, { up: true }), cmd.linkSet(dev, { up: true }), cmd.linkShow(dev));
  let out: unknown[];
  try {
    out = await ipBatch([cmd.vethAdd({ name: dev, peerName: peer, mtu: p.mtu }), ...rest], {
      netns: p.nodeNetns,
      json: true,
    });
  } catch (e) {
    if (!(e instanceof LinuxCommandError && e.isExists)) throw e;
    out = await ipBatch(rest, { netns: p.nodeNetns, json: true });
  }
  return lastLink(out);
}
