/**
 * `lab up`'s cluster options are checked before anything is made: each error names its flag, and a
 * lab of one node takes neither (it keeps its state in memory and has no other node to route to).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { up } from '../../../src/lab/lab.js';

describe('lab up cluster options', () => {
  const log = () => assert.fail('nothing is done');
  const refused = async (o: Partial<Parameters<typeof up>[0]>, field: string, message: RegExp) =>
    assert.rejects(up({ name: 'never-made', nodes: 2, log, ...o }), (e: Error & { field?: string }) => {
      assert.equal(e.field, field);
      assert.match(e.message, message);
      return true;
    });

  it('refuses bad values naming the flag', async () => {
    await refused({ etcdMembers: 2 }, '--etcd-members', /--etcd-members: 2; give 1 or 3/);
    await refused({ etcdMembers: 0 }, '--etcd-members', /give 1 or 3/);
    await refused(
      { kvstoreLeaseTtl: 1 },
      '--kvstore-lease-ttl',
      /--kvstore-lease-ttl: 1; give whole seconds from 2 to 86400/,
    );
    await refused({ kvstoreLeaseTtl: 2.5 }, '--kvstore-lease-ttl', /whole seconds/);
    await refused({ routingMode: 'tunnel' }, '--routing-mode', /"tunnel"; expected vxlan or native/);
  });

  it('refuses them for one node', async () => {
    await refused({ nodes: 1, etcdMembers: 1 }, '--etcd-members', /one node keeps its state in memory/);
    await refused(
      { nodes: 1, kvstoreLeaseTtl: 5 },
      '--kvstore-lease-ttl',
      /one node keeps its state in memory/,
    );
    await refused({ nodes: 1, routingMode: 'native' }, '--routing-mode', /no other node to route to/);
    await refused({ nodes: 1, routingMode: 'vxlan' }, '--routing-mode', /no other node to route to/);
  });
});
