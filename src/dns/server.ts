/**
 * The cluster DNS server: UDP and TCP (two-byte length prefix, several queries per connection) on each
 * listen address, answering the cluster zone from a DnsRecordSource (src/dns/zone.ts) and forwarding
 * other names to the configured upstreams. Wire encoding and decoding is dns-packet's.
 *
 * Protocol behaviour:
 * - A packet shorter than a header, or a response (QR set), gets no answer; one that does not decode,
 *   has no or several questions, or several OPT records gets FORMERR.
 * - Opcodes other than QUERY get NOTIMP; classes other than IN (and ANY) and zone transfers get REFUSED.
 * - EDNS0: a query with OPT gets OPT back (our buffer size, the DO bit copied, no options); an EDNS
 *   version above 0 gets BADVERS. The UDP answer limit is the client's advertised size (at least 512,
 *   at most ours), 512 without EDNS.
 * - An answer over that limit goes out truncated: TC set, only the question (and OPT) kept, so the
 *   client retries over TCP, where the limit is 65535.
 * - Names outside the zone go to the upstreams (SERVFAIL when none answers in time); with no upstream
 *   they get REFUSED, as CoreDNS answers a name no server block serves: NXDOMAIN would tell a client
 *   that a name which may well exist does not.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import dnsPacket, {
  type Answer,
  type DecodedPacket,
  type OptAnswer,
  type Packet,
  type Question,
  type RecordType,
} from 'dns-packet';
import { formatHostPort, type HostPort, parseHostPort } from './address.js';
import { DnsArgumentError } from './errors.js';
import { forwardQuery, type Transport } from './forward.js';
import type { DnsRecordSource, DnsRecords } from './records.js';
import { serveTcpConnection } from './tcp.js';
import { ClusterZone, POD_RECORDS_MODES, type PodRecordsMode } from './zone.js';

export interface DnsServerOptions {
  /** Addresses to serve on, `IP:PORT` or `[IPv6]:PORT` (port 53 if left out; 0 picks a free one). */
  listen: readonly string[];
  source: DnsRecordSource;
  /** The cluster domain (default cluster.local). */
  zone?: string;
  /** TTL of every answer in the zone and the SOA minimum (default 30). */
  ttl?: number;
  /** `<dashed-ip>.<ns>.pod.<zone>` answers (default verified: only IPs of pods in that namespace). */
  podRecords?: PodRecordsMode;
  /** Where names outside the zone go (`IP[:PORT]`); none: REFUSED. */
  upstreams?: readonly string[];
  /** Per upstream try (default 2000 ms). */
  upstreamTimeoutMs?: number;
  /** Our EDNS0 UDP payload size (default 1232, the DNS flag day's figure). */
  maxUdpPayload?: number;
  /** A TCP connection with no query for this long is closed (default 10000 ms). */
  tcpIdleTimeoutMs?: number;
  /** Socket and internal errors. */
  log?: (line: string) => void;
  /** One line per query: client, transport, name, type, rcode, answer count. */
  queryLog?: (line: string) => void;
}

export interface DnsServer {
  /** Where it listens, with the ports actually bound (UDP and TCP share each). */
  readonly addresses: readonly HostPort[];
  readonly zone: string;
  close(): Promise<void>;
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type Rcode = keyof typeof RCODE;
const FLAG_AA = 1 << 10;
const FLAG_TC = 1 << 9;
const FLAG_RD = 1 << 8;
const FLAG_RA = 1 << 7;
const FLAG_CD = 1 << 4;
const DNSSEC_OK = 1 << 15;
/** RFC 6891: BADVERS is 16, i.e. 1 in the OPT record's upper rcode bits with 0 in the header. */
const EXTENDED_RCODE_BADVERS = 1;
const MIN_UDP = 512;
const MAX_TCP = 65535;

/** Validated options with their defaults. */
export function resolveDnsServerOptions(o: DnsServerOptions) {
  const zone = o.zone ?? 'cluster.local';
  const z = zone.toLowerCase().replace(/\.$/, '');
  if (!/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(z) || z.length > 253)
    throw new DnsArgumentError('zone', `"${zone}" is not a DNS name`);
  const int = (field: string, v: number | undefined, def: number, min: number, max: number) => {
    const n = v ?? def;
    if (!Number.isInteger(n) || n < min || n > max)
      throw new DnsArgumentError(field, `must be an integer in ${min}..${max}, got ${v}`);
    return n;
  };
  const podRecords = o.podRecords ?? 'verified';
  if (!POD_RECORDS_MODES.includes(podRecords))
    throw new DnsArgumentError('podRecords', `must be one of ${POD_RECORDS_MODES.join(', ')}`);
  if (o.listen.length === 0) throw new DnsArgumentError('listen', 'needs at least one address');
  const upstreams = (o.upstreams ?? []).map((u, i) => {
    const hp = parseHostPort(u, 53, `upstreams[${i}]`);
    if (hp.port === 0) throw new DnsArgumentError(`upstreams[${i}]`, 'port 0 is not an upstream');
    return hp;
  });
  return {
    zone: z,
    listen: o.listen.map((l, i) => parseHostPort(l, 53, `listen[${i}]`)),
    ttl: int('ttl', o.ttl, 30, 0, 2 ** 31 - 1),
    podRecords,
    upstreams,
    upstreamTimeoutMs: int('upstreamTimeoutMs', o.upstreamTimeoutMs, 2000, 1, 60_000),
    maxUdpPayload: int('maxUdpPayload', o.maxUdpPayload, 1232, MIN_UDP, 65535),
    tcpIdleTimeoutMs: int('tcpIdleTimeoutMs', o.tcpIdleTimeoutMs, 10_000, 1, 3_600_000),
  };
}

type Resolved = ReturnType<typeof resolveDnsServerOptions>;

/** Answers wire queries: the transport-independent part of the server. */
export class DnsResponder {
  private records: DnsRecords | undefined;
  private zone: ClusterZone | undefined;
  private serial = Math.floor(Date.now() / 1000);

