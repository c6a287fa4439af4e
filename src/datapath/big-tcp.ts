/**
 * IPv4 BIG TCP (upstream's --enable-ipv4-big-tcp): pods' TCP builds GSO packets of up to 192 KiB
 * instead of 64 KiB, and each of them crosses the stack and the datapath's programs once. A socket
 * takes its limit from its route's device (the pod's eth0); every device such a packet leaves
 * through must take it too, or the kernel segments it there (correct, but the gain is gone). So:
 * the node's devices get the limit at the agent's start (as large as their hardware limit,
 * tso_max_size, allows: less than 64 KiB + 1 leaves BIG TCP off), pods' veth pairs when they are
 * made. Native routing only: this kernel's VXLAN device takes 64 KiB packets at most.
 */
import { ifindexIn, RtNetlink } from './linux/rtnetlink.js';

/** Upstream's BIG TCP packet size. */
export const BIG_TCP_MAX_SIZE = 196_608;
/** The kernel's limit without BIG TCP (GSO_LEGACY_MAX_SIZE). */
export const LEGACY_GSO_MAX_SIZE = 65_536;

/**
 * Gives `devices` (in `netns`, default this thread's) the largest IPv4 GSO / GRO limit up to
 * BIG_TCP_MAX_SIZE that all of them can send; returns it, or undefined when one of them cannot
 * exceed 64 KiB (nothing changed) or the kernel has no IPv4 BIG TCP.
 */
export function setupBigTcpIpv4(devices: readonly string[], netns?: string): number | undefined {
  const nl = RtNetlink.open(netns);
  try {
    const links = devices.map((name) => ({ name, ifindex: ifindexIn(name, netns) }));
    let size = BIG_TCP_MAX_SIZE;
    for (const l of links) size = Math.min(size, nl.linkGsoLimits(l.ifindex, l.name).tsoMaxSize);
    if (size <= LEGACY_GSO_MAX_SIZE) return undefined;
    for (const l of links) nl.linkSetBigTcpIpv4(l.ifindex, size, l.name);
    // a kernel before 6.3 ignores the IPv4 limits it does not know: read them back
    for (const l of links) if (nl.linkGsoLimits(l.ifindex, l.name).gsoIpv4MaxSize !== size) return undefined;
    return size;
  } finally {
    nl.close();
  }
}

/** A device by name, in a namespace (a path) or, without one, in this thread's. */
export type NetnsDevice = readonly [netns: string | undefined, device: string];

/** Sets the IPv4 GSO / GRO limit of each device to `size` as it is, without probing (benches, tests). */
export function setIpv4GsoLimit(devices: readonly NetnsDevice[], size: number): void {
  for (const [netns, dev] of devices) {
    const nl = RtNetlink.open(netns);
    try {
      nl.linkSetBigTcpIpv4(ifindexIn(dev, netns), size, dev);
    } finally {
      nl.close();
    }
  }
}

/** A device's GSO limits as the kernel reports them (see RtNetlink.linkGsoLimits). */
export function gsoLimits(...[netns, dev]: NetnsDevice): ReturnType<RtNetlink['linkGsoLimits']> {
  const nl = RtNetlink.open(netns);
  try {
    return nl.linkGsoLimits(ifindexIn(dev, netns), dev);
  } finally {
    nl.close();
  }
}
