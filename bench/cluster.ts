/**
 * Cluster state through etcd.
 *
 * 1. Identity allocation throughput: a real one-member etcd on loopback (data on disk) and agents'
 *    allocators (src/identity KvstoreIdentityAllocator), each in its own process with its own etcd
 *    client and lease, all started together. Rows: one agent alone (the baseline of the run), three
 *    agents each allocating their own new label sets, three agents allocating the same label sets
 *    (every allocation contends for the same locks). Ratios are aggregate allocations/s against the
 *    one-agent row.
 * 2. etcd keys and bytes per pod (needs root: a lab): `lab up --nodes 3`, then N pods over the three
 *    nodes (apps shared by several pods, as Deployments are), and every key under cilium/ counted
 *    before and after, by kind.
 * 3. Pod ready, in the same lab: `lab apply` of one pod pinned to node1, timed from the CLI's start
 *    to the pod answering from node1 (a TCP prober running there all along, and a ping spawned per
 *    try) and to node2's ipcache holding its address (through etcd), for pods whose labels have
 *    an identity already and pods that need a new one; with the CNI ADD as `lab apply` reports it
 *    and the floor of a bare CLI start (`cilium-ts --version`).
 *    Each through the CLI the installed `cilium-ts` runs (the bundle, src/cli/entry.ts) and, as the
 *    baseline of the run, through dist/src/cli/main.js, interleaved.
 *    With --one-node only this, in a one-node lab of its own (issue 14's `lab apply` -> reachable).
 *
 *   node dist/bench/cluster.js [--sets 300] [--pods 30] [--apps 10] [--ready 20] [--no-lab] [--one-node]
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentSocketPath } from '../src/agent/config.js';
import { AgentApi } from '../src/api/client.js';
import { installedCliEntry } from '../src/cli/entry.js';
import { cliPath, distRoot } from '../src/common/paths.js';
import { KvstoreIdentityAllocator } from '../src/identity/index.js';
import { EtcdKvStore } from '../src/kvstore/etcd.js';
import { LabelSet } from '../src/labels/index.js';
import { LabCluster } from '../test/integration/cluster/lab-cluster.js';
import { startTestEtcd } from '../test/integration/kvstore/etcd-harness.js';
import { request } from './helpers/ipc.js';
import { percentile as pct } from './helpers/order.js';
import { startReachProber } from './helpers/reach-prober.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : def;
};
const SETS = Number(arg('--sets', '300'));
const PODS = Number(arg('--pods', '30'));
const APPS = Number(arg('--apps', '10'));
const READY = Number(arg('--ready', '20'));

// ---------- role: one agent's allocator ----------

async function runAgent(node: string, endpoints: string[]): Promise<void> {
  const store = new EtcdKvStore({ endpoints, leaseTtlSeconds: 30 });
  const alloc = new KvstoreIdentityAllocator({ store, node });
  await alloc.start();
  process.on('message', async (m: { go?: { tag: string; n: number }; stop?: boolean }) => {
    if (m.stop) {
      await alloc.close();
      await store.close();
      process.exit(0);
    }
    if (!m.go) return;
    const sets = Array.from({ length: m.go.n }, (_, i) =>
      LabelSet.parse([`k8s:app=${m.go!.tag}-${i}`, 'k8s:io.kubernetes.pod.namespace=bench']),
    );
    const t0 = performance.now();
    const ids = await Promise.all(sets.map(async (l) => (await alloc.allocate(l)).identity.id));
    process.send!({ done: { ms: performance.now() - t0, ids } });
  });
  process.send!({ ready: true });
}

// ---------- allocation rows ----------

interface Row {
  label: string;
  allocations: number;
  identities: number;
  ms: number;
}

async function allocationRows(): Promise<void> {
  const etcd = await startTestEtcd(1);
  const self = new URL(import.meta.url).pathname;
  const agents: ChildProcess[] = [];
  try {
    for (let i = 1; i <= 3; i++) {
      const c = fork(
        self,
        ['--role', 'agent', '--node', `node${i}`, '--endpoints', etcd.endpoints.join(',')],
        {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        },
      );
      agents.push(c);
      await request(c, {}, (m) => m.ready as boolean | undefined);
    }
    const run = async (label: string, who: ChildProcess[], tag: (i: number) => string): Promise<Row> => {
      const t0 = performance.now();
      const done = await Promise.all(
        who.map((c, i) =>
          request(
            c,
            { go: { tag: tag(i), n: SETS } },
            (m) => m.done as { ms: number; ids: number[] } | undefined,
          ),
        ),
      );
      const ms = performance.now() - t0;
      const allocations = done.reduce((a, d) => a + d.ids.length, 0);
      const identities = new Set(done.flatMap((d) => d.ids)).size;
      return { label, allocations, identities, ms };
    };
    const run1 = randomBytes(2).toString('hex');
    const rows = [
      await run('1 agent alone, new label sets', [agents[0]!], () => `solo${run1}`),
      await run('3 agents at once, each its own new sets', agents, (i) => `own${run1}-${i}`),
      await run('3 agents at once, the same new sets', agents, () => `shared${run1}`),
    ];
    const base = rows[0]!.allocations / rows[0]!.ms;
    process.stdout.write(
      `# identity allocation through etcd (1 member, loopback, data on disk): ${SETS} label sets per agent, all requested at once\n`,
    );
    for (const r of rows) {
      const rate = (r.allocations * 1000) / r.ms;
      process.stdout.write(
        `${r.label.padEnd(42)} ${String(r.allocations).padStart(5)} allocations (${r.identities} identities) in ${Math.round(r.ms)} ms = ${Math.round(rate)} allocations/s, ${Math.round((r.identities * 1000) / r.ms)} new identities/s (ratio ${(r.allocations / r.ms / base).toFixed(2)})\n`,
      );
    }
    // What the identities cost in etcd.
    const store = etcd.client();
    const masters = await store.list('cilium/state/identities/v1/id/');
    const values = await store.list('cilium/state/identities/v1/value/');
    const bytes = (ps: readonly { key: string; value: string }[]) =>
      ps.reduce((a, p) => a + Buffer.byteLength(p.key) + Buffer.byteLength(p.value), 0);
    process.stdout.write(
      `etcd after the rows: ${masters.pairs.length} master keys (${Math.round(bytes(masters.pairs) / masters.pairs.length)} bytes each, key + value), ${values.pairs.length} value keys (${Math.round(bytes(values.pairs) / values.pairs.length)} bytes each)\n`,
    );
  } finally {
    for (const c of agents) c.send({ stop: true });
    await new Promise((r) => setTimeout(r, 300));
    for (const c of agents) if (c.exitCode === null) c.kill('SIGKILL');
    await etcd.stop();
  }
}

// ---------- etcd keys per pod, in a lab ----------

function kinds(keys: Map<string, string>): Map<string, { keys: number; bytes: number }> {
  const out = new Map<string, { keys: number; bytes: number }>();
  for (const [k, v] of keys) {
    const kind = k.startsWith('cilium/state/identities/v1/')
      ? `identities/${k.split('/')[4]}`
      : k.startsWith('cilium/state/')
        ? k.split('/')[2]!
        : 'other';
    const e = out.get(kind) ?? { keys: 0, bytes: 0 };
    e.keys++;
    e.bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    out.set(kind, e);
  }
  return out;
}

async function keysPerPod(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('# etcd keys per pod: skipped (a lab needs root)\n');
    return;
  }
  const lab = `cb${randomBytes(2).toString('hex')}`;
  const c = new LabCluster(lab, ['node1', 'node2', 'node3']);
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`cilium-ts ${args.join(' ')}: ${r.stderr}`);
  };
  try {
    cli(['lab', 'up', '--name', lab, '--nodes', '3']);
    await c.agentsReport(/^etcd: 1\/1 connected, has-quorum/);
    const before = c.etcdKeys().keys;
    const dir = mkdtempSync(join(tmpdir(), 'cts-bench-cluster-'));
    const file = join(dir, 'pods.yaml');
    writeFileSync(
      file,
      Array.from(
        { length: PODS },
        (_, i) => `apiVersion: v1
kind: Pod
metadata: {name: p${i}, labels: {app: a${i % APPS}}}
spec: {containers: [{name: c, command: [sleep, infinity]}]}
`,
      ).join('---\n'),
    );
    cli(['lab', 'apply', '--name', lab, '-f', file]);
    rmSync(dir, { recursive: true, force: true });
    // Wait until every pod's IP is published.
    let after = c.etcdKeys().keys;
    for (let i = 0; i < 100; i++) {
      const ips = [...after.keys()].filter((k) => k.startsWith('cilium/state/ip/v1/')).length;
      if (ips >= PODS) break;
      await new Promise((r) => setTimeout(r, 200));
      after = c.etcdKeys().keys;
    }
    const kb = kinds(before);
    const ka = kinds(after);
    const total = (m: Map<string, { keys: number; bytes: number }>) =>
      [...m.values()].reduce((a, e) => ({ keys: a.keys + e.keys, bytes: a.bytes + e.bytes }), {
        keys: 0,
        bytes: 0,
      });
    const tb = total(kb);
    const ta = total(ka);
    process.stdout.write(
      `# etcd keys per pod: lab of 3 nodes, ${PODS} pods of ${APPS} apps (round-robin over the nodes); every key under cilium/ before and after\n`,
    );
    for (const kind of [...new Set([...kb.keys(), ...ka.keys()])].sort()) {
      const b = kb.get(kind) ?? { keys: 0, bytes: 0 };
      const a = ka.get(kind) ?? { keys: 0, bytes: 0 };
      process.stdout.write(
        `  ${kind.padEnd(22)} ${String(b.keys).padStart(4)} → ${String(a.keys).padStart(4)} keys, ${String(b.bytes).padStart(6)} → ${String(a.bytes).padStart(6)} bytes\n`,
      );
    }
    process.stdout.write(
      `etcd per pod: ${((ta.keys - tb.keys) / PODS).toFixed(2)} keys, ${Math.round((ta.bytes - tb.bytes) / PODS)} bytes (key + value); the lab without pods: ${tb.keys} keys, ${tb.bytes} bytes (3 nodes)\n`,
    );
    await podReady(lab, c, '3 nodes, vxlan');
  } finally {
    spawnSync(process.execPath, [cliPath, 'lab', 'down', '--name', lab], {
      stdio: 'ignore',
      timeout: 300_000,
    });
  }
}

// ---------- pod ready, in the lab ----------

/** The CLI entries timed: what the installed `cilium-ts` runs and, when that is the bundle, main.js. */
function cliEntries(): { label: string; path: string }[] {
  const installed = installedCliEntry();
  const out = [{ label: installed === cliPath ? 'main.js' : 'bundle', path: installed }];
  if (installed !== cliPath) out.push({ label: 'main.js', path: cliPath });
  return out;
}

