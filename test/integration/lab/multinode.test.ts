/**
 * A lab of three nodes is a cluster: `lab up` starts a real etcd (three members) on the underlay and
 * every agent keeps its cluster state there (`--kvstore etcd`, the VXLAN overlay between nodes); a
 * Hubble Relay in the root namespace serves every node's flows and is `hubble observe`'s default;
 * `lab etcd stop|start` drills an outage; `lab node remove` takes a node (whose agent was killed)
 * out at once; `lab down` leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRoot } from '../../../src/common/paths.js';
import { memberRunning } from '../../../src/lab/etcd.js';
import { isRunning } from '../../../src/lab/process.js';
import type { LabState } from '../../../src/lab/state.js';
import { cli, cliOk, labName, manifest, ping } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('mn');
const NODES = ['node1', 'node2', 'node3'];
const ETCD_URLS = ['241', '242', '243'].map((h) => `http://192.168.211.${h}:2379`);

const server = (name: string, node: string, app: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {app: ${app}}}
spec: {nodeName: ${node}, containers: [{name: c, command: [cilium-ts, workload, serve, --tcp, "8080"]}]}
`;

const state = () => JSON.parse(readFileSync(join(runRoot, LAB, 'lab.json'), 'utf8')) as LabState;
const run = (args: string[]) => cliOk(args, { lab: LAB });
const json = async <T>(args: string[]) => JSON.parse(await run([...args, '-o', 'json'])) as T;
const kvstoreLine = async (node: string) =>
  (await json<{ kvstore: string }>(['--node', node, 'status'])).kvstore;
const nodeCount = async (node: string) => (await json<{ nodes: number }>(['--node', node, 'status'])).nodes;
const podIp = async (pod: string) =>
  (await json<{ status: { podIP: string } }>(['lab', 'get', 'pod', pod])).status.podIP;
const labNetns = () =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`cts-${LAB}-`));
const routes = (node: string) =>
  spawnSync('ip', ['-n', `cts-${LAB}-${node}`, 'route'], { encoding: 'utf8' }).stdout;
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

/** The identity node `node` knows for the label set of app=`app` in namespace default. */
async function identityOf(node: string, app: string): Promise<number | undefined> {
  const list = await json<{ id: number; labels: string[] }[]>(['--node', node, 'identity', 'list']);
  return list.find((i) => i.labels.includes(`k8s:app=${app}`))?.id;
}

/** Every etcd status line the three agents report, once all match `re`. */
async function agentsReport(re: RegExp, nodes = NODES): Promise<string[]> {
  return waitFor(
    `every agent's kvstore line to match ${re}`,
    async () => {
      const lines = await Promise.all(nodes.map(kvstoreLine));
      return lines.every((l) => re.test(l)) && lines;
    },
    15_000,
    250,
  );
}

