import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BpfMap,
  type Codec,
  Collection,
  CollectionSpec,
  KeyExistsError,
  MapIncompatibleError,
  type MapSpec,
  MapType,
  numPossibleCpus,
  openFdCount,
  TypedMap,
  UpdateFlag,
} from '../../../src/ebpf/index.js';
import { bpfObject } from '../../helpers/paths.js';
import { cleanupStack, privateBpffs } from '../../helpers/sys.js';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
const spec = (
  s: Partial<MapSpec> & Pick<MapSpec, 'type' | 'keySize' | 'valueSize' | 'maxEntries'>,
): MapSpec => ({
  name: 'test_map',
  flags: 0,
  pinning: 'none',
  ...s,
});

describe('privileged: maps', () => {
  const cleanup = cleanupStack();
  let bpffs = '';
  const fdsBefore = openFdCount();
  before(() => {
    bpffs = privateBpffs(cleanup);
  });
  after(async () => {
    await cleanup.run();
  });

  it('hash: create, update with flags, lookup, delete, iterate', () => {
    using m = BpfMap.create(spec({ type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 16 }));
    m.update(u32(1), u64(100));
    m.update(u32(2), u64(200), UpdateFlag.NOEXIST);
    assert.throws(() => m.update(u32(2), u64(1), UpdateFlag.NOEXIST), KeyExistsError);
    assert.throws(() => m.update(u32(3), u64(1), UpdateFlag.EXIST), /does not exist/);
    assert.equal(Buffer.from(m.lookup(u32(2))!).readBigUInt64LE(), 200n);
    assert.equal(m.lookup(u32(9)), undefined);
    assert.equal(m.delete(u32(1)), true);
    assert.equal(m.delete(u32(1)), false);
    assert.deepEqual(
      [...m.keys()].map((k) => Buffer.from(k).readUInt32LE()),
      [2],
    );
    assert.throws(() => m.update(u32(1), u32(1)), /value is 4 bytes, expected 8/);
  });

  it('hash: full map reports a hint', () => {
    using m = BpfMap.create(spec({ type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 2 }));
    m.update(u32(1), u32(1));
    m.update(u32(2), u32(2));
    assert.throws(() => m.update(u32(3), u32(3)), /map is full/);
  });

  it('LRU hash evicts instead of failing when full', () => {
    using m = BpfMap.create(spec({ type: MapType.LRU_HASH, keySize: 4, valueSize: 4, maxEntries: 64 }));
    for (let i = 0; i < 1000; i++) m.update(u32(i), u32(i));
    const n = [...m.keys()].length;
    assert.ok(n > 0 && n <= 64 + numPossibleCpus() * 64, `entries ${n}`);
    assert.ok(m.lookup(u32(999)), 'newest entry present');
  });

  it('per-CPU hash and array transfer one value slot per possible CPU', () => {
    const cpus = numPossibleCpus();
    using h = BpfMap.create(spec({ type: MapType.PERCPU_HASH, keySize: 4, valueSize: 4, maxEntries: 4 }));
    assert.equal(h.userValueSize, 8 * cpus);
    const v = Buffer.alloc(8 * cpus);
    for (let c = 0; c < cpus; c++) v.writeUInt32LE(c + 10, c * 8);
    h.update(u32(1), v);
    const got = Buffer.from(h.lookup(u32(1))!);
    for (let c = 0; c < cpus; c++) assert.equal(got.readUInt32LE(c * 8), c + 10);
    using a = BpfMap.create(spec({ type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: 2 }));
    assert.equal(a.lookup(u32(1))!.length, 8 * cpus);
  });

  it('array: fixed keys, delete not allowed, freeze makes it read-only', () => {
    using m = BpfMap.create(spec({ type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 4 }));
    assert.deepEqual([...m.lookup(u32(3))!], [0, 0, 0, 0]);
    m.update(u32(3), u32(7));
    assert.throws(() => m.delete(u32(3)), /EINVAL/);
    m.freeze();
    assert.throws(() => m.update(u32(3), u32(8)), /EPERM/);
  });

  it('LPM trie: longest prefix wins', () => {
    using m = BpfMap.create(
      spec({ type: MapType.LPM_TRIE, keySize: 8, valueSize: 4, maxEntries: 16, flags: 1 }),
    );
    const key = (len: number, ip: string) => {
      const b = Buffer.alloc(8);
      b.writeUInt32LE(len, 0);
      Buffer.from(ip.split('.').map(Number)).copy(b, 4);
      return b;
    };
    m.update(key(8, '10.0.0.0'), u32(1));
    m.update(key(24, '10.1.2.0'), u32(2));
    m.update(key(32, '10.1.2.3'), u32(3));
    const val = (ip: string) => m.lookup(key(32, ip)) && Buffer.from(m.lookup(key(32, ip))!).readUInt32LE();
    assert.equal(val('10.1.2.3'), 3);
    assert.equal(val('10.1.2.4'), 2);
    assert.equal(val('10.9.9.9'), 1);
    assert.equal(val('11.0.0.1'), undefined);
  });

  it('batch update, lookup and delete', () => {
    const n = 5000;
    using m = BpfMap.create(spec({ type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: n }));
    const keys = Buffer.alloc(n * 4);
    const values = Buffer.alloc(n * 8);
    for (let i = 0; i < n; i++) {
      keys.writeUInt32LE(i, i * 4);
      values.writeBigUInt64LE(BigInt(i * 3), i * 8);
    }
    assert.equal(m.updateBatch(keys, values, n), n);
    const all = m.lookupBatch(1000);
    assert.equal(all.count, n);
    const seen = new Map<number, bigint>();
    const kb = Buffer.from(all.keys);
    const vb = Buffer.from(all.values);
    for (let i = 0; i < all.count; i++) seen.set(kb.readUInt32LE(i * 4), vb.readBigUInt64LE(i * 8));
    assert.equal(seen.size, n);
    assert.equal(seen.get(4321), 4321n * 3n);
    assert.equal(m.deleteBatch(keys, 2000), 2000);
    assert.equal([...m.keys()].length, n - 2000);
  });

  it('ring buffer map: size must be a page multiple', () => {
    assert.throws(
      () => BpfMap.create(spec({ type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: 1000 })),
      /power-of-two multiple of the page size/,
    );
  });

  it('typed maps encode and decode through codecs', () => {
    const keyC: Codec<number> = {
      size: 4,
      encode: (n) => u32(n),
      decode: (b) => Buffer.from(b).readUInt32LE(),
    };
    const valC: Codec<bigint> = {
      size: 8,
      encode: (n) => u64(n),
      decode: (b) => Buffer.from(b).readBigUInt64LE(),
    };
    using raw = BpfMap.create(spec({ type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 4 }));
    const m = new TypedMap(raw, keyC, valC);
    m.set(5, 55n);
    assert.equal(m.get(5), 55n);
    assert.deepEqual([...m.entries()], [[5, 55n]]);
    assert.throws(() => new TypedMap(raw, valC, valC), MapIncompatibleError);
  });

  it('pins, re-opens pinned maps, and refuses incompatible ones', () => {
    const s = spec({ name: 'pinme', type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 8 });
    const path = join(bpffs, 'pinme');
    {
      using m = BpfMap.create(s);
      m.pin(path);
      m.update(u32(1), u32(42));
    }
    using again = BpfMap.openPinned(path, s);
    assert.equal(Buffer.from(again.lookup(u32(1))!).readUInt32LE(), 42);
    assert.throws(() => BpfMap.openPinned(path, { ...s, valueSize: 8 }), /value size 4 != 8/);
  });

  it('collection: pinned-by-name maps are shared between loads; map-in-map and prog arrays work', async () => {
    const zoo = CollectionSpec.fromFile(bpfObject('test/maps_zoo.o'));
    zoo.rewriteConstants({ magic: 1 });
    using first = Collection.load(zoo, { pinPath: bpffs });
    first.map('pinned_array').update(u32(0), u32(99));
    using second = Collection.load(zoo, { pinPath: bpffs });
    assert.equal(
      Buffer.from(second.map('pinned_array').lookup(u32(0))!).readUInt32LE(),
      99,
      'same pinned map',
    );

    // Tail call: lpm_then_tail jumps to slot 0 (tail_target returns 42 + magic) when the LPM matches.
    const prog = first.program('lpm_then_tail');
    const pkt = Buffer.alloc(64);
    assert.equal(prog.testRun({ data: pkt }).retval, 1, 'no LPM match: falls through');
    const lpmKey = Buffer.alloc(8);
    lpmKey.writeUInt32LE(0, 0); // /0 matches every address
    first.map('lpm').update(lpmKey, u32(1));
    first.map('jump_table').update(u32(0), u32(first.program('tail_target').fd.value));
    assert.equal(prog.testRun({ data: pkt }).retval, 43, 'tail call into tail_target');

    // Hash-of-maps: insert an inner array whose slot 0 holds the verdict.
    using inner = BpfMap.create(zoo.maps.get('outer')!.innerMap!);
    inner.update(u32(0), u64(7));
    first.map('outer').update(u32(0), u32(inner.fd.value));
    assert.equal(prog.testRun({ data: pkt }).retval, 7, 'value read through the inner map');
    assert.equal(first.map('outer').lookup(u32(0))!.length, 4, 'outer map returns inner map id');

    // updateAsync (the update's RCU wait on a worker thread): another inner map replaces the first.
    using inner2 = BpfMap.create(zoo.maps.get('outer')!.innerMap!);
    inner2.update(u32(0), u64(9));
    await first.map('outer').updateAsync(u32(0), u32(inner2.fd.value));
    assert.equal(
      prog.testRun({ data: pkt }).retval,
      9,
      'value read through the inner map put in by updateAsync',
    );
    await assert.rejects(
      first.map('outer').updateAsync(u32(0), u64(1)),
      /outer: value is 8 bytes, expected 4/,
    );
    // a failure the kernel reports comes with its errno (repeated synchronously for it)
    await assert.rejects(first.map('outer').updateAsync(u32(0), u32(0x7ffffff0)), /EBADF|EINVAL/);
  });

  it('closes every fd it opened', () => {
    assert.equal(openFdCount(), fdsBefore);
  });
});
