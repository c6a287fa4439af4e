/**
 * A three-member etcd cluster: one member stopped leaves quorum, two do not; a client whose only
 * member was away longer than its lease's TTL gets its lease lost and re-publishes; a watch that
 * must resume from compacted history makes a prefix cache list again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EtcdKvStore } from '../../../src/kvstore/etcd.js';
import {
  KvCompactedError,
  KvPrefixCache,
  KvUnavailableError,
  type PrefixChange,
} from '../../../src/kvstore/index.js';
import { collect, eventually, uniqueKeyPrefix, until } from './contract.js';
import { startTestEtcd, type TestEtcd } from './etcd-harness.js';

describe('etcd: a three-member cluster', () => {
  let etcd: TestEtcd;
  before(async () => {
    etcd = await startTestEtcd(3);
  });
  after(() => etcd?.stop());

  const statusLine = async (c: EtcdKvStore) => (await c.checkStatus()).line;

  it('keeps quorum with one member stopped (the leader), loses it with two, and serves again when they return', async () => {
    // The production lease TTL: with the harness's 3 s, a slow restart of two members could let the
    // lease of `a` expire before its keepalive got through, and its deletion would be a fourth event.
    const c = etcd.client({ leaseTtlSeconds: 15 });
    const p = uniqueKeyPrefix();
    await eventually(async () => (await c.checkStatus()).ok, 'quorum');
    const st = await c.checkStatus();
    assert.match(st.line, /^etcd: 3\/3 connected, has-quorum, leader http:\/\/127\.0\.0\.1:\d+$/);
    const leader = st.members.find((m) => m.leader)!;
    const leaderName = etcd.cluster.members.find((m) => leader.endpoint.endsWith(`:${m.clientPort}`))!.name;
    const w = collect(c.watch(p, { afterRevision: await c.revision() }));

    await etcd.stopMembers([leaderName]);
    await eventually(
      async () => /^etcd: 2\/3 connected, has-quorum, leader /.test(await statusLine(c)),
      '2/3 with quorum',
    );
    const now = c.status();
    assert.ok(now.ok);
    assert.notEqual(now.members.find((m) => m.leader)?.endpoint, leader.endpoint, 'a new leader');
    assert.match(now.line, new RegExp(`\\(${leader.endpoint}: .*ECONNREFUSED`));
    // Reads, writes and watches go on through the others.
    await c.put(`${p}a`, '1', { lease: true });
    assert.equal((await c.get(`${p}a`))?.value, '1');
    assert.equal(await c.create(`${p}b`, '2'), true);
    await until(() => w.items.length === 2, 'watch through the failover');

    const second = etcd.cluster.members.find((m) => m.name !== leaderName)!.name;
    await etcd.stopMembers([second]);
    await eventually(async () => /^etcd: 1\/3 connected, no-quorum: /.test(await statusLine(c)), 'no quorum');
    assert.equal(c.status().ok, false);
    const err = await c.get(`${p}a`).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof KvUnavailableError, `without quorum a read fails: ${String(err)}`);

    await etcd.startMembers([leaderName, second]);
    await eventually(
      async () => /^etcd: 3\/3 connected, has-quorum, leader /.test(await statusLine(c)),
      'all back',
    );
    await c.put(`${p}c`, '3');
    await until(() => w.items.length === 3, 'watch after the return');
    assert.deepEqual(
      w.items.map((b) => b.events.map((e) => `${e.type} ${e.key.slice(p.length)}`).join()),
      ['put a', 'put b', 'put c'],
    );
  });

  it("a client whose only member is away longer than its lease's TTL loses its lease, learns it on return and re-publishes; its prefix cache lists again after compaction", async () => {
    const p = uniqueKeyPrefix();
    const m3 = etcd.cluster.members[2]!;
    const lonely = etcd.client({ endpoints: [etcd.endpoints[2]!], leaseTtlSeconds: 3 });
    const others = etcd.client({ endpoints: etcd.endpoints.slice(0, 2) });
    let republished = 0;
    lonely.onLeaseLost(() => {
      lonely.put(`${p}node`, 'again', { lease: true }).then(() => republished++);
    });
    await lonely.put(`${p}node`, 'first', { lease: true });
    const firstLease = lonely.leaseId;
    await others.put(`${p}q/a`, '1');
    const changes: PrefixChange[] = [];
    const errors: unknown[] = [];
    const cache = new KvPrefixCache(lonely, `${p}q/`, (cs) => changes.push(...cs), {
      retryMs: 100,
      onError: (e) => errors.push(e),
    });
    await cache.start();
    assert.deepEqual(cache.entries(), [[`${p}q/a`, '1']]);

    await etcd.stopMembers([m3.name]);
    // The other two expire the lease (no keepalive reaches them) and go on writing and compacting.
    await eventually(async () => (await others.get(`${p}node`)) === undefined, 'lease expiry', 15_000);
    await others.delete(`${p}q/a`);
    await others.put(`${p}q/b`, '2');
    await etcd.raw().kv.compact({ revision: await others.revision(), physical: true });
    assert.equal(republished, 0, 'nothing is known while the member is away');

    await etcd.startMembers([m3.name]);
    await until(() => republished === 1, 'lease lost and re-published', 15_000);
    assert.notEqual(lonely.leaseId, firstLease, 'a new lease');
    const node = await others.get(`${p}node`);
    assert.equal(node?.value, 'again');
    assert.equal(node?.leased, true);
    await until(
      () => cache.get(`${p}q/b`) === '2' && cache.get(`${p}q/a`) === undefined,
      'cache re-listed',
      15_000,
    );
    assert.ok(
      errors.some((e) => e instanceof KvCompactedError),
      `the resumed watch hit compacted history: ${errors.map(String).join('; ')}`,
    );
    assert.deepEqual(
      changes.map((c) => `${c.type} ${c.key.slice(p.length)}`),
      ['upsert q/a', 'upsert q/b', 'delete q/a'],
    );
    cache.close();
  });
});
