/**
 * Hubble Relay against three real Hubble servers (no root): discovery through one node's Peer
 * service, flows merged by time with node_name, --last/--first across nodes, filters, follow,
 * ServerStatus and GetNodes, a node stopping and coming back, and the CLI on both ends.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

process.env.TZ = 'UTC';

import { distRoot } from '../../../src/common/paths.js';
import { type FlowsResponse, type GetFlowsRequestInput, ObserverClient } from '../../../src/hubble/index.js';
import { runHubbleCli } from './cli.js';
import { BOOT_SEC, type RelayCluster, startRelayCluster, synNow, waitFor } from './relay-cluster.js';

async function collect(client: ObserverClient, req: GetFlowsRequestInput): Promise<FlowsResponse[]> {
  const out: FlowsResponse[] = [];
  for await (const r of client.getFlows(req)) out.push(r);
  return out;
}
const flowsOf = (rs: FlowsResponse[]) => rs.filter((r) => r.flow);
const ports = (rs: FlowsResponse[]) => flowsOf(rs).map((r) => r.flow!.l4!.TCP!.destination_port);
const statuses = (rs: FlowsResponse[]) =>
  rs
    .filter((r) => r.node_status)
    .map((r) => `${r.node_status!.state_change}:${r.node_status!.node_names.join(',')}`);

async function connectedNodes(client: ObserverClient): Promise<number> {
  return (await client.serverStatus()).num_connected_nodes ?? 0;
}

describe('Hubble Relay over three nodes', () => {
  let c: RelayCluster;
  let client: ObserverClient;
  before(async () => {
    c = await startRelayCluster(3);
    client = new ObserverClient(c.relay.addresses.tcp!);
    await waitFor('three connected nodes', async () => (await connectedNodes(client)) === 3);
  });
  after(async () => {
    client?.close();
    await c?.close();
  });

  it("discovers every node through one node's Peer service: ServerStatus and GetNodes", async () => {
    assert.equal(c.relay.peerServiceConnected, true);
    const st = await client.serverStatus();
    assert.equal(st.num_connected_nodes, 3);
    assert.equal(st.num_unavailable_nodes, 0);
    assert.equal(st.num_flows, 12, 'four flows on each node');
    assert.equal(st.seen_flows, 12);
    assert.equal(st.max_flows, 3 * 4095);
    assert.match(st.version ?? '', /^cilium-ts /);
    assert.equal(await client.healthCheck(), 'SERVING');
    const nodes = await client.getNodes();
    assert.deepEqual(
      nodes.map((n) => [n.name, n.state, n.num_flows, n.address]),
      c.nodes.map((n) => [n.name, 'NODE_CONNECTED', 4, n.address]),
    );
    assert.ok(nodes.every((n) => Number(n.uptime_ns) > 0 && n.version));
  });

  it('GetFlows merges every node by time; each flow carries its node_name', async () => {
    const rs = await collect(client, { number: 0 });
    assert.deepEqual(statuses(rs), ['NODE_CONNECTED:node1,node2,node3']);
    assert.equal(rs[0]!.node_status !== undefined, true, 'the node status comes first');
    assert.deepEqual(
      ports(rs),
      Array.from({ length: 12 }, (_, k) => 1000 + k),
    );
    const flows = flowsOf(rs);
    for (const [k, r] of flows.entries()) {
      const node = `node${(k % 3) + 1}`;
      assert.equal(r.node_name, node);
      assert.equal(r.flow!.node_name, node);
      assert.equal(r.flow!.time, new Date((BOOT_SEC + k) * 1000).toISOString().replace('.000Z', 'Z'));
    }
  });

  it('--last N is the newest N across nodes, --first N the oldest N; since/until pass through', async () => {
    assert.deepEqual(ports(await collect(client, { number: 5 })), [1007, 1008, 1009, 1010, 1011]);
    assert.deepEqual(ports(await collect(client, { number: 4, first: true })), [1000, 1001, 1002, 1003]);
    const window = await collect(client, {
      since: { seconds: BOOT_SEC + 3, nanos: 0 },
      until: { seconds: BOOT_SEC + 6, nanos: 0 },
    });
    assert.deepEqual(ports(window), [1003, 1004, 1005, 1006]);
  });

  it('filters pass through to every node; a bad filter is INVALID_ARGUMENT naming the field', async () => {
    const two = await collect(client, {
      whitelist: [{ destination_port: ['1002', '1004'] }, { node_name: ['node1'] }],
    });
    assert.deepEqual(ports(two), [1000, 1002, 1003, 1004, 1006, 1009]);
    const notNode2 = await collect(client, { blacklist: [{ node_name: ['node2'] }] });
    assert.ok(flowsOf(notNode2).every((r) => r.node_name !== 'node2'));
    assert.equal(flowsOf(notNode2).length, 8);
    await assert.rejects(
      collect(client, { whitelist: [{ source_ip: ['not-an-ip'] }] }),
      (e: { code?: number; details?: string }) => {
        assert.equal(e.code, 3);
        assert.match(e.details ?? '', /source_ip/);
        return true;
      },
    );
    await assert.rejects(
      collect(client, { first: true, follow: true }),
      (e: { code?: number }) => e.code === 3,
    );
  });

  it('GetNamespaces merges the nodes', async () => {
    const r = await new Promise<{ namespaces?: { namespace: string }[] }>((resolve, reject) =>
      client.raw.GetNamespaces({}, {}, (err, res) =>
        err ? reject(err) : resolve(res as { namespaces?: { namespace: string }[] }),
      ),
    );
    assert.deepEqual(
      r.namespaces?.map((n) => n.namespace),
      ['default'],
    );
  });

  it('follow: the last N of each node, then live flows from every node in time order', async () => {
    const ac = new AbortController();
    const got: FlowsResponse[] = [];
    const done = (async () => {
      for await (const r of client.getFlows({ number: 1, follow: true }, ac.signal)) {
        got.push(r);
        if (flowsOf(got).length === 3 + 6) ac.abort();
      }
    })();
    await waitFor('the history', () => flowsOf(got).length >= 3);
    // node3's flows reach the relay first, node1's last; their times interleave 1 ms apart
    const base = Date.now();
    for (const [i, node] of [...c.nodes.entries()].reverse())
      for (let round = 0; round < 2; round++)
        node.observer.ingest(synNow(2000 + round * 3 + i, base + round * 3 + i));
    await done;
    assert.deepEqual(statuses(got), ['NODE_CONNECTED:node1,node2,node3']);
    assert.deepEqual(ports(got).slice(0, 3), [1009, 1010, 1011], 'each node its last flow');
    assert.deepEqual(ports(got).slice(3), [2000, 2001, 2002, 2003, 2004, 2005]);
    assert.deepEqual(
      flowsOf(got)
        .slice(3)
        .map((r) => r.node_name),
      ['node1', 'node2', 'node3', 'node1', 'node2', 'node3'],
    );
  });

  it('cilium-ts hubble observe and status through the relay', async () => {
    const relay = c.relay.addresses.tcp!;
    const compact = await runHubbleCli(['observe', '--server', relay, '--first', '3', '--print-node-name']);
    assert.equal(compact.err.length, 0, compact.err.join('\n'));
    assert.deepEqual(
      compact.out,
      [0, 1, 2].map(
        (k) =>
          `Nov 21 20:01:0${2 + k}.000 [node${k + 1}]: default/tiefighter:40000 (ID:1234) -> default/deathstar-6f87c5b7f6-abcde:${1000 + k} (ID:5678) to-endpoint FORWARDED (TCP Flags: SYN)`,
      ),
    );
    const json = await runHubbleCli([
      'observe',
      '--server',
      c.relay.addresses.unix!,
      '--all',
      '-o',
      'json',
      '--to-port',
      '1004',
    ]);
    assert.deepEqual(
      json.out.map((l) => JSON.parse(l).node_name),
      ['node2'],
    );
    const byNode = await runHubbleCli([
      'observe',
      '--server',
      relay,
      '--all',
      '-o',
      'jsonpb',
      '--node-name',
      'node3',
    ]);
    assert.ok(byNode.out.length >= 4);
    assert.ok(byNode.out.every((l) => JSON.parse(l).node_name === 'node3'));
    const st = await runHubbleCli(['status', '--server', relay]);
    assert.match(
      st.out[0]!,
      /^Healthcheck \(via 127\.0\.0\.1:\d+\): Ok\nCurrent\/Max Flows: \d+\/12,285 \([\d.]+%\)\nFlows\/s: [\d.]+\nConnected Nodes: 3\/3$/,
    );
  });

  it('a node that stops is UNAVAILABLE while the others keep flowing; it rejoins when it returns', async () => {
    const node3 = c.nodes[2]!;
    const ac = new AbortController();
    const got: FlowsResponse[] = [];
    const follow = (async () => {
      for await (const r of client.getFlows({ follow: true }, ac.signal)) got.push(r);
    })();
    await waitFor('the follow stream', () => statuses(got).length > 0);
    await c.stopNode(node3);
    await waitFor('node3 unavailable', async () => (await connectedNodes(client)) === 2);
    const st = await client.serverStatus();
    assert.deepEqual(
      [st.num_connected_nodes, st.num_unavailable_nodes, st.unavailable_nodes],
      [2, 1, ['node3']],
    );
    const nodes = await client.getNodes();
    assert.deepEqual(
      nodes.map((n) => `${n.name}:${n.state}`),
      ['node1:NODE_CONNECTED', 'node2:NODE_CONNECTED', 'node3:NODE_UNAVAILABLE'],
    );
    assert.equal(await client.healthCheck(), 'SERVING');
    // a new request announces node3 as unavailable and answers from the others
    const rs = await collect(client, { number: 2 });
    assert.deepEqual(statuses(rs), ['NODE_CONNECTED:node1,node2', 'NODE_UNAVAILABLE:node3']);
    assert.deepEqual(
      flowsOf(rs).map((r) => r.node_name),
      ['node1', 'node2'],
    );
    // the open follow stream keeps delivering the others' flows
    c.nodes[0]!.observer.ingest(synNow(3000));
    c.nodes[1]!.observer.ingest(synNow(3001));
    await waitFor('flows from node1 and node2', () => ports(got).includes(3000) && ports(got).includes(3001));
    assert.ok(statuses(got).includes('NODE_UNAVAILABLE:node3'));

    // back on the same socket: connected again, and the open stream follows it too
    await c.startNode(node3);
    await waitFor('node3 connected again', async () => (await connectedNodes(client)) === 3);
    await waitFor(
      'node3 rejoined the follow stream',
      () => statuses(got).filter((s) => s === 'NODE_CONNECTED:node3').length > 0,
    );
    await new Promise((r) => setTimeout(r, 100));
    node3.observer.ingest(synNow(3002));
    await waitFor('a live flow from node3', () => ports(got).includes(3002));
    assert.equal(flowsOf(got).find((r) => r.flow!.l4!.TCP!.destination_port === 3002)!.node_name, 'node3');
    ac.abort();
    await follow;
  });

  it('nodes added to and removed from the Peer service come and go', async () => {
    // the extra peer is node1's server under a second name
    c.peers.upsert({ name: 'node4', address: c.nodes[0]!.server!.addresses.unix! });
    await waitFor('node4 connected', async () => (await connectedNodes(client)) === 4);
    assert.deepEqual(
      (await client.getNodes()).map((n) => n.name),
      ['node1', 'node2', 'node3', 'node4'],
    );
    c.peers.remove('node4');
    await waitFor('node4 gone', async () => (await client.getNodes()).length === 3);
    assert.equal(await connectedNodes(client), 3);
  });
});

describe('cilium-ts hubble relay (a process)', () => {
  let c: RelayCluster;
  before(async () => {
    c = await startRelayCluster(2, { history: 2 });
  });
  after(async () => {
    await c?.close();
  });

  it('serves the merged flows until SIGTERM', async () => {
    // The command as the CLI registers it, in its own process.
    const script = `
      import { Command } from 'commander';
      import { registerRelayCommands } from ${JSON.stringify(join(distRoot, 'src/cli/relay.js'))};
      const program = new Command('cilium-ts');
      registerRelayCommands(program);
      program.parseAsync(process.argv.slice(1), { from: 'user' }).catch((e) => { console.error('Error: ' + e.message); process.exit(1); });
    `;
    const args = [
      'hubble',
      'relay',
      '--listen',
      '127.0.0.1:0',
      '--peer-service',
      c.nodes[0]!.server!.addresses.unix!,
      '--retry-timeout',
      '200ms',
    ];
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      await waitFor(
        'the listening line',
        () => /listening on 127\.0\.0\.1:\d+/.test(out) || child.exitCode !== null,
      );
      const address = /listening on (127\.0\.0\.1:\d+)/.exec(out)?.[1];
      assert.ok(address, `no address in ${JSON.stringify(out)} ${err}`);
      const client = new ObserverClient(address);
      try {
        await waitFor('both nodes', async () => (await connectedNodes(client)) === 2);
        const r = await runHubbleCli(['observe', '--server', address, '--all', '-o', 'json']);
        assert.deepEqual(
          r.out.map((l) => [JSON.parse(l).node_name, JSON.parse(l).l4.TCP.destination_port]),
          [
            ['node1', 1000],
            ['node2', 1001],
            ['node1', 1002],
            ['node2', 1003],
          ],
        );
        assert.match(out, /node=node2 .*state=NODE_CONNECTED/);
      } finally {
        client.close();
      }
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((res) => child.once('exit', (c2) => res(c2)));
      assert.equal(code, 0, err);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('bad flags are refused naming the flag', async () => {
    const { relayOptionsFromFlags } = await import('../../../src/cli/relay.js');
    const base = {
      listen: '127.0.0.1:4245',
      peerService: ['unix:///x'],
      peer: [],
      sortBufferLenMax: '100',
      sortBufferDrainTimeout: '1s',
      errorAggregationWindow: '10s',
      retryTimeout: '30s',
    };
    assert.throws(() => relayOptionsFromFlags({ ...base, peerService: [] }), /--peer-service/);
    assert.throws(() => relayOptionsFromFlags({ ...base, listen: 'localhost' }), /--listen/);
    assert.throws(
      () => relayOptionsFromFlags({ ...base, peer: ['node1'] }),
      /--peer: "node1" is not NAME=ADDRESS/,
    );
    assert.throws(
      () => relayOptionsFromFlags({ ...base, sortBufferDrainTimeout: '1 s' }),
      /--sort-buffer-drain-timeout/,
    );
    assert.throws(() => relayOptionsFromFlags({ ...base, sortBufferLenMax: '0' }), /--sort-buffer-len-max/);
    const o = relayOptionsFromFlags({ ...base, peer: ['n1=127.0.0.1:4244'], retryTimeout: '500ms' });
    assert.deepEqual(o.peers, [{ name: 'n1', address: '127.0.0.1:4244' }]);
    assert.equal(o.maxBackoffMs, 500);
    assert.equal(o.sortBufferDrainTimeoutMs, 1000);
  });
});
