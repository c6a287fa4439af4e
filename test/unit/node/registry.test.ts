import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Node, NodeRegistry, nodeInternalIp, parseNode } from '../../../src/node/index.js';
import { makeNode } from './helpers/nodes.js';

function recorder() {
  const log: string[] = [];
  return {
    log,
    handlers: {
      onAdd: (n: Node, local: boolean) => log.push(`add ${n.name}${local ? ' (local)' : ''}`),
      onUpdate: (n: Node, b: Node, local: boolean) =>
        log.push(
          `update ${n.name} ${JSON.stringify(b.labels)} -> ${JSON.stringify(n.labels)}${local ? ' (local)' : ''}`,
        ),
      onDelete: (n: Node, local: boolean) => log.push(`delete ${n.name}${local ? ' (local)' : ''}`),
    },
  };
}

describe('node registry', () => {
  it('replays known nodes to a new subscriber (local first), then reports adds, updates and deletes', () => {
    const reg = new NodeRegistry(makeNode('node1', 1));
    assert.equal(reg.upsert(makeNode('node3', 3)), 'added');
    const r = recorder();
    reg.subscribe(r.handlers);
    assert.deepEqual(r.log, ['add node1 (local)', 'add node3']);
    assert.equal(reg.upsert(makeNode('node2', 2)), 'added');
    assert.equal(reg.upsert(makeNode('node2', 2)), 'unchanged');
    assert.equal(reg.upsert(makeNode('node2', 2, { labels: { zone: 'b' } })), 'updated');
    assert.equal(reg.delete('node3'), true);
    assert.equal(reg.delete('node3'), false);
    assert.deepEqual(r.log.slice(2), [
      'add node2',
      'update node2 {"kubernetes.io/hostname":"node2"} -> {"zone":"b"}',
      'delete node3',
    ]);
    assert.deepEqual(
      reg.list().map((n) => n.name),
      ['node1', 'node2'],
    );
    assert.deepEqual(
      reg.remotes().map((n) => n.name),
      ['node2'],
    );
    assert.equal(reg.get('node2')?.labels.zone, 'b');
    assert.equal(reg.get('node2', 'other-cluster'), undefined);
  });

  it('updates the local node through setLocal only', () => {
    const reg = new NodeRegistry(makeNode('node1', 1));
    const r = recorder();
    reg.subscribe(r.handlers, { replay: false });
    assert.throws(() => reg.upsert(makeNode('node1', 9)), /default\/node1 is the local node/);
    assert.throws(
      () => reg.setLocal(makeNode('node9', 9)),
      /local node is default\/node1, not default\/node9/,
    );
    reg.setLocal(makeNode('node1', 1, { labels: { role: 'edge' } }));
    reg.setLocal(makeNode('node1', 1, { labels: { role: 'edge' } }));
    assert.deepEqual(r.log, ['update node1 {"kubernetes.io/hostname":"node1"} -> {"role":"edge"} (local)']);
    assert.ok(Object.isFrozen(reg.local.labels));
  });

  it('runs every handler when one throws, then reports the error', () => {
    const reg = new NodeRegistry(makeNode('node1', 1));
    const r = recorder();
    reg.subscribe(
      {
        onAdd: () => {
          throw new Error('handler bug');
        },
      },
      { replay: false },
    );
    reg.subscribe(r.handlers, { replay: false });
    assert.throws(() => reg.upsert(makeNode('node2', 2)), /handler bug/);
    assert.deepEqual(r.log, ['add node2']);
    assert.ok(reg.get('node2'));
  });

  it('validates nodes, naming the field', () => {
    assert.throws(
      () => new NodeRegistry(makeNode('Node_1', 1)),
      /local node: name: must be a lowercase DNS name/,
    );
    const bad = (n: Partial<Node> & Record<string, unknown>) => () =>
      parseNode({ ...makeNode('n', 1), ...n });
    assert.throws(
      bad({ addresses: [{ type: 'InternalIP', ip: '300.1.1.1' }] }),
      /addresses\[0\]\.ip: must be an IP address/,
    );
    assert.throws(bad({ ipv4PodCidr: 'fd00::/64' }), /ipv4PodCidr: must be an IPv4 CIDR/);
    assert.throws(bad({ ipv6PodCidr: 'fd00::1' }), /ipv6PodCidr: must be an IPv6 CIDR/);
    assert.throws(bad({ clusterId: 256 }), /clusterId/);
    assert.throws(bad({ tunnel: 'x' }), /Unrecognized key/);
    const reg = new NodeRegistry(makeNode('node1', 1));
    assert.throws(
      () => reg.upsert({ ...makeNode('node2', 2), labels: { a: 1 as unknown as string } }),
      /labels\.a/,
    );
    assert.equal(reg.remotes().length, 0);
  });

  it('finds the internal address of a family', () => {
    const n = makeNode('node1', 1, {
      addresses: [
        { type: 'ExternalIP', ip: '203.0.113.1' },
        { type: 'InternalIP', ip: '192.168.0.1' },
      ],
    });
    assert.equal(nodeInternalIp(n, 4), '192.168.0.1');
    assert.equal(nodeInternalIp(n, 6), undefined);
  });
});
