/**
 * Forwarding over UDP on a few shared sockets per server (as upstream's DNS proxy shares a client
 * per server, rather than a socket per query): each query gets an ID no other query in flight to
 * that server has, and only an answer from that server with that ID and the same question is
 * taken, with the client's ID restored. Queries go round the server's sockets (at most
 * SOCKETS_PER_SERVER), so a burst of answers is spread over several receive buffers. Sockets with
 * nothing in flight are closed after a while. TCP queries go through the cluster DNS
 * server's forwarder (one connection each: src/dns/forward.ts).
 */
import { randomInt } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { HostPort } from '../../dns/address.js';
import { forwardQuery, sameQuestion, type Transport } from '../../dns/forward.js';

interface Pending {
  readonly query: Buffer;
  readonly clientId: number;
  readonly done: (answer: Buffer | undefined) => void;
}

interface Server {
  readonly sockets: Socket[];
  next: number;
  readonly pending: Map<number, Pending>;
  idle?: NodeJS.Timeout;
  broken: boolean;
}

const IDLE_CLOSE_MS = 30_000;
const MAX_IN_FLIGHT = 16_384;
const SOCKETS_PER_SERVER = 8;

export class UpstreamClient {
  readonly #servers = new Map<string, Server>();

  /** The server's answer with the client's ID, or undefined (no answer in time, too many in flight). */
  exchange(
    query: Buffer,
    to: HostPort,
    transport: Transport,
    timeoutMs: number,
  ): Promise<Buffer | undefined> {
    if (transport === 'tcp') return forwardQuery(query, [to], 'tcp', timeoutMs);
    const server = this.#server(to);
    if (server.pending.size >= MAX_IN_FLIGHT) return Promise.resolve(undefined);
    let id = randomInt(0x10000);
    while (server.pending.has(id)) id = (id + 1) & 0xffff;
    const q = Buffer.from(query);
    q.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const finish = (answer: Buffer | undefined) => {
        clearTimeout(timer);
        if (server.pending.get(id)?.done !== finish) return;
        server.pending.delete(id);
        if (server.pending.size === 0) this.#idle(to, server);
        resolve(answer);
      };
      server.pending.set(id, { query: q, clientId: query.readUInt16BE(0), done: finish });
      clearTimeout(server.idle);
      this.#socket(to, server).send(q, to.port, to.host, (err) => err && finish(undefined));
    });
  }

  close(): void {
    for (const s of this.#servers.values()) {
      clearTimeout(s.idle);
      for (const p of [...s.pending.values()]) p.done(undefined);
      for (const socket of s.sockets) socket.close();
    }
    this.#servers.clear();
  }

  #server(to: HostPort): Server {
    const key = `${to.host}|${to.port}`;
    let s = this.#servers.get(key);
    if (s === undefined || s.broken) {
      s = { sockets: [], next: 0, pending: new Map(), broken: false };
      this.#servers.set(key, s);
    }
    return s;
  }

  /** The server's next socket in turn, opened when the pool is not full yet. */
  #socket(to: HostPort, server: Server): Socket {
    const i = server.next++ % SOCKETS_PER_SERVER;
    const have = server.sockets[i];
    if (have !== undefined) return have;
    const socket = createSocket(to.family === 6 ? 'udp6' : 'udp4');
    socket.on('error', () => {
      // A broken socket: fail what is in flight; the next query starts a new pool.
      server.broken = true;
      for (const p of [...server.pending.values()]) p.done(undefined);
      for (const s of server.sockets) s.close();
    });
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (rinfo.port !== to.port || rinfo.address !== to.host || msg.length < 12) return;
      if ((msg[2]! & 0x80) === 0) return;
      const p = server.pending.get(msg.readUInt16BE(0));
      if (p === undefined || !sameQuestion(p.query, msg)) return;
      const out = Buffer.from(msg);
      out.writeUInt16BE(p.clientId, 0);
      p.done(out);
    });
    socket.unref();
    server.sockets[i] = socket;
    return socket;
  }

  #idle(to: HostPort, server: Server): void {
    clearTimeout(server.idle);
    server.idle = setTimeout(() => {
      if (server.pending.size > 0) return;
      const key = `${to.host}|${to.port}`;
      if (this.#servers.get(key) === server) this.#servers.delete(key);
      for (const s of server.sockets) s.close();
    }, IDLE_CLOSE_MS);
    server.idle.unref();
  }
}