/**
 * A CLI run's wall time (ms) and output; asynchronous, so polls can run meanwhile. onOutput sees the
 * output so far each time more arrives.
 */
function cliTimed(
  entry: string,
  args: string[],
  onOutput?: (out: string) => void,
): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      onOutput?.(out);
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0
        ? resolve({ ms: performance.now() - t0, stdout: out })
        : reject(new Error(`cilium-ts ${args.join(' ')}: ${err}`)),
    );
  });
}

/** When `ip` first answers one ping from the node's namespace (short waits: a lost try is retried). */
async function firstPing(netns: string, ip: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const p = spawn('nsenter', [`--net=/run/netns/${netns}`, 'ping', '-c', '1', '-W', '0.2', '-q', ip], {
        stdio: 'ignore',
      });
      p.on('error', () => resolve(false));
      p.on('close', (code) => resolve(code === 0));
    });
    if (ok) return performance.now();
  }
  return Number.NaN;
}

/**
 * `lab apply` of one pod pinned to node1, READY pods per CLI entry (entries and identity kinds
 * interleaved), timed from the CLI's start to apply returning, to the pod answering ping from node1
 * (pinged from when apply prints the address) and, with a second node, to node2's ipcache holding its
 * address (what node2's policy needs to see the pod as itself).
 */
