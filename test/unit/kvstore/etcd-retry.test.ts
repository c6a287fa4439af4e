/** retryUnavailable: how a caller waits for an etcd that cannot be reached (requests to it fail fast). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  KvArgumentError,
  KvClosedError,
  KvUnavailableError,
  MemoryKvStore,
  retryUnavailable,
} from '../../../src/kvstore/index.js';

describe('retryUnavailable', () => {
  it('tries again with backoff while the store is unavailable, then returns what the operation returns', async () => {
    const store = new MemoryKvStore();
    let calls = 0;
    const retries: number[] = [];
    const started = Date.now();
    const rev = await retryUnavailable(
      async () => {
        if (++calls < 4) throw new KvUnavailableError('etcd put k: unavailable');
        return store.put('k', 'v');
      },
      { minDelayMs: 10, maxDelayMs: 20, onRetry: (_err, attempt) => retries.push(attempt) },
    );
    assert.equal(rev, 1);
    assert.equal((await store.get('k'))?.value, 'v');
    assert.deepEqual(retries, [1, 2, 3]);
    assert.ok(Date.now() - started >= 10 + 20 + 20, 'waited between attempts');
    await store.close();
  });

  it('throws other errors at once: a closed client, bad input, a timeout is retried like unavailable', async () => {
    for (const err of [
      new KvClosedError(),
      new KvArgumentError('key', '', 'must be a non-empty string'),
      new Error('x'),
    ]) {
      let calls = 0;
      await assert.rejects(
        retryUnavailable(async () => {
          calls++;
          throw err;
        }),
        (e: unknown) => e === err,
      );
      assert.equal(calls, 1, `${err.name} is not retried`);
    }
    let calls = 0;
    const v = await retryUnavailable(
      async () => {
        if (++calls === 1) throw new KvUnavailableError('etcd get k: no answer', { timeout: true });
        return 'ok';
      },
      { minDelayMs: 1 },
    );
    assert.equal(v, 'ok');
    assert.equal(new KvUnavailableError('x', { timeout: true }).code, 'timeout');
  });

  it('gives up when its signal aborts, throwing the last unavailable error', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const last = new KvUnavailableError('etcd create k: unavailable');
    const started = Date.now();
    await assert.rejects(
      retryUnavailable(
        async () => {
          throw last;
        },
        { signal: ac.signal, minDelayMs: 1000 },
      ),
      (e: unknown) => e === last,
    );
    assert.ok(Date.now() - started < 900, 'the wait ends with the signal');
  });
});
