/**
 * Cross-node pod-to-pod through our datapath vs the kernel alone, measured in one run:
 *   ours vxlan     a two-node lab (--routing-mode vxlan): bpf_lxc encapsulates into cilium_vxlan
 *                  (VNI = identity), bpf_overlay decapsulates and hands to the pod's to-container
 *   plain vxlan    two node namespaces on a bridge, each with a kernel VXLAN device (fixed VNI
 *                  and remote) the other node's pod CIDR is routed through; no programs
 *   ours native    a two-node lab (--routing-mode native): bpf_lxc, routes via the other node; the
 *                  lab turns IPv4 BIG TCP on (pods' GSO packets up to 192 KiB, src/datapath/big-tcp.ts)
 *   plain routing  the same plain nodes routing each other's pod CIDR via the underlay
 *   plain routing + BIG TCP  the same, every device on the way given the same 192 KiB IPv4 GSO/GRO
 *                  limit as ours native (compared with ours native too: what is left is the paths)
 * Pods on VXLAN paths have MTU 1450, on routed paths 1500; both VXLAN devices send a zero outer UDP
 * checksum (ours per packet, BPF_F_ZERO_CSUM_TX; the plain one `noudpcsum`) and keep the kernel's
 * GSO/GRO defaults, and the bench prints both devices' settings. Figures per path: TCP throughput
 * (iperf3, one stream) with the machine's default congestion control and with cubic (iperf3 -C;
 * see CONGESTION below), and request/response latency (TCP ping-pong, one connection). Rounds are
 * interleaved: in each, the two pairs (ours vs its plain path) in random order, and within a pair
 * ours and plain measured back to back, twice, as A B B A (A chosen at random; a side's figure is
 * the mean of its two), so that the machine's load (shared, and changing by the second) is as
 * alike as can be for the two sides of a ratio. Reported: each path's median, and per pair the
 * median of the rounds' own ratios (the ratio of the medians beside it), and the rounds' ratios.
 * Then, in the vxlan lab: the time from `lab apply` of a new pod on node1 (behind a policy that
 * admits only the client's label) to the client on node2 reaching it (a TCP SYN answered, by the
 * SYN-ACK or the RST of a port nobody listens on: the network and policy path is open), p50/p99,
 * and whether a pod of another label on node2, probing at the same moment, was refused every time.
 * `lab apply` runs through the CLI the installed `cilium-ts` runs (the bundle, src/cli/entry.ts)
 * and, as the baseline of the run, through dist/src/cli/main.js, alternating pod by pod.
 * Prints, asserts nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { installedCliEntry } from '../src/cli/entry.js';
import { cliPath } from '../src/common/paths.js';
import {
  BIG_TCP_MAX_SIZE,
  LEGACY_GSO_MAX_SIZE,
  type NetnsDevice,
  setIpv4GsoLimit,
} from '../src/datapath/big-tcp.js';
import { loadLab } from '../src/lab/state.js';
import { pingClientScript, pingServerScript } from './helpers/ping-pong.js';
import {
  CONGESTION,
  collect,
  defaultCongestion,
  inNs,
  iperfGbps,
  median,
  runBench,
  sh,
  startServer,
  undo,
} from './helpers/proc.js';
import { startReachProber } from './helpers/reach-prober.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const IPERF_SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 3);
const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 5000);
const NEW_PODS = Number(process.env.BENCH_NEW_PODS ?? 20);
const IPERF_PORT = 5201;
const PING_PORT = 5300;
const tag = randomBytes(2).toString('hex');

interface Path {
  name: string;
  client: string; // netns path of the client pod
  other?: string; // netns path of a pod on the client's node with another label (labs)
  server: string; // netns path of the server pod
  serverIp: string;
}

/** A lab command on lab `name`, through `entry` (default main.js). */
function lab(args: string[], name: string, entry = cliPath): string {
  return sh(process.execPath, [
    entry,
    ...args,
    ...(args[1] === 'up' || args[1] === 'down' ? [] : ['--lab', name]),
  ]);
}

