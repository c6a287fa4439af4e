/**
 * A three-node lab (real etcd, agents' etcd leases of 8 s; once per routing mode) through failures, each
 * checked with real traffic between pods on every node:
 * - the relay merges the flows of all three nodes; the upstream Python grpcio client reads them;
 * - etcd stopped for a full 60 s: established cross-node streams on every node lose nothing, new
 *   connections between known pods work and policy holds, a pod needing a new identity waits (status
 *   and log say so) and is created once etcd returns, with one identity on every node;
 * - etcd started again from an empty data directory: the agents write back their nodes, endpoint
 *   IPs and identities;
 * - node3's agent SIGKILLed: nodes 1 and 2 go on undisturbed, the relay reports node3 unavailable,
 *   node3's keys expire with its lease and the others drop its routes and endpoints; restarted, it
 *   comes back;
 * - `lab node remove node3` cleans its routes and ipcache entries from every node.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRoot } from '../../../src/common/paths.js';
import { isRunning } from '../../../src/lab/process.js';
import { ROUTING_MODES } from '../../../src/lab/state.js';
import { cli, labName, manifest, probe } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';
import { compileUpstreamProtos, PY } from '../hubble/python.js';
import { LabCluster, podManifest, streamsLostNothing } from './lab-cluster.js';

const LEASE_TTL = 8;
const OUTAGE_MS = 60_000;
const NODES = ['node1', 'node2', 'node3'];

const pod = podManifest;

// A server and a client on every node, and app=other (node3) that no server admits.
const PODS = [
  ...NODES.flatMap((n, i) => [pod(`s${i + 1}`, n, `s${i + 1}`, true), pod(`c${i + 1}`, n, 'cli')]),
  pod('other', 'node3', 'other'),
].join('---\n');

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: servers}
spec:
  endpointSelector: {matchExpressions: [{key: app, operator: In, values: [s1, s2, s3]}]}
  ingress:
  - fromEndpoints: [{matchExpressions: [{key: app, operator: In, values: [cli, late, fresh]}]}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`;

/** The upstream Python client against the relay: `status` or `flows N`, printing JSON. */
const PY_CLIENT = `
import json, sys
sys.path.insert(0, sys.argv[1])
import grpc
from observer import observer_pb2, observer_pb2_grpc
stub = observer_pb2_grpc.ObserverStub(grpc.insecure_channel(sys.argv[2]))
if sys.argv[3] == "status":
    st = stub.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=10)
    print(json.dumps({"connected": st.num_connected_nodes.value, "unavailable": st.num_unavailable_nodes.value,
                      "unavailable_nodes": list(st.unavailable_nodes)}))
else:
    rows = []
    for r in stub.GetFlows(observer_pb2.GetFlowsRequest(number=int(sys.argv[4])), timeout=20):
        if r.HasField("flow"):
            f = r.flow
            rows.append([r.node_name, f.time.seconds * 1000000000 + f.time.nanos, f.IP.source, f.IP.destination])
    print(json.dumps(rows))
`;

