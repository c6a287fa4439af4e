/**
 * rtnetlink requests for the endpoint plumbing on CNI ADD: a veth pair whose peer goes straight into
 * the pod's namespace, links up, addresses, routes and static neighbours; and the tc (clsact +
 * cls_bpf) hooks the endpoint loader can attach programs with. Each request is one message on a
 * NETLINK_ROUTE socket opened inside the namespace it changes (the kernel does the work within send
 * and queues the acknowledgement before send returns), so an ADD starts no `ip` or `tc` process.
 */
import { closeSync, openSync } from 'node:fs';
import koffi from 'koffi';
import { withNetns } from '../../ebpf/index.js';
import { parseIp, parseMac } from '../maps/addr.js';

const libc = koffi.load('libc.so.6');
const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const sendFn = libc.func('long send(int fd, void *buf, size_t len, int flags)');
const recvFn = libc.func('long recv(int fd, _Out_ void *buf, size_t len, int flags)');
const closeFn = libc.func('int close(int fd)');
const ifNameToIndex = libc.func('unsigned int if_nametoindex(const char *ifname)');

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const AF_INET = 2;
const AF_INET6 = 10;

const RTM_NEWLINK = 16;
const RTM_NEWADDR = 20;
const RTM_NEWROUTE = 24;
const RTM_NEWNEIGH = 28;
const RTM_NEWQDISC = 36;
const RTM_NEWTFILTER = 44;
const RTM_DELTFILTER = 45;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_REPLACE = 0x100;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_TSO_MAX_SIZE = 59;
/** IPv4 BIG TCP (kernel >= 6.3): the largest IPv4 GSO packet a device builds, GRO packet it makes. */
const IFLA_GSO_IPV4_MAX_SIZE = 63;
const IFLA_GRO_IPV4_MAX_SIZE = 64;
const RTM_GETLINK = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFF_UP = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_F_NODAD = 0x02;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NUD_PERMANENT = 0x80;
const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_FD = 6;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_FLAG_ACT_DIRECT = 1;
/** clsact's handle and parent; its ingress and egress hooks (TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_*)). */
const TC_H_CLSACT = 0xfffffff1;
const TC_H_CLSACT_HANDLE = 0xffff0000;
const TC_H_MIN_INGRESS = 0xfffffff2;
const TC_H_MIN_EGRESS = 0xfffffff3;
const ETH_P_ALL_BE = 0x0300; // htons(ETH_P_ALL)

/** A request the kernel refused; `errno` as the kernel gave it (17 EEXIST, 19 ENODEV, ...). */
export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  constructor(
    readonly what: string,
    readonly errno: number,
  ) {
    super(`${what}: errno ${errno}`);
  }
  get isExists(): boolean {
    return this.errno === 17;
  }
}

/** One netlink attribute: type and payload (nested attributes are payloads built with attrs()). */
type Attr = [type: number, payload: Buffer];

