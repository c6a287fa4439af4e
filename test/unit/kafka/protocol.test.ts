/**
 * The Kafka decoder and error responses against a real client's codec: requests are encoded by
 * kafkajs's own protocol modules (every version it implements), decoded by the proxy; the proxy's
 * TOPIC_AUTHORIZATION_FAILED answers are decoded and parsed by kafkajs's response modules of the same
 * version, which must see error 29 on every topic and partition of the request.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import {
  buildErrorResponse,
  capApiVersions,
  decodeRequest,
  expectsResponse,
  KafkaDecodeError,
  MAX_DECODED_VERSION,
  Writer,
} from '../../../src/proxy/kafka/index.js';

const require = createRequire(import.meta.url);

interface KjsRequest {
  apiKey: number;
  apiVersion: number;
  encode: () => Promise<{ buffer: Buffer }>;
}
interface KjsResponse {
  decode: (b: Buffer) => Promise<unknown>;
  parse: (d: unknown) => Promise<unknown>;
}
type Protocol = (o: { version: number }) => (args: Record<string, unknown>) => {
  request: KjsRequest;
  response: KjsResponse;
};
const createRequest = require('kafkajs/src/protocol/request.js') as (o: {
  correlationId: number;
  clientId: string;
  request: KjsRequest;
}) => Promise<{ buffer: Buffer }>;

function kjs(name: string): { versions: string[]; protocol: Protocol } {
  return require(`kafkajs/src/protocol/requests/${name}/index.js`);
}

/** One real request frame from kafkajs (without its size) and the matching response codec. */
async function encode(name: string, version: number, args: Record<string, unknown>, correlationId = 7) {
  const { request, response } = kjs(name).protocol({ version })(args);
  const framed = (await createRequest({ correlationId, clientId: 'tie-fighter', request })).buffer;
  assert.equal(framed.readInt32BE(0), framed.length - 4);
  return { frame: framed.subarray(4), response };
}

const records = [{ key: 'k', value: 'v' }];
const ARGS: Record<string, Record<string, unknown>> = {
  produce: {
    acks: -1,
    timeout: 1000,
    topicData: [
      {
        topic: 'deathstar',
        partitions: [
          { partition: 0, messages: records },
          { partition: 2, messages: records },
        ],
      },
      { topic: 'empire', partitions: [{ partition: 1, messages: records }] },
    ],
  },
  fetch: {
    replicaId: -1,
    maxWaitTime: 100,
    minBytes: 1,
    maxBytes: 1024,
    topics: [
      { topic: 'deathstar', partitions: [{ partition: 0, fetchOffset: '5', maxBytes: 1024 }] },
      { topic: 'empire', partitions: [{ partition: 3, fetchOffset: '0', maxBytes: 1024 }] },
    ],
  },
  listOffsets: {
    replicaId: -1,
    isolationLevel: 1,
    topics: [
      {
        topic: 'deathstar',
        partitions: [
          { partition: 0, timestamp: -1 },
          { partition: 1, timestamp: -2 },
        ],
      },
    ],
  },
  metadata: { topics: ['deathstar', 'empire'], allowAutoTopicCreation: true },
  offsetCommit: {
    groupId: 'g',
    groupGenerationId: 1,
    memberId: 'm',
    retentionTime: -1,
    topics: [{ topic: 'deathstar', partitions: [{ partition: 0, offset: '10' }] }],
  },
  offsetFetch: {
    groupId: 'g',
    topics: [{ topic: 'deathstar', partitions: [{ partition: 0 }, { partition: 4 }] }],
  },
};
const TOPICS: Record<string, string[]> = {
  produce: ['deathstar', 'empire'],
  fetch: ['deathstar', 'empire'],
  listOffsets: ['deathstar'],
  metadata: ['deathstar', 'empire'],
  offsetCommit: ['deathstar'],
  offsetFetch: ['deathstar'],
};
const KEYS: Record<string, number> = {
  produce: 0,
  fetch: 1,
  listOffsets: 2,
  metadata: 3,
  offsetCommit: 8,
  offsetFetch: 9,
  findCoordinator: 10,
  joinGroup: 11,
  heartbeat: 12,
  leaveGroup: 13,
  syncGroup: 14,
  apiVersions: 18,
};