const PODS = (serverLabels: string) => `apiVersion: v1
kind: Pod
metadata: {name: srv, labels: {${serverLabels}}}
spec:
  nodeName: node1
  containers: [{name: c, command: ["sleep", "infinity"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: cli, labels: {app: client}}
spec:
  nodeName: node2
  containers: [{name: c, command: ["sleep", "infinity"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec:
  nodeName: node2
  containers: [{name: c, command: ["sleep", "infinity"]}]
`;

/** A two-node lab in `mode` with a server pod on node1 and a client pod on node2. */
function labPath(mode: 'vxlan' | 'native', dir: string): Path {
  const name = `ov${mode[0]}${tag}`;
  const file = join(dir, `${mode}.yaml`);
  writeFileSync(file, PODS('app: srv'));
  undo.push(() => void lab(['lab', 'down', '--name', name], name));
  lab(['lab', 'up', '--name', name, '--nodes', '2', '--routing-mode', mode, '-f', file], name);
  const s = loadLab(name)!;
  const pod = (n: string) => Object.values(s.pods).find((p) => p.name === n)!;
  return {
    name: `ours ${mode}`,
    client: `/run/netns/${pod('cli').netns}`,
    other: `/run/netns/${pod('other').netns}`,
    server: `/run/netns/${pod('srv').netns}`,
    serverIp: pod('srv').ipv4!,
  };
}

type PlainMode = 'vxlan' | 'routing' | 'routing-big-tcp';