describe('privileged: a lab of three nodes (etcd, VXLAN overlay, Hubble Relay)', () => {
  let upOutput = '';
  before(async () => {
    const pods = manifest(
      server('a1', 'node1', 'x') +
        '---\n' +
        server('a2', 'node2', 'x') +
        '---\n' +
        server('a3', 'node3', 'y'),
    );
    // A long lease (60 s): node removal is checked to beat it by far, also on a loaded machine.
    upOutput = await run([
      'lab',
      'up',
      '--name',
      LAB,
      '--nodes',
      '3',
      '--etcd-members',
      '3',
      '--kvstore-lease-ttl',
      '60',
      '-f',
      pods,
    ]);
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('lab up starts etcd on the underlay and every agent keeps its state there', async () => {
    const s = state();
    assert.equal(s.etcd?.netns, `cts-${LAB}-etcd`);
    assert.deepEqual(
      s.etcd.members.map((m) => [m.name, `http://${m.ip}:${m.clientPort}`, memberRunning(m)]),
      ETCD_URLS.map((u, i) => [`etcd${i + 1}`, u, true]),
    );
    assert.match(upOutput, /etcd: 3\/3 connected, has-quorum/);
    for (const [i, n] of s.nodes.entries()) {
      const argv = cmdline(n.agentPid!);
      const flag = (f: string) => argv[argv.indexOf(f) + 1];
      assert.equal(flag('--kvstore'), 'etcd', n.name);
      assert.equal(flag('--kvstore-endpoints'), ETCD_URLS.join(','));
      assert.equal(flag('--routing-mode'), 'vxlan', 'the overlay by default');
      assert.equal(flag('--node-ip'), `192.168.211.${i + 1}`, 'the address other nodes route to');
      assert.equal(flag('--node-label'), `kubernetes.io/hostname=${n.name}`);
    }
    await agentsReport(/^etcd: 3\/3 connected, has-quorum, leader http:\/\/192\.168\.211\.24[123]:2379$/);
    for (const n of NODES) assert.equal(await nodeCount(n), 3, `${n} knows every node`);
  });

  it('lab get nodes shows each node with its underlay address and pod CIDR', async () => {
    type Node = {
      metadata: { name: string };
      spec: { podCIDRs: string[] };
      status: { addresses: { type: string; address: string }[] };
    };
    const list = await json<{ items: Node[] }>(['lab', 'get', 'nodes']);
    assert.deepEqual(
      list.items.map((n) => [
        n.metadata.name,
        n.status.addresses.find((a) => a.type === 'InternalIP')?.address,
        n.spec.podCIDRs,
      ]),
      NODES.map((n, i) => [
        n,
        `192.168.211.${i + 1}`,
        [`10.200.${i}.0/24`, `fd00:10:200::${i ? i * 100 : ''}/120`],
      ]),
    );
    const wide = await run(['lab', 'get', 'nodes', '-o', 'wide']);
    assert.match(wide, /^NAME\s+STATUS\s+AGE\s+INTERNAL-IP\s+POD-CIDRS\b/);
    assert.match(
      wide,
      /^node2\s+Ready\s+\S+\s+192\.168\.211\.2\s+10\.200\.1\.0\/24,fd00:10:200::100\/120\s/m,
    );
  });

  it('pods on different nodes reach each other, and every node numbers app=x alike', async () => {
    const a1 = await podIp('a1');
    assert.ok(await ping(LAB, 'a2', a1), 'node2 → node1');
    assert.ok(await ping(LAB, 'a3', await podIp('a2')), 'node3 → node2');
    assert.match(routes('node1'), /^10\.200\.1\.0\/24 dev cilium_vxlan /m, 'into the overlay');
    const x = await waitFor('node3 to learn app=x', () => identityOf('node3', 'x'));
    assert.ok(x >= 256);
    assert.equal(await identityOf('node1', 'x'), x);
    assert.equal(await identityOf('node2', 'x'), x);
    assert.notEqual(await identityOf('node1', 'y'), x, 'app=y (node3 only) has another identity');
  });

  it('the relay serves every node: hubble status and observe go through it by default', async () => {
    const s = state();
    assert.ok(s.relay && isRunning(s.relay));
    const relaySock = join(runRoot, LAB, 'relay.sock');
    assert.match(
      upOutput,
      new RegExp(`^ {2}relay hubble +127\\.0\\.0\\.1:${s.relay.port} +or +unix://${relaySock}`, 'm'),
    );
    const status = await waitFor('the relay to connect to every node', async () => {
      const out = await run(['hubble', 'status']);
      return out.includes('Connected Nodes: 3/3') && out;
    });
    assert.match(status, new RegExp(`^Healthcheck \\(via unix://${relaySock}\\): Ok$`, 'm'));
    // Its TCP address answers too (what a Hubble client outside the CLI would use).
    assert.match(
      await run(['hubble', 'status', '--server', `127.0.0.1:${s.relay.port}`]),
      /Connected Nodes: 3\/3/,
    );
    // Traffic on two nodes: flows from both come back through the relay, with their node's name.
    assert.ok(await ping(LAB, 'a2', await podIp('a1')));
    const flows = (await run(['hubble', 'observe', '--last', '50', '-o', 'json']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { node_name?: string });
    const nodes = new Set(flows.map((f) => f.node_name));
    assert.ok(nodes.has('node1') && nodes.has('node2'), `flows of both nodes: ${[...nodes].join(', ')}`);
    const last5 = (await run(['hubble', 'observe', '--last', '5', '--print-node-name'])).trim().split('\n');
    assert.equal(last5.length, 5);
    for (const l of last5) assert.match(l, / \[node[123]\]: /);
    // --node still picks one node's own server.
    assert.match(await run(['--node', 'node2', 'hubble', 'status']), /via unix:\/\/\S+\/node2\/hubble\.sock/);
  });

  it('lab etcd stop and start: the agents report the outage and the return; known traffic flows on', async () => {
    const [e1, e2, e3] = state().etcd!.members.map((m) => ({ pid: m.pid!, startTime: m.startTime! }));
    await run(['lab', 'etcd', 'stop', '--member', 'etcd1']);
    assert.equal(isRunning(e1), false, 'returns once stopped');
    assert.ok(isRunning(e2) && isRunning(e3), 'the others run on');
    assert.match(await run(['lab', 'etcd', 'status']), /^etcd: 2\/3 connected, has-quorum/);
    await agentsReport(/^etcd: 2\/3 connected, has-quorum/);
    await run(['lab', 'etcd', 'stop']);
    assert.ok(!isRunning(e2) && !isRunning(e3), 'returns once all are stopped');
    await agentsReport(/^etcd: 0\/3 connected/);
    assert.ok(await ping(LAB, 'a2', await podIp('a1')), 'known pods still reach each other');
    const out = await run(['lab', 'etcd', 'start']);
    assert.match(out, /^etcd: 3\/3 connected, has-quorum/m, 'returns once it has quorum');
    await agentsReport(/^etcd: 3\/3 connected, has-quorum/);
  });

  it('lab agent restart --node node2 brings the agent back on etcd with the same identities', async () => {
    const [pid1, pid2] = state().nodes.map((n) => n.agentPid);
    const x = await identityOf('node2', 'x');
    await run(['lab', 'agent', 'restart', '--node', 'node2']);
    const s = state();
    assert.notEqual(s.nodes[1]!.agentPid, pid2, 'node2 restarted');
    assert.equal(s.nodes[0]!.agentPid, pid1, 'node1 left alone');
    await agentsReport(/^etcd: 3\/3 connected, has-quorum/, ['node2']);
    assert.equal(await identityOf('node2', 'x'), x);
    assert.ok(await ping(LAB, 'a2', await podIp('a1')));
  });

  it('lab node remove node3 (agent killed) drops it everywhere at once', async () => {
    const n3 = state().nodes[2]!;
    const a3 = await podIp('a3');
    const ipcache = async () =>
      (await json<{ prefix: string }[]>(['--node', 'node1', 'bpf', 'ipcache', 'list'])).map((e) => e.prefix);
    await waitFor('node1 to know a3', async () => (await ipcache()).includes(`${a3}/32`));
    // Killed: its keys would live until their lease expired (60 s) without the removal.
    process.kill(n3.agentPid!, 'SIGKILL');
    const t0 = Date.now();
    const out = await run(['lab', 'node', 'remove', 'node3']);
    assert.match(out, /^pod "a3" deleted/m);
    // a3's two endpoint IPs: IPv4 and IPv6 (a dual-stack lab)
    assert.match(out, /^etcd: deleted what node3 left: 1 node key\(s\), 2 endpoint IP\(s\)/m);
    assert.match(out, /^node "node3" removed$/m);
    await waitFor('node1 to drop node3', async () => (await nodeCount('node1')) === 2, 15_000);
    await waitFor("node1 to drop node3's route", () => !routes('node1').includes('10.200.2.0/24'), 15_000);
    await waitFor(
      'node1 to drop a3 from its ipcache',
      async () => !(await ipcache()).includes(`${a3}/32`),
      15_000,
    );
    assert.ok(Date.now() - t0 < 45_000, 'well before the lease would have expired');
    assert.equal(await nodeCount('node2'), 2);
    assert.deepEqual(
      labNetns().filter((n) => n.endsWith('-node3')),
      [],
    );
    assert.equal(existsSync(join(runRoot, LAB, 'node3')), false, "node3's run directory");
    assert.ok(!n3.cgroup || !existsSync(n3.cgroup), "node3's cgroup");
    assert.deepEqual(
      state().nodes.map((n) => n.name),
      ['node1', 'node2'],
    );
    assert.equal((await cli(['lab', 'get', 'pod', 'a3'], { lab: LAB })).code, 1);
    await waitFor('the relay to count two nodes', async () =>
      (await run(['hubble', 'status'])).includes('Connected Nodes: 2/2'),
    );
    const refused = await cli(['lab', 'node', 'remove', 'node9'], { lab: LAB });
    assert.match(refused.stderr, /node "node9" not found \(nodes: node1, node2\)/);
  });

  it('lab down removes etcd (processes, data, namespace) and the relay', async () => {
    const s = state();
    const members = s.etcd!.members;
    assert.ok(members.every(memberRunning));
    const refs = members.map((m) => ({ pid: m.pid!, startTime: m.startTime! }));
    await run(['lab', 'down', '--name', LAB]);
    for (const [i, m] of members.entries()) {
      assert.equal(isRunning(refs[i]), false, m.name);
      assert.equal(existsSync(m.dataDir), false);
    }
    assert.equal(isRunning(s.relay), false, 'relay');
    assert.deepEqual(labNetns(), []);
    assert.equal(existsSync(join(runRoot, LAB)), false);
  });
});
