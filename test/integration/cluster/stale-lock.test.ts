/**
 * Identity allocation locks never outlive what took them (a real one-member etcd on loopback):
 * - an allocation interrupted by an outage while it holds the lock: its agent lives on (its lease is
 *   kept alive, so the lease alone would keep the lock forever); once etcd is back the lock goes, and
 *   another agent and the interrupted one allocate those labels and agree;
 * - a holder killed while holding the lock: the lock goes with its lease, one TTL later, and the
 *   waiting agent's allocation completes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { distRoot } from '../../../src/common/paths.js';
import { KvstoreIdentityAllocator, labelKeyOf } from '../../../src/identity/index.js';
import {
  IDENTITY_VALUE_PREFIX,
  identityLockKey,
  isUnavailable,
  type KvStore,
  retryUnavailable,
} from '../../../src/kvstore/index.js';
import { LabelSet } from '../../../src/labels/index.js';
import { eventually } from '../kvstore/contract.js';
import { startTestEtcd, type TestEtcd } from '../kvstore/etcd-harness.js';

const labels = (app: string) => LabelSet.parse([`k8s:app=${app}`, 'k8s:io.kubernetes.pod.namespace=default']);

/** Fails the test instead of hanging when a lock is never released. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

describe('etcd: identity allocation locks left by an outage or a dead holder', () => {
  let etcd: TestEtcd;
  before(async () => {
    etcd = await startTestEtcd(1);
  });
  after(() => etcd?.stop());

  it('an allocation interrupted by an outage while holding the lock does not block later allocations', async () => {
    // Leases far longer than the test: only the holder's own release can free the lock.
    const storeA = etcd.client({ leaseTtlSeconds: 60 });
    const storeB = etcd.client({ leaseTtlSeconds: 60 });
    const observer = etcd.client();
    const l = labels('interrupted');
    const lock = identityLockKey(labelKeyOf(l));
    // Agent A's store, real, with one hook: the first time A lists the value keys of these labels
    // (it holds their lock then), etcd is stopped under it.
    let armed = true;
    let lockSeen: string | undefined;
    const hooked = new Proxy(storeA, {
      get(target, prop) {
        if (prop === 'list')
          return async (prefix: string) => {
            if (armed && prefix.startsWith(`${IDENTITY_VALUE_PREFIX}${labelKeyOf(l)}`)) {
              armed = false;
              lockSeen = (await observer.get(lock))?.value;
              await etcd.stopMembers();
            }
            return target.list(prefix);
          };
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as KvStore;
    const deferred: unknown[] = [];
    const a = new KvstoreIdentityAllocator({
      store: hooked,
      node: 'nodeA',
      onError: (e) => deferred.push(e),
    });
    const b = new KvstoreIdentityAllocator({ store: storeB, node: 'nodeB' });
    await a.start();
    await b.start();
    try {
      await storeA.put('test/nodeA-alive', '1', { lease: true });

      const err = await a.allocate(l).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isUnavailable(err), `the allocation failed with the outage: ${String(err)}`);
      assert.match(lockSeen ?? '', /^nodeA\//, 'A held the lock when etcd stopped');
      assert.ok(
        deferred.some((e) =>
          String((e as Error).message).startsWith(`releasing ${lock} once the kvstore answers`),
        ),
        'the allocator says the release waits for the kvstore',
      );

      await etcd.startMembers();
      // A is alive: its lease (and so its keys) survive the outage; the lock does not.
      await eventually(async () => (await observer.get(lock)) === undefined, 'the lock released', 10_000);
      assert.equal((await observer.get('test/nodeA-alive'))?.value, '1', "A's lease lives on");

      // B allocates those labels (it would wait forever on a lock nobody releases), A retries: one ID.
      const gotB = await within(10_000, "B's allocation", b.allocate(l));
      const gotA = await within(
        10_000,
        "A's retried allocation",
        retryUnavailable(() => a.allocate(l)),
      );
      assert.equal(gotA.identity.id, gotB.identity.id, 'both agents agree');
      assert.equal((await observer.get(lock)) ?? undefined, undefined, 'no lock left');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a holder killed while holding the lock: the lock goes with its lease and the waiting allocation completes', async () => {
    const ttl = 3;
    const l = labels('killed-holder');
    const lock = identityLockKey(labelKeyOf(l));
    // Another agent process takes the lock (as its allocation would) and is SIGKILLed holding it.
    const script = `
const { EtcdKvStore } = await import(${JSON.stringify(join(distRoot, 'src', 'kvstore', 'etcd.js'))});
const { lockKey } = await import(${JSON.stringify(join(distRoot, 'src', 'kvstore', 'index.js'))});
const store = new EtcdKvStore({ endpoints: ${JSON.stringify(etcd.endpoints)}, leaseTtlSeconds: ${ttl} });
await lockKey(store, ${JSON.stringify(lock)}, { owner: 'nodeK' });
console.log('locked');
setInterval(() => {}, 1000);`;
    const holder = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const b = new KvstoreIdentityAllocator({ store: etcd.client({ leaseTtlSeconds: 30 }), node: 'nodeB' });
    try {
      await within(
        15_000,
        'the holder to take the lock',
        new Promise<void>((resolve) =>
          holder.stdout!.on('data', (d) => String(d).includes('locked') && resolve()),
        ),
      );
      holder.kill('SIGKILL');
      const killedAt = Date.now();
      await b.start();
      const got = await within(4 * ttl * 1000 + 5000, "B's allocation", b.allocate(l));
      const waited = Date.now() - killedAt;
      assert.ok(got.isNew, 'B created the identity');
      assert.ok(waited >= (ttl - 1) * 1000, `B waited for the lease to expire (${waited} ms)`);
    } finally {
      holder.kill('SIGKILL');
      await b.close();
    }
  });
});
