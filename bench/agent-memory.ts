/**
 * Agent memory per pod, measured on the real agent: `cilium-ts agent` runs as its own process in a
 * node network namespace (as `lab up` starts it: same flags, node flags and malloc settings, dual stack),
 * and every pod is created through it the way the CNI plugin does (PUT pod, then POST /v1/cni/add
 * with a fresh network namespace: veth, addresses, routes, programs attached, maps written). Pods
 * are replicas of 30 apps (one identity each; `BENCH_PODS_PER_APP=10` makes an app per ten pods
 * instead, so identities, and every endpoint's policy entries, grow with the pods), with a few
 * namespace-wide policies in place.
 *
 * Figures, at 0, 100 and 1,000 pods (`BENCH_PODS` for the last point): the agent's RSS as the
 * kernel charges it (/proc/PID/status VmRSS) after 2 and 20 idle seconds, then after a full collection
 * (bench/helpers/memory-probe.ts, loaded with `node --import`, collects and trims on SIGUSR2, reports
 * process.memoryUsage()) with heap used, external and array buffers beside it, and the growth per
 * additional pod between 100 and 1,000. Target (issue 14), on the RSS after a full collection and
 * malloc_trim (what the agent's idle collector does once quiet): ≤ 20 KiB per pod from 100 to 1,000
 * pods, < 100 MB at 100 pods. `--heap-snapshot` writes a heap snapshot at each point (into the
 * bench's temporary directory, kept then). Run as root: node dist/bench/agent-memory.js
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_MALLOC_ENV, AGENT_NODE_FLAGS } from '../src/agent/config.js';
import { AgentApi } from '../src/api/client.js';
import { postJson } from '../src/cni/agent-client.js';
import { CNI_API } from '../src/cni/types.js';
import { cliPath } from '../src/common/paths.js';
import { AGENT_HUBBLE_PORT, AGENT_METRICS_PORT } from '../src/lab/forwarder.js';
import { percentile } from './helpers/order.js';
import { onStdoutClosed } from './helpers/proc.js';

const POINTS = [0, 100, Number(process.env.BENCH_PODS ?? 1000)];
const PODS_PER_APP = Number(process.env.BENCH_PODS_PER_APP ?? 0);
const SNAPSHOTS = process.argv.includes('--heap-snapshot');
/**
 * The agent's node flags and malloc settings, the lab's: BENCH_AGENT_NODE_FLAGS replaces the flags
 * ('' for V8's defaults), BENCH_AGENT_MALLOC_DEFAULTS=1 leaves glibc's defaults.
 */
const nodeFlags =
  process.env.BENCH_AGENT_NODE_FLAGS !== undefined
    ? process.env.BENCH_AGENT_NODE_FLAGS.split(' ').filter(Boolean)
    : AGENT_NODE_FLAGS;
const PROBE = new URL('./helpers/memory-probe.js', import.meta.url).href;

const KiB = 1024;
const MiB = 1024 * 1024;
const tag = `amem${randomBytes(3).toString('hex')}`;
const nodeNs = `${tag}-node1`;
const dir = mkdtempSync(join(tmpdir(), 'cts-bench-agentmem-'));
const probeOut = join(dir, 'memory.json');
const netnses: string[] = [];
let agent: ChildProcess | undefined;

