/**
 * The Kafka filter as a plain TCP proxy: listens, connects every accepted client to one upstream
 * broker and runs the filter between them. The node's transparent proxy uses runKafkaConnection
 * directly; this listener serves tests and the bench, where no redirect is involved.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { runKafkaConnection } from './connection.js';
import type { KafkaFilterOptions } from './filter.js';

export interface KafkaTcpProxyOptions extends KafkaFilterOptions {
  readonly upstream: { host: string; port: number };
  readonly port?: number;
  readonly host?: string;
  /** Called with the filter's reason when it closes a connection. */
  readonly onClose?: (reason: string) => void;
}

export interface KafkaTcpProxy {
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

export async function startKafkaTcpProxy(opts: KafkaTcpProxyOptions): Promise<KafkaTcpProxy> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    client.setNoDelay(true);
    client.pause();
    const upstream = connect(opts.upstream.port, opts.upstream.host);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    const conn = runKafkaConnection(client, upstream, opts);
    upstream.once('connect', () => client.resume());
    void conn.closed.then((reason) => {
      if (reason !== undefined) opts.onClose?.(reason);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
