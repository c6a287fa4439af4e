/**
 * The filter's ordering under arbitrary TCP segmentation (seeded): a random mix of allowed and denied
 * requests (some with acks=0) and the broker's answers, fed in random chunks and interleaved at
 * random: the broker receives exactly the allowed requests, byte for byte, and the client receives
 * every answer once, in request order, the broker's untouched and the proxy's for denied ones.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildErrorResponse,
  compileKafkaRules,
  decodeRequest,
  KafkaFilter,
  type KafkaRecord,
  MAX_OUTSTANDING,
  Writer,
} from '../../../src/proxy/kafka/index.js';

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** A Produce v7 request frame (with size) naming `topic`, its records `recordBytes` of filler. */
function produce(corr: number, topic: string, acks: number, recordBytes: number): Buffer {
  const w = new Writer().int16(0).int16(7).int32(corr).string('c').string(null).int16(acks).int32(1000);
  w.array([topic], (t) => {
    w.string(t).array([0], (p) => {
      w.int32(p).bytes(Buffer.alloc(recordBytes, 7));
    });
  });
  return w.toFrame();
}

function metadata(corr: number, topic: string): Buffer {
  const w = new Writer().int16(3).int16(6).int32(corr).string('c');
  w.array([topic], (t) => w.string(t)).bool(true);
  return w.toFrame();
}

/** The broker's answer to a request: a valid Produce v7 answer, or an opaque body of `size` bytes. */
function answer(frame: Buffer, size: number): Buffer {
  const req = decodeRequest(frame.subarray(4));
  const w = new Writer().int32(req.correlationId);
  if (req.apiKey === 0) {
    w.array(req.topicPartitions, (t) => {
      w.string(t.topic).array(t.partitions, (p) => {
        w.int32(p).int16(0).int64(5n).int64(-1n).int64(0n);
      });
    });
    w.int32(0);
  } else w.raw(Buffer.alloc(size, 9));
  return w.toFrame();
}

