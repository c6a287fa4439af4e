import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  keyOfLow,
  LayeredMapState,
  type MapEntry,
  makeKey,
  policyKeyId,
  policyKeyLow,
  policyKeyLowOf,
} from '../../../src/policy/mapstate.js';

const entry = (identity: number, dport: number, deny = false): MapEntry => ({
  key: makeKey(identity, 0, 6, dport, 64),
  entry: { deny, proxyPort: 0, ruleCookie: identity },
});

const mapOf = (...es: MapEntry[]) => new Map(es.map((e) => [policyKeyId(e.key), e]));

describe('layered map state', () => {
  it('reads, sizes and iterates own entries and layers as one map', () => {
    const s = new LayeredMapState();
    const own = entry(1, 80);
    s.set(policyKeyId(own.key), own);
    const a = mapOf(entry(2, 80), entry(3, 80));
    const b = mapOf(entry(4, 22, true));
    s.addLayer(a);
    s.addLayer(b);
    assert.equal(s.size, 4);
    assert.equal(s.layerCount, 2);
    assert.equal(s.get(policyKeyId(entry(3, 80).key))?.key.identity, 3);
    assert.ok(s.has(policyKeyId(entry(4, 22).key)));
    assert.equal(s.get(policyKeyId(entry(9, 80).key)), undefined);
    assert.ok(!s.has(policyKeyId(entry(9, 80).key)));
    const ids = (it: Iterable<MapEntry>) => [...it].map((e) => e.key.identity).sort();
    assert.deepEqual(ids(s.values()), [1, 2, 3, 4]);
    assert.deepEqual(ids([...s].map(([, e]) => e)), [1, 2, 3, 4]);
    assert.deepEqual(ids([...new Map(s).values()]), [1, 2, 3, 4]);
    assert.deepEqual([...s.keys()].sort(), [...new Map(s).keys()].sort());
    const seen: number[] = [];
    s.forEach((e, k, m) => {
      assert.equal(m, s);
      assert.equal(k, policyKeyId(e.key));
      seen.push(e.key.identity);
    });
    assert.deepEqual(seen.sort(), [1, 2, 3, 4]);
  });

  it('copies a layer in before one of its keys is written or deleted; the shared layer is untouched', () => {
    const s = new LayeredMapState();
    const a = mapOf(entry(2, 80), entry(3, 80));
    s.addLayer(a);
    const k2 = policyKeyId(entry(2, 80).key);
    const k3 = policyKeyId(entry(3, 80).key);
    s.set(k2, entry(2, 80, true));
    assert.equal(s.layerCount, 0);
    assert.equal(s.get(k2)?.entry.deny, true);
    assert.equal(s.get(k3)?.key.identity, 3);
    assert.equal(a.get(k2)?.entry.deny, false, 'the layer itself is not written');
    s.addLayer(mapOf(entry(5, 443)));
    assert.ok(s.delete(policyKeyId(entry(5, 443).key)));
    assert.equal(s.size, 2);
    assert.equal(s.layerCount, 0);
    s.addLayer(mapOf(entry(6, 443)));
    s.clear();
    assert.equal(s.size, 0);
    assert.equal([...s.values()].length, 0);
  });

  it('copies layers in past MAX_LAYERS and can take back the last one', () => {
    const s = new LayeredMapState();
    const layers = Array.from({ length: LayeredMapState.MAX_LAYERS + 1 }, (_, i) => mapOf(entry(10 + i, 80)));
    for (const l of layers) s.addLayer(l);
    assert.equal(s.layerCount, 1);
    assert.equal(s.size, layers.length);
    const extra = mapOf(entry(99, 80));
    s.addLayer(extra);
    s.removeLayer(extra);
    assert.equal(s.size, layers.length);
    assert.ok(!s.has(policyKeyId(entry(99, 80).key)));
    s.addLayer(new Map());
    assert.equal(s.layerCount, 1, 'an empty layer is not added');
  });
});

describe('policy key lows', () => {
  it('keyOfLow inverts policyKeyLow for every key shape', () => {
    const shapes: [0 | 1, number, number, number][] = [
      [0, 0, 0, 40],
      [1, 0, 0, 40],
      [0, 6, 0, 48],
      [1, 17, 0, 48],
      [0, 6, 80, 64],
      [1, 6, 65535, 64],
      [0, 6, 0x8000, 49],
      [1, 132, 0x1f00, 56],
      [0, 1, 8, 64],
      [1, 58, 128, 64],
    ];
    for (const [egress, protocol, dport, prefixLen] of shapes) {
      const low = policyKeyLow(egress, protocol, dport, prefixLen);
      assert.deepEqual({ ...keyOfLow(low) }, { identity: 0, egress, protocol, dport, prefixLen });
      const id = policyKeyId(makeKey(16777300, egress, protocol, dport, prefixLen));
      assert.equal(policyKeyLowOf(id), low);
    }
  });
});
