/**
 * Forwarding of names outside the cluster zone to upstream servers, over the transport the client
 * used (a truncated UDP answer reaches the client as such, and its TCP retry is forwarded over TCP).
 * Each upstream query gets a fresh random ID and a fresh socket (so a fresh source port); only a
 * response from that upstream with that ID and the same question is taken. Upstreams are tried in
 * order until one answers within the timeout.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { HostPort } from './address.js';

export type Transport = 'udp' | 'tcp';

/** The first upstream's answer with the client's ID restored, or undefined if none answered in time. */
export async function forwardQuery(
  query: Buffer,
  upstreams: readonly HostPort[],
  transport: Transport,
  timeoutMs: number,
): Promise<Buffer | undefined> {
  const clientId = query.readUInt16BE(0);
  for (const upstream of upstreams) {
    const q = Buffer.from(query);
    const id = randomInt(0x10000);
    q.writeUInt16BE(id, 0);
    const send = transport === 'udp' ? exchangeUdp : exchangeTcp;
    const answer = await send(q, upstream, timeoutMs).catch(() => undefined);
    if (answer && answer.length >= 12 && answer.readUInt16BE(0) === id && (answer[2]! & 0x80) !== 0) {
      if (!sameQuestion(q, answer)) continue;
      const out = Buffer.from(answer);
      out.writeUInt16BE(clientId, 0);
      return out;
    }
  }
  return undefined;
}

/** The question section (from byte 12 to the end of the first question) is the same, ignoring case. */
export function sameQuestion(query: Buffer, answer: Buffer): boolean {
  const end = questionEnd(query);
  if (end === undefined || answer.length < end) return false;
  if (query.readUInt16BE(4) !== answer.readUInt16BE(4)) return false;
  return (
    query.subarray(12, end).toString('latin1').toLowerCase() ===
    answer.subarray(12, end).toString('latin1').toLowerCase()
  );
}

function questionEnd(p: Buffer): number | undefined {
  if (p.readUInt16BE(4) === 0) return 12;
  let o = 12;
  while (o < p.length && p[o] !== 0) {
    if ((p[o]! & 0xc0) !== 0) return undefined; // a query's question is never compressed
    o += p[o]! + 1;
  }
  return o + 5 <= p.length ? o + 5 : undefined;
}

function exchangeUdp(q: Buffer, to: HostPort, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket(to.family === 6 ? 'udp6' : 'udp4');
    let finished = false;
    const done = (b?: Buffer) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.close();
      resolve(b);
    };
    const timer = setTimeout(() => done(), timeoutMs);
    s.on('error', () => done());
    s.on('message', (msg, rinfo) => {
      // Ignore anything that is not from the upstream or not this query's answer.
      if (rinfo.port !== to.port || msg.length < 2 || msg.readUInt16BE(0) !== q.readUInt16BE(0)) return;
      done(msg);
    });
    s.send(q, to.port, to.host, (err) => err && done());
  });
}

function exchangeTcp(q: Buffer, to: HostPort, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: to.host, port: to.port });
    let buf = Buffer.alloc(0);
    const done = (b?: Buffer) => {
      clearTimeout(timer);
      s.destroy();
      resolve(b);
    };
    const timer = setTimeout(() => done(), timeoutMs);
    s.on('error', () => done());
    s.on('close', () => done());
    s.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      s.write(Buffer.concat([len, q]));
    });
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0))
        done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
  });
}
