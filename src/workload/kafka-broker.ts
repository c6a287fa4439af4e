/**
 * A small single-node Kafka-protocol broker for lab pods and tests (no Kafka package exists here): an
 * in-memory log per topic-partition, enough of the protocol for real clients (kafkajs) to produce and
 * to consume in a group. It speaks ApiVersions, Metadata (topics are created on first mention),
 * Produce and Fetch with v2 record batches (stored as sent; only the base offset is assigned), and
 * ListOffsets, and is its own group coordinator: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup, OffsetCommit, OffsetFetch. A group rebalances whenever a member joins (members that
 * joined before learn it on their next heartbeat); there is no replication, retention or transaction.
 *
 * Requests of one connection are answered in order, as Kafka does. Run in a pod:
 *   node kafka-broker.js --port 9092 [--host ADDR] [--advertise HOST:PORT] [--partitions N]
 * It prints `ready {"port":...}` once listening and runs until SIGTERM.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { FrameSplitter } from '../proxy/kafka/filter.js';
import { Reader, Writer } from '../proxy/kafka/wire.js';

/** The versions this broker speaks, per API key (a client picks the highest both sides know). */
export const BROKER_VERSIONS: ReadonlyMap<number, readonly [number, number]> = new Map([
  [0, [3, 7]], // Produce (record batches from v3)
  [1, [4, 11]], // Fetch
  [2, [1, 3]], // ListOffsets
  [3, [1, 6]], // Metadata
  [8, [2, 5]], // OffsetCommit
  [9, [1, 4]], // OffsetFetch
  [10, [0, 2]], // FindCoordinator
  [11, [0, 5]], // JoinGroup
  [12, [0, 3]], // Heartbeat
  [13, [0, 3]], // LeaveGroup
  [14, [0, 3]], // SyncGroup
  [18, [0, 2]], // ApiVersions
]);

const E = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  CORRUPT_MESSAGE: 2,
  ILLEGAL_GENERATION: 22,
  UNKNOWN_MEMBER_ID: 25,
  REBALANCE_IN_PROGRESS: 27,
  UNSUPPORTED_VERSION: 35,
} as const;

const NODE_ID = 0;

export interface KafkaBrokerOptions {
  readonly port: number;
  readonly host?: string;
  /**
   * The address clients are told to connect to (Metadata, FindCoordinator); by default the address
   * the client reached (the connection's local address) and the listening port.
   */
  readonly advertise?: { host: string; port: number };
  /** Partitions of an auto-created topic (default 1). */
  readonly partitions?: number;
  readonly log?: (line: string) => void;
}

interface Batch {
  readonly base: number;
  readonly last: number;
  readonly data: Buffer;
}

interface PartitionLog {
  readonly batches: Batch[];
  next: number;
}

interface Member {
  readonly id: string;
  metadata: Buffer;
  lastSeen: number;
  sessionTimeoutMs: number;
}

interface Group {
  generation: number;
  leader: string;
  protocol: string;
  readonly members: Map<string, Member>;
  assignments: Map<string, Buffer>;
  readonly offsets: Map<string, { offset: bigint; metadata: string | null }>;
}

export interface KafkaBroker {
  readonly port: number;
  readonly server: Server;
  /** Records stored in a partition (for tests and the bench): the next offset to be assigned. */
  logEnd(topic: string, partition: number): number | undefined;
  close(): Promise<void>;
}

