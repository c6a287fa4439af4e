/**
 * Agent memory per pod: the agent's control-plane cells (identities, resources, ipcache, policy,
 * endpoints, datapath sync; src/agent/agent.ts CONTROL_PLANE_CELLS) run for real, writing the real
 * ipcache, endpoint and policy maps (DatapathMaps on a private bpffs, as the agent does; the maps'
 * contents live in the kernel). Programs are not loaded (their memory is the kernel's too): the
 * program and load-balancer targets are the in-memory ones of the unit tests. Without root
 * (`--fake-maps`) every target is in memory, which puts the map contents in the heap. Pods are
 * created the way the CNI plugin creates them (EndpointManager.create after the pod resource),
 * as replicas of 30 apps (one identity each; `BENCH_PODS_PER_APP=10` makes an app per ten pods
 * instead, so identities, and every endpoint's policy entries, grow with the pods), with a few
 * namespace-wide policies in place.
 *
 * Figures: heap used and RSS after a full collection with 100 and with 1,000 pods, and the growth
 * per additional pod between the two. Target (issue 14): ≤ 20 KiB per pod from 100 to 1,000 pods,
 * < 100 MB at 100 pods. `--heap-snapshot DIR` writes a heap snapshot at each point.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { CONTROL_PLANE_CELLS } from '../src/agent/agent.js';
import {
  type AgentCellExtras,
  ConfigT,
  EndpointsT,
  LogT,
  PolicyT,
  ResourcesT,
  TargetsT,
} from '../src/agent/cells/tokens.js';
import { defaultConfig } from '../src/agent/config.js';
import { DatapathMaps } from '../src/datapath/maps/index.js';
import type { DatapathTargets } from '../src/endpoint/datapath-state.js';
import { cell, Hive } from '../src/hive/hive.js';
import { fakeDatapath } from '../test/unit/agent/fake-targets.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const POINTS = [100, Number(process.env.BENCH_PODS ?? 1000)];
const PODS_PER_APP = Number(process.env.BENCH_PODS_PER_APP ?? 0);
const snapDir = process.argv.includes('--heap-snapshot')
  ? process.argv[process.argv.indexOf('--heap-snapshot') + 1]
  : undefined;

const KiB = 1024;
const MiB = 1024 * 1024;

function line(what: string, value: string, target = ''): void {
  console.log(`  ${what.padEnd(58)} ${value.padStart(12)}${target ? `   (target ${target})` : ''}`);
}

/** Heap used and RSS after collections (twice: weak references and finalizers settle). */
async function settle(): Promise<{ heap: number; rss: number }> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
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

async function main(): Promise<void> {
  console.log(
    `# agent memory: control-plane cells, ${POINTS.join(' → ')} pods, ${PODS_PER_APP > 0 ? `an app per ${PODS_PER_APP} pods` : '30 apps'} (node ${process.version})`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'cts-bench-agentmem-'));
  const fake = fakeDatapath();
  let dp: DatapathTargets = fake;
  let maps: DatapathMaps | undefined;
  const bpffs = join(dir, 'bpffs');
  if (!process.argv.includes('--fake-maps')) {
    mkdirSync(bpffs);
    const r = spawnSync('mount', ['-t', 'bpf', 'bpf', bpffs], { encoding: 'utf8' });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`mount bpffs: ${r.stderr.trim()} (run as root, or pass --fake-maps)`);
    }
    const m = DatapathMaps.open(bpffs);
    maps = m;
    dp = {
      ...fake,
      ipcache: {
        set: (prefix, info) => m.ipcache.upsert(prefix, info),
        delete: (prefix) => void m.ipcache.delete(prefix),
        keys: () => m.ipcache.list().map((e) => e.prefix),
      },
      lxc: {
        set: (ip, info) => m.endpoints.upsert(ip, info),
        delete: (ip) => void m.endpoints.delete(ip),
        keys: () => m.endpoints.list().map((e) => e.ip),
      },
      policy: m.policy,
      programs: {
        preload: async () => ({}),
        discard: () => {},
        attach: async () => {},
        detach: () => {},
        pinned: () => [],
      },
    };
  }
  console.log(`  map targets: ${maps ? 'real BPF maps (private bpffs)' : 'in memory (--fake-maps)'}`);
  const cfg = defaultConfig('bench', 'n1', {
    runDir: dir,
    stateDir: dir,
    nodeIPs: ['192.168.50.2'],
    podCidrV4: '10.128.0.0/16',
  });
  const targets = cell<DatapathTargets, AgentCellExtras>({
    name: 'fake-targets',
    needs: [],
    provides: TargetsT,
    build: () => ({ provide: dp }),
  });
  const hive = new Hive<AgentCellExtras>(
    [...CONTROL_PLANE_CELLS, targets],
    [
      [ConfigT, cfg],
      [LogT, pino({ level: 'silent' })],
    ],
  );
  try {
    await hive.start();
    const resources = hive.get(ResourcesT);
    const { manager, state, persist } = hive.get(EndpointsT);
    await hive.get(PolicyT).importPolicies(POLICIES);
    const base = await settle();
    line(
      'agent started, policies applied: heap / RSS',
      `${(base.heap / MiB).toFixed(1)} / ${(base.rss / MiB).toFixed(0)} MB`,
    );

    let pods = 0;
    const figures: { pods: number; heap: number; rss: number }[] = [];
    const t0 = performance.now();
    for (const target of POINTS) {
      for (; pods < target; pods++) {
        const name = `pod-${pods}`;
        const a = PODS_PER_APP > 0 ? Math.floor(pods / PODS_PER_APP) : pods % 30;
        await resources.setPod('default', name, {
          labels: { app: `app${a}`, tier: ['web', 'api', 'db'][a % 3]! },
          namedPorts: { http: { port: 80, protocol: 'TCP' } },
        });
        const hostIfName = `lxc${pods.toString(16).padStart(8, '0')}`;
        fake.interfaces.add(hostIfName);
        await manager.create({
          containerId: `c-${pods}`,
          ifName: 'eth0',
          netns: `/var/run/netns/${name}`,
          podNamespace: 'default',
          podName: name,
          ipv4: `10.128.${pods >> 8}.${pods & 255}`,
          mac: '02:00:00:00:00:01',
          hostIfName,
          hostIfindex: 1000 + pods,
          hostMac: '02:00:00:00:00:02',
        });
      }
      await state.flush();
      await persist();
      const m = await settle();
      figures.push({ pods, ...m });
      line(
        `${pods} pods: heap used / RSS`,
        `${(m.heap / MiB).toFixed(1)} / ${(m.rss / MiB).toFixed(0)} MB`,
        pods === 100 ? '< 100 MB' : '',
      );
      if (snapDir !== undefined) writeHeapSnapshot(join(snapDir, `agent-${pods}.heapsnapshot`));
    }
    line('time to create the pods', `${(performance.now() - t0).toFixed(0)} ms`);
    const [a, b] = [figures[0]!, figures[figures.length - 1]!];
    const n = b.pods - a.pods;
    line(
      `heap growth per pod, ${a.pods} → ${b.pods}`,
      `${((b.heap - a.heap) / n / KiB).toFixed(1)} KiB`,
      '≤ 20 KiB',
    );
    line(
      `RSS growth per pod, ${a.pods} → ${b.pods}`,
      `${((b.rss - a.rss) / n / KiB).toFixed(1)} KiB`,
      '≤ 20 KiB',
    );
  } finally {
    await hive.stop().catch(() => {});
    maps?.close();
    if (maps) spawnSync('umount', ['-l', bpffs]);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