function sh(argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim()}`);
}

function vmRss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * KiB;
}

/**
 * RSS by kind of mapping (/proc/PID/smaps): the node binary and libraries, malloc's main heap, BPF
 * maps, other anonymous memory (V8's heap, mapped buffers, malloc's other arenas).
 */
function rssByKind(pid: number): Record<'files' | 'mallocHeap' | 'bpfMaps' | 'anon', number> {
  const out = { files: 0, mallocHeap: 0, bpfMaps: 0, anon: 0 };
  let kind: keyof typeof out = 'anon';
  for (const l of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (m) {
      const name = m[1]!;
      kind = name.startsWith('/')
        ? 'files'
        : name === '[heap]'
          ? 'mallocHeap'
          : name.startsWith('anon_inode:bpf')
            ? 'bpfMaps'
            : 'anon';
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(l);
    if (r) out[kind] += Number(r[1]) * KiB;
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Usage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}
interface Point {
  pods: number;
  busyRss: number;
  idleRss: number;
  after: Usage;
  kinds: ReturnType<typeof rssByKind>;
  load: number;
}

/**
 * RSS after 2 and 20 idle seconds (V8's memory reducer collects some seconds after the allocation
 * rate drops), then the probe's figures after a full collection.
 */
async function measure(pid: number, pods: number): Promise<Point> {
  await sleep(2000);
  const busyRss = vmRss(pid);
  await sleep(18_000);
  const idleRss = vmRss(pid);
  const seqBefore = existsSync(probeOut)
    ? (JSON.parse(readFileSync(probeOut, 'utf8')) as { seq: number }).seq
    : 0;
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    if (!existsSync(probeOut)) continue;
    const r = JSON.parse(readFileSync(probeOut, 'utf8')) as { seq: number; after: Usage };
    if (r.seq > seqBefore)
      return {
        pods,
        busyRss,
        idleRss,
        after: { ...r.after, rss: vmRss(pid) },
        kinds: rssByKind(pid),
        load: loadavg()[0]!,
      };
  }
  throw new Error('the agent did not answer the memory probe within 60 s');
}

async function waitHealthy(api: AgentApi, p: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (p.exitCode !== null) throw new Error(`agent exited ${p.exitCode}: see ${join(dir, 'agent.log')}`);
    try {
      await api.healthz();
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error('agent did not answer within 60 s');
}

const POLICIES = [
  {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'same-namespace', namespace: 'default' },
    spec: {
      endpointSelector: {},
      ingress: [{ fromEndpoints: [{}], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
    },
  },
  {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'dns', namespace: 'default' },
    spec: {
      endpointSelector: {},
      egress: [
        {
          toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system' } }],
          toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }],
        },
        { toEndpoints: [{}] },
      ],
    },
  },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'db', namespace: 'default' },
    spec: {
      podSelector: { matchLabels: { tier: 'db' } },
      ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'api' } } }], ports: [{ port: 5432 }] }],
    },
  },
];

function row(what: string, value: string, target = ''): void {
  console.log(`  ${what.padEnd(52)} ${value.padStart(30)}${target ? `   (target ${target})` : ''}`);
}

const mib = (b: number) => (b / MiB).toFixed(1);

async function main(): Promise<void> {
  console.log(
    `# agent memory: the agent process, pods created through it, ${POINTS.join(' → ')} pods, ${PODS_PER_APP > 0 ? `an app per ${PODS_PER_APP} pods` : '30 apps'} (node ${process.version} ${nodeFlags.join(' ')}${process.env.BENCH_AGENT_MALLOC_DEFAULTS ? ', glibc malloc defaults' : ''})`,
  );
  sh(['ip', 'netns', 'add', nodeNs]);
  netnses.push(nodeNs);
  sh(['ip', '-n', nodeNs, 'link', 'set', 'lo', 'up']);
  const argv = [
    process.execPath,
    ...nodeFlags,
    '--import',
    PROBE,
    cliPath,
    'agent',
    '--lab',
    tag,
    '--node',
    'node1',
    '--run-dir',
    dir,
    '--pod-cidr',
    '10.200.0.0/20',
    '--pod-cidr-v6',
    'fd00:10:200::/116',
    '--node-ip',
    '192.168.211.1',
    '--node-label',
    'kubernetes.io/hostname=node1',
    '--hubble-port',
    String(AGENT_HUBBLE_PORT),
    '--metrics-port',
    String(AGENT_METRICS_PORT),
  ];
  const log = join(dir, 'agent.log');
  const p = spawn(
    'sh',
    ['-c', `exec nsenter --net=/run/netns/${nodeNs} -- "$@" >>${log} 2>&1`, 'sh', ...argv],
    {
      stdio: 'ignore',
      env: {
        ...(process.env.BENCH_AGENT_MALLOC_DEFAULTS ? {} : AGENT_MALLOC_ENV),
        ...process.env,
        UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16',
        CTS_MEMORY_PROBE_OUT: probeOut,
        ...(SNAPSHOTS ? { CTS_MEMORY_PROBE_SNAPSHOT: '1' } : {}),
      },
    },
  );
  agent = p;
  const api = new AgentApi(join(dir, 'agent.sock'), 60_000);
  await waitHealthy(api, p);
  const pid = p.pid!;
  await api.importPolicies({ documents: POLICIES });
  const conf = { cniVersion: '1.0.0', name: 'cilium-ts', type: 'cilium-ts-cni' };

  const points: Point[] = [];
  const adds: number[] = [];
  let pods = 0;
  const t0 = performance.now();
  for (const target of POINTS) {
    for (; pods < target; pods++) {
      const name = `pod-${pods}`;
      const ns = `${tag}-p${pods}`;
      sh(['ip', 'netns', 'add', ns]);
      netnses.push(ns);
      const a = PODS_PER_APP > 0 ? Math.floor(pods / PODS_PER_APP) : pods % 30;
      await api.putPod('default', name, {
        labels: { app: `app${a}`, tier: ['web', 'api', 'db'][a % 3]! },
        namedPorts: { http: { port: 80, protocol: 'TCP' } },
      });
      const t = performance.now();
      const r = await postJson(
        join(dir, 'agent.sock'),
        CNI_API.add,
        {
          containerId: `${tag}c${pods}`,
          netns: `/run/netns/${ns}`,
          ifName: 'eth0',
          podNamespace: 'default',
          podName: name,
          args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: name },
          config: conf,
        },
        60_000,
      );
      if (r.status !== 200) throw new Error(`ADD of ${name}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      adds.push(performance.now() - t);
    }
    const m = await measure(pid, pods);
    points.push(m);
    row(
      `${pods} pods: RSS 2 s / 20 s idle / after a full GC`,
      `${mib(m.busyRss)} / ${mib(m.idleRss)} / ${mib(m.after.rss)} MiB`,
      pods === 100 ? '< 95.4 MiB (100 MB)' : '',
    );
    row(
      `${pods} pods: heap used / total, external (buffers)`,
      `${mib(m.after.heapUsed)} / ${mib(m.after.heapTotal)}, ${mib(m.after.external)} (${mib(m.after.arrayBuffers)}) MiB`,
    );
    const k = m.kinds;
    row(
      `${pods} pods: RSS files / malloc heap / BPF maps / other anon`,
      `${mib(k.files)} / ${mib(k.mallocHeap)} / ${mib(k.bpfMaps)} / ${mib(k.anon)} MiB`,
    );
  }
  row(
    'time to create the pods; CNI ADD p50 / p99 (agent side)',
    `${((performance.now() - t0) / 1000).toFixed(1)} s; ${percentile(adds, 50).toFixed(0)} / ${percentile(adds, 99).toFixed(0)} ms`,
  );
  const a = points.find((x) => x.pods === 100)!;
  const b = points[points.length - 1]!;
  const n = b.pods - a.pods;
  row(
    `RSS growth per pod, ${a.pods} → ${b.pods} (after a full GC)`,
    `${((b.after.rss - a.after.rss) / n / KiB).toFixed(1)} KiB`,
    '≤ 20 KiB',
  );
  row(
    `RSS growth per pod, ${a.pods} → ${b.pods} (20 s idle)`,
    `${((b.idleRss - a.idleRss) / n / KiB).toFixed(1)} KiB`,
  );
  row(
    `heap growth per pod, ${a.pods} → ${b.pods}`,
    `${((b.after.heapUsed - a.after.heapUsed) / n / KiB).toFixed(1)} KiB`,
  );
  row('load average (1 min) at each point', points.map((x) => x.load.toFixed(2)).join(' / '));
  if (SNAPSHOTS) console.log(`  heap snapshots: ${dir}/memory.json.*.heapsnapshot`);
}

async function cleanup(): Promise<void> {
  if (agent?.pid !== undefined && agent.exitCode === null) {
    agent.kill('SIGTERM');
    for (let i = 0; i < 100 && agent.exitCode === null; i++) await sleep(100);
    if (agent.exitCode === null) agent.kill('SIGKILL');
  }
  for (const ns of netnses.reverse()) spawnSync('ip', ['netns', 'del', ns]);
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${dir}/`));
  for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
  if (!SNAPSHOTS) rmSync(dir, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });
onStdoutClosed(() => void cleanup().finally(() => process.exit(141)));
try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
