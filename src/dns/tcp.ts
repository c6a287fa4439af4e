/**
 * DNS over TCP (RFC 7766) on one accepted connection: messages with a two-byte length prefix,
 * several per connection, each handled as it arrives and answered when its answer is ready (a
 * slow name does not hold up the others). Shared by the cluster DNS server and the DNS proxy.
 */
import type { Socket } from 'node:net';

export interface TcpDnsOptions {
  /** A connection with no message for this long is closed (default 10000 ms). */
  idleTimeoutMs?: number;
  /** Most messages one connection may have in flight; more close it (default: no limit). */
  maxInFlight?: number;
  /** A handler failure (the connection stays). */
  onError?(err: Error): void;
}

/** Serves `c` until it closes; `conns` holds it meanwhile (so a server can destroy it on close). */
export function serveTcpConnection(
  c: Socket,
  handle: (msg: Buffer) => Promise<Buffer | undefined>,
  conns: Set<Socket>,
  o: TcpDnsOptions = {},
): void {
  const maxInFlight = o.maxInFlight ?? Number.POSITIVE_INFINITY;
  conns.add(c);
  let buf: Buffer = Buffer.alloc(0);
  let inFlight = 0;
  c.setTimeout(o.idleTimeoutMs ?? 10_000, () => c.destroy());
  c.on('error', () => c.destroy());
  c.on('close', () => conns.delete(c));
  c.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      const msg = Buffer.from(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
      if (++inFlight > maxInFlight) {
        c.destroy();
        return;
      }
      handle(msg)
        .then((out) => {
          if (!out || c.destroyed) return;
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(out.length);
          c.write(Buffer.concat([prefix, out]));
        })
        .catch((e: Error) => o.onError?.(e))
        .finally(() => inFlight--);
    }
  });
}