  constructor(
    private readonly o: Resolved,
    private readonly source: DnsRecordSource,
    private readonly log?: (line: string) => void,
    private readonly queryLog?: (line: string) => void,
  ) {}

  /** The zone for the source's current snapshot, rebuilt only when the snapshot changed. */
  private currentZone(): ClusterZone {
    const records = this.source.current();
    if (records !== this.records || !this.zone) {
      this.serial++;
      this.zone = new ClusterZone(records, {
        zone: this.o.zone,
        ttl: this.o.ttl,
        podRecords: this.o.podRecords,
        serial: this.serial,
      });
      this.records = records;
    }
    return this.zone;
  }

  /** The answer to one query received over `transport`, or undefined when none is due. */
  async respond(msg: Buffer, transport: Transport, client: string): Promise<Buffer | undefined> {
    if (msg.length < 12 || (msg[2]! & 0x80) !== 0) return undefined;
    const id = msg.readUInt16BE(0);
    const opcode = (msg[2]! >> 3) & 0xf;
    const keep = msg.readUInt16BE(2) & (FLAG_RD | FLAG_CD);
    const base = (opcode << 11) | keep | (this.o.upstreams.length > 0 ? FLAG_RA : 0);
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return this.finish({ id, flags: base | RCODE.FORMERR }, transport, MIN_UDP, client, 'FORMERR');
    }
    const opts = (query.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
    const opt = opts[0];
    const questions = query.questions ?? [];
    const limit = opt ? Math.min(Math.max(opt.udpPayloadSize, MIN_UDP), this.o.maxUdpPayload) : MIN_UDP;
    const ourOpt = (extendedRcode = 0): OptAnswer[] =>
      opt
        ? [
            {
              name: '.',
              type: 'OPT',
              udpPayloadSize: this.o.maxUdpPayload,
              extendedRcode,
              ednsVersion: 0,
              flags: opt.flags & DNSSEC_OK,
              flag_do: (opt.flags & DNSSEC_OK) !== 0,
              options: [],
            },
          ]
        : [];
    const answer = (rcode: Rcode, p: Omit<Packet, 'id' | 'flags' | 'type'> = {}, flags = 0) =>
      this.finish(
        {
          id,
          flags: base | flags | RCODE[rcode],
          questions,
          ...p,
          additionals: [...(p.additionals ?? []), ...ourOpt()],
        },
        transport,
        limit,
        client,
        rcode,
      );
    if (opts.length > 1 || questions.length !== 1 || !echoesExactly(msg, questions))
      return this.finish({ id, flags: base | RCODE.FORMERR }, transport, MIN_UDP, client, 'FORMERR');
    if (opt && opt.ednsVersion > 0)
      return this.finish(
        { id, flags: base, questions, additionals: ourOpt(EXTENDED_RCODE_BADVERS) },
        transport,
        limit,
        client,
        'BADVERS',
      );
    if (opcode !== 0) return answer('NOTIMP');
    const q = questions[0]!;
    const klass = q.class ?? 'IN';
    if ((klass !== 'IN' && klass !== 'ANY') || q.type === 'AXFR' || q.type === 'IXFR')
      return answer('REFUSED');

    let result: ReturnType<ClusterZone['lookup']>;
    try {
      result = this.currentZone().lookup(q.name, q.type);
    } catch (e) {
      this.log?.(`${client} ${transport} ${q.name} ${q.type} internal error: ${(e as Error).message}`);
      return answer('SERVFAIL');
    }
    if (result.kind === 'outside') {
      if (this.o.upstreams.length === 0) return answer('REFUSED');
      const fwd = await forwardQuery(msg, this.o.upstreams, transport, this.o.upstreamTimeoutMs);
      this.queryLog?.(
        `${client} ${transport} ${q.name} ${q.type} forwarded ${fwd ? 'answered' : 'no answer'}`,
      );
      return fwd ?? answer('SERVFAIL');
    }
    let answers: Answer[] = result.answers;
    if (result.chase && this.o.upstreams.length > 0)
      answers = [...answers, ...(await this.chase(result.chase))];
    return answer(
      result.rcode,
      { answers, authorities: result.authorities, additionals: result.additionals },
      FLAG_AA,
    );
  }

