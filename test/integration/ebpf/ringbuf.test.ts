import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Collection, CollectionSpec, RingBufReader } from '../../../src/ebpf/index.js';
import { bpfObject } from '../../helpers/paths.js';

const RECORD = 32;

function source(eventsPerRun: number, discardEvery = 0): Collection {
  const spec = CollectionSpec.fromFile(bpfObject('test/event_source.o'));
  spec.rewriteConstants({ events_per_run: eventsPerRun, discard_every: discardEvery });
  return Collection.load(spec);
}

function produce(c: Collection, runs: number): void {
  c.program('emit').testRun({ data: Buffer.alloc(64), repeat: runs });
}

function lost(c: Collection): bigint {
  const v = Buffer.from(c.map('lost').lookup(Buffer.alloc(4))!);
  let n = 0n;
  for (let o = 0; o < v.length; o += 8) n += v.readBigUInt64LE(o);
  return n;
}

describe('privileged: ring buffer reader', () => {
  it('async iterator yields records in order, zero-copy', async () => {
    using c = source(10);
    const rb = new RingBufReader(c.map('samples'));
    produce(c, 5);
    const seqs: bigint[] = [];
    for await (const rec of rb) {
      assert.equal(rec.length, RECORD);
      seqs.push(Buffer.from(rec.buffer, rec.byteOffset, rec.length).readBigUInt64LE(0));
      if (seqs.length === 50) break;
    }
    rb.close();
    assert.deepEqual(
      seqs,
      Array.from({ length: 50 }, (_, i) => BigInt(i)),
    );
  });

  it('wakes a waiting reader when events arrive', async () => {
    using c = source(1);
    const rb = new RingBufReader(c.map('samples'));
    const got = (async () => {
      for await (const rec of rb) return rec.length;
      return -1;
    })();
    setTimeout(() => produce(c, 1), 100);
    assert.equal(await got, RECORD);
    rb.close();
  });

  it('survives wrap-around of the ring many times over, counting discards', () => {
    using c = source(1000, 7);
    const rb = new RingBufReader(c.map('samples'));
    const total = 2_000_000; // 2M records x 40 bytes = 80 MB through a 16 MB ring
    let expected = 0n;
    let read = 0;
    for (let produced = 0; produced < total; produced += 200_000) {
      produce(c, 200);
      rb.poll((rec) => {
        const seq = Buffer.from(rec.buffer, rec.byteOffset, rec.length).readBigUInt64LE(0);
        if (expected % 7n === 0n) expected++; // discarded sequence numbers never appear
        assert.equal(seq, expected);
        expected++;
        read++;
      });
    }
    rb.close();
    assert.equal(lost(c), 0n);
    assert.equal(rb.stats.discarded, Math.ceil(total / 7));
    assert.equal(read + rb.stats.discarded, total);
  });

  it('counts events the producer lost when the ring was full', () => {
    using c = source(1000);
    const rb = new RingBufReader(c.map('samples'));
    produce(c, 600); // 600k records > 16 MB / 40 B
    const dropped = lost(c);
    assert.ok(dropped > 0n, 'producer saw a full ring');
    const n = rb.poll(() => {});
    assert.equal(BigInt(n) + dropped, 600_000n);
    rb.close();
  });
});
