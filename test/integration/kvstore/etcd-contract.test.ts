/**
 * The KvStore contract against a real etcd (one member on 127.0.0.1), as the memory store passes it,
 * and what only a real etcd shows: compaction, paged listings, a dead client's lease expiring.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { distRoot } from '../../../src/common/paths.js';
import type { EtcdKvStore } from '../../../src/kvstore/etcd.js';
import { KvCompactedError } from '../../../src/kvstore/index.js';
import { collect, eventually, kvStoreContract, uniqueKeyPrefix, until } from './contract.js';
import { startTestEtcd, type TestEtcd } from './etcd-harness.js';

kvStoreContract('etcd: kvstore contract', async () => {
  const etcd = await startTestEtcd(1);
  const raw = etcd.raw();
  return {
    client: async () => etcd.client(),
    // etcd revokes the lease as an expiry would; the client learns it at its next keepalive.
    loseLease: async (c) => {
      const id = (c as EtcdKvStore).leaseId;
      if (id === undefined) throw new Error('the client has no lease');
      await raw.leaseClient.leaseRevoke({ ID: id });
    },
    close: () => etcd.stop(),
  };
});

describe('etcd: what only a real etcd shows', () => {
  let etcd: TestEtcd;
  before(async () => {
    etcd = await startTestEtcd(1);
  });
  after(() => etcd?.stop());

  it('a watch from compacted history fails with KvCompactedError; one after the compaction revision works', async () => {
    const s = etcd.client();
    const p = uniqueKeyPrefix();
    const r0 = await s.put(`${p}a`, '1');
    await s.put(`${p}b`, '2');
    const live = collect(s.watch(p, { afterRevision: r0 }));
    await until(() => live.items.length === 1, 'the live watch');
    // Compaction removes history up to a revision, as an etcd with auto-compaction does. A deletion
    // at the compaction revision itself is gone too, so resuming right before it must fail.
    const rc = await s.delete(`${p}a`).then(() => s.revision());
    await etcd.raw().kv.compact({ revision: rc, physical: true });
    for (const after of [r0, rc - 1]) {
      const err = await collect(s.watch(p, { afterRevision: after })).done;
      assert.ok(err instanceof KvCompactedError, `after ${after}: got ${String(err)}`);
      assert.equal(err.code, 'failed-precondition');
      assert.equal(err.requested, after);
      assert.equal(err.compactedUpTo, rc);
    }
    const ok = collect(s.watch(p, { afterRevision: rc }));
    const rd = await s.put(`${p}d`, '4');
    await until(() => ok.items.length === 1, 'the watch after the compaction');
    await until(() => live.items.length === 3, 'the live watch');
    assert.equal(ok.items[0]!.revision, rd);
    // A watch that was live before the compaction goes on undisturbed.
    assert.deepEqual(
      live.items.map((b) => b.revision - r0),
      [1, rc - r0, rd - r0],
    );
  });

  it('lists thousands of keys in pages read at one revision', async () => {
    const s = etcd.client();
    const raw = etcd.raw();
    const p = uniqueKeyPrefix();
    const n = 2500;
    for (let i = 0; i < n; i += 100) {
      await raw.kv.txn({
        success: Array.from({ length: 100 }, (_, j) => ({
          request_put: { key: Buffer.from(`${p}${String(i + j).padStart(5, '0')}`), value: Buffer.from('v') },
        })),
      });
    }
    const rev = await s.revision();
    // Writes during the listing do not show: every page is read at the first page's revision.
    const listing = s.list(p);
    await s.put(`${p}99999`, 'later');
    const l = await listing;
    assert.ok(l.revision === rev || l.revision === rev + 1);
    const expected = l.revision === rev ? n : n + 1;
    assert.equal(l.pairs.length, expected);
    assert.equal(l.pairs[0]!.key, `${p}00000`);
    assert.equal(l.pairs[n - 1]!.key, `${p}02499`);
    assert.ok(
      l.pairs.every((x, i) => i === 0 || l.pairs[i - 1]!.key < x.key),
      'sorted, no key twice',
    );
  });

  it("a killed client's leased keys expire with its lease, about one TTL later", async () => {
    const s = etcd.client();
    const p = uniqueKeyPrefix();
    // A client that writes one leased key and lives until it is killed: a dead agent.
    const etcdModule = pathToFileURL(join(distRoot, 'src', 'kvstore', 'etcd.js')).href;
    const writer = `
      import { EtcdKvStore } from '${etcdModule}';
      const store = new EtcdKvStore({ endpoints: ['${etcd.endpoints[0]}'], leaseTtlSeconds: 3 });
      await store.put('${p}node', String(process.pid), { lease: true });
      console.log('ready');
      setInterval(() => {}, 1 << 30);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', writer], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
        child.once('exit', (code) => reject(new Error(`writer exited (${code})`)));
      });
      assert.equal((await s.get(`${p}node`))?.leased, true);
      // Kept alive while the writer lives: longer than its 3 s TTL.
      await new Promise((r) => setTimeout(r, 4000));
      assert.ok(await s.get(`${p}node`), 'alive while its owner lives');
      child.kill('SIGKILL');
      const killed = Date.now();
      await eventually(async () => (await s.get(`${p}node`)) === undefined, 'expiry', 10_000);
      const ms = Date.now() - killed;
      assert.ok(ms < 6000, `expired ${ms} ms after the kill (TTL 3 s)`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
