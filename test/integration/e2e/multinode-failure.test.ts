/**
 * Failures in a two-node lab (a real one-member etcd, native routing), each checked with real traffic
 * across the nodes:
 * - etcd stopped for 20 s: a live cross-node TCP stream goes on, pods with known identities reach each
 *   other and policy holds, the agents report the kvstore down and back; a pod that needs a new
 *   identity waits and is created once etcd returns, with one identity on both nodes;
 * - etcd started again from an empty data directory: the agents write back what they own (their node,
 *   their endpoints' IPs, their identities) and a new pod on node2 is admitted by fromEndpoints on node1;
 * - node1's agent SIGKILLed: node2's pods talk on; restarted, cross-node policy holds.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRoot } from '../../../src/common/paths.js';
import { isRunning } from '../../../src/lab/process.js';
import { loadLab } from '../../../src/lab/state.js';
import { cli, cliOk, labName, manifest, probe } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';
import { LabCluster, podManifest } from '../cluster/lab-cluster.js';

const LAB = labName('mnf');
const NODES = ['node1', 'node2'];

const pod = podManifest;

// srv (node1) admits app=cli and the pods made during the drills (late, fresh); app=other is dropped.
// srv2 (node2) admits app=cli only: node2's own pods, with policy, while node1's agent is dead.
const PODS = [
  pod('srv', 'node1', 'srv', true),
  pod('cli', 'node2', 'cli'),
  pod('other', 'node2', 'other'),
  pod('srv2', 'node2', 'srv2', true),
].join('---\n');

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: srv-from-clients}
spec:
  endpointSelector: {matchLabels: {app: srv}}
  ingress:
  - fromEndpoints: [{matchExpressions: [{key: app, operator: In, values: [cli, late, fresh]}]}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: srv2-from-cli}
spec:
  endpointSelector: {matchLabels: {app: srv2}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: cli}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`;

const state = () => loadLab(LAB)!;
const run = (args: string[]) => cliOk(args, { lab: LAB });
const json = async <T>(args: string[]) => JSON.parse(await run([...args, '-o', 'json'])) as T;
const podIp = async (name: string) =>
  (await json<{ status: { podIP: string } }>(['lab', 'get', 'pod', name])).status.podIP;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every agent's kvstore line, once all match `re`. */
function agentsReport(re: RegExp, timeoutMs = 15_000): Promise<string[]> {
  return waitFor(
    `every agent's kvstore line to match ${re}`,
    async () => {
      const lines = await Promise.all(
        NODES.map(async (n) => (await json<{ kvstore: string }>(['--node', n, 'status'])).kvstore),
      );
      return lines.every((l) => re.test(l)) && lines;
    },
    timeoutMs,
    250,
  );
}

/** `node`'s ipcache: address → identity. */
async function ipcacheOf(node: string): Promise<Map<string, number>> {
  const list = await json<{ prefix: string; identity: number }[]>(['--node', node, 'bpf', 'ipcache', 'list']);
  return new Map(list.map((e) => [e.prefix.replace(/\/32$/, ''), e.identity]));
}

/** The identity `node` knows for app=`app` (namespace default). */
async function identityOf(node: string, app: string): Promise<number | undefined> {
  const list = await json<{ id: number; labels: string[] }[]>(['--node', node, 'identity', 'list']);
  return list.find((i) => i.labels.includes(`k8s:app=${app}`))?.id;
}

/** The identity of `name`'s endpoint (its CiliumEndpoint), and both nodes agreeing on it. */
async function agreedIdentity(name: string, app: string): Promise<number> {
  const cep = await json<{ status: { identity: { id: number } } }>(['lab', 'get', 'cep', name]);
  const id = cep.status.identity.id;
  assert.ok(id >= 256 && id < 65536, `${name} has a cluster identity (${id})`);
  for (const n of NODES)
    await waitFor(
      `${n} to know ${name}'s identity ${id}`,
      async () => (await identityOf(n, app)) === id,
      10_000,
    );
  return id;
}

/** A long-lived TCP connection from `from` to host:80 that counts its echoes (lab-cluster.ts). */
const stream = (from: string, host: string) => new LabCluster(LAB, NODES).stream(from, host);

/** The echo count the stream last reported. */
const echoed = (out: string) => Number([...out.matchAll(/^echoed (\d+)$/gm)].at(-1)?.[1] ?? -1);

/**
 * Runs `body` (JavaScript, with `url` the etcd member's JSON gateway and `b64` at hand) in the etcd
 * namespace, where the member's address is reachable, and returns what it printed.
 */