for (const mode of ROUTING_MODES) {
  const c = new LabCluster(labName(`cl${mode.slice(0, 1)}`), NODES);
  describe(`privileged: three nodes on etcd through failures (60 s outage, empty etcd, agent kill, node removal; ${mode} routing)`, () => {
    const ip: Record<string, string> = {};
    let py = '';

    const python = (args: string[]): unknown => {
      const r = spawnSync(PY, [join(py, 'client.py'), py, `127.0.0.1:${c.state().relay!.port}`, ...args], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(r.status, 0, `python client: ${r.stderr}`);
      return JSON.parse(r.stdout);
    };

    before(async () => {
      py = mkdtempSync(join(tmpdir(), 'cts-clf-py-'));
      compileUpstreamProtos(py, ['flow/flow.proto', 'observer/observer.proto', 'relay/relay.proto']);
      writeFileSync(join(py, 'client.py'), PY_CLIENT);
      await c.run([
        'lab',
        'up',
        '--name',
        c.lab,
        '--nodes',
        '3',
        '--routing-mode',
        mode,
        '--kvstore-lease-ttl',
        String(LEASE_TTL),
        '-f',
        manifest(PODS),
      ]);
      await c.run(['lab', 'apply', '-f', manifest(POLICY)]);
      for (const p of ['s1', 's2', 's3', 'c1', 'c2', 'c3', 'other']) ip[p] = await c.podIp(p);
      await c.agentsReport(/^etcd: 1\/1 connected, has-quorum/);
      for (const n of NODES)
        assert.equal(await c.nodesKnownBy(n).then((l) => l.join()), NODES.join(), `${n} knows every node`);
      await waitFor(
        'policy on node1',
        async () => (await probe(c.lab, 'other', `${ip.s1}:80`)) === false,
        15_000,
      );
    });
    after(async () => {
      await cli(['lab', 'down', '--name', c.lab]);
      rmSync(py, { recursive: true, force: true });
    });

    it('the relay merges flows of all three nodes; the upstream Python client reads them', async () => {
      // Traffic between every pair of nodes: each node sees flows of its own pods.
      for (const [from, to] of [
        ['c1', 's2'],
        ['c2', 's3'],
        ['c3', 's1'],
      ] as const)
        assert.equal(await probe(c.lab, from, `${ip[to]}:80`), true, `${from} → ${to}`);
      const status = (await waitFor('the relay to connect to all three nodes', () => {
        const st = python(['status']) as { connected: number };
        return st.connected === 3 && st;
      })) as { connected: number; unavailable: number };
      assert.equal(status.unavailable, 0);
      const rows = python(['flows', '300']) as [string, number, string, string][];
      assert.ok(rows.length > 10, `flows read: ${rows.length}`);
      assert.deepEqual([...new Set(rows.map((r) => r[0]))].sort(), NODES, 'flows of every node');
      for (let i = 1; i < rows.length; i++) assert.ok(rows[i]![1] >= rows[i - 1]![1], 'merged by time');
      for (const [from, to] of [
        ['c1', 's2'],
        ['c2', 's3'],
        ['c3', 's1'],
      ] as const)
        assert.ok(
          rows.some((r) => r[2] === ip[from] && r[3] === ip[to]),
          `the ${from} → ${to} flow is among them`,
        );
    });

    it('etcd stopped for 60 s: streams on every node lose nothing, known pods connect, a pod needing a new identity waits and is created once etcd returns', async () => {
      const streams = {
        'node1 → node2': c.stream('c1', ip.s2!),
        'node2 → node3': c.stream('c2', ip.s3!),
        'node3 → node1': c.stream('c3', ip.s1!),
      };
      await waitFor('the streams to run', () => Object.values(streams).every((s) => s.echoed() > 5), 15_000);

      const stoppedAt = Date.now();
      await c.run(['lab', 'etcd', 'stop']);
      const down = await c.agentsReport(/^etcd: 0\/1 connected/);
      assert.match(down[0]!, /ECONNREFUSED|UNAVAILABLE/, 'the line says why');

      const knownTraffic = async (when: string) => {
        for (const [from, to] of [
          ['c1', 's3'],
          ['c2', 's1'],
          ['c3', 's2'],
        ] as const)
          assert.equal(await probe(c.lab, from, `${ip[to]}:80`), true, `${from} → ${to} ${when}`);
        for (const to of ['s1', 's2', 's3'])
          assert.equal(await probe(c.lab, 'other', `${ip[to]}:80`), false, `other → ${to} dropped ${when}`);
      };
      await knownTraffic('as etcd went');

      // A pod that needs a new identity: its creation waits for etcd, and node3 says so.
      const applied = cli(['lab', 'apply', '-f', manifest(pod('late', 'node3', 'late'))], {
        lab: c.lab,
        timeoutMs: 150_000,
      });
      let done = false;
      void applied.then(() => {
        done = true;
      });
      const waiting = await waitFor(
        "node3's status to show the waiting allocation",
        async () => (await c.status('node3')).identitiesWaiting,
        15_000,
        250,
      );
      assert.match(waiting, /^1 allocation\(s\) waiting for the kvstore for \d+ s \(.*k8s:app=late/);
      assert.match(
        await c.run(['--node', 'node3', 'status']),
        /^Identities:.*; 1 allocation\(s\) waiting for the kvstore/m,
      );
      const log = readFileSync(join(runRoot, c.lab, 'node3', 'agent.log'), 'utf8');
      assert.ok(
        log.includes('kvstore unavailable: waiting to allocate an identity'),
        "node3's log says it waits",
      );
      assert.equal((await c.status('node1')).identitiesWaiting, undefined, 'node1 waits for nothing');

      await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + OUTAGE_MS / 2 - Date.now())));
      await knownTraffic('after 30 s');
      await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + OUTAGE_MS - Date.now())));
      assert.equal(done, false, 'the pod is not created while etcd is down');
      for (const [what, s] of Object.entries(streams))
        assert.ok(s.echoed() >= 500, `the ${what} stream went on through the outage (${s.echoed()} echoes)`);

      await c.run(['lab', 'etcd', 'start']);
      const outage = Date.now() - stoppedAt;
      await c.agentsReport(/^etcd: 1\/1 connected, has-quorum/);
      const r = await applied;
      assert.equal(r.code, 0, `apply finished once etcd returned: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^pod\/late created on node3/m);
      await waitFor(
        "node3's status to stop waiting",
        async () => (await c.status('node3')).identitiesWaiting === undefined,
      );
      await c.agreedIdentity('late', 'late');
      ip.late = await c.podIp('late');
      for (const to of ['s1', 's2'])
        await waitFor(
          `late (node3) admitted by ${to}`,
          () => probe(c.lab, 'late', `${ip[to]}:80`),
          10_000,
          300,
        );
      await streamsLostNothing(streams);
      assert.ok(outage >= OUTAGE_MS, `etcd was away ${outage} ms`);
    });

    it('etcd started from an empty data directory: the agents write back their nodes, endpoint IPs and identities', async () => {
      const before = c.etcdKeys();
      const owned = [...before.keys.keys()].filter((k) => !k.startsWith('cilium/state/identities/v1/locks/'));
      for (const n of NODES) assert.ok(c.keysOf(n, before.keys).length >= 3, `${n} owns keys`);
      const member = c.state().etcd!.members[0]!;
      await c.run(['lab', 'etcd', 'stop']);
      for (const f of readdirSync(member.dataDir))
        rmSync(join(member.dataDir, f), { recursive: true, force: true });
      await c.run(['lab', 'etcd', 'start']);
      await c.agentsReport(/^etcd: 1\/1 connected, has-quorum/);
      await waitFor(
        'every key to come back',
        () => {
          const now = c.etcdKeys().keys;
          return owned.every((k) => now.has(k));
        },
        30_000,
        500,
      ).catch((err: Error) => {
        const now = c.etcdKeys().keys;
        throw new Error(`${err.message}; missing: ${owned.filter((k) => !now.has(k)).join(', ')}`);
      });
      for (const n of NODES) assert.deepEqual(await c.nodesKnownBy(n), NODES, `${n} still knows every node`);
      // A new pod on node1 with a new identity: node2 learns it and admits it by label.
      await c.run(['lab', 'apply', '-f', manifest(pod('fresh', 'node1', 'fresh'))]);
      await c.agreedIdentity('fresh', 'fresh');
      await waitFor(
        'fresh (node1) admitted by s2 (node2)',
        () => probe(c.lab, 'fresh', `${ip.s2}:80`),
        15_000,
        300,
      );
      assert.equal(await probe(c.lab, 'other', `${ip.s1}:80`), false, 'other still dropped');
    });

    it("node3's agent SIGKILLed: the others go on, the relay reports it unavailable, its keys expire with its lease; restarted, it is back", async () => {
      const n3 = c.state().nodes[2]!;
      const streams = { 'node1 → node2': c.stream('c1', ip.s2!), 'node2 → node1': c.stream('c2', ip.s1!) };
      await waitFor('the streams to run', () => Object.values(streams).every((s) => s.echoed() > 3), 15_000);
      const keys3 = c.keysOf('node3');
      assert.ok(keys3.length >= 4, `node3's keys: ${keys3.join(', ')}`);

      process.kill(n3.agentPid!, 'SIGKILL');
      const killedAt = Date.now();
      await waitFor(
        'node3 agent gone',
        () => !isRunning({ pid: n3.agentPid!, startTime: n3.agentStartTime! }),
      );
      const unavailable = (await waitFor(
        'the relay to report node3 unavailable',
        () => {
          const st = python(['status']) as { unavailable: number };
          return st.unavailable === 1 && st;
        },
        LEASE_TTL * 1000,
        200,
      )) as { connected: number; unavailable: number; unavailable_nodes: string[] };
      assert.deepEqual(unavailable, { connected: 2, unavailable: 1, unavailable_nodes: ['node3'] });
      assert.ok(Date.now() - killedAt < LEASE_TTL * 1000, 'reported before its lease expired');

      // Nodes 1 and 2 are undisturbed.
      assert.equal(await probe(c.lab, 'c1', `${ip.s2}:80`), true, 'c1 → s2');
      assert.equal(await probe(c.lab, 'c2', `${ip.s1}:80`), true, 'c2 → s1');
      await c.agentsReport(/^etcd: 1\/1 connected, has-quorum/, ['node1', 'node2']);

      // Its keys go with its lease: not before, and not much later.
      await waitFor(
        "node3's keys to expire",
        () => c.keysOf('node3').length === 0,
        3 * LEASE_TTL * 1000,
        250,
      );
      const expiredAfter = Date.now() - killedAt;
      // The last keepalive was up to TTL/3 before the kill: the lease ran out no sooner than 2/3 TTL after it.
      assert.ok(
        expiredAfter >= ((2 * LEASE_TTL) / 3 - 1) * 1000,
        `keys lived until the lease expired (${expiredAfter} ms)`,
      );
      const s3Cidr = n3.podCidrV4;
      for (const n of ['node1', 'node2']) {
        await waitFor(`${n} to drop node3`, async () => !(await c.nodesKnownBy(n)).includes('node3'), 5000);
        await waitFor(`${n} to drop node3's route`, () => !c.routes(n).includes(s3Cidr), 5000);
        await waitFor(
          `${n} to drop node3's pods from its ipcache`,
          async () => {
            const m = await c.ipcacheOf(n);
            return !m.has(ip.s3!) && !m.has(ip.c3!) && !m.has(ip.late!);
          },
          5000,
        );
      }
      await waitFor(
        'the relay to drop node3',
        () => (python(['status']) as { connected: number; unavailable: number }).unavailable === 0,
        10_000,
        500,
      );
      await streamsLostNothing(streams);

      await c.run(['lab', 'agent', 'restart', '--node', 'node3']);
      await c.agentsReport(/^etcd: 1\/1 connected, has-quorum/);
      for (const n of ['node1', 'node2'])
        await waitFor(
          `${n} to know node3 again`,
          async () => (await c.nodesKnownBy(n)).includes('node3'),
          10_000,
        );
      await waitFor(
        'c3 (node3) reaches s1 (node1) again',
        () => probe(c.lab, 'c3', `${ip.s1}:80`),
        15_000,
        300,
      );
      assert.equal(await probe(c.lab, 'other', `${ip.s1}:80`), false, 'other still dropped');
      await waitFor('node3 to publish its keys again', () => {
        const now = c.etcdKeys().keys;
        return keys3.every((k) => now.has(k));
      });
    });

    it('lab node remove node3 cleans its routes, ipcache entries and keys from every node', async () => {
      const s3Cidr = c.state().nodes[2]!.podCidrV4;
      for (const n of ['node1', 'node2'])
        await waitFor(`${n} to map s3`, async () => (await c.ipcacheOf(n)).has(ip.s3!), 10_000);
      assert.ok(c.routes('node1').includes(s3Cidr));
      const out = await c.run(['lab', 'node', 'remove', 'node3']);
      assert.match(out, /^node "node3" removed$/m);
      for (const n of ['node1', 'node2']) {
        await waitFor(`${n} to drop node3`, async () => !(await c.nodesKnownBy(n)).includes('node3'), 5000);
        await waitFor(`${n} to drop node3's route`, () => !c.routes(n).includes(s3Cidr), 5000);
        const m = await c.ipcacheOf(n);
        for (const p of ['s3', 'c3', 'other', 'late'])
          assert.equal(m.has(ip[p]!), false, `${n} forgets ${p}`);
      }
      assert.deepEqual(c.keysOf('node3'), [], 'no key of node3 left in etcd');
      assert.equal(await probe(c.lab, 'c1', `${ip.s2}:80`), true, 'node1 → node2 as before');
    });
  });
}
