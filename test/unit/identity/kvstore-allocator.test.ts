import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type IdentityEvent,
  KvstoreIdentityAllocator,
  type KvstoreIdentityAllocatorOptions,
  labelKeyOf,
  labelsOfKey,
} from '../../../src/identity/index.js';
import { IDENTITY_ID_PREFIX, IDENTITY_VALUE_PREFIX, MemoryKvStore } from '../../../src/kvstore/index.js';
import { cidrIdentityLabels, LabelSet, parsePrefix } from '../../../src/labels/index.js';
import { until } from '../kvstore/helpers/until.js';

const L = (...s: string[]) => LabelSet.parse(s);
const web = L('k8s:app=web', 'k8s:io.kubernetes.pod.namespace=default');

/** A store shared by `n` agents, each with its own session (lease) and allocator. */
async function cluster(n: number, opts: Partial<KvstoreIdentityAllocatorOptions> = {}, latency = true) {
  const store = new MemoryKvStore(latency ? { latency: () => Math.random() * 2 } : {});
  const nodes = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const session = store.session(`node${i + 1}`);
      const alloc = new KvstoreIdentityAllocator({ store: session, node: `node${i + 1}`, ...opts });
      await alloc.start();
      return { session, alloc };
    }),
  );
  const close = async () => {
    for (const { session, alloc } of nodes) {
      await alloc.close();
      await session.close();
    }
    await store.close();
  };
  return { store, nodes, close };
}

async function keys(store: MemoryKvStore, prefix: string): Promise<Record<string, string>> {
  return Object.fromEntries(
    (await store.list(prefix)).pairs.map((p) => [p.key.slice(prefix.length), p.value]),
  );
}

