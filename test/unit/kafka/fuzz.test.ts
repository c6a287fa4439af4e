/**
 * Fuzzing the Kafka filter with random, truncated and mutated input (seeded, so a failure replays):
 * it never throws, and a complete frame always ends in a decision (forwarded, answered or closed),
 * never in silence.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import {
  compileKafkaRules,
  decodeRequest,
  type FilterOutput,
  KafkaDecodeError,
  KafkaFilter,
} from '../../../src/proxy/kafka/index.js';

const require = createRequire(import.meta.url);
const createRequest = require('kafkajs/src/protocol/request.js');

/** xorshift32: deterministic random numbers. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

async function realFrames(): Promise<Buffer[]> {
  const make = async (name: string, version: number, args: Record<string, unknown>) => {
    const { request } = require(`kafkajs/src/protocol/requests/${name}/index.js`).protocol({ version })(args);
    return (await createRequest({ correlationId: 1, clientId: 'fuzz', request })).buffer as Buffer;
  };
  const msgs = [{ value: 'hello' }];
  return [
    await make('produce', 7, {
      acks: -1,
      timeout: 100,
      topicData: [{ topic: 'a', partitions: [{ partition: 0, messages: msgs }] }],
    }),
    await make('produce', 2, {
      acks: 1,
      timeout: 100,
      topicData: [{ topic: 'b', partitions: [{ partition: 0, messages: msgs }] }],
    }),
    await make('fetch', 11, {
      replicaId: -1,
      maxWaitTime: 1,
      minBytes: 1,
      maxBytes: 10,
      topics: [{ topic: 'a', partitions: [{ partition: 0, fetchOffset: '0', maxBytes: 10 }] }],
    }),
    await make('metadata', 6, { topics: ['a', 'b'] }),
    await make('listOffsets', 3, { replicaId: -1, topics: [{ topic: 'a', partitions: [{ partition: 0 }] }] }),
    await make('offsetCommit', 5, {
      groupId: 'g',
      groupGenerationId: 1,
      memberId: 'm',
      topics: [{ topic: 'a', partitions: [{ partition: 0, offset: '1' }] }],
    }),
    await make('offsetFetch', 4, { groupId: 'g', topics: [{ topic: 'a', partitions: [{ partition: 0 }] }] }),
    await make('apiVersions', 2, {}),
  ];
}

const rules = compileKafkaRules([{ role: 'produce', topic: 'a' }, { apiKey: 'offsetcommit' }]);

function feed(f: KafkaFilter, data: Buffer, rand: () => number, side: 'req' | 'resp'): FilterOutput[] {
  const outs: FilterOutput[] = [];
  let at = 0;
  while (at < data.length) {
    const n = 1 + Math.floor(rand() * Math.min(64, data.length - at));
    const chunk = data.subarray(at, at + n);
    outs.push(side === 'req' ? f.onRequestData(chunk) : f.onResponseData(chunk));
    at += n;
  }
  return outs;
}

describe('kafka filter fuzz', () => {
  it('random bytes on either side never throw', () => {
    const rand = rng(0xc111);
    for (let i = 0; i < 2000; i++) {
      const f = new KafkaFilter({ rules, maxRequestBytes: 1 << 20 });
      const len = Math.floor(rand() * 300);
      const data = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
      if (rand() < 0.5 && len >= 4) data.writeInt32BE(len - 4, 0); // plausible size prefix
      feed(f, data, rand, rand() < 0.7 ? 'req' : 'resp');
    }
  });

  it('every truncation of a real request is a KafkaDecodeError, never another failure', async () => {
    for (const framed of await realFrames()) {
      const frame = framed.subarray(4);
      decodeRequest(frame);
      for (let cut = 0; cut < frame.length; cut++) {
        try {
          decodeRequest(frame.subarray(0, cut));
        } catch (e) {
          assert.ok(e instanceof KafkaDecodeError, `cut ${cut}: ${(e as Error).message}`);
        }
      }
    }
  });

  it('mutated real requests: a complete frame is always forwarded, answered or closed', async () => {
    const frames = await realFrames();
    const rand = rng(0x5eed);
    for (let i = 0; i < 5000; i++) {
      const src = frames[Math.floor(rand() * frames.length)] as Buffer;
      const data = Buffer.from(src);
      const flips = 1 + Math.floor(rand() * 4);
      for (let j = 0; j < flips; j++) {
        const at = 4 + Math.floor(rand() * (data.length - 4));
        data[at] = Math.floor(rand() * 256);
      }
      const f = new KafkaFilter({ rules, maxRequestBytes: 1 << 20 });
      const outs = feed(f, data, rand, 'req');
      const decided = outs.some(
        (o) => o.close !== undefined || o.toServer.length > 0 || o.toClient.length > 0,
      );
      assert.ok(decided, `mutation ${i} of a ${data.length}-byte frame ended in silence`);
    }
  });

  it('a size beyond the limit or negative closes at once', () => {
    for (const size of [-1, -100, 1 << 21]) {
      const f = new KafkaFilter({ rules, maxRequestBytes: 1 << 20 });
      const b = Buffer.alloc(4);
      b.writeInt32BE(size, 0);
      assert.match(f.onRequestData(b).close ?? '', /frame size/);
      assert.match(f.onRequestData(Buffer.from([0])).close ?? '', /frame size/);
    }
  });

  it('a response answering nothing outstanding closes', () => {
    const f = new KafkaFilter({ rules });
    const b = Buffer.alloc(12);
    b.writeInt32BE(8, 0);
    b.writeInt32BE(77, 4);
    assert.match(f.onResponseData(b).close ?? '', /correlation id 77 answers no outstanding request/);
  });
});
