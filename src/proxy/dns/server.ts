/**
 * The DNS proxy's sockets: UDP and TCP (two-byte length prefix, several queries per connection,
 * answers in any order) on one port. Each query goes to the handler with its context; where it was
 * really going is `destinationOf`'s answer (for a connection redirected transparently, the accepted
 * socket's local address is the original destination).
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { HostPort } from '../../dns/address.js';
import type { Transport } from '../../dns/forward.js';
import { serveTcpConnection } from '../../dns/tcp.js';
import type { DnsProxyHandler, DnsQueryContext } from './handler.js';

export interface DnsProxyServerOptions {
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port for UDP and TCP (0 picks a free one, the same for both). */
  port: number;
  handler: DnsProxyHandler;
  /**
   * The server a query was meant for. `local` is the address the query reached on this socket
   * (for a transparently redirected TCP connection, the original destination).
   */
  destinationOf(transport: Transport, source: { host: string; port: number }, local: HostPort): HostPort;
  /** A TCP connection with no query for this long is closed (default 10000 ms). */
  tcpIdleTimeoutMs?: number;
  /** Most queries one TCP connection may have in flight (default 64); more close the connection. */
  maxTcpInFlight?: number;
  log?(line: string): void;
}

export interface DnsProxyServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startDnsProxyServer(o: DnsProxyServerOptions): Promise<DnsProxyServer> {
  const host = o.host ?? '127.0.0.1';
  const family = isIP(host) === 6 ? 6 : 4;
  const conns = new Set<Socket>();
  for (let attempt = 0; ; attempt++) {
    const udp = await bindUdp(host, o.port, family, o);
    const port = (udp.address() as { port: number }).port;
    try {
      const tcp = await listenTcp(host, port, family, conns, o);
      return {
        port,
        close: async () => {
          for (const c of conns) c.destroy();
          await Promise.all([
            new Promise<void>((r) => udp.close(() => r())),
            new Promise<void>((r) => tcp.close(() => r())),
          ]);
        },
      };
    } catch (e) {
      udp.close();
      if (o.port !== 0 || attempt >= 5) throw e;
    }
  }
}

function bindUdp(host: string, port: number, family: 4 | 6, o: DnsProxyServerOptions): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket(family === 6 ? 'udp6' : 'udp4');
    s.once('error', reject);
    s.bind({ address: host, port, exclusive: true }, () => {
      s.off('error', reject);
      const local: HostPort = { host, port: (s.address() as { port: number }).port, family };
      s.on('error', (e) => o.log?.(`dns proxy udp: ${e.message}`));
      s.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
        const source = { host: rinfo.address, port: rinfo.port };
        const destination = o.destinationOf('udp', source, local);
        void o.handler
          .handle(msg, { transport: 'udp', source, destination })
          .then((out) => out && s.send(out, rinfo.port, rinfo.address));
      });
      resolve(s);
    });
  });
}

function listenTcp(
  host: string,
  port: number,
  family: 4 | 6,
  conns: Set<Socket>,
  o: DnsProxyServerOptions,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((c) => {
      const source = { host: c.remoteAddress ?? '', port: c.remotePort ?? 0 };
      const local: HostPort = { host: c.localAddress ?? host, port: c.localPort ?? port, family };
      const ctx: DnsQueryContext = {
        transport: 'tcp',
        source,
        destination: o.destinationOf('tcp', source, local),
      };
      serveTcpConnection(c, (msg) => o.handler.handle(msg, ctx), conns, {
        idleTimeoutMs: o.tcpIdleTimeoutMs ?? 10_000,
        maxInFlight: o.maxTcpInFlight ?? 64,
      });
    });
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      server.on('error', (e) => o.log?.(`dns proxy tcp: ${e.message}`));
      resolve(server);
    });
  });
}
