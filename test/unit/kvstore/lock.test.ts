import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvLockError, lockKey, MemoryKvStore } from '../../../src/kvstore/index.js';

describe('kvstore lock', () => {
  it('admits one holder at a time across sessions', async () => {
    const store = new MemoryKvStore({ latency: () => Math.random() * 2 });
    const sessions = [store.session('a'), store.session('b'), store.session('c')];
    let inside = 0;
    let maxInside = 0;
    const order: string[] = [];
    await Promise.all(
      sessions.flatMap((s, i) =>
        [0, 1].map(async (j) => {
          const lock = await lockKey(s, 'locks/x', { owner: `s${i}` });
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((r) => setTimeout(r, 2));
          order.push(`s${i}.${j}`);
          inside--;
          await lock.unlock();
        }),
      ),
    );
    assert.equal(maxInside, 1);
    assert.equal(order.length, 6);
    assert.equal(await store.get('locks/x'), undefined, 'released');
    for (const s of sessions) await s.close();
    await store.close();
  });

  it("a dead holder's lock goes with its lease", async () => {
    const store = new MemoryKvStore();
    const a = store.session('a');
    const b = store.session('b');
    await lockKey(a, 'locks/y', { owner: 'a' });
    assert.match((await store.get('locks/y'))!.value, /^a\//);
    const waiting = lockKey(b, 'locks/y', { owner: 'b' });
    await new Promise((r) => setTimeout(r, 5));
    await a.close(); // agent a dies without unlocking
    const lock = await waiting;
    assert.match((await store.get('locks/y'))!.value, /^b\//);
    await lock.unlock();
    await b.close();
    await store.close();
  });

  it('unlock removes only its own lock', async () => {
    const store = new MemoryKvStore();
    const lock = await lockKey(store, 'locks/z');
    await store.expireLease(); // the lock went with the lease ...
    const other = await lockKey(store.session(), 'locks/z'); // ... and someone else took it
    await lock.unlock();
    assert.ok(await store.get('locks/z'), "the stale holder's unlock left the new holder's lock");
    await other.unlock();
    assert.equal(await store.get('locks/z'), undefined);
    await store.close();
  });

  it('a waiter gives up when its signal aborts', async () => {
    const store = new MemoryKvStore();
    await lockKey(store, 'locks/w');
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 10);
    await assert.rejects(lockKey(store.session(), 'locks/w', { signal: ac.signal }), KvLockError);
    clearTimeout(timer);
    await store.close();
  });
});
