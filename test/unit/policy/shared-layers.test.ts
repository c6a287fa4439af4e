import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_SHARED_LAYERS, MIN_SHARED_LAYER, sharedLayers } from '../../../src/endpoint/datapath-state.js';
import {
  LayeredMapState,
  type MapEntry,
  makeKey,
  policyKeyId,
  sharableEntry,
} from '../../../src/policy/mapstate.js';

const entry = (identity: number, prefixLen: number, deny: boolean, proxyPort = 0): MapEntry => ({
  key: makeKey(identity, 0, prefixLen > 40 ? 6 : 0, prefixLen === 64 ? 80 : 0, prefixLen),
  entry: { deny, proxyPort, ruleCookie: 1 },
});

/** A layer of `n` entries for identities from `first`: denies, or identity-wide allows. */
const layer = (first: number, n: number, deny = true): Map<number, MapEntry> =>
  new Map(
    Array.from({ length: n }, (_, i) => {
      const e = entry(first + i, 40, deny);
      return [policyKeyId(e.key), e] as const;
    }),
  );

describe('shared policy layers: what the datapath may share', () => {
  it('a deny of any key, or an allow of one identity for a whole direction', () => {
    assert.equal(sharableEntry(entry(300, 64, true)), true);
    assert.equal(sharableEntry(entry(0, 48, true)), true, 'an identity-0 deny');
    assert.equal(sharableEntry(entry(300, 40, false)), true);
    assert.equal(sharableEntry(entry(0, 40, false)), false, 'an identity-0 allow');
    assert.equal(sharableEntry(entry(300, 48, false)), false, 'an allow narrower than the identity');
    assert.equal(sharableEntry(entry(300, 40, false, 15001)), false, 'an allow through a proxy');
  });

  it("the sharable entries of a state's layers, largest first, each list the same for every endpoint", () => {
    const denies = layer(1000, 50);
    const allows = layer(2000, 40, false);
    const small = layer(3000, MIN_SHARED_LAYER - 1);
    const mixed = new Map([
      ...layer(4000, 60),
      [policyKeyId(entry(5000, 64, false).key), entry(5000, 64, false)],
    ]);
    const a = new LayeredMapState();
    for (const l of [small, allows, denies, mixed]) a.addLayer(l);
    const lists = sharedLayers(a);
    assert.deepEqual(
      lists.map((l) => l.length),
      [60, 50, 40],
      'the narrower allow of the mixed layer stays out; a small layer is not shared',
    );
    assert.ok(lists.every((l) => Object.isFrozen(l) && l.every(sharableEntry)));
    const b = new LayeredMapState();
    b.addLayer(denies);
    assert.equal(sharedLayers(b)[0], lists[1], 'one list per shared layer');
    assert.deepEqual(sharedLayers(new Map(a)), [], 'a plain map has no layers');
  });

  it(`at most ${MAX_SHARED_LAYERS} per endpoint; a layer written to is no longer shared`, () => {
    const s = new LayeredMapState();
    const ls = Array.from({ length: MAX_SHARED_LAYERS + 2 }, (_, i) => layer(10_000 * (i + 1), 40 + i));
    for (const l of ls) s.addLayer(l);
    assert.equal(sharedLayers(s).length, MAX_SHARED_LAYERS);
    const before = s.layers.length;
    const k = policyKeyId(entry(10_000, 40, true).key);
    s.set(k, entry(10_000, 40, false));
    assert.equal(s.layers.length, before - 1, 'copied in on write');
    assert.ok(!sharedLayers(s).some((l) => l.some((e) => policyKeyId(e.key) === k)));
  });
});
