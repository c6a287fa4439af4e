/**
 * The broker workload with a real client (kafkajs) on loopback: produce and consume over several
 * partitions, offsets committed by a group and resumed by the next consumer of that group, a fetch
 * that waits for data, acks=0, and the address it advertises.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type KafkaBroker, startKafkaBroker } from '../../../src/workload/kafka-broker.js';
import { consume, newKafka, produce } from '../../../src/workload/kafka-client.js';

describe('kafka broker workload with kafkajs', () => {
  let broker: KafkaBroker;
  let brokers: string[];
  before(async () => {
    broker = await startKafkaBroker({ port: 0, host: '127.0.0.1', partitions: 3 });
    brokers = [`127.0.0.1:${broker.port}`];
  });
  after(() => broker.close());

  it('creates a topic when a producer mentions it, not when an admin asks without auto-creation', async () => {
    const admin = (await newKafka(brokers)).admin();
    await admin.connect();
    try {
      assert.deepEqual(await admin.listTopics(), []);
      await assert.rejects(
        admin.fetchTopicMetadata({ topics: ['rebels'] }),
        /does not host this topic-partition/,
      );
      assert.deepEqual(await produce({ brokers, topic: 'rebels', count: 2 }), { ok: true, produced: 2 });
      const md = await admin.fetchTopicMetadata({ topics: ['rebels'] });
      assert.deepEqual(
        md.topics[0]?.partitions.map((p) => [p.partitionId, p.leader]),
        [
          [0, 0],
          [1, 0],
          [2, 0],
        ],
      );
      const offsets = await admin.fetchTopicOffsets('rebels');
      assert.equal(
        offsets.reduce((n, o) => n + Number(o.high), 0),
        2,
      );
    } finally {
      await admin.disconnect();
    }
  });

  it('messages spread over partitions come back, each partition in order', async () => {
    assert.deepEqual(await produce({ brokers, topic: 'spread', count: 30, size: 4 }), {
      ok: true,
      produced: 30,
    });
    const ends = [0, 1, 2].map((p) => broker.logEnd('spread', p) ?? 0);
    assert.equal(
      ends.reduce((a, b) => a + b, 0),
      30,
    );
    const got = await consume({ brokers, topic: 'spread', count: 30, group: 'g-spread', timeoutMs: 15000 });
    assert.equal(got.ok, true, JSON.stringify(got));
    assert.deepEqual(
      got.consumed?.map((v) => Number(v.split(':')[0])).sort((a, b) => a - b),
      Array.from({ length: 30 }, (_, i) => i),
    );
  });

  it('a group resumes from its committed offsets; a fetch waits for new data', async () => {
    await produce({ brokers, topic: 'resume', count: 3 });
    const first = await consume({ brokers, topic: 'resume', count: 3, group: 'g-resume', timeoutMs: 15000 });
    assert.equal(first.consumed?.length, 3);
    // The next consumer of the group, started before the new messages exist, gets only those.
    const next = consume({ brokers, topic: 'resume', count: 2, group: 'g-resume', timeoutMs: 15000 });
    await new Promise((r) => setTimeout(r, 1500));
    const kafka = await newKafka(brokers);
    const p = kafka.producer();
    await p.connect();
    await p.send({
      topic: 'resume',
      messages: [
        { value: 'new-1', partition: 0 },
        { value: 'new-2', partition: 0 },
      ],
    });
    await p.disconnect();
    const got = await next;
    assert.equal(got.ok, true, JSON.stringify(got));
    assert.deepEqual(got.consumed, ['new-1', 'new-2']);
  });

  it('acks=0 produce is stored without an answer', async () => {
    const p = (await newKafka(brokers)).producer();
    await p.connect();
    await p.send({ topic: 'fire-and-forget', acks: 0, messages: [{ value: 'a', partition: 1 }] });
    // An acknowledged send on the same connection after it proves the broker went on reading.
    await p.send({ topic: 'fire-and-forget', acks: -1, messages: [{ value: 'b', partition: 1 }] });
    await p.disconnect();
    assert.equal(broker.logEnd('fire-and-forget', 1), 2);
  });
});