function attrs(list: readonly Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const [type, payload] of list) {
    const len = 4 + payload.length;
    const b = Buffer.alloc((len + 3) & ~3);
    b.writeUInt16LE(len, 0);
    b.writeUInt16LE(type, 2);
    payload.copy(b, 4);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

const str = (s: string) => Buffer.from(`${s}\0`);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const macBytes = (mac: string) => Buffer.from(parseMac(mac));
const ipBytes = (ip: string) => Buffer.from(parseIp(ip).bytes);
const family = (ip: string) => (ip.includes(':') ? AF_INET6 : AF_INET);

function tcmsg(ifindex: number, handle: number, parent: number, info = 0): Buffer {
  const b = Buffer.alloc(20);
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(handle >>> 0, 8);
  b.writeUInt32LE(parent >>> 0, 12);
  b.writeUInt32LE(info >>> 0, 16);
  return b;
}

/** Priority and handle of the one cls_bpf filter an endpoint has per direction. */
const TC_FILTER_PRIO = 1;
const TC_FILTER_HANDLE = 1;

const bigTcpIpv4Attrs = (size: number): Attr[] => [
  [IFLA_GSO_IPV4_MAX_SIZE, u32(size)],
  [IFLA_GRO_IPV4_MAX_SIZE, u32(size)],
];

function ifinfomsg(index: number, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

/** A NETLINK_ROUTE socket in the namespace it was opened in. */
export class RtNetlink {
  #seq = 0;
  private constructor(private readonly fd: number) {}

  /** Opens the socket inside `netns` (a path), or in this thread's namespace. */
  static open(netns?: string): RtNetlink {
    const fd = withNetns(netns, () => socketFn(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE) as number);
    if (fd < 0) throw new NetlinkError('netlink socket', koffi.errno());
    return new RtNetlink(fd);
  }

  close(): void {
    closeFn(this.fd);
  }

  /** Sends one request and waits for its acknowledgement; throws NetlinkError when refused. */
  request(what: string, type: number, flags: number, body: Buffer): void {
    this.#exchange(what, type, flags, body);
  }

  /** Sends one request; returns the kernel's answers before the acknowledgement (their bodies). */
  #exchange(what: string, type: number, flags: number, body: Buffer): Buffer[] {
    const seq = ++this.#seq;
    const msg = Buffer.alloc(16 + body.length);
    msg.writeUInt32LE(msg.length, 0);
    msg.writeUInt16LE(type, 4);
    msg.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK | flags, 6);
    msg.writeUInt32LE(seq, 8);
    body.copy(msg, 16);
    if (Number(sendFn(this.fd, msg, msg.length, 0)) < 0)
      throw new NetlinkError(`${what}: send`, koffi.errno());
    const buf = Buffer.alloc(16384);
    const replies: Buffer[] = [];
    for (;;) {
      const n = Number(recvFn(this.fd, buf, buf.length, 0));
      if (n < 0) throw new NetlinkError(`${what}: recv`, koffi.errno());
      for (let off = 0; off + 16 <= n; ) {
        const len = buf.readUInt32LE(off);
        if (len < 16) break;
        if (buf.readUInt32LE(off + 8) === seq) {
          if (buf.readUInt16LE(off + 4) !== NLMSG_ERROR)
            replies.push(Buffer.from(buf.subarray(off + 16, off + len)));
          else {
            const err = -buf.readInt32LE(off + 16);
            if (err !== 0) throw new NetlinkError(what, err);
            return replies;
          }
        }
        off += (len + 3) & ~3;
      }
    }
  }

  /** A veth pair: `name` here, `peer` created directly in the namespace open as `peerNetnsFd`. */
  vethAdd(o: {
    name: string;
    mac: string;
    peer: string;
    peerMac: string;
    peerNetnsFd: number;
    mtu?: number | undefined;
    /** IPv4 BIG TCP on both ends: their GSO and GRO limit for IPv4 (bytes; default 64 KiB). */
    bigTcpIpv4?: number | undefined;
  }): void {
    // what both ends get
    const common: Attr[] = [
      ...(o.mtu ? [[IFLA_MTU, u32(o.mtu)] as Attr] : []),
      ...(o.bigTcpIpv4 ? bigTcpIpv4Attrs(o.bigTcpIpv4) : []),
    ];
    const peer = Buffer.concat([
      ifinfomsg(0),
      attrs([
        [IFLA_IFNAME, str(o.peer)],
        [IFLA_ADDRESS, macBytes(o.peerMac)],
        [IFLA_NET_NS_FD, u32(o.peerNetnsFd)],
        ...common,
      ]),
    ]);
    const linkinfo = attrs([
      [IFLA_INFO_KIND, str('veth')],
      [IFLA_INFO_DATA, attrs([[VETH_INFO_PEER, peer]])],
    ]);
    const body = Buffer.concat([
      ifinfomsg(0),
      attrs([
        [IFLA_IFNAME, str(o.name)],
        [IFLA_ADDRESS, macBytes(o.mac)],
        ...common,
        [IFLA_LINKINFO, linkinfo],
      ]),
    ]);
    this.request(`create veth ${o.name}`, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body);
  }

  /** IPv4 BIG TCP on a device: its IPv4 GSO and GRO limit (65536 turns it off). */
  linkSetBigTcpIpv4(ifindex: number, size: number, what: string): void {
    this.request(
      `set ${what} gso/gro_ipv4_max_size ${size}`,
      RTM_NEWLINK,
      0,
      Buffer.concat([ifinfomsg(ifindex), attrs(bigTcpIpv4Attrs(size))]),
    );
  }

  /** A device's GSO limits: the largest packet it can segment (tso) and the IPv4 GSO / GRO limits. */
  linkGsoLimits(
    ifindex: number,
    what: string,
  ): { tsoMaxSize: number; gsoIpv4MaxSize: number; groIpv4MaxSize: number } {
    const [reply] = this.#exchange(`get ${what}`, RTM_GETLINK, 0, ifinfomsg(ifindex));
    const out = { tsoMaxSize: 0, gsoIpv4MaxSize: 0, groIpv4MaxSize: 0 };
    for (let off = 16; reply && off + 4 <= reply.length; ) {
      const len = reply.readUInt16LE(off);
      const type = reply.readUInt16LE(off + 2) & 0x3fff;
      if (len < 4) break;
      if (len >= 8 && type === IFLA_TSO_MAX_SIZE) out.tsoMaxSize = reply.readUInt32LE(off + 4);
      if (len >= 8 && type === IFLA_GSO_IPV4_MAX_SIZE) out.gsoIpv4MaxSize = reply.readUInt32LE(off + 4);
      if (len >= 8 && type === IFLA_GRO_IPV4_MAX_SIZE) out.groIpv4MaxSize = reply.readUInt32LE(off + 4);
      off += (len + 3) & ~3;
    }
    return out;
  }

  linkUp(ifindex: number, what: string): void {
    this.request(`set ${what} up`, RTM_NEWLINK, 0, ifinfomsg(ifindex, IFF_UP, IFF_UP));
  }

  /** An address with its own prefix length (no DAD for IPv6). */
  addrReplace(ifindex: number, ip: string, prefixLen: number): void {
    const f = family(ip);
    const b = Buffer.alloc(8);
    b.writeUInt8(f, 0);
    b.writeUInt8(prefixLen, 1);
    b.writeUInt8(f === AF_INET6 ? IFA_F_NODAD : 0, 2);
    b.writeUInt8(RT_SCOPE_UNIVERSE, 3);
    b.writeUInt32LE(ifindex, 4);
    const a = ipBytes(ip);
    this.request(
      `address ${ip}/${prefixLen}`,
      RTM_NEWADDR,
      NLM_F_CREATE | NLM_F_REPLACE,
      Buffer.concat([
        b,
        attrs([
          [IFA_LOCAL, a],
          [IFA_ADDRESS, a],
        ]),
      ]),
    );
  }

  /** A route to `dst`/`len` out of `ifindex`: on-link (scope link) or via `gateway`. */
  routeReplace(o: { dst: string; len: number; ifindex: number; gateway?: string }): void {
    const f = family(o.gateway ?? o.dst);
    const b = Buffer.alloc(12);
    b.writeUInt8(f, 0);
    b.writeUInt8(o.len, 1);
    b.writeUInt8(RT_TABLE_MAIN, 4);
    b.writeUInt8(RTPROT_BOOT, 5);
    b.writeUInt8(o.gateway || f === AF_INET6 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK, 6);
    b.writeUInt8(RTN_UNICAST, 7);
    const list: Attr[] = [[RTA_OIF, u32(o.ifindex)]];
    if (o.len > 0) list.unshift([RTA_DST, ipBytes(o.dst)]);
    if (o.gateway) list.push([RTA_GATEWAY, ipBytes(o.gateway)]);
    this.request(
      `route ${o.dst}/${o.len}${o.gateway ? ` via ${o.gateway}` : ''}`,
      RTM_NEWROUTE,
      NLM_F_CREATE | NLM_F_REPLACE,
      Buffer.concat([b, attrs(list)]),
    );
  }

  /** The clsact qdisc on `ifindex` (its ingress and egress hooks for cls_bpf); one there already is kept. */
  clsactAdd(ifindex: number): void {
    try {
      this.request(
        `clsact on ifindex ${ifindex}`,
        RTM_NEWQDISC,
        NLM_F_CREATE | NLM_F_EXCL,
        Buffer.concat([tcmsg(ifindex, TC_H_CLSACT_HANDLE, TC_H_CLSACT), attrs([[TCA_KIND, str('clsact')]])]),
      );
    } catch (err) {
      if (!(err instanceof NetlinkError && err.isExists)) throw err;
    }
  }

  /**
   * The direct-action cls_bpf filter of `dir` on `ifindex` runs `progFd`: created, or its program
   * replaced in place (the kernel swaps it under RCU; no packet sees neither program). Needs clsact.
   */
  bpfFilterReplace(ifindex: number, dir: 'ingress' | 'egress', progFd: number, name: string): void {
    const parent = dir === 'ingress' ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS;
    const options = attrs([
      [TCA_BPF_FD, u32(progFd)],
      [TCA_BPF_NAME, str(name)],
      [TCA_BPF_FLAGS, u32(TCA_BPF_FLAG_ACT_DIRECT)],
    ]);
    this.request(
      `tc ${dir} filter on ifindex ${ifindex}`,
      RTM_NEWTFILTER,
      NLM_F_CREATE | NLM_F_REPLACE,
      Buffer.concat([
        tcmsg(ifindex, TC_FILTER_HANDLE, parent, (TC_FILTER_PRIO << 16) | ETH_P_ALL_BE),
        attrs([
          [TCA_KIND, str('bpf')],
          [TCA_OPTIONS, options],
        ]),
      ]),
    );
  }

  /** Removes the filter bpfFilterReplace() made; false when there was none (or no device). */
  bpfFilterDelete(ifindex: number, dir: 'ingress' | 'egress'): boolean {
    const parent = dir === 'ingress' ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS;
    try {
      this.request(
        `delete tc ${dir} filter on ifindex ${ifindex}`,
        RTM_DELTFILTER,
        0,
        Buffer.concat([
          tcmsg(ifindex, TC_FILTER_HANDLE, parent, (TC_FILTER_PRIO << 16) | ETH_P_ALL_BE),
          attrs([[TCA_KIND, str('bpf')]]),
        ]),
      );
      return true;
    } catch (err) {
      // ENOENT: no such filter; ENODEV: the device is gone (and its filters with it); EINVAL: no clsact
      if (err instanceof NetlinkError && [2, 19, 22].includes(err.errno)) return false;
      throw err;
    }
  }

  /** A permanent neighbour entry. */
  neighReplace(ifindex: number, ip: string, mac: string): void {
    const b = Buffer.alloc(12);
    b.writeUInt8(family(ip), 0);
    b.writeInt32LE(ifindex, 4);
    b.writeUInt16LE(NUD_PERMANENT, 8);
    this.request(
      `neighbour ${ip} lladdr ${mac}`,
      RTM_NEWNEIGH,
      NLM_F_CREATE | NLM_F_REPLACE,
      Buffer.concat([
        b,
        attrs([
          [NDA_DST, ipBytes(ip)],
          [NDA_LLADDR, macBytes(mac)],
        ]),
      ]),
    );
  }
}

/** Interface index of `name` in `netns` (a path) or this thread's namespace; 0 when absent. */
export function ifindexIn(name: string, netns?: string): number {
  return withNetns(netns, () => ifNameToIndex(name) as number);
}

/** Runs `fn` with a file descriptor of the namespace at `path`. */
export function withNetnsFd<T>(path: string, fn: (fd: number) => T): T {
  const fd = openSync(path, 'r');
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}