/** Collects every errorCode in a decoded kafkajs response. */
function errorCodes(v: unknown, out: number[] = []): number[] {
  if (Array.isArray(v)) for (const x of v) errorCodes(x, out);
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      if (/^(e|.*E)rrorCode$/.test(k) && typeof x === 'number') out.push(x);
      else errorCodes(x, out);
    }
  return out;
}

describe('kafka request decoding (kafkajs-encoded requests)', () => {
  for (const name of Object.keys(TOPICS)) {
    for (const version of kjs(name).versions.map(Number)) {
      it(`${name} v${version}: key, version, correlation id, client id and topics`, async () => {
        const { frame } = await encode(name, version, ARGS[name] as Record<string, unknown>, 4242);
        const req = decodeRequest(frame);
        assert.equal(req.apiKey, KEYS[name]);
        assert.equal(req.apiVersion, version);
        assert.equal(req.correlationId, 4242);
        assert.equal(req.clientId, 'tie-fighter');
        assert.deepEqual(req.topics, TOPICS[name]);
        if (name === 'produce') {
          assert.deepEqual(req.topicPartitions, [
            { topic: 'deathstar', partitions: [0, 2] },
            { topic: 'empire', partitions: [1] },
          ]);
          assert.equal(req.acks, -1);
        }
      });
    }
  }

  it('metadata for all topics (v1+ null list) names no topic; v0 empty list likewise', async () => {
    const v1 = decodeRequest(new Writer().int16(3).int16(1).int32(1).string('c').int32(-1).toBuffer());
    assert.deepEqual(v1.topics, []);
    const v0 = decodeRequest((await encode('metadata', 0, { topics: [] })).frame);
    assert.deepEqual(v0.topics, []);
  });

  it('group and handshake requests name no topic', async () => {
    const a = decodeRequest((await encode('apiVersions', 2, {})).frame);
    assert.deepEqual([a.apiKey, a.topics], [18, []]);
    const h = decodeRequest(
      (
        await encode('heartbeat', 3, {
          groupId: 'g',
          groupGenerationId: 1,
          memberId: 'm',
          groupInstanceId: null,
        })
      ).frame,
    );
    assert.deepEqual([h.apiKey, h.topics], [12, []]);
  });

  it('produce with acks=0 expects no response', async () => {
    const req = decodeRequest((await encode('produce', 3, { ...ARGS.produce, acks: 0 })).frame);
    assert.equal(req.acks, 0);
    assert.equal(expectsResponse(req), false);
  });

  it('a topic-bearing key in a version beyond the decoder, or an unknown key, has unknown topics', () => {
    const w = new Writer().int16(0).int16(9).int32(1).string('c').int8(0);
    assert.equal(decodeRequest(w.toBuffer()).topics, null);
    const x = new Writer().int16(20).int16(0).int32(1).string('c');
    assert.equal(decodeRequest(x.toBuffer()).topics, null);
  });

  it('flexible request header (v2): the client id still decodes', () => {
    // JoinGroup v6 is flexible: client id (classic string) then tagged fields, then a compact body.
    const w = new Writer().int16(11).int16(6).int32(99).string('java-client').noTags().compactString('g');
    const req = decodeRequest(w.toBuffer());
    assert.deepEqual(
      [req.apiKey, req.apiVersion, req.correlationId, req.clientId],
      [11, 6, 99, 'java-client'],
    );
  });

  it('truncated and lying frames fail with KafkaDecodeError', async () => {
    const { frame } = await encode('produce', 7, ARGS.produce as Record<string, unknown>);
    for (const cut of [0, 3, 9, 20, frame.length - 1])
      assert.throws(() => decodeRequest(frame.subarray(0, cut)), KafkaDecodeError, `cut at ${cut}`);
    const lying = Buffer.from(frame);
    lying.writeInt16BE(0x7fff, 8); // client id length far beyond the frame
    assert.throws(() => decodeRequest(lying), KafkaDecodeError);
    const hugeArray = new Writer().int16(0).int16(7).int32(1).string('c').string(null).int16(1).int32(0);
    hugeArray.int32(0x7fffffff);
    assert.throws(() => decodeRequest(hugeArray.toBuffer()), /truncated array/);
  });
});

