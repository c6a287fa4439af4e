/**
 * An independent client of the relay: Debian's python3-grpcio + python3-grpc-tools compile the
 * UPSTREAM reference protos (observer, flow, relay, peer) and read a node's Peer service, then the
 * relay's ServerStatus, GetNodes, merged GetFlows and a follow stream while the nodes produce flows.
 * Requires: apt-get install -y python3-grpcio python3-grpc-tools (uses /usr/bin/python3).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileUpstreamProtos, PY } from './python.js';
import { BOOT_SEC, type RelayCluster, startRelayCluster, synNow, waitFor } from './relay-cluster.js';

const SCRIPT = `
import json, sys
sys.path.insert(0, sys.argv[1])
import grpc
from observer import observer_pb2, observer_pb2_grpc
from flow import flow_pb2
from relay import relay_pb2
from peer import peer_pb2, peer_pb2_grpc

relay_target, peer_target, follow_count = sys.argv[2], sys.argv[3], int(sys.argv[4])
out = {}

# the Peer service of a node, as Hubble Relay reads it
peers = []
notify = peer_pb2_grpc.PeerStub(grpc.insecure_channel(peer_target)).Notify(peer_pb2.NotifyRequest(), timeout=10)
for cn in notify:
    peers.append([cn.name, cn.address, peer_pb2.ChangeNotificationType.Name(cn.type), cn.HasField("tls")])
    if len(peers) == 3:
        notify.cancel()
        break
out["peers"] = peers

stub = observer_pb2_grpc.ObserverStub(grpc.insecure_channel(relay_target))
st = stub.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=10)
out["status"] = {"num_flows": st.num_flows, "max_flows": st.max_flows,
                 "connected": st.num_connected_nodes.value, "unavailable": st.num_unavailable_nodes.value,
                 "unavailable_nodes": list(st.unavailable_nodes)}
out["nodes"] = [[n.name, relay_pb2.NodeState.Name(n.state), n.num_flows, n.address]
                for n in stub.GetNodes(observer_pb2.GetNodesRequest(), timeout=10).nodes]

def row(resp):
    if resp.HasField("node_status"):
        ns = resp.node_status
        return {"status": relay_pb2.NodeState.Name(ns.state_change), "nodes": list(ns.node_names)}
    f = resp.flow
    return {"node": resp.node_name, "flow_node": f.node_name, "port": f.l4.TCP.destination_port,
            "time": [f.time.seconds, f.time.nanos], "verdict": flow_pb2.Verdict.Name(f.verdict)}

out["all"] = [row(r) for r in stub.GetFlows(observer_pb2.GetFlowsRequest(), timeout=10)]
out["last4"] = [row(r) for r in stub.GetFlows(observer_pb2.GetFlowsRequest(number=4), timeout=10)]
node2 = flow_pb2.FlowFilter(node_name=["node2"])
out["node2"] = [row(r) for r in stub.GetFlows(observer_pb2.GetFlowsRequest(whitelist=[node2]), timeout=10)]

# follow: tell the test when the stream is open, then read the live flows it makes
live = []
call = stub.GetFlows(observer_pb2.GetFlowsRequest(follow=True), timeout=30)
for r in call:
    if r.HasField("node_status"):
        print("READY", flush=True)
        continue
    if r.flow.l4.TCP.destination_port >= 5000:
        live.append(row(r))
    if len(live) == follow_count:
        call.cancel()
        break
out["live"] = live
print(json.dumps(out), flush=True)
`;

interface Row {
  status?: string;
  nodes?: string[];
  node?: string;
  flow_node?: string;
  port?: number;
  time?: number[];
  verdict?: string;
}

describe('independent client: python grpcio reads the relay with the upstream reference protos', () => {
  let c: RelayCluster;
  let gen: string;
  before(async () => {
    c = await startRelayCluster(3);
    gen = join(c.dir, 'py');
    compileUpstreamProtos(gen, [
      'flow/flow.proto',
      'observer/observer.proto',
      'relay/relay.proto',
      'peer/peer.proto',
    ]);
    writeFileSync(join(gen, 'client.py'), SCRIPT);
  });
  after(async () => {
    await c?.close();
  });

  it('Peer service, ServerStatus, GetNodes, merged GetFlows and follow decode with upstream code', async () => {
    const { relay, nodes } = c;
    const py = spawn(
      PY,
      [join(gen, 'client.py'), gen, relay.addresses.tcp!, nodes[0]!.server!.addresses.tcp!, '6'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    py.stdout.on('data', (d) => {
      stdout += d;
    });
    py.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((res) => py.once('exit', (code) => res(code)));
    try {
      await waitFor('the follow stream', () => stdout.includes('READY') || py.exitCode !== null, 30_000);
      assert.ok(stdout.includes('READY'), stderr);
      await new Promise((r) => setTimeout(r, 100));
      const base = Date.now();
      for (let k = 0; k < 6; k++) nodes[k % 3]!.observer.ingest(synNow(5000 + k, base + k));
      assert.equal(await exited, 0, stderr);
    } finally {
      if (py.exitCode === null) py.kill('SIGKILL');
    }
    const out = JSON.parse(stdout.slice(stdout.lastIndexOf('\n{') + 1)) as {
      peers: [string, string, string, boolean][];
      status: { num_flows: number; max_flows: number; connected: number; unavailable: number };
      nodes: [string, string, number, string][];
      all: Row[];
      last4: Row[];
      node2: Row[];
      live: Row[];
    };
    assert.deepEqual(
      out.peers,
      nodes.map((n) => [n.name, n.address, 'PEER_ADDED', false]),
    );
    assert.deepEqual(out.status, {
      num_flows: 12,
      max_flows: 3 * 4095,
      connected: 3,
      unavailable: 0,
      unavailable_nodes: [],
    });
    assert.deepEqual(
      out.nodes,
      nodes.map((n) => [n.name, 'NODE_CONNECTED', 4, n.address]),
    );
    assert.deepEqual(out.all[0], { status: 'NODE_CONNECTED', nodes: ['node1', 'node2', 'node3'] });
    const flows = out.all.slice(1);
    assert.deepEqual(
      flows.map((f) => [f.port, f.node, f.flow_node, f.time![0]]),
      Array.from({ length: 12 }, (_, k) => [
        1000 + k,
        `node${(k % 3) + 1}`,
        `node${(k % 3) + 1}`,
        BOOT_SEC + k,
      ]),
    );
    assert.ok(flows.every((f) => f.verdict === 'FORWARDED'));
    assert.deepEqual(
      out.last4.slice(1).map((f) => f.port),
      [1008, 1009, 1010, 1011],
    );
    assert.deepEqual(
      out.node2.slice(1).map((f) => f.port),
      [1001, 1004, 1007, 1010],
    );
    assert.deepEqual(
      out.live.map((f) => [f.port, f.node]),
      Array.from({ length: 6 }, (_, k) => [5000 + k, `node${(k % 3) + 1}`]),
    );
  });
});
