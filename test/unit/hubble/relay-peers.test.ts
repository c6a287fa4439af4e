import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPeer, diffPeers, type Peer, PeerList, peerName } from '../../../src/hubble/peer.js';

const show = (cs: ReturnType<typeof diffPeers>) =>
  cs.map((c) => `${c.type} ${c.peer.name} ${c.peer.address}`);

describe('peers announced by the Peer service', () => {
  it('diffPeers: deletions first, then additions and updates by name; an unchanged peer is not resent', () => {
    const sent = new Map<string, Peer>();
    assert.deepEqual(
      show(
        diffPeers(sent, [
          { name: 'b', address: 'b:1' },
          { name: 'a', address: 'a:1' },
        ]),
      ),
      ['PEER_ADDED a a:1', 'PEER_ADDED b b:1'],
    );
    assert.deepEqual(
      show(
        diffPeers(sent, [
          { name: 'b', address: 'b:1' },
          { name: 'a', address: 'a:1' },
        ]),
      ),
      [],
    );
    assert.deepEqual(
      show(
        diffPeers(sent, [
          { name: 'c', address: 'c:1' },
          { name: 'b', address: 'b:2' },
        ]),
      ),
      ['PEER_DELETED a a:1', 'PEER_UPDATED b b:2', 'PEER_ADDED c c:1'],
    );
    assert.deepEqual(
      show(diffPeers(sent, [{ name: 'b', address: 'b:2', tls: { serverName: 'b.hubble' } }])),
      ['PEER_DELETED c c:1', 'PEER_UPDATED b b:2'],
    );
    assert.deepEqual([...sent.keys()], ['b']);
  });

  it('peerName: cluster/name outside the default cluster, as upstream', () => {
    assert.equal(peerName({ name: 'node1', cluster: 'default' }), 'node1');
    assert.equal(peerName({ name: 'node1', cluster: 'mesh2' }), 'mesh2/node1');
  });

  it('checkPeer and PeerList refuse bad peers naming the field, changing nothing', () => {
    assert.throws(() => checkPeer({ name: '', address: 'x:1' }), /name must be a non-empty string/);
    assert.throws(
      () => checkPeer({ name: 'n', address: 'x:1', tls: { serverName: '' } }),
      (e: { field?: string }) => {
        assert.equal(e.field, 'tls.serverName');
        return true;
      },
    );
    const l = new PeerList([{ name: 'n1', address: 'x:1' }]);
    let changes = 0;
    const off = l.subscribe(() => changes++);
    assert.throws(
      () =>
        l.set([
          { name: 'n2', address: 'x:2' },
          { name: 'n3', address: '' },
        ]),
      /peers\[1\] n3: address/,
    );
    assert.deepEqual(l.list(), [{ name: 'n1', address: 'x:1' }]);
    assert.equal(changes, 0);
    l.upsert({ name: 'n2', address: 'x:2' });
    assert.equal(l.remove('n1'), true);
    assert.equal(l.remove('n1'), false);
    off();
    l.upsert({ name: 'n3', address: 'x:3' });
    assert.equal(changes, 2);
  });
});