describe('kafka filter ordering under random segmentation', () => {
  it('200 random scenarios: exact bytes to the broker, every answer once and in order to the client', () => {
    const rules = compileKafkaRules([
      { apiKey: 'produce', topic: 'ok' },
      { apiKey: 'metadata', topic: 'ok' },
    ]);
    for (let seed = 1; seed <= 200; seed++) {
      const rand = rng(seed);
      const requests: { frame: Buffer; allowed: boolean; answered: boolean }[] = [];
      const n = 1 + Math.floor(rand() * 12);
      for (let i = 0; i < n; i++) {
        const topic = rand() < 0.6 ? 'ok' : 'no';
        const kind = rand();
        if (kind < 0.5) {
          const acks = rand() < 0.2 ? 0 : -1;
          const size = rand() < 0.2 ? 100_000 : Math.floor(rand() * 300);
          requests.push({
            frame: produce(i, topic, acks, size),
            allowed: topic === 'ok',
            answered: acks !== 0,
          });
        } else requests.push({ frame: metadata(i, topic), allowed: topic === 'ok', answered: true });
      }
      const records: KafkaRecord[] = [];
      const f = new KafkaFilter({ rules, onRecord: (r) => records.push(r) });
      const reqBytes = Buffer.concat(requests.map((r) => r.frame));
      const toServer: Buffer[] = [];
      const toClient: Buffer[] = [];
      // The broker answers requests as they reach it: its output grows with what it has received.
      const answers = requests
        .filter((r) => r.allowed && r.answered)
        .map((r) => answer(r.frame, rand() < 0.2 ? 200_000 : Math.floor(rand() * 100)));
      const allowedFrames = requests.filter((r) => r.allowed).map((r) => r.frame);
      let reqAt = 0;
      let respAt = 0;
      const respBytes = Buffer.concat(answers);
      const answerable = () => {
        // Answers the broker may have sent: those of the allowed requests it has received whole.
        const received = Buffer.concat(toServer).length;
        let bytes = 0;
        let seen = 0;
        let k = 0;
        for (const r of requests.filter((x) => x.allowed)) {
          seen += r.frame.length;
          if (seen > received) break;
          if (r.answered) bytes += (answers[k++] as Buffer).length;
        }
        return bytes;
      };
      for (let step = 0; reqAt < reqBytes.length || respAt < respBytes.length; step++) {
        assert.ok(step < 100_000, `seed ${seed}: stuck`);
        const canResp = answerable() - respAt;
        if (reqAt < reqBytes.length && (canResp === 0 || rand() < 0.5)) {
          const len = 1 + Math.floor(rand() * 5000);
          const o = f.onRequestData(reqBytes.subarray(reqAt, reqAt + len));
          reqAt += len;
          assert.equal(o.close, undefined, `seed ${seed}: ${o.close}`);
          toServer.push(...o.toServer);
          toClient.push(...o.toClient);
        } else if (canResp > 0) {
          const len = 1 + Math.floor(rand() * Math.min(canResp, 7000));
          const o = f.onResponseData(respBytes.subarray(respAt, respAt + len));
          respAt += len;
          assert.equal(o.close, undefined, `seed ${seed}: ${o.close}`);
          toClient.push(...o.toClient);
        } else break;
      }
      assert.ok(
        Buffer.concat(toServer).equals(Buffer.concat(allowedFrames)),
        `seed ${seed}: bytes to the broker`,
      );
      let k = 0;
      const expected = requests
        .filter((r) => r.answered)
        .map((r) =>
          r.allowed
            ? (answers[k++] as Buffer)
            : (buildErrorResponse(decodeRequest(r.frame.subarray(4)), 29) as Buffer),
        );
      assert.ok(Buffer.concat(toClient).equals(Buffer.concat(expected)), `seed ${seed}: bytes to the client`);
      assert.equal(f.outstanding, 0);
      const responses = records.filter((r) => r.type === 'response');
      assert.deepEqual(
        responses.map((r) => r.correlationId),
        requests.map((r, i) => (r.answered ? i : -1)).filter((i) => i >= 0),
        `seed ${seed}: one response record per answer, in order`,
      );
    }
  });

  it('a connection holding more than MAX_OUTSTANDING requests is closed', () => {
    const f = new KafkaFilter({ rules: compileKafkaRules([{}]) });
    const burst = Buffer.concat(Array.from({ length: MAX_OUTSTANDING + 1 }, (_, i) => metadata(i, 'ok')));
    const o = f.onRequestData(burst);
    assert.match(o.close ?? '', /more than 1024 requests outstanding/);
    assert.equal(o.toServer.length, 2 * MAX_OUTSTANDING, 'the first 1024 went through');
  });
  it("ApiVersions v3 (flexible) through the filter: the broker's newer versions are capped for the client", () => {
    const f = new KafkaFilter({ rules: compileKafkaRules([{}]) });
    // Request header v2: key 18, version 3, correlation id, client id, tagged fields; compact body.
    const req = new Writer().int16(18).int16(3).int32(42).string('java').noTags();
    req.compactString('apache-kafka-java').compactString('3.9.0').noTags();
    const sent = f.onRequestData(req.toFrame());
    assert.equal(Buffer.concat(sent.toServer).length, req.toFrame().length);
    const keys: [number, number, number][] = [
      [0, 3, 11], // Produce
      [1, 4, 16], // Fetch
      [3, 0, 12], // Metadata
      [18, 0, 4], // ApiVersions
      [19, 0, 7], // CreateTopics: no body decoded, left alone
    ];
    const resp = new Writer().int32(42).int16(0);
    resp.compactArray(keys, ([k, min, max]) => {
      resp.int16(k).int16(min).int16(max).noTags();
    });
    resp.int32(0).noTags();
    const back = Buffer.concat(f.onResponseData(resp.toFrame()).toClient);
    assert.equal(back.length, resp.toFrame().length);
    const maxes = keys.map((_, i) => back.readInt16BE(4 + 4 + 2 + 1 + i * 7 + 4));
    assert.deepEqual(maxes, [8, 11, 8, 3, 7]);
  });
});
