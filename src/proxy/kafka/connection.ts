/**
 * Runs a KafkaFilter between two connected sockets (the client's and the broker's), with
 * back-pressure: a side whose peer's write buffer is full is paused until it drains. When the filter
 * says close, or either side ends or fails, both sockets are destroyed.
 */
import type { Socket } from 'node:net';
import { type FilterOutput, KafkaFilter, type KafkaFilterOptions } from './filter.js';

export interface KafkaConnection {
  readonly filter: KafkaFilter;
  /** Resolves once both sockets are closed; carries the filter's close reason if it closed them. */
  readonly closed: Promise<string | undefined>;
}

export function runKafkaConnection(
  client: Socket,
  server: Socket,
  opts: KafkaFilterOptions,
): KafkaConnection {
  const filter = new KafkaFilter(opts);
  let reason: string | undefined;
  let done = 0;
  let resolve!: (r: string | undefined) => void;
  const closed = new Promise<string | undefined>((r) => {
    resolve = r;
  });
  const onClose = () => {
    if (++done === 2) resolve(reason);
  };
  client.once('close', onClose);
  server.once('close', onClose);
  const shutdown = (why?: string) => {
    if (why !== undefined && reason === undefined) reason = why;
    client.destroy();
    server.destroy();
  };
  const write = (sock: Socket, bufs: Buffer[], source: Socket): void => {
    let ok = true;
    for (const b of bufs) if (b.length > 0) ok = sock.write(b) && ok;
    if (!ok) {
      source.pause();
      sock.once('drain', () => source.resume());
    }
  };
  const apply = (o: FilterOutput, source: Socket): void => {
    write(server, o.toServer, source);
    write(client, o.toClient, source);
    if (o.close !== undefined) {
      // Let what was already queued for the client (earlier answers) go out before closing.
      client.end(() => shutdown(o.close));
      setTimeout(() => shutdown(o.close), 5000).unref(); // a client that does not read
      server.destroy();
      reason ??= o.close;
    }
  };
  client.on('data', (d: Buffer) => apply(filter.onRequestData(d), client));
  server.on('data', (d: Buffer) => apply(filter.onResponseData(d), server));
  client.on('end', () => server.end());
  server.on('end', () => client.end());
  client.on('error', () => shutdown());
  server.on('error', () => shutdown());
  return { filter, closed };
}
