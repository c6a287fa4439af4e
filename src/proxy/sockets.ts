/**
 * The socket options a transparent proxy needs and Node does not expose: IP_TRANSPARENT (listen
 * for and connect with addresses that are not the node's) and SO_MARK (tell the datapath a packet
 * comes from the proxy, bpf/lib/proxy.h). Set through koffi on the socket's file descriptor.
 *
 * An upstream connection must be transparent BEFORE it binds the client's address, which Node's
 * net.connect cannot do, so transparentConnect makes the socket itself (socket, setsockopt, bind,
 * non-blocking connect) and hands the descriptor to a net.Socket.
 */
import { isIPv6, Socket } from 'node:net';
import koffi from 'koffi';
import { CiliumTsError } from '../common/errors.js';

const libc = koffi.load('libc.so.6');
const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const setsockoptFn = libc.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)');
const bindFn = libc.func('int bind(int fd, void *addr, uint32_t len)');
const connectFn = libc.func('int connect(int fd, void *addr, uint32_t len)');
const closeFn = libc.func('int close(int fd)');
const sendtoFn = libc.func(
  'intptr_t sendto(int fd, void *buf, size_t len, int flags, void *addr, uint32_t alen)',
);

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_MARK = 36;
const SO_REUSEADDR = 2;
const SOL_IP = 0;
const IP_TRANSPARENT = 19;
const SOL_IPV6 = 41;
const IPV6_TRANSPARENT = 75;
const EINPROGRESS = 115;

export class ProxySocketError extends CiliumTsError {
  readonly errno: number;
  constructor(what: string, errno: number) {
    super(`${what} failed: errno ${errno}`, { code: 'unavailable' });
    this.errno = errno;
  }
}

function check(what: string, ret: number): number {
  if (ret < 0) throw new ProxySocketError(what, koffi.errno());
  return ret;
}

function setInt(fd: number, level: number, name: number, value: number, what: string): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  check(what, setsockoptFn(fd, level, name, b, 4) as number);
}

/** A socket address for bind/connect. */
function sockaddr(address: string, port: number): Buffer {
  if (isIPv6(address)) {
    const b = Buffer.alloc(28);
    b.writeUInt16LE(AF_INET6, 0);
    b.writeUInt16BE(port, 2);
    b.set(addrBytes(address), 8);
    return b;
  }
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  b.set(addrBytes(address).subarray(0, 4), 4);
  return b;
}