/** Two plain node namespaces on a bridge, one pod each; `mode` switches how they reach each other. */
function plainNodes(): {
  set: (mode: PlainMode) => void;
  client: string;
  server: string;
  node1: string;
} {
  const p = `ovb${tag}-`;
  const ns = (n: string) => `/run/netns/${p}${n}`;
  const ip = (n: string, cmds: string[]) =>
    sh('ip', ['-n', `${p}${n}`, '-batch', '-'], `${cmds.join('\n')}\n`);
  for (const n of ['w', 'n1', 'n2', 'p1', 'p2']) {
    sh('ip', ['netns', 'add', `${p}${n}`]);
    undo.push(() => void sh('ip', ['netns', 'del', `${p}${n}`]));
  }
  ip('w', ['link set lo up', 'link add br0 type bridge', 'link set br0 up']);
  for (const i of [1, 2]) {
    sh('ip', [
      'link',
      'add',
      'eth0',
      'netns',
      `${p}n${i}`,
      'type',
      'veth',
      'peer',
      'name',
      `u${i}`,
      'netns',
      `${p}w`,
    ]);
    ip('w', [`link set u${i} master br0 up`]);
    sh('ip', [
      'link',
      'add',
      'eth0',
      'netns',
      `${p}p${i}`,
      'type',
      'veth',
      'peer',
      'name',
      'hp',
      'netns',
      `${p}n${i}`,
    ]);
    ip(`n${i}`, [
      'link set lo up',
      `addr add 192.168.213.${i}/24 dev eth0`,
      'link set eth0 up',
      `addr add 10.213.${i}.1/24 dev hp`,
      'link set hp up',
      `link add vx0 type vxlan id 42 local 192.168.213.${i} remote 192.168.213.${3 - i} dstport 4789 dev eth0 noudpcsum`,
      `addr add 10.213.254.${i}/24 dev vx0`,
      'link set vx0 up',
    ]);
    ip(`p${i}`, [
      'link set lo up',
      `addr add 10.213.${i}.2/24 dev eth0`,
      'link set eth0 up',
      `route add default via 10.213.${i}.1`,
    ]);
    sh('nsenter', [`--net=${ns(`n${i}`)}`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  }
  // every device a pod's packet leaves through: the pods' eth0, the nodes' eth0 and hp, the bridge ports
  const devices = [1, 2].flatMap((i): NetnsDevice[] => [
    [ns(`p${i}`), 'eth0'],
    [ns(`n${i}`), 'eth0'],
    [ns(`n${i}`), 'hp'],
    [ns('w'), `u${i}`],
  ]);
  const set = (mode: PlainMode) => {
    const mtu = mode === 'vxlan' ? '1450' : '1500';
    setIpv4GsoLimit(devices, mode === 'routing-big-tcp' ? BIG_TCP_MAX_SIZE : LEGACY_GSO_MAX_SIZE);
    for (const i of [1, 2]) {
      const via = mode === 'vxlan' ? `10.213.254.${3 - i} dev vx0` : `192.168.213.${3 - i} dev eth0`;
      ip(`n${i}`, [`route replace 10.213.${3 - i}.0/24 via ${via}`, `link set hp mtu ${mtu}`]);
      ip(`p${i}`, [`link set eth0 mtu ${mtu}`]);
    }
  };
  return { set, client: ns('p2'), server: ns('p1'), node1: ns('n1') };
}

/** What makes two VXLAN devices comparable: MTU, outer UDP checksum, GSO/GRO sizes. */
function vxlanSettings(netns: string, dev: string): string {
  const [l] = JSON.parse(sh('nsenter', [`--net=${netns}`, 'ip', '-d', '-j', 'link', 'show', 'dev', dev])) as {
    mtu: number;
    gso_max_size: number;
    gro_max_size: number;
    linkinfo: { info_data: { udp_csum?: boolean; external?: boolean } };
  }[];
  const d = l!.linkinfo.info_data;
  return (
    `mtu ${l!.mtu}, gso_max_size ${l!.gso_max_size}, gro_max_size ${l!.gro_max_size}, ` +
    (d.external ? 'outer UDP checksum per packet (zero)' : `outer UDP checksum ${d.udp_csum ? 'on' : 'zero'}`)
  );
}

interface Figures {
  gbps: number;
  /** with CONGESTION */
  cubic: number;
  p50: number;
}

function throughput(path: Path, congestion?: string): Promise<number> {
  return iperfGbps(path.client, path.serverIp, IPERF_PORT, IPERF_SECONDS, congestion);
}

async function latency(path: Path): Promise<number> {
  const lat = JSON.parse(
    await collect(
      inNs(path.client, [
        process.execPath,
        '--input-type=module',
        '-e',
        pingClientScript(PING_PORT),
        path.serverIp,
        String(ROUND_TRIPS),
      ]),
    ),
  ) as { p50: number };
  return lat.p50;
}

/** One TCP SYN to IP:81 (argv): prints whether anything answered (SYN-ACK or RST) within 300 ms. */
const ONE_SYN = `
  import net from 'node:net';
  const s = net.connect({ host: process.argv[1], port: 81 });
  const t = setTimeout(() => { console.log('silent'); process.exit(0); }, 300);
  s.on('connect', () => { console.log('answered'); process.exit(0); });
  s.on('error', (e) => { console.log(e.code === 'ECONNREFUSED' ? 'answered' : 'silent'); process.exit(0); });`;

interface Reach {
  reachable: number[];
  applied: number[];
}

/**
 * Per new pod, for each CLI entry (`entries`, taking turns pod by pod): ms from `lab apply` to
 * reachable by `client`, and to `lab apply` returning (its IP known); and how often a pod the
 * policy refuses (`other`, same node as the client) got an answer to a SYN sent the moment the
 * IP was known.
 */
async function timeToReachable(
  labName: string,
  client: string,
  other: string,
  dir: string,
  entries: string[],
): Promise<{ byEntry: Map<string, Reach>; refusedAnswered: number; pods: number }> {
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-client}
spec:
  endpointSelector: {matchLabels: {app: fresh}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
`,
  );
  lab(['lab', 'apply', '-f', policy], labName);
  const prober = startReachProber(client, 81);
  undo.push(() => prober.stop());
  const byEntry = new Map<string, Reach>(entries.map((e) => [e, { reachable: [], applied: [] }]));
  let refusedAnswered = 0;
  for (let k = 0; k < NEW_PODS * entries.length; k++) {
    const entry = entries[k % entries.length]!;
    const file = join(dir, `fresh${k}.yaml`);
    writeFileSync(
      file,
      `apiVersion: v1
kind: Pod
metadata: {name: fresh${k}, labels: {app: fresh}}
spec:
  nodeName: node1
  containers: [{name: c, command: ["sleep", "infinity"]}]
`,
    );
    const t0 = Date.now();
    const text = lab(['lab', 'apply', '-f', file], labName, entry);
    const tApplied = Date.now();
    const ip = /IP (\d+\.\d+\.\d+\.\d+)/.exec(text)?.[1];
    if (!ip) throw new Error(`no IP in: ${text}`);
    const refused = collect(inNs(other, [process.execPath, '--input-type=module', '-e', ONE_SYN, ip]));
    const at = await prober.probe(ip);
    byEntry.get(entry)!.reachable.push(Math.round(at - t0));
    byEntry.get(entry)!.applied.push(tApplied - t0);
    if ((await refused).trim() === 'answered') refusedAnswered++;
    lab(['lab', 'delete', '-f', file], labName);
  }
  prober.stop();
  return { byEntry, refusedAnswered, pods: NEW_PODS * entries.length };
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

const quantile = (xs: readonly number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

runBench(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-overlay-'));
  undo.push(() => rmSync(dir, { recursive: true, force: true }));
  const vxlan = labPath('vxlan', dir);
  const native = labPath('native', dir);
  const plain = plainNodes();
  const paths: (Path & { mode?: PlainMode })[] = [
    vxlan,
    {
      name: 'plain vxlan',
      client: plain.client,
      server: plain.server,
      serverIp: '10.213.1.2',
      mode: 'vxlan',
    },
    native,
    {
      name: 'plain routing',
      client: plain.client,
      server: plain.server,
      serverIp: '10.213.1.2',
      mode: 'routing',
    },
    {
      name: 'plain routing + BIG TCP',
      client: plain.client,
      server: plain.server,
      serverIp: '10.213.1.2',
      mode: 'routing-big-tcp',
    },
  ];
  for (const p of [vxlan, native, paths[1]!]) {
    await startServer(p.server, ['iperf3', '-s', '--forceflush', '-p', String(IPERF_PORT)], 'listening');
    await startServer(
      p.server,
      [process.execPath, '--input-type=module', '-e', pingServerScript(PING_PORT)],
      'listening',
    );
  }
  console.log(
    `# overlay bench: cross-node pod-to-pod, ${ROUNDS} interleaved rounds (A B B A) of iperf3 ${IPERF_SECONDS}s x1 stream ` +
      `and ${ROUND_TRIPS} TCP round trips (32 B); medians; load average ${loadavg()[0]!.toFixed(1)}`,
  );
  const vxlanNode = `/run/netns/${loadLab(`ovv${tag}`)!.nodes.find((n) => n.name === 'node1')!.netns}`;
  console.log(`# ours cilium_vxlan: ${vxlanSettings(vxlanNode, 'cilium_vxlan')}`);
  console.log(`# plain vx0:         ${vxlanSettings(plain.node1, 'vx0')}`);
  const bigTcp = lab(['--node', 'node1', 'status'], `ovn${tag}`).match(/^BIG TCP:\s*(.*)$/m)?.[1];
  console.log(`# ours native: BIG TCP ${bigTcp ?? 'not reported'}`);
  const pairs = [
    [paths[0]!, paths[1]!],
    [paths[2]!, paths[3]!],
    [paths[2]!, paths[4]!],
  ] as const;
  const figures = new Map<string, Figures[]>(paths.map((p) => [p.name, []]));
  // per pair, each round's figures of its two sides (ours native is in two pairs)
  const byPair = new Map<(typeof pairs)[number], [Figures[], Figures[]]>(pairs.map((p) => [p, [[], []]]));
  for (let r = 0; r < ROUNDS; r++)
    for (const pair of shuffle([...pairs])) {
      // A B B A: a load that rises or falls through the round weighs on both sides alike
      const order = shuffle([...pair]);
      const abba = [...order, ...[...order].reverse()];
      const round = new Map<Path, Figures>(pair.map((p) => [p, { gbps: 0, cubic: 0, p50: 0 }]));
      const on = (p: (typeof pair)[number]) => {
        if (p.mode) plain.set(p.mode);
        return round.get(p)!;
      };
      for (const p of abba) on(p).gbps += (await throughput(p)) / 2;
      for (const p of abba) on(p).cubic += (await throughput(p, CONGESTION)) / 2;
      for (const p of abba) on(p).p50 += (await latency(p)) / 2;
      for (const p of pair) figures.get(p.name)!.push(round.get(p)!);
      const [oursRounds, baseRounds] = byPair.get(pair)!;
      oursRounds.push(round.get(pair[0])!);
      baseRounds.push(round.get(pair[1])!);
    }
  const med = (name: string) => ({
    gbps: median(figures.get(name)!.map((f) => f.gbps)),
    cubic: median(figures.get(name)!.map((f) => f.cubic)),
    p50: median(figures.get(name)!.map((f) => f.p50)),
  });
  const cc = defaultCongestion();
  console.log(`path                     throughput (${cc})  throughput (${CONGESTION})  latency p50`);
  for (const p of paths) {
    const m = med(p.name);
    console.log(
      `${p.name.padEnd(24)} ${m.gbps.toFixed(2).padStart(6)} Gb/s  ${m.cubic.toFixed(2).padStart(11)} Gb/s  ${m.p50.toFixed(1).padStart(10)} µs`,
    );
  }
  for (const pair of pairs) {
    const [ours, base] = pair;
    const [a, b] = byPair.get(pair)!;
    const ratio = (f: (x: Figures) => number) => median(a.map((x, i) => f(x) / f(b[i]!)));
    const [ma, mb] = [med(ours.name), med(base.name)];
    console.log(
      `${ours.name} / ${base.name}: throughput ${ratio((x) => x.gbps).toFixed(3)}x with ${cc} ` +
        `(of the medians ${(ma.gbps / mb.gbps).toFixed(3)}x; target >= 1.0), ` +
        `${ratio((x) => x.cubic).toFixed(3)}x with ${CONGESTION} (of the medians ${(ma.cubic / mb.cubic).toFixed(3)}x), ` +
        `latency ${ratio((x) => x.p50).toFixed(3)}x (of the medians ${(ma.p50 / mb.p50).toFixed(3)}x; target <= 1.05)`,
    );
    const rounds = (f: (x: Figures) => number) => a.map((x, i) => (f(x) / f(b[i]!)).toFixed(2)).join(' ');
    console.log(
      `  rounds' ratios: throughput ${rounds((x) => x.gbps)} (${cc}), ${rounds((x) => x.cubic)} (${CONGESTION}); latency ${rounds((x) => x.p50)}`,
    );
  }
  console.log(`# load average after the rounds ${loadavg()[0]!.toFixed(1)}`);
  const vxlanLab = `ovv${tag}`;
  const installed = installedCliEntry();
  const entries = installed === cliPath ? [cliPath] : [installed, cliPath];
  const t = await timeToReachable(vxlanLab, vxlan.client, vxlan.other!, dir, entries);
  console.log(
    `new pod on node1 reachable from node2 through its policy (vxlan, ${NEW_PODS} pods per CLI entry), ms from lab apply ` +
      `(target p50 < 500); a pod the policy refuses got an answer ${t.refusedAnswered}/${t.pods} times`,
  );
  for (const [entry, r] of t.byEntry)
    console.log(
      `  ${entry === cliPath ? 'main.js' : 'installed cilium-ts (bundle)'}: reachable p50 ${quantile(r.reachable, 0.5)}, ` +
        `p99 ${quantile(r.reachable, 0.99)}; lab apply itself (CLI, CNI ADD, containers) returned after ` +
        `p50 ${quantile(r.applied, 0.5)}, so reachable p50 ${quantile(
          r.reachable.map((x, i) => x - r.applied[i]!),
          0.5,
        )} ms after the pod existed`,
    );
});
