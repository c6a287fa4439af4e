/**
 * CNI bench: ADD latency of our plugin against the containernetworking `ptp` plugin with `host-local`
 * IPAM (Debian's containernetworking-plugins), in the same run, driven the same way: per pod a fresh
 * network namespace, then `nsenter --net=<node namespace> -- <plugin>` with the CNI_* environment and
 * the configuration on stdin, timed from exec to exit; pods alternate between the two plugins. Then
 * ADD start → the pod answers ping from its node, the steps of our ADD (from the agent's log), the
 * entries' floors, and the agent's memory. Figures only. Run as root: node dist/bench/cni.js [pods]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentSocketPath } from '../src/agent/config.js';
import { AgentApi } from '../src/api/client.js';
import { distRoot } from '../src/common/paths.js';
import { down, up } from '../src/lab/lab.js';
import { labDir, loadLab } from '../src/lab/state.js';
import { percentile as pct } from './helpers/order.js';

const N = Number(process.argv[2] ?? 100);
const lab = `bcni${randomBytes(2).toString('hex')}`;
const quiet = () => {};
const PTP_DIR = '/usr/lib/cni';
const OURS = join(distRoot, 'src', 'cni', 'cilium-ts-cni');
const OURS_NODE = [process.execPath, join(distRoot, 'src', 'cni', 'plugin.js')];

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function sh(argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
}

/** One plugin invocation from inside the node's namespace, as a runtime makes it; wall time in ms. */
function invoke(
  nodeNs: string,
  argv: readonly string[],
  env: Record<string, string>,
  conf: unknown,
): Promise<{ ms: number; code: number | null; stdout: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=/run/netns/${nodeNs}`, '--', ...argv], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - t0, code, stdout }));
    child.stdin.end(JSON.stringify(conf));
  });
}

/** Time until the pod answers one ping from its node (from `since`). */
function reachable(nodeNs: string, ip: string, since: number): number {
  for (let k = 0; k < 100; k++) {
    const r = spawnSync('nsenter', [`--net=/run/netns/${nodeNs}`, 'ping', '-c', '1', '-W', '1', '-q', ip]);
    if (r.status === 0) return performance.now() - since;
  }
  return Number.NaN;
}

function cniEnv(command: string, id: string, netns: string, name: string): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: `/run/netns/${netns}`,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}`,
    CNI_PATH: PTP_DIR,
  };
}

function line(label: string, xs: number[], extra = ''): string {
  return `${label.padEnd(46)} p50 ${pct(xs, 50).toFixed(1).padStart(6)} ms   p99 ${pct(xs, 99).toFixed(1).padStart(6)} ms${extra}`;
}

