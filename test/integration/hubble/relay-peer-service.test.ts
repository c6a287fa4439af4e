/**
 * The Peer service every Hubble server serves (peer.Peer/Notify), read with a plain grpc-js client:
 * the replay as PEER_ADDED, then added/updated/deleted peers as the source changes; this server
 * alone without a source; and a node registry as the source.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  HubbleServer,
  nodePeerSource,
  Observer,
  type PeerChange,
  PeerList,
  peerChangeFromProto,
  peerServiceClientCtor,
} from '../../../src/hubble/index.js';
import { type Node, NodeRegistry } from '../../../src/node/index.js';
import { waitFor } from './relay-cluster.js';

/** A Notify stream collecting notifications as `TYPE name address`. */
function notify(address: string) {
  const Ctor = peerServiceClientCtor();
  const client = new Ctor(address, grpc.credentials.createInsecure());
  const call = (client as unknown as { Notify(r: object): grpc.ClientReadableStream<object> }).Notify({});
  const got: string[] = [];
  let ended = false;
  call.on('data', (m: Parameters<typeof peerChangeFromProto>[0]) => {
    const c = peerChangeFromProto(m) as PeerChange;
    got.push(
      `${c.type} ${c.peer.name} ${c.peer.address}${c.peer.tls ? ` tls=${c.peer.tls.serverName}` : ''}`,
    );
  });
  call.on('error', () => {
    ended = true;
  });
  call.on('end', () => {
    ended = true;
  });
  return {
    got,
    ended: () => ended,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

function node(name: string, ip: string, cluster = 'default'): Node {
  return { name, cluster, addresses: [{ type: 'InternalIP', ip }], labels: {} };
}

describe('Peer service (peer.Peer/Notify)', () => {
  let dir: string;
  const servers: HubbleServer[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'cts-peer-'));
  });
  after(async () => {
    for (const s of servers) await s.stop(200);
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async (name: string, peers?: PeerList | ReturnType<typeof nodePeerSource>) => {
    const s = await HubbleServer.start({
      observer: new Observer({ nodeName: name }),
      unixSocket: join(dir, name, 'hubble.sock'),
      tcp: '127.0.0.1:0',
      ...(peers ? { peers } : {}),
    });
    servers.push(s);
    return s;
  };

  it('replays every peer as PEER_ADDED, then sends what changes', async () => {
    const peers = new PeerList([
      { name: 'node2', address: '127.0.0.1:4002' },
      { name: 'node1', address: '127.0.0.1:4001' },
    ]);
    const s = await start('node1', peers);
    const n = notify(s.addresses.unix!);
    try {
      await waitFor('the replay', () => n.got.length === 2);
      assert.deepEqual(n.got, ['PEER_ADDED node1 127.0.0.1:4001', 'PEER_ADDED node2 127.0.0.1:4002']);
      peers.upsert({ name: 'node3', address: 'unix:///run/node3/hubble.sock' });
      peers.upsert({ name: 'node2', address: '127.0.0.1:4022', tls: { serverName: 'node2.hubble' } });
      peers.upsert({ name: 'node2', address: '127.0.0.1:4022', tls: { serverName: 'node2.hubble' } });
      peers.remove('node1');
      await waitFor('three changes', () => n.got.length === 5);
      assert.deepEqual(n.got.slice(2), [
        'PEER_DELETED node1 127.0.0.1:4001',
        'PEER_UPDATED node2 127.0.0.1:4022 tls=node2.hubble',
        'PEER_ADDED node3 unix:///run/node3/hubble.sock',
      ]);
      // a second subscriber gets the list as it is now
      const m = notify(s.addresses.tcp!);
      try {
        await waitFor('its replay', () => m.got.length === 2);
        assert.deepEqual(m.got, [
          'PEER_ADDED node2 127.0.0.1:4022 tls=node2.hubble',
          'PEER_ADDED node3 unix:///run/node3/hubble.sock',
        ]);
      } finally {
        m.close();
      }
      assert.throws(
        () => peers.upsert({ name: 'node4', address: '' }),
        /node4: address must be a non-empty string/,
      );
      assert.throws(
        () =>
          peers.set([
            { name: 'a', address: 'x:1' },
            { name: 'a', address: 'x:2' },
          ]),
        /peers\[1\]: duplicate name a/,
      );
      assert.equal(peers.list().length, 2, 'a refused change changes nothing');
    } finally {
      n.close();
    }
  });

  it('without a peer source a server announces itself; stopping the server ends the stream', async () => {
    const s = await start('solo');
    const n = notify(s.addresses.unix!);
    await waitFor('the replay', () => n.got.length === 1);
    assert.deepEqual(n.got, [`PEER_ADDED solo ${s.addresses.tcp}`]);
    await s.stop(200);
    servers.splice(servers.indexOf(s), 1);
    await waitFor('the stream to end', () => n.ended());
    n.close();
  });

  it("a node registry as the source: every node at its Hubble address, cluster/name outside 'default'", async () => {
    const reg = new NodeRegistry(node('node1', '10.99.0.1'));
    const address = (nd: Node) => (nd.name === 'nohubble' ? undefined : `${nd.addresses[0]!.ip}:4244`);
    const s = await start('node1', nodePeerSource(reg, address));
    reg.upsert(node('node2', '10.99.0.2'));
    const n = notify(s.addresses.unix!);
    try {
      await waitFor('the replay', () => n.got.length === 2);
      assert.deepEqual(n.got, ['PEER_ADDED node1 10.99.0.1:4244', 'PEER_ADDED node2 10.99.0.2:4244']);
      reg.upsert(node('node3', '10.99.0.3', 'mesh2'));
      reg.upsert(node('nohubble', '10.99.0.9'));
      await waitFor('node3', () => n.got.length === 3);
      reg.upsert(node('node2', '10.99.0.22'));
      await waitFor('node2 moved', () => n.got.length === 4);
      reg.delete('node3', 'mesh2');
      await waitFor('node3 gone', () => n.got.length === 5);
      assert.deepEqual(n.got.slice(2), [
        'PEER_ADDED mesh2/node3 10.99.0.3:4244',
        'PEER_UPDATED node2 10.99.0.22:4244',
        'PEER_DELETED mesh2/node3 10.99.0.3:4244',
      ]);
    } finally {
      n.close();
    }
  });
});
