/**
 * The Kafka filter as a TCP proxy (loopback) between kafkajs and the broker workload: allowed produce
 * and consume work, a denied produce gets TOPIC_AUTHORIZATION_FAILED in kafkajs and the same connection
 * keeps serving, pipelined requests are answered in order, malformed input closes without reaching the
 * broker.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  compileKafkaRules,
  FrameSplitter,
  type KafkaRecord,
  type KafkaRuleInput,
  type KafkaTcpProxy,
  startKafkaTcpProxy,
} from '../../../src/proxy/kafka/index.js';
import { type KafkaBroker, startKafkaBroker } from '../../../src/workload/kafka-broker.js';
import { consume, kafkaErrorOf, newKafka, produce } from '../../../src/workload/kafka-client.js';

const require = createRequire(import.meta.url);
const createRequest = require('kafkajs/src/protocol/request.js');

interface Lab {
  broker: KafkaBroker;
  proxy: KafkaTcpProxy;
  records: KafkaRecord[];
  accepted: () => number;
  brokers: string[];
  close: () => Promise<void>;
}

/** A broker behind a filtering proxy; the broker advertises the proxy so clients stay behind it. */
async function lab(rules: KafkaRuleInput[]): Promise<Lab> {
  const upstream = { host: '127.0.0.1', port: 0 };
  const records: KafkaRecord[] = [];
  const proxy = await startKafkaTcpProxy({
    upstream,
    rules: compileKafkaRules(rules),
    onRecord: (r) => records.push(r),
  });
  let accepted = 0;
  proxy.server.on('connection', () => accepted++);
  const broker = await startKafkaBroker({
    port: 0,
    host: '127.0.0.1',
    advertise: { host: '127.0.0.1', port: proxy.port },
  });
  upstream.port = broker.port;
  return {
    broker,
    proxy,
    records,
    accepted: () => accepted,
    brokers: [`127.0.0.1:${proxy.port}`],
    close: async () => {
      await proxy.close();
      await broker.close();
    },
  };
}