/** An address as 16 bytes: IPv6, or IPv4 (also IPv4-mapped IPv6) in the first 4 and zeros. */
export function addrBytes(address: string): Uint8Array {
  const out = new Uint8Array(16);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return addrBytes(mapped[1]!);
  if (!isIPv6(address)) {
    address.split('.').forEach((o, i) => {
      out[i] = Number(o);
    });
    return out;
  }
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** The file descriptor behind a net.Server / net.Socket / dgram.Socket (Linux: libuv's handle). */
export function handleFd(s: unknown): number {
  const fd = (s as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new ProxySocketError('reading the socket descriptor', 0);
  return fd;
}

/** IP_TRANSPARENT (and IPV6_TRANSPARENT) on a bound socket: accept / send with foreign addresses. */
export function setTransparent(fd: number, ipv6: boolean): void {
  if (ipv6) setInt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1, 'setsockopt(IPV6_TRANSPARENT)');
  else setInt(fd, SOL_IP, IP_TRANSPARENT, 1, 'setsockopt(IP_TRANSPARENT)');
}

export function setMark(fd: number, mark: number): void {
  setInt(fd, SOL_SOCKET, SO_MARK, mark, 'setsockopt(SO_MARK)');
}

export interface Addr {
  readonly address: string;
  readonly port: number;
}

/** A transparent socket bound to `local` (port 0: any), marked; returns its descriptor. */
function transparentSocket(type: number, local: Addr, mark: number): number {
  const v6 = isIPv6(local.address);
  const fd = check(
    'socket',
    socketFn(v6 ? AF_INET6 : AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number,
  );
  try {
    setTransparent(fd, v6);
    setMark(fd, mark);
    if (type === SOCK_DGRAM) setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1, 'setsockopt(SO_REUSEADDR)');
    const a = sockaddr(local.address, local.port);
    check(`bind(${local.address}:${local.port})`, bindFn(fd, a, a.length) as number);
    return fd;
  } catch (err) {
    closeFn(fd);
    throw err;
  }
}

/** How long an upstream connection may stay unanswered (SYN_SENT) before it fails. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 5000;

const getsockoptFn = libc.func('int getsockopt(int fd, int level, int name, void *val, uint32_t *len)');
const getsocknameFn = libc.func('int getsockname(int fd, void *addr, uint32_t *len)');

/** The local port a socket is bound to (sin_port and sin6_port are both at offset 2). */
function boundPort(fd: number): number {
  const a = Buffer.alloc(28);
  const len = new Uint32Array([a.length]);
  check('getsockname', getsocknameFn(fd, a, len) as number);
  return a.readUInt16BE(2);
}

const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const TCP_SYN_SENT = 2;

/** The kernel's TCP state of a socket (tcp_info.tcpi_state), or -1. */
function tcpState(fd: number): number {
  const info = Buffer.alloc(8);
  const len = new Uint32Array([8]);
  if ((getsockoptFn(fd, IPPROTO_TCP, TCP_INFO, info, len) as number) < 0) return -1;
  return info[0]!;
}

/**
 * A transparent TCP socket bound to `local` whose port is not `avoid` (local.port 0: the kernel
 * picks one). The kernel picks among the ports free in this namespace, which knows nothing of the
 * client's: the proxy's upstream connection from the client's own port would have the client's
 * connection's very tuple, which the destination's conntrack holds for the client's connection.
 * A socket given that port holds it while a second one is bound, which therefore gets another.
 */
function transparentTcpSocket(local: Addr, mark: number, avoid: number | undefined): number {
  const fd = transparentSocket(SOCK_STREAM, local, mark);
  let taken = false;
  try {
    taken = avoid !== undefined && local.port === 0 && boundPort(fd) === avoid;
    return taken ? transparentSocket(SOCK_STREAM, local, mark) : fd;
  } catch (err) {
    if (!taken) closeFn(fd);
    throw err;
  } finally {
    if (taken) closeFn(fd);
  }
}

/**
 * A TCP connection from `local` (the client's address: the destination's policy sees the client's
 * identity) to `remote`, marked `mark`. The connect runs on (writes queue meanwhile); 'connect' is
 * emitted once the kernel has it established, an error ('error', e.g. ECONNREFUSED) ends it, and
 * one still unanswered after UPSTREAM_CONNECT_TIMEOUT_MS (a policy dropping the SYN) fails with
 * ETIMEDOUT. With `local.port` 0 the kernel picks the port, never `avoidPort` (the client's).
 */
export function transparentConnect(
  local: Addr,
  remote: Addr,
  mark: number,
  avoidPort?: number,
  timeoutMs = UPSTREAM_CONNECT_TIMEOUT_MS,
): Socket {
  const fd = transparentTcpSocket(local, mark, avoidPort);
  const a = sockaddr(remote.address, remote.port);
  const ret = connectFn(fd, a, a.length) as number;
  if (ret < 0) {
    const errno = koffi.errno();
    if (errno !== EINPROGRESS) {
      closeFn(fd);
      throw new ProxySocketError(`connect(${remote.address}:${remote.port})`, errno);
    }
  }
  const sock = new Socket({ fd, readable: true, writable: true });
  sock.setNoDelay(true); // request/response traffic: no Nagle delay on the proxy's small writes
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  const check = () => {
    if (sock.destroyed) return;
    if (tcpState(fd) !== TCP_SYN_SENT) {
      sock.emit('connect');
      return;
    }
    if (Date.now() >= deadline) {
      const err = Object.assign(new Error(`connect ETIMEDOUT ${remote.address}:${remote.port}`), {
        code: 'ETIMEDOUT',
      });
      sock.destroy(err);
      return;
    }
    delay = Math.min(delay * 2, 100);
    setTimeout(check, delay).unref();
  };
  setImmediate(check);
  return sock;
}

/**
 * One datagram from `local` — an address that need not be the node's, such as the server a
 * redirected UDP query was meant for — to `remote`, through a transparent socket that lives only
 * for this send (a bound socket left open would catch the client's next datagrams of that tuple).
 */
export function sendUdpFrom(local: Addr, remote: Addr, data: Uint8Array, mark = 0): void {
  const fd = transparentSocket(SOCK_DGRAM, local, mark);
  try {
    const a = sockaddr(remote.address, remote.port);
    const n = Number(sendtoFn(fd, data, data.length, 0, a, a.length));
    if (n < 0) throw new ProxySocketError(`sendto(${remote.address}:${remote.port})`, koffi.errno());
  } finally {
    closeFn(fd);
  }
}