async function podReady(lab: string, c: LabCluster, what: string): Promise<void> {
  const s = c.state();
  const node1 = s.nodes.find((n) => n.name === 'node1')!;
  const node2 = s.nodes.some((n) => n.name === 'node2')
    ? new AgentApi(agentSocketPath(lab, 'node2'))
    : undefined;
  const entries = cliEntries();
  const dir = mkdtempSync(join(tmpdir(), 'cts-bench-ready-'));
  const rows = new Map<string, Record<string, number[]>>();
  const put = (key: string, k: string, v: number) => {
    const row = rows.get(key) ?? {};
    rows.set(key, row);
    row[k] ??= [];
    row[k]!.push(v);
  };
  const run1 = randomBytes(2).toString('hex');
  const prober = startReachProber(`/run/netns/${node1.netns}`, 9);
  try {
    for (let k = 0; k < READY * entries.length; k++) {
      // Even pods: labels whose identity exists (after the first); odd pods: a new identity each.
      const kind = k % 2 === 0 && k > 0 ? 'known' : 'new';
      const entry = entries[Math.floor(k / 2) % entries.length]!;
      const app = kind === 'known' ? `ready${run1}` : `ready${run1}-${k}`;
      const file = join(dir, `r${k}.yaml`);
      writeFileSync(
        file,
        `apiVersion: v1
kind: Pod
metadata: {name: ready${k}, labels: {app: ${app}}}
spec: {nodeName: node1, containers: [{name: c, command: [sleep, infinity]}]}
`,
      );
      const t0 = performance.now();
      // The pod is pinged from node1 as soon as apply prints its address (after the CNI ADD, while
      // apply still starts the containers and reconciles), and node2's ipcache polled from the start.
      let ip: string | undefined;
      let local: Promise<number> | undefined;
      let probed: Promise<number> | undefined;
      const applied = cliTimed(entry.path, ['lab', 'apply', '--name', lab, '-f', file], (out) => {
        ip ??= /IP (\d+\.\d+\.\d+\.\d+)/.exec(out)?.[1];
        if (ip) {
          probed ??= prober.probe(ip).then((epochMs) => epochMs - performance.timeOrigin);
          local ??= firstPing(node1.netns, ip);
        }
      });
      let remoteAt = Number.NaN;
      const remote = (async () => {
        for (let i = 0; node2 && i < 3000 && Number.isNaN(remoteAt); i++) {
          if (ip && (await node2.bpfIpcache()).some((e) => e.prefix === `${ip}/32`))
            remoteAt = performance.now();
          else await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const a = await applied;
      if (!ip || !local) throw new Error(`no IP in: ${a.stdout}`);
      const localAt = await local;
      const probedAt = await probed!;
      await remote;
      const key = `${entry.label} ${kind}`;
      put(key, 'apply', a.ms);
      put(key, 'cni', Number(/CNI ADD (\d+) ms/.exec(a.stdout)?.[1]));
      put(key, 'local', localAt - t0);
      put(key, 'probe', probedAt - t0);
      if (node2) put(key, 'remote', remoteAt - t0);
      put(key, 'floor', (await cliTimed(entry.path, ['--version'])).ms);
    }
  } finally {
    prober.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const f = (xs: number[] | undefined) =>
    xs?.length
      ? `p50 ${pct(xs, 50).toFixed(0).padStart(5)} ms  p99 ${pct(xs, 99).toFixed(0).padStart(5)} ms`
      : '-';
  // Ratios: each row's p50 against main.js's in the same run.
  const ratio = (key: string, k: string) => {
    const base = rows.get(key.replace(/^\S+/, 'main.js'))?.[k];
    const xs = rows.get(key)?.[k];
    return base?.length && xs?.length && !key.startsWith('main.js')
      ? `  (${(pct(xs, 50) / pct(base, 50)).toFixed(2)}x main.js)`
      : '';
  };
  process.stdout.write(
    `# pod ready: lab apply of one pod on node1 (${what}), ${READY} pods per CLI entry; ms from the CLI's start (load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')})
`,
  );
  for (const entry of entries)
    for (const kind of ['known', 'new'] as const) {
      const key = `${entry.label} ${kind}`;
      const r = rows.get(key) ?? {};
      const n = r.apply?.length ?? 0;
      process.stdout.write(`${entry.label} (${entry.path.slice(distRootLength)}), ${kind === 'known' ? 'identity known' : 'new identity'} (${n} pods):
`);
      process.stdout.write(`  lab apply returns                     ${f(r.apply)}${ratio(key, 'apply')}
`);
      process.stdout.write(`    of which CNI ADD (as apply reports)  ${f(r.cni)}
`);
      process.stdout.write(`  pod answers node1's running prober    ${f(r.probe)}${ratio(key, 'probe')}
`);
      process.stdout.write(`  pod answers a ping spawned in node1   ${f(r.local)}${ratio(key, 'local')}
`);
      if (node2)
        process.stdout.write(`  address in node2's ipcache            ${f(r.remote)}${ratio(key, 'remote')}
`);
      process.stdout.write(`  bare CLI start (cilium-ts --version)  ${f(r.floor)}${ratio(key, 'floor')}
`);
    }
}

const distRootLength = distRoot.length;

/** A one-node lab of its own: `lab apply` of one pod -> reachable. */
async function onePodReady(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('# pod ready: skipped (a lab needs root)\n');
    return;
  }
  const lab = `cr${randomBytes(2).toString('hex')}`;
  try {
    const r = spawnSync(process.execPath, [cliPath, 'lab', 'up', '--name', lab], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    if (r.status !== 0) throw new Error(`lab up: ${r.stderr}`);
    await podReady(lab, new LabCluster(lab, ['node1']), '1 node');
  } finally {
    spawnSync(process.execPath, [cliPath, 'lab', 'down', '--name', lab], {
      stdio: 'ignore',
      timeout: 300_000,
    });
  }
}

async function main(): Promise<void> {
  if (arg('--role', '') === 'agent') return runAgent(arg('--node', ''), arg('--endpoints', '').split(','));
  if (process.argv.includes('--one-node')) return onePodReady();
  await allocationRows();
  if (!process.argv.includes('--no-lab')) await keysPerPod();
}

await main();
