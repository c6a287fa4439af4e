import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvPrefixCache, MemoryKvStore, type PrefixChange } from '../../../src/kvstore/index.js';
import { until } from './helpers/until.js';

const brief = (c: PrefixChange) => `${c.type} ${c.key}=${c.value}`;

describe('kvstore prefix cache', () => {
  it('reports the listing, then changes, skipping puts that change nothing', async () => {
    const store = new MemoryKvStore();
    await store.put('n/a', '1');
    await store.put('other', 'x');
    const seen: string[] = [];
    const cache = new KvPrefixCache(store, 'n/', (cs) => seen.push(...cs.map(brief)));
    await cache.start();
    assert.deepEqual(seen, ['upsert n/a=1']);
    await store.put('n/b', '2');
    await store.put('n/a', '1'); // same value: no change
    await store.delete('n/a');
    await until(() => seen.length === 3, 'changes');
    assert.deepEqual(seen, ['upsert n/a=1', 'upsert n/b=2', 'delete n/a=1']);
    assert.deepEqual(cache.entries(), [['n/b', '2']]);
    assert.equal(cache.revision, 5);
    cache.close();
    await store.close();
  });

  it('after losing its history it lists again and reports the difference', async () => {
    const store = new MemoryKvStore({ historyLimit: 1 });
    await store.put('n/a', '1');
    await store.put('n/b', '2');
    const seen: string[] = [];
    const errors: unknown[] = [];
    const cache = new KvPrefixCache(store, 'n/', (cs) => seen.push(...cs.map(brief)), {
      retryMs: 1,
      onError: (e) => errors.push(e),
    });
    // A listing older than the kept history: the watch after it fails and the cache re-lists.
    const realList = store.list.bind(store);
    let first = true;
    store.list = async (prefix: string) => {
      const l = await realList(prefix);
      if (first) {
        first = false;
        await store.delete('n/a');
        await store.put('n/b', '3');
        await store.put('n/c', '4');
      }
      return l;
    };
    await cache.start();
    await until(() => cache.entries().length === 2 && cache.get('n/c') === '4', 're-listed state');
    assert.equal(errors.length, 1);
    assert.deepEqual(seen, ['upsert n/a=1', 'upsert n/b=2', 'upsert n/b=3', 'upsert n/c=4', 'delete n/a=1']);
    cache.close();
    await store.close();
  });

  it("sees another session's leased keys vanish when it closes", async () => {
    const store = new MemoryKvStore();
    const a = store.session();
    await a.put('n/a', 'A', { lease: true });
    const cache = new KvPrefixCache(store, 'n/', () => {});
    await cache.start();
    assert.equal(cache.get('n/a'), 'A');
    await a.close();
    await until(() => cache.get('n/a') === undefined, 'lease revoke seen');
    cache.close();
    await store.close();
  });

  it('a throwing consumer does not stop the cache', async () => {
    const store = new MemoryKvStore();
    const errors: unknown[] = [];
    let calls = 0;
    const cache = new KvPrefixCache(
      store,
      'n/',
      () => {
        calls++;
        throw new Error('consumer bug');
      },
      { onError: (e) => errors.push(e) },
    );
    await cache.start();
    await store.put('n/a', '1');
    await store.put('n/b', '2');
    await until(() => calls === 2, 'both changes delivered');
    assert.equal(errors.length, 2);
    assert.equal(cache.get('n/b'), '2');
    cache.close();
    await store.close();
  });

  it('start() returns when its store is closed instead of waiting forever', async () => {
    const store = new MemoryKvStore();
    await store.close();
    const cache = new KvPrefixCache(store, 'n/', () => {});
    await cache.start();
    assert.deepEqual(cache.entries(), []);
  });
});
