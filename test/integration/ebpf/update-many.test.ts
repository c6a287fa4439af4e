import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchUpdateError, BpfMap, type MapSpec, MapType } from '../../../src/ebpf/index.js';

const spec = (type: MapSpec['type'], maxEntries: number): MapSpec => ({
  name: 'upd_many',
  type,
  keySize: 4,
  valueSize: 4,
  maxEntries,
  flags: 0,
  pinning: 'none',
});

/** Keys 0..n-1, values from `value(i)`, as concatenated u32s. */
function elements(n: number, value: (i: number) => number): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(4 * n);
  const values = Buffer.alloc(4 * n);
  for (let i = 0; i < n; i++) {
    keys.writeUInt32LE(i, 4 * i);
    values.writeUInt32LE(value(i), 4 * i);
  }
  return { keys, values };
}

const contents = (m: BpfMap) =>
  new Map([...m.entries()].map(([k, v]) => [Buffer.from(k).readUInt32LE(), Buffer.from(v).readUInt32LE()]));

describe('privileged: updateMany', () => {
  it('writes a hash map in one batch', () => {
    using m = BpfMap.create(spec(MapType.HASH, 3000));
    const { keys, values } = elements(3000, (i) => i * 7);
    m.updateMany(keys, values, 3000);
    const got = contents(m);
    assert.equal(got.size, 3000);
    assert.equal(got.get(2999), 2999 * 7);
  });

  it('stops at the element the kernel refuses and names it; the ones before are written', () => {
    using m = BpfMap.create(spec(MapType.HASH, 4));
    const { keys, values } = elements(6, (i) => i);
    assert.throws(
      () => m.updateMany(keys, values, 6),
      (e: unknown) => {
        assert.ok(e instanceof BatchUpdateError);
        assert.equal(e.index, 4, 'the fifth element does not fit a map of four');
        assert.match(e.message, /element 4 of a batch\): E2BIG.*map is full/);
        return true;
      },
    );
    assert.deepEqual([...contents(m).keys()].sort(), [0, 1, 2, 3]);
  });

  it('falls back to one update per element on a map type without batch updates (devmap)', () => {
    using m = BpfMap.create(spec(MapType.DEVMAP, 8));
    // Values are interface indexes: 1 is the loopback device of every namespace.
    const ok = elements(3, () => 1);
    m.updateMany(ok.keys, ok.values, 3);
    assert.deepEqual(
      [...contents(m)],
      [
        [0, 1],
        [1, 1],
        [2, 1],
      ],
    );
    // An interface that does not exist: refused at its index, in the fallback too.
    const bad = elements(3, (i) => (i === 1 ? 0x7ffffff0 : 1));
    assert.throws(
      () => m.updateMany(bad.keys, bad.values, 3),
      (e: unknown) => e instanceof BatchUpdateError && e.index === 1,
    );
  });
});
