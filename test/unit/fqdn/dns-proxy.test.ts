/**
 * The DNS proxy over real UDP and TCP sockets on loopback, in front of a real DNS server (the
 * cluster DNS server of src/dns): rule checks, REFUSED, answers held until their IPs are allowed,
 * malformed and random input.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { type DnsServer, MemoryRecordSource, startDnsServer } from '../../../src/dns/index.js';
import { selectorPattern } from '../../../src/fqdn/match.js';
import {
  type DnsAnswerInfo,
  type DnsProxyEvent,
  DnsProxyHandler,
  RCODE,
} from '../../../src/proxy/dns/handler.js';
import { type DnsProxyServer, startDnsProxyServer } from '../../../src/proxy/dns/server.js';
import { decode, framed, queryPacket, tcpExchange, udpExchange } from '../dns/wire.js';

const svc = (name: string, ip: string) => ({
  name,
  namespace: 'default',
  clusterIPs: [ip],
  headless: false,
  ports: [{ port: 80, protocol: 'TCP' as const }],
  endpoints: [],
});

describe('dns proxy (real sockets)', () => {
  let upstream: DnsServer;
  let proxy: DnsProxyServer;
  let handler: DnsProxyHandler;
  const records = new MemoryRecordSource({
    services: [svc('web', '10.96.0.10'), svc('db', '10.96.0.11')],
    pods: [],
  });
  const upstreamQueries: string[] = [];
  const answers: DnsAnswerInfo[] = [];
  const events: DnsProxyEvent[] = [];
  /** What onAnswer does; a test swaps it. */
  let onAnswer: (i: DnsAnswerInfo) => Promise<void> = async (i) => {
    answers.push(i);
  };
  const patterns = [
    selectorPattern({ matchPattern: 'web.*.svc.cluster.local' }),
    selectorPattern({ matchName: 'nowhere.default.svc.cluster.local' }),
  ];

  before(async () => {
    upstream = await startDnsServer({
      listen: ['127.0.0.1:0'],
      source: records,
      ttl: 7,
      queryLog: (l) => upstreamQueries.push(l),
    });
    handler = new DnsProxyHandler({
      rules: (ctx) => (ctx.source.host === '127.0.0.1' ? { endpointId: 42, patterns } : undefined),
      onAnswer: (i) => onAnswer(i),
      onEvent: (e) => events.push(e),
      maxDelayMs: 300,
      upstreamTimeoutMs: 500,
    });
    proxy = await startDnsProxyServer({
      port: 0,
      handler,
      destinationOf: () => upstream.addresses[0]!,
    });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  it('forwards an allowed query to the server asked, and hands the IPs over first', async () => {
    answers.length = 0;
    const r = decode(
      await udpExchange(proxy.port, queryPacket('web.default.svc.cluster.local', 'A', { id: 7 })),
    );
    assert.equal(r.id, 7);
    assert.equal(r.rcode, 'NOERROR');
    assert.deepEqual(
      (r.answers ?? []).map((a) => (a as { data: string }).data),
      ['10.96.0.10'],
    );
    assert.deepEqual(answers, [
      {
        endpointId: 42,
        name: 'web.default.svc.cluster.local.',
        ips: [{ ip: '10.96.0.10', ttl: 7 }],
        cnames: [],
      },
    ]);
  });

  it('holds the answer until the IPs are allowed', async () => {
    let allowedAt = 0;
    onAnswer = async () => {
      await new Promise((r) => setTimeout(r, 120));
      allowedAt = Date.now();
    };
    try {
      const r = await udpExchange(proxy.port, queryPacket('WEB.default.svc.cluster.local', 'A'));
      const receivedAt = Date.now();
      assert.equal(decode(r).rcode, 'NOERROR');
      assert.ok(allowedAt > 0 && allowedAt <= receivedAt, 'the answer left only after onAnswer finished');
    } finally {
      onAnswer = async (i) => {
        answers.push(i);
      };
    }
  });

  it('releases the answer after maxDelayMs when allowing never finishes, and counts it', async () => {
    const before = handler.stats.releasedUnconfirmed;
    onAnswer = () => new Promise(() => {});
    try {
      const t0 = Date.now();
      const r = decode(
        await udpExchange(proxy.port, queryPacket('web.default.svc.cluster.local', 'A'), 2000),
      );
      assert.equal(r.rcode, 'NOERROR');
      assert.ok(Date.now() - t0 >= 280);
      assert.equal(handler.stats.releasedUnconfirmed, before + 1);
    } finally {
      onAnswer = async (i) => {
        answers.push(i);
      };
    }
  });

  it('answers REFUSED for a name no rule allows, without asking the server', async () => {
    upstreamQueries.length = 0;
    answers.length = 0;
    const r = decode(
      await udpExchange(proxy.port, queryPacket('db.default.svc.cluster.local', 'A', { id: 9 })),
    );
    assert.equal(r.id, 9);
    assert.equal(r.rcode, 'REFUSED');
    assert.deepEqual(r.questions, [{ name: 'db.default.svc.cluster.local', type: 'A', class: 'IN' }]);
    assert.equal(r.answers?.length ?? 0, 0);
    assert.deepEqual(upstreamQueries, []);
    assert.deepEqual(answers, []);
    const ev = events.filter((e) => e.query === 'db.default.svc.cluster.local.');
    assert.deepEqual(
      ev.map((e) => [e.type, e.verdict, e.rcode]),
      [['request', 'denied', RCODE.REFUSED]],
    );
  });

  it('a pattern that does not cross dots refuses deeper names', async () => {
    const r = decode(await udpExchange(proxy.port, queryPacket('web.x.default.svc.cluster.local', 'A')));
    assert.equal(r.rcode, 'REFUSED');
  });

  it('refuses every query of a source without DNS rules', async () => {
    const h = new DnsProxyHandler({ rules: () => undefined });
    const out = await h.handle(queryPacket('web.default.svc.cluster.local', 'A'), {
      transport: 'udp',
      source: { host: '10.0.0.1', port: 1 },
      destination: upstream.addresses[0]!,
    });
    assert.equal(decode(out).rcode, 'REFUSED');
  });

  it('passes an allowed NXDOMAIN through and learns nothing from it', async () => {
    answers.length = 0;
    const r = decode(await udpExchange(proxy.port, queryPacket('nowhere.default.svc.cluster.local', 'A')));
    assert.equal(r.rcode, 'NXDOMAIN');
    assert.deepEqual(answers, []);
  });

  it('over TCP: several queries on one connection, allowed and refused', async () => {
    const [a, b, c] = await tcpExchange(
      proxy.port,
      [
        framed(queryPacket('web.default.svc.cluster.local', 'A', { id: 1 })),
        framed(queryPacket('db.default.svc.cluster.local', 'A', { id: 2 })),
        framed(queryPacket('web.default.svc.cluster.local', 'AAAA', { id: 3 })),
      ],
      3,
    );
    const byId = new Map([a, b, c].map((x) => [decode(x).id, decode(x)]));
    assert.equal(byId.get(1)!.rcode, 'NOERROR');
    assert.equal(byId.get(2)!.rcode, 'REFUSED');
    assert.equal(byId.get(3)!.rcode, 'NOERROR');
  });

  it('SERVFAIL when the server asked does not answer', async () => {
    const dead = createSocket('udp4');
    await new Promise<void>((r) => dead.bind(0, '127.0.0.1', () => r()));
    try {
      const h = new DnsProxyHandler({
        rules: () => ({ endpointId: 1, patterns: ['*'] }),
        upstreamTimeoutMs: 100,
      });
      const out = await h.handle(queryPacket('web.default.svc.cluster.local', 'A'), {
        transport: 'udp',
        source: { host: '127.0.0.1', port: 1 },
        destination: { host: '127.0.0.1', port: (dead.address() as { port: number }).port, family: 4 },
      });
      assert.equal(decode(out).rcode, 'SERVFAIL');
      assert.equal(h.stats.upstreamFailures, 1);
    } finally {
      dead.close();
    }
  });

  it('many queries in flight to one server share its sockets, each gets its own answer with its own ID', async () => {
    const h = new DnsProxyHandler({ rules: () => ({ endpointId: 1, patterns: ['*'] }) });
    try {
      const ctx = {
        transport: 'udp' as const,
        source: { host: '127.0.0.1', port: 1 },
        destination: upstream.addresses[0]!,
      };
      const names = ['web', 'db', 'nope'];
      const outs = await Promise.all(
        Array.from({ length: 120 }, (_, i) =>
          h.handle(queryPacket(`${names[i % 3]}.default.svc.cluster.local`, 'A', { id: i }), ctx),
        ),
      );
      for (const [i, o] of outs.entries()) {
        const r = decode(o);
        assert.equal(r.id, i);
        assert.equal(r.questions?.[0]?.name, `${names[i % 3]}.default.svc.cluster.local`);
        const want = i % 3 === 0 ? ['10.96.0.10'] : i % 3 === 1 ? ['10.96.0.11'] : [];
        assert.deepEqual(
          (r.answers ?? []).map((a) => (a as { data: string }).data),
          want,
        );
      }
    } finally {
      h.close();
    }
  });

  it('an answer from the server with another question is not taken (SERVFAIL after the timeout)', async () => {
    const liar = createSocket('udp4');
    await new Promise<void>((r) => liar.bind(0, '127.0.0.1', () => r()));
    liar.on('message', (m, rinfo) => {
      const q = dnsPacket.decode(m);
      const forged = dnsPacket.encode({
        type: 'response',
        id: q.id ?? 0,
        questions: [{ name: 'evil.example.com', type: 'A' }],
        answers: [{ name: 'evil.example.com', type: 'A', ttl: 60, data: '203.0.113.66' }],
      });
      liar.send(forged, rinfo.port, rinfo.address);
    });
    const learnt: DnsAnswerInfo[] = [];
    const h = new DnsProxyHandler({
      rules: () => ({ endpointId: 1, patterns: ['*'] }),
      onAnswer: async (i) => {
        learnt.push(i);
      },
      upstreamTimeoutMs: 200,
    });
    try {
      const out = await h.handle(queryPacket('web.default.svc.cluster.local', 'A'), {
        transport: 'udp',
        source: { host: '127.0.0.1', port: 1 },
        destination: { host: '127.0.0.1', port: (liar.address() as { port: number }).port, family: 4 },
      });
      assert.equal(decode(out).rcode, 'SERVFAIL');
      assert.deepEqual(learnt, []);
    } finally {
      h.close();
      liar.close();
    }
  });

  it('malformed queries: nothing for a runt or a response, FORMERR for garbage and for two questions', async () => {
    assert.equal(await udpExchange(proxy.port, Buffer.from([1, 2, 3]), 200), undefined);
    const resp = queryPacket('web.default.svc.cluster.local', 'A');
    resp[2] = resp[2]! | 0x80;
    assert.equal(await udpExchange(proxy.port, resp, 200), undefined);
    const garbage = Buffer.concat([
      Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]),
      Buffer.from([63]),
    ]);
    const g = decode(await udpExchange(proxy.port, garbage));
    assert.equal(g.id, 0x1234);
    assert.equal(g.rcode, 'FORMERR');
    const two = dnsPacket.encode({
      type: 'query',
      id: 5,
      questions: [
        { name: 'web.default.svc.cluster.local', type: 'A' },
        { name: 'db.default.svc.cluster.local', type: 'A' },
      ],
    });
    assert.equal(decode(await udpExchange(proxy.port, two)).rcode, 'FORMERR');
  });

  it('fuzz: random and truncated packets never crash or stall it', async () => {
    const valid = queryPacket('web.default.svc.cluster.local', 'A');
    const inputs: Buffer[] = [];
    for (let i = 0; i < 300; i++) inputs.push(randomBytes(Math.floor(Math.random() * 80)));
    for (let n = 0; n < valid.length; n++) inputs.push(valid.subarray(0, n));
    for (let i = 0; i < 200; i++) {
      const b = Buffer.from(valid);
      for (let k = 0; k < 3; k++) b[Math.floor(Math.random() * b.length)] = Math.floor(Math.random() * 256);
      b[2] = b[2]! & 0x7f; // stay a query so it is parsed further
      inputs.push(b);
    }
    const ctx = {
      transport: 'udp' as const,
      source: { host: '127.0.0.1', port: 1 },
      destination: upstream.addresses[0]!,
    };
    const fuzzHandler = new DnsProxyHandler({
      rules: () => ({ endpointId: 1, patterns }),
      upstreamTimeoutMs: 200,
    });
    const t0 = Date.now();
    const outs = await Promise.all(inputs.map((m) => fuzzHandler.handle(m, ctx)));
    for (const [i, o] of outs.entries()) {
      if (o === undefined) continue;
      assert.ok(o.length >= 12, `input ${i}: an answer is at least a header`);
      assert.equal(o.readUInt16BE(0), inputs[i]!.readUInt16BE(0), `input ${i}: the query's id`);
    }
    assert.ok(Date.now() - t0 < 10_000);
    // Over the real sockets too, then a valid query still gets its answer.
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    for (const m of inputs) s.send(m, proxy.port, '127.0.0.1');
    const tcpJunk = await new Promise<void>((resolve) => {
      import('node:net').then(({ connect }) => {
        const c = connect({ host: '127.0.0.1', port: proxy.port }, () => {
          c.write(
            Buffer.concat([Buffer.from([0x00, 0x05]), randomBytes(5), Buffer.from([0x00, 0x03, 1, 2, 3])]),
          );
          c.end();
        });
        c.on('close', () => resolve());
        c.on('error', () => resolve());
      });
    });
    void tcpJunk;
    await new Promise((r) => setTimeout(r, 300));
    s.close();
    const r = decode(await udpExchange(proxy.port, queryPacket('web.default.svc.cluster.local', 'A')));
    assert.equal(r.rcode, 'NOERROR');
  });
});