describe('kafka proxy with kafkajs', () => {
  describe('roles on topics', () => {
    let l: Lab;
    before(async () => {
      l = await lab([
        { role: 'produce', topic: 'empire-announce' },
        { role: 'consume', topic: 'empire-announce' },
      ]);
    });
    after(() => l.close());

    it('allowed produce and consume work through the proxy', async () => {
      assert.deepEqual(await produce({ brokers: l.brokers, topic: 'empire-announce', count: 3 }), {
        ok: true,
        produced: 3,
      });
      assert.equal(l.broker.logEnd('empire-announce', 0), 3);
      const got = await consume({ brokers: l.brokers, topic: 'empire-announce', count: 3, timeoutMs: 10000 });
      assert.equal(got.ok, true, JSON.stringify(got));
      assert.deepEqual(
        got.consumed?.map((v) => v.split(':')[0]),
        ['0', '1', '2'],
      );
      const keys = new Set(l.records.filter((r) => r.verdict === 'forwarded').map((r) => r.apiKey));
      for (const k of [
        'apiversions',
        'metadata',
        'produce',
        'fetch',
        'joingroup',
        'syncgroup',
        'offsetcommit',
      ])
        assert.ok(keys.has(k), `${k} forwarded`);
    });

    it('producing to another topic: its metadata request is refused with TOPIC_AUTHORIZATION_FAILED', async () => {
      const res = await produce({ brokers: l.brokers, topic: 'deathstar-plans', count: 1 });
      assert.deepEqual([res.ok, res.error, res.code], [false, 'TOPIC_AUTHORIZATION_FAILED', 29]);
      assert.equal(l.broker.logEnd('deathstar-plans', 0), undefined, 'the broker never heard of the topic');
      const denied = l.records.filter((r) => r.verdict === 'denied');
      assert.ok(
        denied.some((r) => r.type === 'response' && r.apiKey === 'metadata' && r.topic === 'deathstar-plans'),
      );
      assert.ok(denied.every((r) => r.errorCode === 29));
    });
  });

  describe('produce denied per topic on a live connection', () => {
    let l: Lab;
    before(async () => {
      l = await lab([
        { apiKey: 'apiversions' },
        { apiKey: 'metadata' },
        { apiKey: 'produce', topic: 'allowed' },
      ]);
    });
    after(() => l.close());

    it('the Produce request is answered with 29 and the next produce on the same connection works', async () => {
      const kafka = await newKafka(l.brokers);
      const producer = kafka.producer({ allowAutoTopicCreation: true });
      await producer.connect();
      try {
        await producer.send({ topic: 'allowed', messages: [{ value: 'one' }] });
        const before = l.accepted();
        const err = await producer.send({ topic: 'denied', messages: [{ value: 'x' }] }).then(
          () => undefined,
          (e: unknown) => kafkaErrorOf(e),
        );
        assert.deepEqual([err?.error, err?.code], ['TOPIC_AUTHORIZATION_FAILED', 29]);
        await producer.send({ topic: 'allowed', messages: [{ value: 'two' }] });
        assert.equal(l.accepted(), before, 'no new connection: the denied request left it usable');
      } finally {
        await producer.disconnect();
      }
      assert.equal(l.broker.logEnd('allowed', 0), 2);
      assert.equal(l.broker.logEnd('denied', 0), 0, 'metadata created the topic, nothing was written');
      const deniedProduce = l.records.find((r) => r.verdict === 'denied' && r.apiKey === 'produce');
      assert.ok(deniedProduce);
      assert.deepEqual(
        [deniedProduce.topic, deniedProduce.apiVersion, deniedProduce.errorCode],
        ['denied', 7, 29],
      );
      const resp = l.records.find(
        (r) => r.type === 'response' && r.apiKey === 'produce' && r.verdict === 'forwarded',
      );
      assert.ok(resp?.latencyNs !== undefined && resp.latencyNs > 0n);
      assert.equal(resp?.errorCode, 0);
    });

    it('pipelined requests: answers come back in request order, the proxy answer slotted between', async () => {
      const frame = async (corr: number, name: string, version: number, args: Record<string, unknown>) => {
        const { request } = require(`kafkajs/src/protocol/requests/${name}/index.js`).protocol({ version })(
          args,
        );
        return (await createRequest({ correlationId: corr, clientId: 'raw', request })).buffer as Buffer;
      };
      const msgs = [{ value: 'p' }];
      const data = (topic: string) => [{ topic, partitions: [{ partition: 0, messages: msgs }] }];
      const burst = Buffer.concat([
        await frame(1, 'produce', 7, { acks: -1, timeout: 1000, topicData: data('allowed') }),
        await frame(2, 'produce', 7, { acks: -1, timeout: 1000, topicData: data('denied') }),
        await frame(3, 'metadata', 6, { topics: ['allowed'] }),
        await frame(4, 'produce', 7, { acks: 0, timeout: 1000, topicData: data('denied') }),
        await frame(5, 'produce', 3, { acks: -1, timeout: 1000, topicData: data('denied') }),
        await frame(6, 'apiVersions', 2, {}),
      ]);
      const sock = connect(l.proxy.port, '127.0.0.1');
      const answers = await new Promise<Buffer[]>((resolve, reject) => {
        const split = new FrameSplitter(1 << 20);
        const got: Buffer[] = [];
        sock.on('data', (d: Buffer) => {
          got.push(...split.push(d));
          if (got.length >= 5) resolve(got);
        });
        sock.on('error', reject);
        sock.write(burst);
      });
      sock.destroy();
      assert.deepEqual(
        answers.map((a) => a.readInt32BE(0)),
        [1, 2, 3, 5, 6],
      );
      const produceError = (a: Buffer) => a.readInt16BE(4 + 4 + 2 + 'denied'.length + 4 + 4);
      assert.equal(produceError(answers[1] as Buffer), 29);
      assert.equal(produceError(answers[3] as Buffer), 29);
      assert.equal(l.broker.logEnd('allowed', 0), 3);
    });
  });

  it('malformed requests close the connection and never reach the broker', async () => {
    const seen: Buffer[] = [];
    const sink = createServer((s: Socket) => s.on('data', (d: Buffer) => seen.push(d)));
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const port = (sink.address() as { port: number }).port;
    const reasons: string[] = [];
    const proxy = await startKafkaTcpProxy({
      upstream: { host: '127.0.0.1', port },
      rules: compileKafkaRules([{}]),
      onClose: (r) => reasons.push(r),
    });
    try {
      for (const junk of [
        Buffer.from([0, 0, 0, 3, 0, 1, 2]), // too short for a header
        Buffer.from([0xff, 0xff, 0xff, 0xff]), // negative size
        Buffer.concat([Buffer.from([0, 0, 0, 10]), Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0x7f])]),
      ]) {
        const sock = connect(proxy.port, '127.0.0.1');
        await new Promise<void>((resolve) => {
          sock.on('close', () => resolve());
          sock.on('error', () => {});
          sock.write(junk);
        });
      }
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(Buffer.concat(seen).length, 0);
      assert.equal(reasons.length, 3);
      assert.ok(
        reasons.every((r) => /malformed request|frame size/.test(r)),
        reasons.join('; '),
      );
    } finally {
      await proxy.close();
      await new Promise((r) => sink.close(r));
    }
  });
});