  /** Resolves an ExternalName target outside the zone upstream; its answers follow our CNAME. */
  private async chase(q: { name: string; type: string }): Promise<Answer[]> {
    const msg = dnsPacket.encode({
      type: 'query',
      id: 0,
      flags: FLAG_RD,
      questions: [{ name: q.name, type: q.type as RecordType }],
    });
    const fwd = await forwardQuery(msg, this.o.upstreams, 'tcp', this.o.upstreamTimeoutMs);
    if (!fwd) return [];
    try {
      const r = dnsPacket.decode(fwd);
      return ((r.flags ?? 0) & 0xf) === RCODE.NOERROR ? (r.answers ?? []) : [];
    } catch {
      return [];
    }
  }

  /** Encodes the response, truncating it (TC, question and OPT only) when over the transport's limit. */
  private finish(p: Packet, transport: Transport, udpLimit: number, client: string, rcode: string): Buffer {
    const limit = transport === 'udp' ? udpLimit : MAX_TCP;
    let out = dnsPacket.encode({ ...p, type: 'response' });
    let truncated = false;
    if (out.length > limit) {
      truncated = true;
      out = dnsPacket.encode({
        ...p,
        type: 'response',
        flags: (p.flags ?? 0) | FLAG_TC,
        answers: [],
        authorities: [],
        additionals: (p.additionals ?? []).filter((a) => a.type === 'OPT'),
      });
    }
    const q = p.questions?.[0];
    this.queryLog?.(
      `${client} ${transport} ${q ? `${q.name} ${q.type}` : '-'} ${rcode} answers=${p.answers?.length ?? 0}${truncated ? ' truncated' : ''}`,
    );
    return out;
  }
}

/**
 * Whether the decoded question encodes back to the bytes received. It does not when a label holds a
 * dot or bytes that are not UTF-8, or the question is compressed: such a question could not be
 * echoed faithfully, so it is answered FORMERR rather than with a question the client never asked.
 */
function echoesExactly(msg: Buffer, questions: Question[]): boolean {
  const echoed = dnsPacket.encode({ type: 'query', questions }).subarray(12);
  return msg.subarray(12, 12 + echoed.length).equals(echoed);
}

/** Starts the server on every listen address (UDP and TCP on the same port). */
export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const o = resolveDnsServerOptions(options);
  const responder = new DnsResponder(o, options.source, options.log, options.queryLog);
  const udp: UdpSocket[] = [];
  const tcp: Server[] = [];
  const conns = new Set<Socket>();
  const addresses: HostPort[] = [];
  const closeAll = async () => {
    for (const c of conns) c.destroy();
    await Promise.all([
      ...udp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))),
      ...tcp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))),
    ]);
  };
  try {
    for (const at of o.listen) {
      // With port 0, the UDP port picked may be taken for TCP: pick again a few times.
      for (let attempt = 0; ; attempt++) {
        const u = await bindUdp(at, responder, options.log);
        const port = (u.address() as { port: number }).port;
        try {
          tcp.push(await listenTcp({ ...at, port }, responder, o.tcpIdleTimeoutMs, conns, options.log));
          udp.push(u);
          addresses.push({ ...at, port });
          break;
        } catch (e) {
          u.close();
          if (at.port !== 0 || attempt >= 5) throw e;
        }
      }
    }
  } catch (e) {
    await closeAll();
    const err = e as NodeJS.ErrnoException;
    throw new DnsArgumentError('listen', `cannot serve DNS there: ${err.code ?? err.message}`);
  }
  return { addresses, zone: o.zone, close: closeAll };
}

function bindUdp(at: HostPort, responder: DnsResponder, log?: (l: string) => void): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket(at.family === 6 ? 'udp6' : 'udp4');
    s.once('error', reject);
    s.bind({ address: at.host, port: at.port, exclusive: true }, () => {
      s.off('error', reject);
      s.on('error', (e) => log?.(`udp ${formatHostPort(at)}: ${e.message}`));
      s.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
        const client = formatHostPort({ host: rinfo.address, port: rinfo.port });
        void responder
          .respond(msg, 'udp', client)
          .then((out) => out && s.send(out, rinfo.port, rinfo.address))
          .catch((e: Error) => log?.(`${client} udp: ${e.message}`));
      });
      resolve(s);
    });
  });
}

function listenTcp(
  at: HostPort,
  responder: DnsResponder,
  idleMs: number,
  conns: Set<Socket>,
  log?: (l: string) => void,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((c) => {
      const client = formatHostPort({ host: c.remoteAddress ?? '?', port: c.remotePort ?? 0 });
      serveTcpConnection(c, (msg) => responder.respond(msg, 'tcp', client), conns, {
        idleTimeoutMs: idleMs,
        onError: (e) => log?.(`${client} tcp: ${e.message}`),
      });
    });
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', reject);
      server.on('error', (e) => log?.(`tcp ${formatHostPort(at)}: ${e.message}`));
      resolve(server);
    });
  });
}
