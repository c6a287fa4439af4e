/**
 * Hubble Relay when things go wrong (no root): a Peer service address that does not answer, a
 * reconnect after which a node is no longer announced, nodes that fail the request (one NODE_ERROR
 * event for the same error), a node whose datapath reader is down, and a client too slow for the
 * nodes (every flow is delivered or counted in a loss notice).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type FlowsResponse, ObserverClient } from '../../../src/hubble/index.js';
import { runHubbleCli } from './cli.js';
import { startRelayCluster, synNow, waitFor } from './relay-cluster.js';

const connected = async (c: ObserverClient) => (await c.serverStatus()).num_connected_nodes ?? 0;

describe('Hubble Relay failures', () => {
  it('a Peer service address that fails is left for the next; peers not announced after a reconnect are dropped', async () => {
    const c = await startRelayCluster(2, { history: 1 });
    const client = new ObserverClient(c.relay.addresses.tcp!);
    try {
      // a second relay whose first Peer service address does not exist
      const { Relay } = await import('../../../src/hubble/relay/index.js');
      const relay = await Relay.start({
        listen: '127.0.0.1:0',
        peerService: [`unix://${join(c.dir, 'nonexistent.sock')}`, c.nodes[0]!.server!.addresses.unix!],
        initialBackoffMs: 50,
        maxBackoffMs: 200,
      });
      const second = new ObserverClient(relay.addresses.tcp!);
      try {
        await waitFor('both nodes through the second address', async () => (await connected(second)) === 2);
      } finally {
        second.close();
        await relay.stop(200);
      }

      await waitFor('both nodes', async () => (await connected(client)) === 2);
      const node1 = c.nodes[0]!;
      await c.stopNode(node1);
      // while node1 (the Peer service) is down, node2 leaves the cluster
      c.peers.set([{ name: node1.name, address: node1.address }]);
      await waitFor('the relay to lose the Peer service', () => c.relay.peerServiceConnected === false);
      assert.deepEqual(
        (await client.getNodes()).map((n) => n.name),
        ['node1', 'node2'],
        'known peers stay while the Peer service is away',
      );
      await c.startNode(node1);
      await waitFor('the Peer service again', () => c.relay.peerServiceConnected === true);
      await waitFor(
        'node2 dropped after the resync delay',
        async () => (await client.getNodes()).length === 1,
        5000,
      );
      assert.deepEqual(
        (await client.getNodes()).map((n) => `${n.name}:${n.state}`),
        ['node1:NODE_CONNECTED'],
      );
    } finally {
      client.close();
      await c.close();
    }
  });

  it('nodes that fail the request become one NODE_ERROR event; the others answer', async () => {
    // two gRPC servers that serve nothing: they accept connections and answer UNIMPLEMENTED
    const dir = mkdtempSync(join(tmpdir(), 'cts-relay-bare-'));
    const sockets = [0, 1].map((i) => join(dir, `bare${i}.sock`));
    const bare: grpc.Server[] = [];
    for (const path of sockets) {
      const s = new grpc.Server();
      await new Promise<void>((res, rej) =>
        s.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
      );
      bare.push(s);
    }
    const c = await startRelayCluster(1, {
      history: 2,
      relay: (nodes) => ({
        peerService: [],
        peers: [
          { name: 'node1', address: nodes[0]!.address },
          ...sockets.map((path, i) => ({ name: `bare${i}`, address: `unix://${path}` })),
        ],
        errorAggregationWindowMs: 300,
      }),
    });
    const client = new ObserverClient(c.relay.addresses.tcp!);
    try {
      await waitFor('three channels up', () =>
        c.relay.peers.list().every((p) => p.state === 'NODE_CONNECTED'),
      );
      const rs: FlowsResponse[] = [];
      for await (const r of client.getFlows({})) rs.push(r);
      const events = rs.filter((r) => r.node_status).map((r) => r.node_status!);
      assert.deepEqual(events[0], {
        state_change: 'NODE_CONNECTED',
        node_names: ['bare0', 'bare1', 'node1'],
      });
      assert.equal(events.length, 2);
      assert.equal(events[1]!.state_change, 'NODE_ERROR');
      assert.deepEqual([...events[1]!.node_names].sort(), ['bare0', 'bare1']);
      assert.match(events[1]!.message ?? '', /not implement/i);
      assert.deepEqual(
        rs.filter((r) => r.flow).map((r) => r.node_name),
        ['node1', 'node1'],
      );
      const st = await client.serverStatus();
      assert.deepEqual([st.num_connected_nodes, st.num_unavailable_nodes], [1, 2]);
      assert.deepEqual(st.unavailable_nodes, ['bare0', 'bare1']);
    } finally {
      client.close();
      await c.close();
      for (const s of bare) s.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a node whose datapath reader is down counts as unavailable (it says so itself)', async () => {
    const c = await startRelayCluster(2, { history: 1, readerUp: (n) => n !== 'node2' });
    const client = new ObserverClient(c.relay.addresses.tcp!);
    try {
      await waitFor(
        'both channels',
        () => c.relay.peers.list().filter((p) => p.state === 'NODE_CONNECTED').length === 2,
      );
      const st = await client.serverStatus();
      assert.deepEqual(
        [st.num_connected_nodes, st.num_unavailable_nodes, st.unavailable_nodes],
        [1, 1, ['node2']],
      );
      assert.equal(st.num_flows, 2, 'its flows are still counted and served');
      assert.deepEqual(
        (await client.getNodes()).map((n) => `${n.name}:${n.state}`),
        ['node1:NODE_CONNECTED', 'node2:NODE_ERROR'],
      );
      // `hubble list nodes` through the relay: one row per node, the failing one without figures
      const list = await runHubbleCli(['list', 'nodes', '--server', c.relay.addresses.tcp!]);
      assert.deepEqual(list.err, []);
      const rows = list.out[0]!.split('\n').map((l) => l.split(/ {2,}/));
      assert.deepEqual(rows[0], ['NAME', 'STATUS', 'AGE', 'FLOWS/S', 'CURRENT/MAX-FLOWS']);
      assert.deepEqual(
        rows.slice(1).map((r) => r.slice(0, 2)),
        [
          ['node1', 'Connected'],
          ['node2', 'Error'],
        ],
      );
      assert.match(rows[1]!.slice(2).join(' '), /^\d+s \d+\.\d\d 1\/\d+ \(\d+\.\d\d%\)$/);
      assert.deepEqual(rows[2]!.slice(2), ['N/A', 'N/A', 'N/A']);
    } finally {
      client.close();
      await c.close();
    }
  });

  it('a slow client: every flow of every node is delivered or counted in a loss notice', async () => {
    const PER_NODE = 6000;
    const c = await startRelayCluster(2, { history: 0, capacity: 500 });
    const client = new ObserverClient(c.relay.addresses.tcp!);
    const ac = new AbortController();
    const delivered = new Map<string, number>();
    const lost = new Map<string, number>();
    let total = 0;
    try {
      await waitFor('both nodes', async () => (await connected(client)) === 2);
      const reading = (async () => {
        for await (const r of client.getFlows({ follow: true }, ac.signal)) {
          const node = r.node_name ?? '?';
          if (r.flow) delivered.set(node, (delivered.get(node) ?? 0) + 1);
          if (r.lost_events) {
            assert.equal(r.lost_events.source, 'HUBBLE_RING_BUFFER');
            lost.set(node, (lost.get(node) ?? 0) + r.lost_events.num_events_lost);
          }
          total = [...delivered.values(), ...lost.values()].reduce((a, b) => a + b, 0);
          // the client takes a while over each of its first messages
          if (total < 300) await new Promise((res) => setTimeout(res, 5));
        }
      })();
      await new Promise((r) => setTimeout(r, 200));
      const base = Date.now();
      for (let i = 0; i < PER_NODE; i++) {
        for (const [k, node] of c.nodes.entries())
          node.observer.ingest(synNow(1 + (i % 60000), base + i * 2 + k));
        if (i % 500 === 499) await new Promise((r) => setImmediate(r));
      }
      await waitFor('every flow accounted for', () => total === 2 * PER_NODE, 20_000);
      ac.abort();
      await reading;
      for (const node of ['node1', 'node2']) {
        assert.equal((delivered.get(node) ?? 0) + (lost.get(node) ?? 0), PER_NODE, node);
        assert.ok((lost.get(node) ?? 0) > 0, `${node}: the slow client fell behind the 500-flow ring`);
      }
    } finally {
      ac.abort();
      client.close();
      await c.close();
    }
  });
});