describe('kvstore identity allocator', () => {
  it('uses upstream key layout: id/<id> → label key, value/<label key>/<node> → id (leased)', async () => {
    const { store, nodes, close } = await cluster(1, {}, false);
    const { identity, isNew } = await nodes[0]!.alloc.allocate(web);
    assert.ok(isNew);
    assert.ok(identity.id >= 256 && identity.id <= 65535);
    const key = 'k8s:app=web;k8s:io.kubernetes.pod.namespace=default;';
    assert.equal(labelKeyOf(web), key);
    assert.equal(labelsOfKey(key).toString(), web.toString());
    assert.deepEqual(await keys(store, IDENTITY_ID_PREFIX), { [identity.id]: key });
    assert.deepEqual(await keys(store, IDENTITY_VALUE_PREFIX), { [`${key}/node1`]: String(identity.id) });
    assert.equal((await store.get(`${IDENTITY_VALUE_PREFIX}${key}/node1`))?.leased, true);
    assert.equal((await store.get(`${IDENTITY_ID_PREFIX}${identity.id}`))?.leased, false);
    assert.equal((await store.list('cilium/state/identities/v1/locks/')).pairs.length, 0, 'lock released');
    await close();
  });

  it('three agents allocating the same new labels at once agree on one identity', async () => {
    for (let round = 0; round < 10; round++) {
      const { store, nodes, close } = await cluster(3);
      const results = await Promise.all(nodes.map((n) => n.alloc.allocate(web)));
      const ids = new Set(results.map((r) => r.identity.id));
      assert.equal(ids.size, 1, `round ${round}: ${[...ids]}`);
      assert.equal(results.filter((r) => r.isNew).length, 1, 'one of them created it');
      assert.equal(Object.keys(await keys(store, IDENTITY_ID_PREFIX)).length, 1);
      assert.equal(Object.keys(await keys(store, IDENTITY_VALUE_PREFIX)).length, 3, 'one value key per node');
      await close();
    }
  });

  it('never gives two label sets one ID, and every agent the same ID per label set, under contention', async () => {
    // Sequential ID choice makes every agent try the same free ID first: create-only must sort it out.
    const { store, nodes, close } = await cluster(3, { idOrder: 'sequential' });
    const sets = Array.from({ length: 12 }, (_, i) => L(`k8s:app=a${i}`));
    const results = await Promise.all(
      nodes.flatMap((n, ni) =>
        sets.map(async (labels, li) => ({ ni, li, id: (await n.alloc.allocate(labels)).identity.id })),
      ),
    );
    const idOf = new Map<number, number>();
    for (const r of results) {
      if (idOf.has(r.li)) assert.equal(r.id, idOf.get(r.li), `label set ${r.li} got two IDs`);
      else idOf.set(r.li, r.id);
    }
    assert.equal(new Set(idOf.values()).size, sets.length, 'distinct IDs for distinct label sets');
    assert.deepEqual(
      [...new Set(idOf.values())].sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, i) => 256 + i),
    );
    const masters = await keys(store, IDENTITY_ID_PREFIX);
    assert.equal(Object.keys(masters).length, sets.length, 'no stray master keys');
    for (const [li, id] of idOf) assert.equal(masters[id], labelKeyOf(sets[li]!));
    await close();
  });

  it("identities allocated by other agents appear in every agent's cache and reach subscribers", async () => {
    const { nodes, close } = await cluster(2);
    const [a, b] = [nodes[0]!.alloc, nodes[1]!.alloc];
    const seen: IdentityEvent[] = [];
    b.subscribe((e) => seen.push(...e));
    const { identity } = await a.allocate(web);
    await until(() => b.lookup(identity.id) !== undefined, 'identity on node2');
    assert.equal(b.lookup(identity.id)?.labels.toString(), web.toString());
    assert.equal(b.lookupByLabels(web)?.id, identity.id);
    assert.equal(b.refCount(identity.id), 0, 'node2 holds no reference');
    assert.deepEqual(
      seen.map((e) => [e.type, e.identity.id]),
      [['added', identity.id]],
    );
    const replay: number[] = [];
    b.subscribe((e) => replay.push(...e.map((x) => x.identity.id)), { replay: true });
    assert.deepEqual(replay, [1, 2, 3, 4, 5, 6, 7, 8, identity.id]);
    await close();
  });

  it('counts references per agent: the value key goes with the last local reference, gc() then deletes the ID', async () => {
    const { store, nodes, close } = await cluster(2);
    const [a, b] = [nodes[0]!.alloc, nodes[1]!.alloc];
    const id = (await a.allocate(web)).identity.id;
    await a.allocate(web);
    assert.equal((await b.allocate(web)).identity.id, id);
    assert.equal(a.refCount(id), 2);
    assert.equal(await a.release(id), false);
    assert.equal(await a.release(web), true, "node1's last reference");
    assert.deepEqual(Object.keys(await keys(store, IDENTITY_VALUE_PREFIX)), [`${labelKeyOf(web)}/node2`]);
    assert.deepEqual(await a.gc(), [], 'still used by node2');
    const removed: number[] = [];
    a.subscribe((e) => removed.push(...e.filter((x) => x.type === 'removed').map((x) => x.identity.id)));
    assert.equal(await b.release(id), true);
    assert.deepEqual(await b.gc(), [id]);
    assert.deepEqual(await keys(store, IDENTITY_ID_PREFIX), {});
    await until(() => a.lookup(id) === undefined && b.lookup(id) === undefined, 'removal on both nodes');
    assert.deepEqual(removed, [id]);
    await assert.rejects(a.release(id), /release of unknown identity/);
    await close();
  });

  it('a label set released everywhere but not yet collected keeps its ID when allocated again', async () => {
    const { nodes, close } = await cluster(2);
    const [a, b] = [nodes[0]!.alloc, nodes[1]!.alloc];
    const id = (await a.allocate(web)).identity.id;
    await a.release(id);
    await until(() => b.lookup(id) !== undefined, 'identity on node2');
    const again = await b.allocate(web);
    assert.equal(again.identity.id, id);
    assert.equal(again.isNew, false);
    assert.deepEqual(await b.gc(), []);
    await close();
  });

  it('an agent that dies takes its references with its lease; identities others use survive gc', async () => {
    const { store, nodes, close } = await cluster(3);
    const [a, b] = [nodes[0]!, nodes[1]!];
    const shared = (await a.alloc.allocate(web)).identity.id;
    await b.alloc.allocate(web);
    const onlyA = (await a.alloc.allocate(L('k8s:app=solo'))).identity.id;
    await a.session.close(); // node1 dies without releasing
    assert.deepEqual(Object.keys(await keys(store, IDENTITY_VALUE_PREFIX)), [`${labelKeyOf(web)}/node2`]);
    assert.deepEqual(await nodes[2]!.alloc.gc(), [onlyA]);
    assert.deepEqual(Object.keys(await keys(store, IDENTITY_ID_PREFIX)), [String(shared)]);
    await close();
  });

  it('an agent restarting while its old lease lives finds its identity again (same ID)', async () => {
    const { store, nodes, close } = await cluster(1);
    const id = (await nodes[0]!.alloc.allocate(web)).identity.id;
    // The restarted agent: a new session and allocator for the same node name.
    const session = store.session('node1');
    const restarted = new KvstoreIdentityAllocator({ store: session, node: 'node1' });
    const again = await restarted.allocate(web);
    assert.deepEqual([again.identity.id, again.isNew], [id, false]);
    // The old lease finally expires: the value key was re-bound to the new lease and stays.
    await nodes[0]!.session.close();
    const valueKey = `${IDENTITY_VALUE_PREFIX}${labelKeyOf(web)}/node1`;
    assert.equal((await store.get(valueKey))?.value, String(id));
    assert.equal(await restarted.release(id), true);
    assert.equal(await store.get(valueKey), undefined);
    await restarted.close();
    await session.close();
    await close();
  });

  it('re-publishes its value keys (and missing master keys) after losing its lease', async () => {
    const { store, nodes, close } = await cluster(2);
    const [a, b] = [nodes[0]!, nodes[1]!];
    const id = (await a.alloc.allocate(web)).identity.id;
    // The store lost every identity key (etcd restored empty) and node1's lease expired.
    await store.deletePrefix('cilium/state/identities/');
    await a.session.expireLease();
    await until(
      () => a.alloc.lookup(id) !== undefined && b.alloc.lookup(id) === undefined,
      'node2 saw the deletion, node1 kept what it holds',
    );
    const check = async () =>
      (await keys(store, IDENTITY_ID_PREFIX))[id] === labelKeyOf(web) &&
      (await keys(store, IDENTITY_VALUE_PREFIX))[`${labelKeyOf(web)}/node1`] === String(id);
    const deadline = Date.now() + 2000;
    while (!(await check())) {
      assert.ok(Date.now() < deadline, 'keys re-published');
      await new Promise((r) => setTimeout(r, 1));
    }
    await until(() => b.alloc.lookup(id) !== undefined, 'node2 sees it again');
    assert.deepEqual(await b.alloc.gc(), []);
    await close();
  });

  it("re-creates a master key that is missing while a node's value key still names it", async () => {
    const { store, nodes, close } = await cluster(2, {}, false);
    const id = (await nodes[0]!.alloc.allocate(web)).identity.id;
    await store.delete(`${IDENTITY_ID_PREFIX}${id}`);
    const got = await nodes[1]!.alloc.allocate(web);
    assert.deepEqual([got.identity.id, got.isNew], [id, false]);
    assert.equal((await store.get(`${IDENTITY_ID_PREFIX}${id}`))?.value, labelKeyOf(web));
    await close();
  });

  it('a label key that is a prefix of another does not see its value keys', async () => {
    const { nodes, close } = await cluster(2, {}, false);
    const short = L('k8s:a=1');
    const long = L('k8s:a=1', 'k8s:b=2');
    const idLong = (await nodes[0]!.alloc.allocate(long)).identity.id;
    const idShort = (await nodes[1]!.alloc.allocate(short)).identity.id;
    assert.notEqual(idShort, idLong);
    await close();
  });

  it('keeps reserved and CIDR identities node-local: nothing in the kvstore', async () => {
    const { store, nodes, close } = await cluster(1, {}, false);
    const a = nodes[0]!.alloc;
    assert.equal((await a.allocate(L('reserved:host'))).identity.id, 1);
    const cidr = await a.allocate(LabelSet.of(cidrIdentityLabels(parsePrefix('10.0.0.0/8'))));
    assert.equal(cidr.identity.scope, 'local');
    assert.equal(cidr.identity.id, 16777217);
    assert.equal(a.lookup(16777217)?.labels.toString(), 'cidr:10.0.0.0/8;reserved:world');
    assert.equal(a.refCount(16777217), 1);
    assert.deepEqual((await store.list('cilium/')).pairs, []);
    assert.equal(await a.release(16777217), true);
    assert.equal(await a.release(1), false);
    await assert.rejects(a.allocate(LabelSet.empty), /empty label set/);
    await close();
  });

  it('gc running on every agent while they allocate never removes an ID in use', async () => {
    const { store, nodes, close } = await cluster(3);
    const sets = Array.from({ length: 6 }, (_, i) => L(`k8s:app=g${i}`));
    for (let round = 0; round < 5; round++) {
      const held = await Promise.all(
        nodes.flatMap((n) => [
          ...sets.map(async (labels) => ({ n, id: (await n.alloc.allocate(labels)).identity.id })),
          n.alloc.gc().then(() => undefined),
        ]),
      );
      const masters = await keys(store, IDENTITY_ID_PREFIX);
      for (const h of held) if (h) assert.ok(masters[h.id], `round ${round}: ID ${h.id} in use lost its key`);
      await Promise.all(held.map((h) => h?.n.alloc.release(h.id)));
    }
    await nodes[0]!.alloc.gc();
    assert.deepEqual(await keys(store, 'cilium/state/identities/'), {});
    await close();
  });

  it('refuses a node name it cannot put in a key', () => {
    const store = new MemoryKvStore();
    assert.throws(() => new KvstoreIdentityAllocator({ store, node: 'a/b' }), /node "a\/b"/);
    assert.throws(() => new KvstoreIdentityAllocator({ store, node: '' }), /node ""/);
  });
});