const netnses: string[] = [];
const loadAtStart = loadavg()[0]!.toFixed(1);
const ptpNode = `${lab}-ptpnode`;
const ptpData = mkdtempSync(join(tmpdir(), 'bench-cni-hostlocal-'));
try {
  if (!existsSync(join(PTP_DIR, 'ptp')) || !existsSync(join(PTP_DIR, 'host-local')))
    throw new Error(`${PTP_DIR}/ptp and host-local are needed (apt install containernetworking-plugins)`);
  if (!existsSync(OURS)) throw new Error(`${OURS} missing: build it with make -C src/cni/shim`);
  await up({ name: lab, nodes: 1, log: quiet });
  const s = loadLab(lab)!;
  const node = s.nodes[0]!;
  const api = new AgentApi(agentSocketPath(lab, node.name));
  const agentPid = node.agentPid!;
  // The baseline's node: a namespace of its own (ptp writes routes and sysctls into it).
  sh(['ip', 'netns', 'add', ptpNode]);
  netnses.push(ptpNode);
  sh(['ip', '-n', ptpNode, 'link', 'set', 'lo', 'up']);
  const ptpConf = {
    cniVersion: '1.0.0',
    name: 'bench-ptp',
    type: 'ptp',
    ipMasq: false,
    ipam: { type: 'host-local', subnet: '10.223.0.0/16', dataDir: ptpData, routes: [{ dst: '0.0.0.0/0' }] },
  };
  const oursConf = {
    cniVersion: '1.0.0',
    name: 'cilium-ts',
    type: 'cilium-ts-cni',
    agentSocket: agentSocketPath(lab, node.name),
  };
  await new Promise((r) => setTimeout(r, 500));
  const rss0 = rssMiB(agentPid);
  const ours: number[] = [];
  /** Our compiled entry's ADDs: wall time by container ID (to set beside the agent's log). */
  const oursById = new Map<string, number>();
  const ptp: number[] = [];
  const oursNode: number[] = [];
  const oursReach: number[] = [];
  const ptpReach: number[] = [];
  for (let i = 0; i < N; i++) {
    for (const which of i % 2 === 0 ? (['ours', 'ptp'] as const) : (['ptp', 'ours'] as const)) {
      const name = `${which}${i}`;
      const ns = `${lab}-${name}`;
      sh(['ip', 'netns', 'add', ns]);
      netnses.push(ns);
      const id = `${lab}${name}${randomBytes(4).toString('hex')}`;
      if (which === 'ours') {
        await api.putPod('default', name, { labels: { app: 'bench', idx: name }, namedPorts: {} });
        // Every tenth pod goes through the node entry instead, for the comparison (not one of the
        // pods whose reachability is timed: those are the compiled entry's).
        const argv = i % 10 === 3 ? OURS_NODE : [OURS];
        const t0 = performance.now();
        const r = await invoke(node.netns, argv, cniEnv('ADD', id, ns, name), oursConf);
        if (r.code !== 0) throw new Error(`our ADD failed: ${r.stdout}`);
        (argv === OURS_NODE ? oursNode : ours).push(r.ms);
        if (argv !== OURS_NODE) oursById.set(id, r.ms);
        if (i % 5 === 0) {
          const ip = (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
          oursReach.push(reachable(node.netns, ip, t0));
        }
      } else {
        const t0 = performance.now();
        const r = await invoke(ptpNode, [join(PTP_DIR, 'ptp')], cniEnv('ADD', id, ns, name), ptpConf);
        if (r.code !== 0) throw new Error(`ptp ADD failed: ${r.stdout}`);
        ptp.push(r.ms);
        if (i % 5 === 0) {
          const ip = (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
          ptpReach.push(reachable(ptpNode, ip, t0));
        }
      }
    }
  }
  const rss100 = rssMiB(agentPid);

  // Our ADD's steps, as the agent logged them.
  const steps: Record<string, number[]> = {
    ipam: [],
    links: [],
    netlink: [],
    nodeSide: [],
    podSide: [],
    endpoint: [],
    agent: [],
  };
  const inner: Record<string, number[]> = {};
  /** The agent's total by container ID. */
  const agentById = new Map<string, number>();
  let prepared = 0;
  const agentLog = join(labDir(lab), node.name, 'agent.log');
  // The agent writes its log asynchronously: wait (up to 5 s) for the line of every ADD.
  const addLines = () => readFileSync(agentLog, 'utf8').split('"cni add"').length - 1;
  for (let end = performance.now() + 5000; addLines() < ours.length + oursNode.length; ) {
    if (performance.now() > end) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (process.env.BENCH_CNI_KEEP_LOG) copyFileSync(agentLog, process.env.BENCH_CNI_KEEP_LOG);
  for (const l of readFileSync(agentLog, 'utf8').split('\n')) {
    if (!l.includes('"cni add"')) continue;
    const j = JSON.parse(l) as {
      containerId: string;
      ipamMs: number;
      linksMs: number;
      netlinkMs: number;
      nodeSideMs?: number;
      podSideMs?: number;
      endpointMs: number;
      totalMs: number;
      prepared?: boolean;
      steps?: Record<string, number>;
    };
    steps.ipam!.push(j.ipamMs);
    steps.links!.push(j.linksMs);
    steps.netlink!.push(j.netlinkMs);
    if (j.nodeSideMs !== undefined) steps.nodeSide!.push(j.nodeSideMs);
    if (j.podSideMs !== undefined) steps.podSide!.push(j.podSideMs);
    steps.endpoint!.push(j.endpointMs);
    steps.agent!.push(j.totalMs);
    agentById.set(j.containerId, j.totalMs);
    if (j.prepared) prepared++;
    for (const [k, v] of Object.entries(j.steps ?? {})) {
      if (v < 0) continue;
      inner[k] ??= [];
      inner[k]!.push(v);
    }
  }
  // The entries' floors: a STATUS round trip through the compiled entry, and a bare node start.
  const floor: number[] = [];
  const nodeStart: number[] = [];
  for (let i = 0; i < 20; i++) {
    floor.push((await invoke(node.netns, [OURS], { CNI_COMMAND: 'STATUS' }, oursConf)).ms);
    nodeStart.push((await invoke(node.netns, [process.execPath, '-e', '0'], {}, {})).ms);
  }

  const loadAtEnd = loadavg()[0]!.toFixed(1);
  console.log(
    `# CNI bench (${N} pods per plugin, one node, same run, alternating; 1-min load average ${loadAtStart} at the start, ${loadAtEnd} at the end)`,
  );
  console.log(line('ptp + host-local ADD (baseline)', ptp));
  console.log(
    line(
      'cilium-ts ADD (compiled entry)',
      ours,
      `   = ${(pct(ours, 50) / pct(ptp, 50)).toFixed(2)}x p50, ${(pct(ours, 99) / pct(ptp, 99)).toFixed(2)}x p99 of ptp`,
    ),
  );
  console.log(line(`cilium-ts ADD (node entry, ${oursNode.length} pods)`, oursNode));
  console.log(line('ptp: ADD start -> pod answers ping', ptpReach, `  (${ptpReach.length} samples)`));
  console.log(
    line(
      'cilium-ts: ADD start -> pod answers ping',
      oursReach,
      `  (${oursReach.length} samples; ${(pct(oursReach, 50) / pct(ptpReach, 50)).toFixed(2)}x p50 of ptp)`,
    ),
  );
  console.log('# our ADD, step by step (agent side, from its log)');
  console.log(line('  IPAM', steps.ipam!));
  console.log(line('  interfaces (veth, addresses, routes)', steps.links!));
  console.log(line('    of which the rtnetlink requests', steps.netlink!));
  if (steps.nodeSide!.length) console.log(line('      node side (veth, host routes)', steps.nodeSide!));
  if (steps.podSide!.length) console.log(line('      pod side (addresses, routes)', steps.podSide!));
  console.log(line('  endpoint (identity, maps, programs attached)', steps.endpoint!));
  console.log(
    line('  agent total', steps.agent!, `  (${prepared} of ${steps.agent!.length} begun at PUT pod)`),
  );
  console.log('# the endpoint, from its start (at PUT pod when begun then, else at ADD), done at:');
  const innerNames: Record<string, string> = {
    identityMs: 'identity allocated',
    verifiedMs: 'programs ready (a spare copy taken)',
    prelinkedMs: 'hooks held by the placeholder',
    recordedMs: 'policy and map entries written',
    attachedMs: 'programs swapped in',
    savedMs: 'state saved (in place; fsync follows)',
  };
  for (const [k, label] of Object.entries(innerNames))
    if (inner[k]?.length) console.log(line(`  ${label}`, inner[k]!));
  // Where the tail is: inside the agent, or around it (process starts, the HTTP round trip).
  const slowest = [...oursById].sort((a, b) => b[1] - a[1]).slice(0, 3);
  console.log(
    `  slowest ADDs (compiled entry): ${slowest
      .map(([id, ms]) => `${ms.toFixed(1)} ms of which agent ${agentById.get(id)?.toFixed(1) ?? '?'} ms`)
      .join(', ')}`,
  );
  console.log(line('  entry floor: STATUS via the compiled entry', floor));
  console.log(line('  bare node process start (node entry floor)', nodeStart));
  console.log(
    `agent RSS                                      ${rss0.toFixed(1)} MiB with 0 pods, ${rss100.toFixed(1)} MiB with ${ours.length + oursNode.length} pods`,
  );
} finally {
  for (const ns of netnses) spawnSync('ip', ['netns', 'del', ns]);
  rmSync(ptpData, { recursive: true, force: true });
  await down(lab, quiet);
}