function inEtcdNs(body: string): string {
  const s = state();
  const m = s.etcd!.members[0]!;
  const script = `const url='http://${m.ip}:${m.clientPort}/v3/';const b64=(x)=>Buffer.from(x).toString('base64');
const post=(p,b)=>fetch(url+p,{method:'POST',body:JSON.stringify(b)}).then(r=>r.json());
(async()=>{${body}})().catch(e=>{console.error(e);process.exit(1)})`;
  const r = spawnSync(
    'nsenter',
    [`--net=/run/netns/${s.etcd!.netns}`, '--', process.execPath, '-e', script],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  assert.equal(r.status, 0, `talking to etcd: ${r.stderr}`);
  return r.stdout;
}

/** Every key under cilium/ in the lab's etcd, and the store's revision. */
function etcdKeys(): { revision: number; keys: Map<string, string> } {
  const res = JSON.parse(
    inEtcdNs(
      "process.stdout.write(JSON.stringify(await post('kv/range',{key:b64('cilium/'),range_end:b64('cilium0')})))",
    ),
  ) as { header: { revision: string }; kvs?: { key: string; value?: string }[] };
  const dec = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');
  return {
    revision: Number(res.header.revision),
    keys: new Map((res.kvs ?? []).map((kv) => [dec(kv.key), dec(kv.value)])),
  };
}

/**
 * Writes one key outside cilium/ `n` times: the store's revision grows as a long-lived cluster's
 * does (far beyond its number of keys), without touching what the agents own.
 */
function etcdHistory(n: number): void {
  inEtcdNs(`for(let i=0;i<${n};i++)await post('kv/put',{key:b64('test/history'),value:b64(String(i))});`);
}

describe('privileged: two nodes on etcd: failures', () => {
  const ip: Record<string, string> = {};

  before(async () => {
    await run(['lab', 'up', '--name', LAB, '--nodes', '2', '-f', manifest(PODS)]);
    await run(['lab', 'apply', '-f', manifest(POLICY)]);
    for (const p of ['srv', 'srv2']) ip[p] = await podIp(p);
    await agentsReport(/^etcd: 1\/1 connected, has-quorum/);
    await waitFor(
      'policy on node1',
      async () => (await probe(LAB, 'other', `${ip.srv}:80`)) === false,
      15_000,
    );
    assert.equal(await probe(LAB, 'cli', `${ip.srv}:80`), true, 'cli (node2) reaches srv (node1)');
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('etcd stopped for 20 s: live and new connections between known pods, status down and back, a new identity waits', async () => {
    const member = state().etcd!.members[0]!;
    const live = stream('cli', ip.srv!);
    await waitFor('the stream to run', () => echoed(live.out()) > 5, 10_000);

    const stoppedAt = Date.now();
    await run(['lab', 'etcd', 'stop']);
    assert.equal(isRunning({ pid: member.pid!, startTime: member.startTime! }), false, 'etcd stopped');
    const down = await agentsReport(/^etcd: 0\/1 connected/);
    assert.match(down[0]!, /ECONNREFUSED|UNAVAILABLE/, 'the line says why');

    // Known identities keep working: new connections across the nodes, policy still enforced.
    assert.equal(await probe(LAB, 'cli', `${ip.srv}:80`), true, 'cli → srv while etcd is down');
    assert.equal(await probe(LAB, 'other', `${ip.srv}:80`), false, 'other → srv still dropped');

    // A pod needing a new identity: its creation waits for etcd.
    const applied = cli(['lab', 'apply', '-f', manifest(pod('late', 'node2', 'late'))], {
      lab: LAB,
      timeoutMs: 90_000,
    });
    let done = false;
    void applied.then(() => {
      done = true;
    });
    const agentLog = join(runRoot, LAB, 'node2', 'agent.log');
    await waitFor(
      "node2's agent to log that it waits",
      () => readFileSync(agentLog, 'utf8').includes('kvstore unavailable: waiting to allocate an identity'),
      10_000,
      250,
    );
    await sleep(Math.max(0, 20_000 - (Date.now() - stoppedAt)));
    assert.equal(done, false, 'the pod is not created while etcd is down');
    const before = echoed(live.out());
    assert.ok(before >= 150, `the stream went on during the outage (${before} echoes)`);

    await run(['lab', 'etcd', 'start']);
    await agentsReport(/^etcd: 1\/1 connected, has-quorum/);
    const r = await applied;
    assert.equal(r.code, 0, `apply finished once etcd returned: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^pod\/late created on node2/m);
    await agreedIdentity('late', 'late');
    await waitFor(
      'late (node2) to be admitted by srv (node1)',
      () => probe(LAB, 'late', `${ip.srv}:80`),
      10_000,
      300,
    );

    live.stop();
    assert.equal(await live.closed, 0, `the stream lived through the outage: ${live.out()}`);
    assert.match(live.out(), /^echoes (\d+) of \1$/m);
  });

  it('etcd restarted from an empty data directory: the agents write back what they own', async () => {
    const member = state().etcd!.members[0]!;
    const ids = { srv: await agreedIdentity('srv', 'srv'), cli: await agreedIdentity('cli', 'cli') };
    // A cluster's revision is far ahead of what the agents write back, and so are the last changes
    // they saw (here a pod with a new identity): a watch resumed from there in the new store would
    // skip everything until the store gets there.
    etcdHistory(300);
    await run(['lab', 'apply', '-f', manifest(pod('tick', 'node2', 'tick'))]);
    await agreedIdentity('tick', 'tick');
    await waitFor('node1 to map tick', async () => (await ipcacheOf('node1')).has(await podIp('tick')));
    const owned = etcdKeys();
    const ownKeys = [...owned.keys.keys()].filter((k) => !k.startsWith('cilium/state/identities/v1/locks/'));
    assert.ok(
      ownKeys.some((k) => k.startsWith('cilium/state/ip/v1/')),
      'endpoint IPs in etcd before',
    );

    await run(['lab', 'etcd', 'stop']);
    for (const f of readdirSync(member.dataDir))
      rmSync(join(member.dataDir, f), { recursive: true, force: true });
    await run(['lab', 'etcd', 'start']);
    await agentsReport(/^etcd: 1\/1 connected, has-quorum/);

    // Every node, endpoint IP and identity (master and value keys) the agents own comes back.
    const back = await waitFor(
      'the agents to write back their keys',
      () => {
        const now = etcdKeys();
        return ownKeys.every((k) => now.keys.has(k)) && now;
      },
      30_000,
      500,
    ).catch((err: Error) => {
      const now = etcdKeys().keys;
      throw new Error(`${err.message}; missing: ${ownKeys.filter((k) => !now.has(k)).join(', ')}`);
    });
    for (const n of NODES) assert.ok(back.keys.has(`cilium/state/nodes/v1/default/${n}`), `${n}'s node key`);

    // Traffic between known pods is as before.
    assert.equal(await probe(LAB, 'cli', `${ip.srv}:80`), true, 'cli → srv');
    assert.equal(await probe(LAB, 'other', `${ip.srv}:80`), false, 'other → srv dropped');

    // A new pod on node2: a new identity, learnt by node1, admitted by fromEndpoints there.
    await run(['lab', 'apply', '-f', manifest(pod('fresh', 'node2', 'fresh'))]);
    const fresh = await agreedIdentity('fresh', 'fresh');
    assert.ok(!Object.values(ids).includes(fresh), 'a new number');
    await waitFor(
      'fresh (node2) to be admitted by srv (node1)',
      () => probe(LAB, 'fresh', `${ip.srv}:80`),
      15_000,
      300,
    );
    assert.equal((await ipcacheOf('node1')).get(await podIp('fresh')), fresh, "node1 maps fresh's IP");
    assert.ok(
      etcdKeys().revision < owned.revision,
      'all of this happened at revisions the old store had passed already',
    );
    assert.equal(await identityOf('node1', 'srv'), ids.srv, 'srv kept its number');
    assert.equal(await identityOf('node2', 'cli'), ids.cli, 'cli kept its number');
  });

  it("node1's agent SIGKILLed: node2's pods talk on; restarted, cross-node policy holds", async () => {
    const n1 = state().nodes[0]!;
    const local = stream('cli', ip.srv2!);
    const cross = stream('cli', ip.srv!);
    await waitFor('the streams to run', () => echoed(local.out()) > 3 && echoed(cross.out()) > 3, 10_000);
    process.kill(n1.agentPid!, 'SIGKILL');
    await waitFor('node1 agent gone', () => !isRunning({ pid: n1.agentPid!, startTime: n1.agentStartTime! }));

    // node2 is undisturbed: its pods reach each other under its policy; node1's pinned datapath
    // still follows node1's policy for traffic from node2.
    assert.equal(await probe(LAB, 'cli', `${ip.srv2}:80`), true, 'cli → srv2 (both on node2)');
    assert.equal(await probe(LAB, 'other', `${ip.srv2}:80`), false, 'other → srv2 dropped');
    assert.equal(await probe(LAB, 'cli', `${ip.srv}:80`), true, 'cli → srv, node1 agent dead');
    assert.equal(await probe(LAB, 'other', `${ip.srv}:80`), false, 'other → srv dropped, node1 agent dead');
    assert.match(
      (await json<{ kvstore: string }>(['--node', 'node2', 'status'])).kvstore,
      /^etcd: 1\/1 connected/,
    );

    await run(['lab', 'agent', 'restart', '--node', 'node1']);
    assert.notEqual(state().nodes[0]!.agentPid, n1.agentPid, 'node1 has a new agent');
    await agentsReport(/^etcd: 1\/1 connected, has-quorum/);
    assert.equal(await probe(LAB, 'cli', `${ip.srv}:80`), true, 'cli → srv after the restart');
    assert.equal(await probe(LAB, 'other', `${ip.srv}:80`), false, 'other → srv dropped after the restart');
    assert.equal(await probe(LAB, 'fresh', `${ip.srv}:80`), true, 'fresh → srv after the restart');
    for (const [what, s] of [
      ['node2 → node2', local],
      ['node2 → node1', cross],
    ] as const) {
      s.stop();
      assert.equal(await s.closed, 0, `the ${what} stream lived through the kill and restart: ${s.out()}`);
    }
    // A pod made after the restart, on node2, gets its identity on node1 too.
    await run(['lab', 'apply', '-f', manifest(pod('late2', 'node2', 'late'))]);
    await agreedIdentity('late2', 'late');
    await waitFor(
      'late2 (node2) admitted by srv (node1)',
      () => probe(LAB, 'late2', `${ip.srv}:80`),
      10_000,
      300,
    );
  });
});
