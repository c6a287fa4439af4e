/**
 * etcd stopped for a few seconds and started again (a single member, as the lab runs by default):
 * what clients see while it is away and what they get back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KvstoreIdentityAllocator } from '../../../src/identity/index.js';
import {
  IDENTITY_ID_PREFIX,
  KvUnavailableError,
  type KvWatchBatch,
  retryUnavailable,
} from '../../../src/kvstore/index.js';
import { LabelSet } from '../../../src/labels/index.js';
import { collect, eventually, uniqueKeyPrefix, until } from './contract.js';
import { startTestEtcd, type TestEtcd } from './etcd-harness.js';

describe('etcd: outage and return of a one-member etcd', () => {
  let etcd: TestEtcd;
  before(async () => {
    etcd = await startTestEtcd(1);
  });
  after(() => etcd?.stop());

  it('while etcd is stopped: status says down, requests fail fast, an allocation waits; after it returns: the allocation completes, watches resume without losing or repeating events, leases survive', async () => {
    const p = uniqueKeyPrefix();
    const observer = etcd.client();
    const writer = etcd.client();
    // The production lease TTL: the client's gRPC channel reconnects with a backoff, and on a loaded
    // machine its first keepalive after the restart can come later than a short TTL allows.
    const agent = etcd.client({ leaseTtlSeconds: 15 });
    const alloc = new KvstoreIdentityAllocator({ store: agent, node: 'node1' });
    await alloc.start();
    let leaseLost = 0;
    agent.onLeaseLost(() => leaseLost++);
    const known = await alloc.allocate(LabelSet.parse(['k8s:app=known']));
    await agent.put(`${p}node1`, 'published', { lease: true });

    const base = await writer.revision();
    const watched = collect(observer.watch(p, { afterRevision: base }));
    await writer.put(`${p}before`, '1');
    await until(() => watched.items.length === 1, 'the first event');
    await eventually(async () => (await observer.checkStatus()).ok, 'status ok');
    assert.match(
      observer.status().line,
      /^etcd: 1\/1 connected, has-quorum, leader http:\/\/127\.0\.0\.1:\d+$/,
    );

    await etcd.stopMembers();
    await until(() => !observer.status().ok, 'status down', 5000);
    assert.match(observer.status().line, /^etcd: 0\/1 connected: http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);

    // Requests fail at once, saying why.
    for (const op of [
      () => observer.get(`${p}before`),
      () => writer.put(`${p}x`, '1'),
      () => observer.list(p),
    ]) {
      const t0 = Date.now();
      const err = await op().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof KvUnavailableError, `got ${String(err)}`);
      assert.equal(err.code, 'unavailable');
      assert.match(err.message, /^etcd (get|put|list) .*unavailable/);
      assert.ok(Date.now() - t0 < 1000, `failed after ${Date.now() - t0} ms`);
    }
    // Known identities still resolve from the local cache; a new one waits for etcd.
    assert.equal(alloc.lookup(known.identity.id)?.labels.toString(), 'k8s:app=known');
    let waits = 0;
    let settled = false;
    const fresh = LabelSet.parse(['k8s:app=created-during-outage']);
    const pending = retryUnavailable(() => alloc.allocate(fresh), { onRetry: () => waits++ }).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(settled, false, 'the allocation waits while etcd is away');
    assert.ok(waits >= 2, `retried ${waits} times`);

    await etcd.startMembers();
    const { identity, isNew } = await pending;
    assert.ok(isNew);
    assert.equal(
      (await observer.get(`${IDENTITY_ID_PREFIX}${identity.id}`))?.value,
      'k8s:app=created-during-outage;',
    );
    // Written right after the return, likely before the watch reconnected: delivered from history.
    const r1 = await writer.put(`${p}after`, '2');
    const r2 = await writer.delete(`${p}before`).then(() => writer.revision());
    await until(() => watched.items.at(-1)?.revision === r2, 'events after the return', 10_000);
    const events = watched.items.flatMap((b: KvWatchBatch) =>
      b.events.map((e) => `${e.type} ${e.key.slice(p.length)}`),
    );
    assert.deepEqual(events, ['put before', 'put after', 'delete before'], 'each event once, in order');
    assert.ok(watched.items.every((b, i) => i === 0 || b.revision > watched.items[i - 1]!.revision));
    assert.ok(watched.items.some((b) => b.revision === r1));

    await eventually(async () => (await observer.checkStatus()).ok, 'status ok again');
    assert.match(observer.status().line, /^etcd: 1\/1 connected, has-quorum, leader /);
    // A restarted etcd renews leases: the agent's keys are still there, nothing was lost.
    assert.equal((await observer.get(`${p}node1`))?.value, 'published');
    assert.equal(leaseLost, 0);
    await alloc.close();
  });
});
