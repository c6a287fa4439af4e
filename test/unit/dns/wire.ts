/** Raw DNS exchanges for the DNS tests: real UDP datagrams and real TCP (length-prefixed) messages. */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket, { type DecodedPacket, type Packet, type RecordType } from 'dns-packet';

export interface Decoded extends DecodedPacket {
  rcode: string;
  opcode: string;
}

/** A query packet: one question, RD set, an id of our own; `edns` adds an OPT record. */
export function queryPacket(
  name: string,
  type: RecordType | string,
  o: { id?: number; edns?: { size: number; version?: number; do?: boolean } } = {},
): Buffer {
  const p: Packet = {
    type: 'query',
    id: o.id ?? 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as RecordType, class: 'IN' }],
  };
  if (o.edns)
    p.additionals = [
      {
        name: '.',
        type: 'OPT',
        udpPayloadSize: o.edns.size,
        extendedRcode: 0,
        ednsVersion: o.edns.version ?? 0,
        flags: o.edns.do ? dnsPacket.DNSSEC_OK : 0,
        flag_do: o.edns.do ?? false,
        options: [],
      },
    ];
  return dnsPacket.encode(p);
}

/** Sends one datagram, resolves the raw answer, or undefined after `timeoutMs` of silence. */
export function udpExchange(
  port: number,
  msg: Buffer,
  timeoutMs = 1000,
  host = '127.0.0.1',
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    let finished = false;
    const done = (b?: Buffer) => {
      if (finished) return;
      finished = true;
      clearTimeout(t);
      s.close();
      resolve(b);
    };
    const t = setTimeout(() => done(), timeoutMs);
    s.on('message', (m) => done(m));
    s.send(msg, port, host);
  });
}

/** Writes `chunks` over one TCP connection (in separate writes) and collects `count` answers. */
export function tcpExchange(
  port: number,
  chunks: Buffer[],
  count: number,
  host = '127.0.0.1',
): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const c = connect({ host, port });
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error(`TCP: ${out.length} of ${count} answers in time`));
    }, 3000);
    c.on('error', reject);
    c.on('connect', async () => {
      for (const ch of chunks) {
        c.write(ch);
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length === count) {
        clearTimeout(t);
        c.destroy();
        resolve(out);
      }
    });
  });
}

/** A message with its two-byte TCP length prefix. */
export function framed(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

export function decode(b: Buffer | undefined): Decoded {
  if (!b) throw new Error('no answer');
  return dnsPacket.decode(b) as Decoded;
}

/** Asks over UDP and decodes. */
export async function ask(
  port: number,
  name: string,
  type: RecordType | string,
  o: Parameters<typeof queryPacket>[2] = {},
): Promise<Decoded> {
  return decode(await udpExchange(port, queryPacket(name, type, o)));
}

/** Asks over TCP and decodes. */
export async function askTcp(port: number, name: string, type: RecordType | string): Promise<Decoded> {
  const [a] = await tcpExchange(port, [framed(queryPacket(name, type))], 1);
  return decode(a);
}

/** `A 10.0.0.1`-style lines of a section, for readable assertions. */
export function rrs(list: DecodedPacket['answers']): string[] {
  return (list ?? []).map((a) => {
    if (a.type === 'OPT') return 'OPT';
    const d = a.data;
    const text =
      typeof d === 'string'
        ? d
        : Array.isArray(d)
          ? d.map(String).join(' ')
          : a.type === 'SRV'
            ? `${(d as { priority: number }).priority} ${(d as { weight: number }).weight} ${(d as { port: number }).port} ${(d as { target: string }).target}`
            : a.type === 'SOA'
              ? `${(d as { mname: string }).mname} ${(d as { serial: number }).serial}`
              : String(d);
    return `${a.name} ${a.ttl} ${a.type} ${text}`;
  });
}

/** The data of the first answer (an address for A/AAAA), or undefined. */
export function firstData(p: DecodedPacket): string | undefined {
  const a = p.answers?.[0];
  return a && 'data' in a ? String(a.data) : undefined;
}
