/**
 * Cluster-wide identities through a real etcd: three agents' allocators (src/identity), each with
 * its own etcd client and lease, allocating at once. Prints the allocation throughput and the etcd
 * keys and bytes each identity costs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KvstoreIdentityAllocator, labelKeyOf } from '../../../src/identity/index.js';
import type { EtcdKvStore } from '../../../src/kvstore/etcd.js';
import { IDENTITIES_PREFIX, IDENTITY_ID_PREFIX, IDENTITY_VALUE_PREFIX } from '../../../src/kvstore/index.js';
import { LabelSet } from '../../../src/labels/index.js';
import { eventually } from './contract.js';
import { startTestEtcd, type TestEtcd } from './etcd-harness.js';

const labels = (tag: string, i: number) =>
  LabelSet.parse([`k8s:app=${tag}-${i}`, 'k8s:io.kubernetes.pod.namespace=default']);

interface Agent {
  store: EtcdKvStore;
  alloc: KvstoreIdentityAllocator;
}

describe('etcd: cluster-wide identities from three agents', () => {
  let etcd: TestEtcd;
  let agents: Agent[];
  before(async () => {
    etcd = await startTestEtcd(1);
    agents = await Promise.all(
      [1, 2, 3].map(async (i) => {
        const store = etcd.client({ leaseTtlSeconds: 15 });
        const alloc = new KvstoreIdentityAllocator({ store, node: `node${i}` });
        await alloc.start();
        return { store, alloc };
      }),
    );
  });
  after(async () => {
    for (const a of agents ?? []) await a.alloc.close();
    await etcd?.stop();
  });

  /** The master keys: ID → label key. */
  async function masters(): Promise<Map<number, string>> {
    const l = await agents[0]!.store.list(IDENTITY_ID_PREFIX);
    return new Map(l.pairs.map((p) => [Number(p.key.slice(IDENTITY_ID_PREFIX.length)), p.value]));
  }

  it('three agents allocating the same new labels at once agree, one of them creating each identity', async () => {
    const sets = Array.from({ length: 20 }, (_, i) => labels('same', i));
    const results = await Promise.all(agents.map((a) => Promise.all(sets.map((l) => a.alloc.allocate(l)))));
    for (let i = 0; i < sets.length; i++) {
      const ids = new Set(results.map((r) => r[i]!.identity.id));
      assert.equal(ids.size, 1, `${sets[i]}: one ID on every agent, got ${[...ids]}`);
      assert.equal(results.filter((r) => r[i]!.isNew).length, 1, `${sets[i]}: created once`);
    }
    const m = await masters();
    for (let i = 0; i < sets.length; i++)
      assert.equal(
        m.get(results[0]![i]!.identity.id),
        labelKeyOf(sets[i]!),
        'the master key holds the labels',
      );
    const values = await agents[0]!.store.list(IDENTITY_VALUE_PREFIX);
    assert.equal(
      values.pairs.filter((p) => p.key.includes('app=same-')).length,
      60,
      'one value key per node',
    );
    assert.ok(values.pairs.every((p) => p.leased));
    assert.equal(
      (await agents[0]!.store.list(`${IDENTITIES_PREFIX}/locks/`)).pairs.length,
      0,
      'locks released',
    );
  });

  it('no two label sets ever share an ID, and every agent learns every identity (throughput printed)', async (t) => {
    // Each agent allocates its own 50 label sets and 50 shared ones, all at once.
    const n = 50;
    const started = Date.now();
    const results = await Promise.all(
      agents.map((a, ai) =>
        Promise.all(
          [
            ...Array.from({ length: n }, (_, i) => labels(`own${ai}`, i)),
            ...Array.from({ length: n }, (_, i) => labels('shared', i)),
          ].map(async (l) => ({ key: labelKeyOf(l), id: (await a.alloc.allocate(l)).identity.id })),
        ),
      ),
    );
    const ms = Date.now() - started;
    const byKey = new Map<string, number>();
    for (const r of results.flat()) {
      const seen = byKey.get(r.key);
      assert.ok(seen === undefined || seen === r.id, `${r.key}: ${seen} and ${r.id}`);
      byKey.set(r.key, r.id);
    }
    assert.equal(byKey.size, 4 * n, 'own sets of three agents and the shared ones');
    const ids = new Set(byKey.values());
    assert.equal(ids.size, byKey.size, 'no two label sets share an ID');
    const m = await masters();
    for (const [key, id] of byKey) assert.equal(m.get(id), key);
    assert.equal(new Set(m.values()).size, m.size, 'one master key per label set in etcd');
    // Every agent learns the others' identities through its watch of the master keys.
    await eventually(
      async () =>
        agents.every((a) =>
          [...byKey].every(
            ([key, id]) => a.alloc.lookup(id) && labelKeyOf(a.alloc.lookup(id)!.labels) === key,
          ),
        ),
      'every agent knows every identity',
    );
    const allocations = results.flat().length;
    const bytes = await identityBytes([...ids]);
    t.diagnostic(
      `identity allocation through etcd, 3 agents at once: ${allocations} allocations (${byKey.size} identities) in ${ms} ms = ${Math.round((allocations * 1000) / ms)} allocations/s, ${Math.round((byKey.size * 1000) / ms)} new identities/s`,
    );
    t.diagnostic(
      `etcd per identity used by 1 node: 1 master key + 1 value key = 2 keys, ~${bytes.perOneNode} bytes (key + value); each further node using it: +1 value key, ~${bytes.perExtraNode} bytes`,
    );
  });

  it('released everywhere, an identity loses its value keys and gc() deletes its master key', async () => {
    const l = labels('gc', 1);
    const ids = await Promise.all(agents.map(async (a) => (await a.alloc.allocate(l)).identity.id));
    const id = ids[0]!;
    assert.ok(ids.every((x) => x === id));
    assert.deepEqual(await agents[0]!.alloc.gc().then((d) => d.includes(id)), false, 'in use: kept');
    for (const a of agents) assert.equal(await a.alloc.release(l), true);
    const valuePrefix = `${IDENTITY_VALUE_PREFIX}${labelKeyOf(l)}/`;
    assert.deepEqual((await agents[0]!.store.list(valuePrefix)).pairs, []);
    assert.ok((await agents[1]!.alloc.gc()).includes(id));
    assert.equal((await masters()).has(id), false);
    await eventually(
      async () => agents.every((a) => a.alloc.lookup(id) === undefined),
      'every agent forgets it',
    );
  });

  /** Bytes of the keys an identity costs: its master key, and one value key per node using it. */
  async function identityBytes(ids: number[]): Promise<{ perOneNode: number; perExtraNode: number }> {
    const m = await masters();
    const values = (await agents[0]!.store.list(IDENTITY_VALUE_PREFIX)).pairs;
    let master = 0;
    let value = 0;
    let valueKeys = 0;
    for (const id of ids) {
      const key = m.get(id)!;
      master += `${IDENTITY_ID_PREFIX}${id}`.length + Buffer.byteLength(key);
      for (const v of values.filter((p) => p.key.startsWith(`${IDENTITY_VALUE_PREFIX}${key}/`))) {
        value += Buffer.byteLength(v.key) + v.value.length;
        valueKeys++;
      }
    }
    const perValue = value / valueKeys;
    return { perOneNode: Math.round(master / ids.length + perValue), perExtraNode: Math.round(perValue) };
  }
});
