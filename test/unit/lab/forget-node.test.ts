/**
 * `lab node remove`'s kvstore part: only the removed node's entries go (its node key, the endpoint
 * IPs it published, its identity references); other nodes' entries and the identities themselves
 * stay, and an IP published again by another node meanwhile is not deleted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IP_PREFIX,
  identityIdKey,
  identityValueKey,
  MemoryKvStore,
  nodeKey,
} from '../../../src/kvstore/index.js';
import { forgetNode } from '../../../src/lab/forget-node.js';

const ipEntry = (ip: string, node: string, id: number) =>
  JSON.stringify({ IP: ip, HostIP: '192.168.211.9', ID: id, Metadata: node });

describe('forgetNode', () => {
  it("deletes the node's keys and nothing else", async () => {
    const store = new MemoryKvStore();
    const labelKey = 'k8s:app=web;k8s:io.kubernetes.pod.namespace=default;';
    const slashKey = 'k8s:app=a/node3;'; // a label key may hold '/': only the last element is the node
    await store.put(nodeKey('default', 'node3'), '{"name":"node3"}', { lease: true });
    await store.put(nodeKey('default', 'node1'), '{"name":"node1"}', { lease: true });
    await store.put(nodeKey('other', 'node3'), '{"name":"node3"}', { lease: true });
    await store.put(`${IP_PREFIX}default/10.200.2.5`, ipEntry('10.200.2.5', 'node3', 300), { lease: true });
    await store.put(`${IP_PREFIX}default/10.200.2.6`, ipEntry('10.200.2.6', 'node3', 301), { lease: true });
    await store.put(`${IP_PREFIX}default/10.200.0.5`, ipEntry('10.200.0.5', 'node1', 300), { lease: true });
    await store.put(`${IP_PREFIX}default/10.200.0.9`, 'not json');
    await store.put(identityIdKey(300), labelKey);
    await store.put(identityValueKey(labelKey, 'node3'), '300', { lease: true });
    await store.put(identityValueKey(labelKey, 'node1'), '300', { lease: true });
    await store.put(identityValueKey(slashKey, 'node1'), '302', { lease: true });
    await store.put(identityValueKey(slashKey, 'xnode3'), '302', { lease: true });

    const got = await forgetNode(store, 'default', 'node3');
    assert.deepEqual(got, { node: 1, ips: 2, identityRefs: 1 });
    const keys = (await store.list('cilium/')).pairs.map((p) => p.key).sort();
    assert.deepEqual(
      keys,
      [
        `${IP_PREFIX}default/10.200.0.5`,
        `${IP_PREFIX}default/10.200.0.9`,
        identityIdKey(300),
        identityValueKey(labelKey, 'node1'),
        identityValueKey(slashKey, 'node1'),
        identityValueKey(slashKey, 'xnode3'),
        nodeKey('default', 'node1'),
        nodeKey('other', 'node3'),
      ].sort(),
    );
    assert.deepEqual(await forgetNode(store, 'default', 'node3'), { node: 0, ips: 0, identityRefs: 0 });
  });

  it('leaves an IP that another node published after the listing', async () => {
    const store = new MemoryKvStore();
    const key = `${IP_PREFIX}default/10.200.2.5`;
    await store.put(key, ipEntry('10.200.2.5', 'node3', 300));
    // The listing sees node3's entry; a put between the listing and the delete wins.
    const list = store.list.bind(store);
    store.list = async (prefix: string) => {
      const r = await list(prefix);
      if (prefix.startsWith(IP_PREFIX)) await store.put(key, ipEntry('10.200.2.5', 'node1', 310));
      return r;
    };
    assert.equal((await forgetNode(store, 'default', 'node3')).ips, 0);
    assert.equal(JSON.parse((await store.get(key))!.value).Metadata, 'node1');
  });
});
