/**
 * The forwarder process of one lab node. It runs inside the node's network namespace, so the
 * connections it opens reach the agent's loopback ports there; the sockets it listens on were
 * opened by the lab in the root namespace (127.0.0.1) and handed over through the IPC channel, so
 * they accept connections from the machine's shell. Each accepted connection is piped to its
 * upstream; nothing else happens here.
 */
import { connect, type Server, type Socket } from 'node:net';

interface Forward {
  name: string;
  to: { host: string; port: number };
}

function pipe(client: Socket, to: Forward['to']): void {
  const upstream = connect(to);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  client.pipe(upstream).pipe(client);
}

process.on('message', (m: Forward, server?: Server) => {
  if (!server) return;
  server.on('connection', (c: Socket) => pipe(c, m.to));
  process.send?.({ ready: m.name });
});
// The lab disconnects once every socket is handed over; the listening sockets keep this alive.
process.on('disconnect', () => {});