describe('kafka TOPIC_AUTHORIZATION_FAILED responses (decoded by kafkajs)', () => {
  for (const name of Object.keys(TOPICS)) {
    for (const version of kjs(name).versions.map(Number)) {
      it(`${name} v${version}: every topic/partition carries 29 and kafkajs raises TOPIC_AUTHORIZATION_FAILED`, async () => {
        const { frame, response } = await encode(name, version, ARGS[name] as Record<string, unknown>, 31337);
        const req = decodeRequest(frame);
        const out = buildErrorResponse(req, 29);
        assert.ok(out);
        assert.equal(out.readInt32BE(0), out.length - 4);
        assert.equal(out.readInt32BE(4), 31337);
        const decoded = await response.decode(out.subarray(8));
        const codes = errorCodes(decoded).filter((c) => c !== 0);
        const partitions = req.topicPartitions.reduce((n, t) => n + Math.max(1, t.partitions.length), 0);
        assert.equal(codes.length, name === 'metadata' ? req.topicPartitions.length : partitions);
        assert.ok(codes.every((c) => c === 29));
        const json = JSON.stringify(decoded);
        for (const t of TOPICS[name] as string[]) assert.ok(json.includes(t), `${t} in ${json}`);
        await assert.rejects(response.parse(decoded), (e: { type?: string }) => {
          assert.equal(e.type, 'TOPIC_AUTHORIZATION_FAILED');
          return true;
        });
      });
    }
  }

  const GROUP_ARGS: Record<string, Record<string, unknown>> = {
    findCoordinator: { coordinatorKey: 'g', coordinatorType: 0 },
    joinGroup: {
      groupId: 'g',
      sessionTimeout: 1000,
      rebalanceTimeout: 1000,
      memberId: '',
      protocolType: 'consumer',
      groupProtocols: [{ name: 'rr', metadata: Buffer.from('x') }],
    },
    heartbeat: { groupId: 'g', groupGenerationId: 1, memberId: 'm' },
    leaveGroup: { groupId: 'g', memberId: 'm', members: [{ memberId: 'm' }] },
    syncGroup: {
      groupId: 'g',
      generationId: 1,
      memberId: 'm',
      groupAssignment: [{ memberId: 'm', memberAssignment: Buffer.from('a') }],
    },
    apiVersions: {},
  };
  for (const [name, args] of Object.entries(GROUP_ARGS)) {
    for (const version of kjs(name).versions.map(Number)) {
      it(`${name} v${version}: the top-level error is 29`, async () => {
        const { frame, response } = await encode(name, version, args, 5);
        const out = buildErrorResponse(decodeRequest(frame), 29);
        assert.ok(out);
        const decoded = (await response.decode(out.subarray(8))) as { errorCode: number };
        assert.equal(decoded.errorCode, 29);
      });
    }
  }

  it('versions beyond the decoder get no made-up response (the caller closes)', () => {
    for (const [key, max] of MAX_DECODED_VERSION) {
      const req = {
        apiKey: key,
        apiVersion: max + 1,
        correlationId: 1,
        clientId: null,
        topics: [],
        topicPartitions: [],
      };
      assert.equal(buildErrorResponse(req, 29), null);
    }
  });
});

describe('ApiVersions cap', () => {
  it('lowers the max version of keys the proxy decodes, leaves the others', () => {
    const w = new Writer().int32(3).int16(0);
    w.array(
      [
        [0, 0, 11],
        [1, 4, 16],
        [3, 0, 12],
        [19, 0, 7],
        [18, 0, 3],
      ],
      ([k, min, max]) => {
        w.int16(k as number)
          .int16(min as number)
          .int16(max as number);
      },
    );
    w.int32(0);
    const body = w.toBuffer();
    assert.equal(capApiVersions(body, 2), 3);
    const maxes = [0, 1, 2, 3, 4].map((i) => body.readInt16BE(4 + 2 + 4 + i * 6 + 4));
    assert.deepEqual(maxes, [8, 11, 8, 7, 3]);
  });

  it('the flexible v3 form (compact array, tagged fields) too', () => {
    const w = new Writer().int32(3).int16(0);
    w.compactArray(
      [
        [0, 3, 11],
        [11, 0, 9],
      ],
      ([k, min, max]) => {
        w.int16(k as number)
          .int16(min as number)
          .int16(max as number)
          .noTags();
      },
    );
    w.int32(0).noTags();
    const body = w.toBuffer();
    assert.equal(capApiVersions(body, 3), 2);
    assert.equal(body.readInt16BE(4 + 2 + 1 + 4), 8);
    assert.equal(body.readInt16BE(4 + 2 + 1 + 7 + 4), 5);
  });
});