export async function startKafkaBroker(opts: KafkaBrokerOptions): Promise<KafkaBroker> {
  const topics = new Map<string, PartitionLog[]>();
  const groups = new Map<string, Group>();
  let appended: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const partitionsPerTopic = opts.partitions ?? 1;
  const log = opts.log ?? (() => {});

  const ensureTopic = (name: string): PartitionLog[] => {
    let t = topics.get(name);
    if (!t) {
      t = Array.from({ length: partitionsPerTopic }, () => ({ batches: [], next: 0 }));
      topics.set(name, t);
      log(`topic ${name} created with ${partitionsPerTopic} partition(s)`);
    }
    return t;
  };

  const server = createServer((sock) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    const frames = new FrameSplitter(100 * 1024 * 1024);
    let chain = Promise.resolve();
    sock.on('data', (d: Buffer) => {
      let list: Buffer[];
      try {
        list = frames.push(d);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of list)
        chain = chain.then(async () => {
          if (sock.destroyed) return;
          const out = await handle(f, advertisedTo(sock)).catch((e: Error) => {
            log(`closing connection: ${e.message}`);
            return null;
          });
          if (out === null) sock.destroy();
          else if (out.length > 0) sock.write(out);
        });
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const advertisedTo = (sock: Socket): { host: string; port: number } =>
    opts.advertise ?? { host: (sock.localAddress ?? '127.0.0.1').replace(/^::ffff:(?=\d+\.)/i, ''), port };

  /** Answers one request frame: the response frame, [] for none (acks=0), null to close. */
  async function handle(frame: Buffer, adv: { host: string; port: number }): Promise<Buffer | null> {
    const r = new Reader(frame);
    const key = r.int16();
    const v = r.int16();
    const corr = r.int32();
    r.nullableString(); // client id
    const range = BROKER_VERSIONS.get(key);
    const w = new Writer().int32(corr);
    if (key === 18 && (range === undefined || v > (range[1] as number))) {
      // As Kafka: an ApiVersions request of a newer version gets a v0 answer saying so.
      w.int16(E.UNSUPPORTED_VERSION);
      writeVersions(w);
      return w.toFrame();
    }
    if (range === undefined || v < range[0] || v > range[1])
      throw new Error(`api key ${key} v${v} not supported`);
    switch (key) {
      case 18:
        w.int16(E.NONE);
        writeVersions(w);
        if (v >= 1) w.int32(0);
        break;
      case 3:
        metadata(r, v, w, adv);
        break;
      case 0:
        if (!produce(r, v, w)) return Buffer.alloc(0);
        break;
      case 1:
        await fetch(frame, r.pos, v, w);
        break;
      case 2:
        listOffsets(r, v, w);
        break;
      case 10:
        if (v >= 1) w.int32(0);
        w.int16(E.NONE);
        if (v >= 1) w.string(null);
        w.int32(NODE_ID).string(adv.host).int32(adv.port);
        break;
      case 11:
        joinGroup(r, v, w);
        break;
      case 14:
        syncGroup(r, v, w);
        break;
      case 12:
        heartbeat(r, v, w);
        break;
      case 13:
        leaveGroup(r, v, w);
        break;
      case 8:
        offsetCommit(r, v, w);
        break;
      case 9:
        offsetFetch(r, v, w);
        break;
    }
    return w.toFrame();
  }

  function writeVersions(w: Writer): void {
    w.array([...BROKER_VERSIONS], ([k, [min, max]]) => {
      w.int16(k).int16(min).int16(max);
    });
  }

  function metadata(r: Reader, v: number, w: Writer, adv: { host: string; port: number }): void {
    const n = r.arrayLength(2);
    const names: string[] = [];
    for (let i = 0; i < n; i++) names.push(r.string());
    const autoCreate = v >= 4 ? r.int8() !== 0 : true;
    const wanted = n < 0 ? [...topics.keys()] : names;
    if (autoCreate) for (const t of wanted) ensureTopic(t);
    if (v >= 3) w.int32(0);
    w.array([adv], (b) => {
      w.int32(NODE_ID).string(b.host).int32(b.port).string(null);
    });
    if (v >= 2) w.string('cilium-ts-lab');
    w.int32(NODE_ID);
    w.array(wanted, (name) => {
      const t = topics.get(name);
      w.int16(t ? E.NONE : E.UNKNOWN_TOPIC_OR_PARTITION)
        .string(name)
        .bool(false);
      w.array(
        (t ?? []).map((_, i) => i),
        (p) => {
          w.int16(E.NONE).int32(p).int32(NODE_ID);
          w.array([NODE_ID], (x) => w.int32(x));
          w.array([NODE_ID], (x) => w.int32(x));
          if (v >= 5) w.array([], () => {});
        },
      );
    });
  }

  /** Returns false for acks=0 (no response). */
  function produce(r: Reader, v: number, w: Writer): boolean {
    if (v >= 3) r.nullableString();
    const acks = r.int16();
    r.int32();
    const results = r.array(() => {
      const name = r.string();
      const parts = r.array(() => {
        const index = r.int32();
        const records = r.bytes();
        const p = topics.get(name)?.[index];
        if (!p) return { index, error: E.UNKNOWN_TOPIC_OR_PARTITION, base: -1 };
        const base = p.next;
        if (records && !appendBatches(p, records)) return { index, error: E.CORRUPT_MESSAGE, base: -1 };
        return { index, error: E.NONE, base };
      });
      return { name, parts };
    });
    const wake = appended;
    appended = [];
    for (const f of wake) f();
    if (acks === 0) return false;
    w.array(results, (t) => {
      w.string(t.name).array(t.parts, (p) => {
        w.int32(p.index).int16(p.error).int64(p.base).int64(-1n);
        if (v >= 5) w.int64(0n);
      });
    });
    w.int32(0);
    return true;
  }

  /** Stores v2 record batches, assigning base offsets; false if a batch is not one. */
  function appendBatches(p: PartitionLog, records: Buffer): boolean {
    const batches: Batch[] = [];
    let next = p.next;
    let at = 0;
    while (at < records.length) {
      if (records.length - at < 61) return false;
      const len = records.readInt32BE(at + 8);
      const magic = records.readInt8(at + 16);
      if (magic !== 2 || len < 49 || at + 12 + len > records.length) return false;
      const data = Buffer.from(records.subarray(at, at + 12 + len));
      const lastDelta = data.readInt32BE(23);
      data.writeBigInt64BE(BigInt(next), 0);
      batches.push({ base: next, last: next + lastDelta, data });
      next += lastDelta + 1;
      at += 12 + len;
    }
    p.batches.push(...batches);
    p.next = next;
    return true;
  }

  async function fetch(frame: Buffer, bodyAt: number, v: number, w: Writer): Promise<void> {
    const parse = () => {
      const r = new Reader(frame);
      r.pos = bodyAt;
      r.int32();
      const maxWait = r.int32();
      const minBytes = r.int32();
      if (v >= 3) r.int32();
      if (v >= 4) r.int8();
      if (v >= 7) r.skip(8);
      const req = r.array(() => {
        const name = r.string();
        const parts = r.array(() => {
          const index = r.int32();
          if (v >= 9) r.int32();
          const offset = Number(r.int64());
          if (v >= 5) r.int64();
          const maxBytes = r.int32();
          return { index, offset, maxBytes };
        });
        return { name, parts };
      });
      return { maxWait, minBytes, req };
    };
    const { maxWait, minBytes, req } = parse();
    const collect = () => {
      let total = 0;
      const res = req.map((t) => ({
        name: t.name,
        parts: t.parts.map((q) => {
          const p = topics.get(t.name)?.[q.index];
          if (!p)
            return { index: q.index, error: E.UNKNOWN_TOPIC_OR_PARTITION, hw: -1, data: Buffer.alloc(0) };
          const out: Buffer[] = [];
          let size = 0;
          for (const b of p.batches) {
            if (b.last < q.offset) continue;
            if (size > 0 && size + b.data.length > q.maxBytes) break;
            out.push(b.data);
            size += b.data.length;
          }
          total += size;
          return { index: q.index, error: E.NONE, hw: p.next, data: Buffer.concat(out) };
        }),
      }));
      return { res, total };
    };
    let got = collect();
    if (got.total < Math.max(minBytes, 1) && maxWait > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, maxWait);
        appended.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      got = collect();
    }
    if (v >= 1) w.int32(0);
    if (v >= 7) w.int16(E.NONE).int32(0);
    w.array(got.res, (t) => {
      w.string(t.name).array(t.parts, (p) => {
        w.int32(p.index).int16(p.error).int64(p.hw);
        if (v >= 4) w.int64(p.hw);
        if (v >= 5) w.int64(0n);
        if (v >= 4) w.array([], () => {});
        if (v >= 11) w.int32(-1);
        w.bytes(p.data);
      });
    });
  }

  function listOffsets(r: Reader, v: number, w: Writer): void {
    r.int32();
    if (v >= 2) r.int8();
    const req = r.array(() => {
      const name = r.string();
      const parts = r.array(() => ({ index: r.int32(), ts: r.int64() }));
      return { name, parts };
    });
    if (v >= 2) w.int32(0);
    w.array(req, (t) => {
      w.string(t.name).array(t.parts, (q) => {
        const p = topics.get(t.name)?.[q.index];
        if (!p) w.int32(q.index).int16(E.UNKNOWN_TOPIC_OR_PARTITION).int64(-1n).int64(-1n);
        // -2 asks for the earliest offset, anything else is answered with the end of the log.
        else
          w.int32(q.index)
            .int16(E.NONE)
            .int64(-1n)
            .int64(q.ts === -2n ? 0 : p.next);
      });
    });
  }

  function group(id: string): Group {
    let g = groups.get(id);
    if (!g) {
      g = {
        generation: 0,
        leader: '',
        protocol: '',
        members: new Map(),
        assignments: new Map(),
        offsets: new Map(),
      };
      groups.set(id, g);
    }
    return g;
  }

  /** Forgets members whose session ran out. */
  function expire(g: Group): void {
    const now = Date.now();
    for (const [id, m] of g.members) if (now - m.lastSeen > m.sessionTimeoutMs) g.members.delete(id);
  }

  function joinGroup(r: Reader, v: number, w: Writer): void {
    const g = group(r.string());
    const sessionTimeoutMs = r.int32();
    if (v >= 1) r.int32();
    let memberId = r.string();
    if (v >= 5) r.nullableString();
    r.string(); // protocol type
    const protocols = r.array(() => ({ name: r.string(), metadata: r.bytes() ?? Buffer.alloc(0) }));
    expire(g);
    if (memberId === '' || !g.members.has(memberId)) memberId = `${randomUUID()}`;
    const chosen = protocols[0];
    g.members.set(memberId, {
      id: memberId,
      metadata: chosen?.metadata ?? Buffer.alloc(0),
      lastSeen: Date.now(),
      sessionTimeoutMs,
    });
    // Every join starts a new generation led by the joiner, who assigns for all live members.
    g.generation++;
    g.leader = memberId;
    g.protocol = chosen?.name ?? '';
    g.assignments = new Map();
    if (v >= 2) w.int32(0);
    w.int16(E.NONE).int32(g.generation).string(g.protocol).string(g.leader).string(memberId);
    w.array([...g.members.values()], (m) => {
      w.string(m.id);
      if (v >= 5) w.string(null);
      w.bytes(m.metadata);
    });
  }

  function memberError(g: Group, memberId: string, generation: number): number {
    const m = g.members.get(memberId);
    if (!m) return E.UNKNOWN_MEMBER_ID;
    m.lastSeen = Date.now();
    if (generation !== g.generation) return E.REBALANCE_IN_PROGRESS;
    return E.NONE;
  }

  function syncGroup(r: Reader, v: number, w: Writer): void {
    const g = group(r.string());
    const generation = r.int32();
    const memberId = r.string();
    if (v >= 3) r.nullableString();
    const assignments = r.array(() => ({ member: r.string(), data: r.bytes() ?? Buffer.alloc(0) }));
    let err = memberError(g, memberId, generation);
    if (err === E.NONE && memberId === g.leader)
      for (const a of assignments) g.assignments.set(a.member, a.data);
    const mine = g.assignments.get(memberId);
    if (err === E.NONE && mine === undefined) err = E.REBALANCE_IN_PROGRESS;
    if (v >= 1) w.int32(0);
    w.int16(err).bytes(mine ?? Buffer.alloc(0));
  }

  function heartbeat(r: Reader, v: number, w: Writer): void {
    const g = group(r.string());
    const generation = r.int32();
    const memberId = r.string();
    if (v >= 3) r.nullableString();
    if (v >= 1) w.int32(0);
    w.int16(memberError(g, memberId, generation));
  }

  function leaveGroup(r: Reader, v: number, w: Writer): void {
    const g = group(r.string());
    const ids =
      v >= 3 ? r.array(() => [r.string(), r.nullableString()] as const).map(([id]) => id) : [r.string()];
    for (const id of ids) g.members.delete(id);
    if (ids.includes(g.leader)) g.generation++;
    if (v >= 1) w.int32(0);
    w.int16(E.NONE);
    if (v >= 3)
      w.array(ids, (id) => {
        w.string(id).string(null).int16(E.NONE);
      });
  }

  function offsetCommit(r: Reader, v: number, w: Writer): void {
    const g = group(r.string());
    r.int32();
    r.string();
    if (v >= 2 && v <= 4) r.int64();
    const req = r.array(() => {
      const name = r.string();
      const parts = r.array(() => {
        const index = r.int32();
        const offset = r.int64();
        const metadata = r.nullableString();
        g.offsets.set(`${name}/${index}`, { offset, metadata });
        return index;
      });
      return { name, parts };
    });
    if (v >= 3) w.int32(0);
    w.array(req, (t) => {
      w.string(t.name).array(t.parts, (p) => {
        w.int32(p).int16(E.NONE);
      });
    });
  }

  function offsetFetch(r: Reader, v: number, w: Writer): void {
    const g = group(r.string());
    const n = r.arrayLength();
    const req: Array<{ name: string; parts: number[] }> = [];
    for (let i = 0; i < n; i++) req.push({ name: r.string(), parts: r.array(() => r.int32()) });
    if (v >= 3) w.int32(0);
    w.array(req, (t) => {
      w.string(t.name).array(t.parts, (p) => {
        const c = g.offsets.get(`${t.name}/${p}`);
        w.int32(p)
          .int64(c?.offset ?? -1n)
          .string(c?.metadata ?? '')
          .int16(E.NONE);
      });
    });
    if (v >= 2) w.int16(E.NONE);
  }

  return {
    port,
    server,
    logEnd: (topic, partition) => topics.get(topic)?.[partition]?.next,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        for (const f of appended) f();
        server.close(() => resolve());
      }),
  };
}

function parseArgs(argv: readonly string[]): KafkaBrokerOptions {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, def: number): number => {
    const s = get(name);
    const n = s === undefined ? def : Number(s);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name}: expected an integer, got ${s}`);
    return n;
  };
  const adv = get('--advertise');
  let advertise: { host: string; port: number } | undefined;
  if (adv !== undefined) {
    const m = /^(.+):(\d+)$/.exec(adv);
    if (!m) throw new Error(`--advertise: expected HOST:PORT, got ${adv}`);
    advertise = { host: m[1] as string, port: Number(m[2]) };
  }
  const host = get('--host');
  return {
    port: num('--port', 9092),
    partitions: Math.max(1, num('--partitions', 1)),
    ...(host !== undefined ? { host } : {}),
    ...(advertise !== undefined ? { advertise } : {}),
  };
}

async function main(): Promise<void> {
  const broker = await startKafkaBroker({
    ...parseArgs(process.argv.slice(2)),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`ready ${JSON.stringify({ port: broker.port })}\n`);
  const stop = () => void broker.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1]?.endsWith('kafka-broker.js')) {
  main().catch((e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  });
}
