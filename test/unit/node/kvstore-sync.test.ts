import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryKvStore, nodeKey } from '../../../src/kvstore/index.js';
import { type Node, NodeKvSync, NodeRegistry } from '../../../src/node/index.js';
import { until } from '../kvstore/helpers/until.js';
import { makeNode } from './helpers/nodes.js';

async function agent(store: MemoryKvStore, name: string, i: number, extra: Partial<Node> = {}) {
  const session = store.session(name);
  const registry = new NodeRegistry(makeNode(name, i, extra));
  const errors: unknown[] = [];
  const sync = new NodeKvSync({ store: session, registry, onError: (e) => errors.push(e) });
  await sync.start();
  const log: string[] = [];
  registry.subscribe(
    {
      onAdd: (n, local) => log.push(`add ${n.name}${local ? ' (local)' : ''}`),
      onUpdate: (n) => log.push(`update ${n.name}`),
      onDelete: (n) => log.push(`delete ${n.name}`),
    },
    { replay: false },
  );
  const stop = async () => {
    sync.close();
    await session.close();
  };
  return { session, registry, sync, errors, log, stop };
}

const names = (r: NodeRegistry) => r.list().map((n) => n.name);

describe('node discovery through the kvstore', () => {
  it('publishes the local node (leased) under nodes/v1/<cluster>/<name>', async () => {
    const store = new MemoryKvStore();
    const a = await agent(store, 'node1', 1);
    const pair = await store.get('cilium/state/nodes/v1/default/node1');
    assert.ok(pair?.leased);
    assert.deepEqual(JSON.parse(pair.value), makeNode('node1', 1));
    assert.equal(a.sync.key, nodeKey('default', 'node1'));
    await a.stop();
    await store.close();
  });

  it('two agents see each other; closing one session removes its node from the other', async () => {
    const store = new MemoryKvStore({ latency: () => Math.random() * 2 });
    const a = await agent(store, 'node1', 1);
    const b = await agent(store, 'node2', 2);
    assert.deepEqual(names(b.registry), ['node2', 'node1'], 'node2 listed node1 at start');
    await until(() => a.registry.get('node2') !== undefined, 'node1 sees node2');
    assert.deepEqual(a.log, ['add node2']);
    assert.equal(a.registry.get('node2')?.ipv4PodCidr, '10.200.2.0/24');
    await b.session.close(); // agent 2 dies: its lease goes, and its node with it
    await until(() => a.registry.get('node2') === undefined, 'node2 gone from node1');
    assert.deepEqual(a.log, ['add node2', 'delete node2']);
    assert.deepEqual(a.errors, []);
    await a.stop();
    await b.stop();
    await store.close();
  });

  it('re-publishes the local node when it changes, when its lease is lost and when its key is deleted', async () => {
    const store = new MemoryKvStore();
    const a = await agent(store, 'node1', 1);
    const b = await agent(store, 'node2', 2);
    a.registry.setLocal(makeNode('node1', 1, { labels: { zone: 'a' } }));
    await until(() => b.registry.get('node1')?.labels.zone === 'a', 'label update on node2');
    await a.session.expireLease();
    await until(
      () => b.log.includes('delete node1') && b.registry.get('node1') !== undefined,
      'back after lease loss',
    );
    await store.deletePrefix('cilium/state/nodes/'); // the store came back empty
    await until(
      () =>
        b.registry.get('node1') !== undefined && a.registry.get('node2') !== undefined && b.log.length === 5,
      'both re-published',
    );
    assert.deepEqual(b.log, ['update node1', 'delete node1', 'add node1', 'delete node1', 'add node1']);
    assert.equal((await store.list('cilium/state/nodes/v1/default/')).pairs.length, 2);
    await a.stop();
    await b.stop();
    await store.close();
  });

  it('a withdrawn node leaves for good; nodes of other clusters and bad keys are ignored', async () => {
    const store = new MemoryKvStore();
    const a = await agent(store, 'node1', 1);
    const b = await agent(store, 'node2', 2);
    await until(() => a.registry.get('node2') !== undefined, 'node1 sees node2');
    await store.put(nodeKey('other', 'node7'), JSON.stringify({ ...makeNode('node7', 7), cluster: 'other' }));
    await store.put(nodeKey('default', 'node8'), '{not json');
    await store.put(nodeKey('default', 'node9'), JSON.stringify(makeNode('node3', 3)));
    await store.put(
      nodeKey('default', 'node4'),
      JSON.stringify({ ...makeNode('node4', 4), ipv4PodCidr: 'bogus' }),
    );
    await until(() => a.errors.length === 3, 'three bad keys reported');
    assert.match(String(a.errors[1]), /node9: holds node default\/node3/);
    assert.match(String(a.errors[2]), /node4: ipv4PodCidr: must be an IPv4 CIDR/);
    await b.sync.withdraw();
    await until(() => a.registry.get('node2') === undefined, 'node2 withdrawn');
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(await store.get(nodeKey('default', 'node2')), undefined, 'not re-published');
    assert.deepEqual(names(a.registry), ['node1']);
    await a.stop();
    await b.stop();
    await store.close();
  });
});
