/**
 * NodePort from outside the node vs a plain routed path, measured in one run on one topology:
 * a world namespace (the client) joined to a node namespace by a veth (the node's eth0, its external
 * device), one backend pod behind the node plumbed by the CNI's setupEndpoint.
 *   plain        no programs: world -> node (routing) -> pod IP
 *   datapath     bpf_host on eth0 and bpf_lxc on the pod's veth, straight to the pod IP (no service)
 *   NodePort     the same programs, to nodeIP:nodePort (externalTrafficPolicy: Cluster): DNAT at
 *                eth0 into the pod, replies translated back in bpf_lxc and sent out of eth0; the
 *                backend is local, so no SNAT (upstream's way)
 *   NodePort SNAT  the same with snatLocalBackends (kube-proxy's way): SNAT to the node too
 *   NodePort/L   externalTrafficPolicy: Local
 * Figures: TCP throughput (iperf3, one stream) and the connection rate (TCP_CRR-style: a new TCP
 * connection per 32 B request from a source port never used before in the run; the client closes
 * first, so TIME_WAIT stays on its side). Rounds are interleaved: each round runs every row once,
 * in a new random order (seeded, BENCH_SEED), the plain path and NodePort twice, as A B B A (a
 * load that rises or falls through the four runs weighs on both alike; a row's figure in a round
 * is the mean of its two runs); a ratio is the median of its per-round ratios, with their
 * quartiles as the spread (on a shared 2-core machine one iperf3 run moves by tens of percent
 * with the load). Beside each row, the mean size of the packets the pod received in the iperf3
 * runs: GSO packets of ~60 KB on every path mean no path splits them into segments. The figures the
 * load moves least come last: the datapath programs' own run time per MB delivered (kernel BPF
 * stats, on for that phase only: cil_from_netdev on eth0 and the pod's cil_from_container, which
 * sees the ACKs), and the per-packet cost of cil_from_netdev under BPF_PROG_TEST_RUN for an
 * established NodePort packet and for a packet to no service. Target (issue 10): NodePort
 * throughput >= 0.95x the plain routed path. Prints, asserts nothing. Knobs: BENCH_ROUNDS (7),
 * BENCH_IPERF_SECONDS (2), BENCH_NODEPORT_CONNECTIONS (1000), BENCH_SEED. SNATed connections
 * share 4536 ports per backend address and port, free again 10 s after a close: 1000 per round
 * stays inside it.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setupEndpoint, setupNodeRouter } from '../src/cni/endpoint-plumbing.js';
import {
  DatapathLoader,
  DatapathMaps,
  DEFS,
  type EndpointDatapath,
  type EndpointDatapathConfig,
  HostDeviceLoader,
  parseIp,
} from '../src/datapath/index.js';
import { Program } from '../src/ebpf/index.js';
import { bpf, close } from '../src/ebpf/sys/libc.js';
import { mulberry32, quartiles, ratioWithSpread, shuffle } from './helpers/order.js';
import { collect, inNs, median, runBench, sh, startServer, undo } from './helpers/proc.js';

const IPERF_PORT = 5201;
const CRR_PORT = 5400;
const NODEPORT = { iperf: 30201, crr: 30400, iperfLocal: 30202, crrLocal: 30401 } as const;
const SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_NODEPORT_CONNECTIONS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const STATS_ROUNDS = 3;
const WARMUP = 100;

const CRR_SERVER = `
  import net from 'node:net';
  net.createServer((c) => { c.on('data', (d) => c.write(d)); c.on('error', () => {}); })
    .listen(${CRR_PORT}, '0.0.0.0', () => console.log('listening'));`;

/** n connections after WARMUP ones, connection i from source port base + i, each closed by the
 * client once the reply is in; prints conn/s. */
const CRR_CLIENT = `
  import net from 'node:net';
  const [host, port, n, base, warm] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x));
  const msg = Buffer.alloc(32, 1);
  let i = 0; let t0 = 0n;
  const next = () => {
    if (i === warm) t0 = process.hrtime.bigint();
    if (i === warm + n) {
      console.log(JSON.stringify({ cps: n / (Number(process.hrtime.bigint() - t0) / 1e9) }));
      process.exit(0);
    }
    let got = 0;
    const c = net.connect({ host, port, localPort: base + i++ }, () => c.write(msg));
    c.setTimeout(5000, () => { console.error('connection ' + i + ' timed out'); process.exit(1); });
    c.on('data', (d) => { got += d.length; if (got === msg.length) c.end(); });
    c.on('close', () => (got === msg.length ? next() : (console.error('short reply ' + i), process.exit(1))));
    c.on('error', (e) => { console.error(e.message); process.exit(1); });
  };
  next();`;

interface Figures {
  gbps: number;
  cps: number;
  /** Bytes the server received. */
  bytes: number;
  /** Mean size of the packets the pod's eth0 received during the iperf3 run (GSO kept or not). */
  rxPacketBytes: number;
  /** CPU time of the iperf3 client and server processes (the softirq work of the path they
   * drive runs mostly in them) per GB delivered, in ms: what the load moves less than a rate. */
  cpuMsPerGB: number;
}

let nextPort = 1024;

async function iperf(
  world: string,
  host: string,
  port: number,
): Promise<{ gbps: number; bytes: number; cpuMsPerGB: number }> {
  const ip = JSON.parse(
    await collect(inNs(world, ['iperf3', '-c', host, '-p', String(port), '-t', String(SECONDS), '-J'])),
  ) as {
    end: {
      sum_received: { bits_per_second: number; bytes: number; seconds: number };
      cpu_utilization_percent: { host_total: number; remote_total: number };
    };
  };
  const r = ip.end.sum_received;
  const cpu = ip.end.cpu_utilization_percent;
  const cpuMs = ((cpu.host_total + cpu.remote_total) / 100) * r.seconds * 1000;
  return { gbps: r.bits_per_second / 1e9, bytes: r.bytes, cpuMsPerGB: cpuMs / (r.bytes / 1e9) };
}

/** The pod's eth0 receive counters (netlink: /sys/class/net shows the namespace sysfs was mounted in). */
function podRx(pod: string): { packets: number; bytes: number } {
  const [link] = JSON.parse(sh('ip', ['-n', basename(pod), '-s', '-j', 'link', 'show', 'eth0'])) as {
    stats64: { rx: { packets: number; bytes: number } };
  }[];
  return link!.stats64.rx;
}

async function measure(
  world: string,
  pod: string,
  host: string,
  iperfPort: number,
  crrPort: number,
): Promise<Figures> {
  const rx0 = podRx(pod);
  const ip = await iperf(world, host, iperfPort);
  const rx1 = podRx(pod);
  const rxPacketBytes = (rx1.bytes - rx0.bytes) / Math.max(1, rx1.packets - rx0.packets);
  const base = nextPort;
  nextPort += CONNECTIONS + WARMUP;
  if (nextPort > 61000) throw new Error('BENCH_NODEPORT_CONNECTIONS x rounds needs more source ports');
  const crr = JSON.parse(
    await collect(
      inNs(world, [
        process.execPath,
        '--input-type=module',
        '-e',
        CRR_CLIENT,
        host,
        String(crrPort),
        String(CONNECTIONS),
        String(base),
        String(WARMUP),
      ]),
    ),
  ) as { cps: number };
  return { ...ip, cps: crr.cps, rxPacketBytes };
}

/** The mean of two runs of a row (its figure in a round of A B B A). */
function mean2(a: Figures, b: Figures): Figures {
  const m = (k: keyof Figures) => (a[k] + b[k]) / 2;
  return {
    gbps: m('gbps'),
    cps: m('cps'),
    bytes: m('bytes'),
    rxPacketBytes: m('rxPacketBytes'),
    cpuMsPerGB: m('cpuMsPerGB'),
  };
}

const BPF_ENABLE_STATS = 32;

/** Run time and count of a program (BPF stats must be on). */
function progStats(id: number): { ns: number; runs: number } {
  const j = JSON.parse(sh('bpftool', ['prog', 'show', 'id', String(id), '--json'])) as {
    run_time_ns?: number;
    run_cnt?: number;
  };
  return { ns: j.run_time_ns ?? 0, runs: j.run_cnt ?? 0 };
}

/** ns per packet of `prog` on `frame` (after one run that sets up its state). */
function perPacketNs(prog: Program, frame: Uint8Array): number {
  prog.testRun({ data: frame });
  return median([0, 1, 2, 3, 4].map(() => prog.testRun({ data: frame, repeat: 200000 }).durationNs));
}

/** An Ethernet + IPv4 + TCP frame (flags: SYN 0x02, ACK 0x10). */
function tcpFrame(src: string, dst: string, sport: number, dport: number, flags: number): Uint8Array {
  const f = Buffer.alloc(54);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(40, 16);
  f[22] = 64;
  f[23] = 6;
  f.set(parseIp(src).bytes, 26);
  f.set(parseIp(dst).bytes, 30);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(dport, 36);
  f[46] = 5 << 4;
  f[47] = flags;
  return f;
}

async function main(): Promise<void> {
  const p = `npB${randomBytes(3).toString('hex')}`;
  const u = 100 + (randomBytes(1)[0]! % 100);
  const o = 100 + (randomBytes(1)[0]! % 100);
  const [worldNs, nodeNs, podNs] = [`${p}w`, `${p}n`, `${p}a`];
  const path = (n: string) => `/run/netns/${n}`;
  const NODE_IP = `192.168.${u}.1`;
  const WORLD_IP = `192.168.${u}.100`;
  const ROUTER = `10.${o}.0.1`;
  const POD_IP = `10.${o}.0.10`;

  const bpffs = mkdtempSync(join(tmpdir(), 'cts-bench-bpffs-'));
  sh('mount', ['-t', 'bpf', 'bpf', bpffs]);
  undo.push(() => {
    spawnSync('umount', ['-l', bpffs]);
    rmSync(bpffs, { recursive: true, force: true });
  });
  for (const n of [worldNs, nodeNs, podNs]) {
    sh('ip', ['netns', 'add', n]);
    undo.push(() => void spawnSync('ip', ['netns', 'del', n]));
    sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
  }
  sh('ip', ['link', 'add', 'eth0', 'netns', nodeNs, 'type', 'veth', 'peer', 'name', 'wn', 'netns', worldNs]);
  sh(
    'ip',
    ['-n', worldNs, '-batch', '-'],
    `addr add ${WORLD_IP}/24 dev wn\nlink set wn up\nroute add 10.${o}.0.0/24 via ${NODE_IP}\n`,
  );
  sh(
    'ip',
    ['-n', nodeNs, '-batch', '-'],
    `addr add ${NODE_IP}/24 dev eth0\nlink set eth0 up\nroute add default via ${WORLD_IP}\n`,
  );
  sh('nsenter', [`--net=${path(nodeNs)}`, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
  // the world's own ports stay clear of the CRR source ports
  sh('nsenter', [`--net=${path(worldNs)}`, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=61000 65535']);
  await setupNodeRouter({ nodeNetns: path(nodeNs), ipv4Router: ROUTER });
  const r = await setupEndpoint({
    nodeNetns: path(nodeNs),
    podNetns: path(podNs),
    ifName: 'eth0',
    hostIfName: `${p}A`,
    ipv4: { ip: POD_IP, router: ROUTER },
  });
  const pod: EndpointDatapathConfig = {
    id: 31,
    identity: 7001,
    ipv4: POD_IP,
    mac: r.podMac,
    nodeMac: r.hostMac,
    interface: r.hostIfName,
    netns: path(nodeNs),
    routerIpv4: ROUTER,
  };
  await startServer(
    path(podNs),
    ['iperf3', '-s', '--forceflush', '-p', String(IPERF_PORT)],
    'Server listening',
  );
  await startServer(path(podNs), [process.execPath, '--input-type=module', '-e', CRR_SERVER], 'listening');

  const maps = DatapathMaps.open(bpffs);
  undo.push(() => maps.close());
  const loader = DatapathLoader.open({ bpffs, maps });
  undo.push(() => loader.close());
  const host = HostDeviceLoader.open({ bpffs, maps });
  undo.push(() => host.close());
  const detach = () => {
    loader.remove(pod.id);
    host.detach('eth0');
  };
  undo.push(detach);
  loader.writeEndpoint(pod);
  maps.ipcache.upsert(NODE_IP, { identity: DEFS.ID_HOST });
  const TCP = DEFS.CIL_IPPROTO_TCP;
  maps.lb.upsertBackend({ id: 1, address: POD_IP, port: IPERF_PORT, protocol: TCP, state: 0 });
  maps.lb.upsertBackend({ id: 2, address: POD_IP, port: CRR_PORT, protocol: TCP, state: 0 });
  const nodePort = DEFS.SVC_FLAG_NODEPORT | DEFS.SVC_FLAG_ROUTABLE;
  const services: [number, number, number, number][] = [
    [1, NODEPORT.iperf, 1, nodePort],
    [2, NODEPORT.crr, 2, nodePort],
    [3, NODEPORT.iperfLocal, 1, nodePort | DEFS.SVC_FLAG_EXT_LOCAL_SCOPE],
    [4, NODEPORT.crrLocal, 2, nodePort | DEFS.SVC_FLAG_EXT_LOCAL_SCOPE],
  ];
  for (const [rev, port, backend, flags] of services) {
    maps.lb.upsertRevNat({ revNatIndex: rev, address: NODE_IP, port });
    maps.lb.upsertService(
      { address: NODE_IP, port, protocol: TCP },
      { revNatIndex: rev, backends: [backend], flags },
    );
  }

  console.log(
    `# nodeport bench: world -> node -> one backend pod; iperf3 ${SECONDS}s x1 stream, ${CONNECTIONS} new TCP ` +
      `connections (TCP_CRR, 32 B); median of ${ROUNDS} interleaved rounds`,
  );
  const world = path(worldNs);
  const runs = {
    plain: [] as Figures[],
    dp: [] as Figures[],
    np: [] as Figures[],
    snat: [] as Figures[],
    local: [] as Figures[],
  };
  const device = { device: 'eth0', netns: path(nodeNs), nodeIpv4: NODE_IP };
  // The state a row needs: no programs, the programs (no SNAT to local backends), or with SNAT.
  type State = 'none' | 'cluster' | 'snat';
  let state: State | undefined;
  let endpoint: EndpointDatapath | undefined;
  const enter = (want: State) => {
    if (state === want) return;
    if (want === 'none') detach();
    else {
      if (state === 'none' || state === undefined) endpoint = loader.load(pod);
      host.attach(want === 'snat' ? { ...device, snatLocalBackends: true } : device);
    }
    state = want;
  };
  type Key = keyof typeof runs;
  const rows: { key: Key; state: State; host: string; iperf: number; crr: number; unit: string }[] = [
    { key: 'plain', state: 'none', host: POD_IP, iperf: IPERF_PORT, crr: CRR_PORT, unit: 'target' },
    { key: 'np', state: 'cluster', host: NODE_IP, iperf: NODEPORT.iperf, crr: NODEPORT.crr, unit: 'target' },
    { key: 'dp', state: 'cluster', host: POD_IP, iperf: IPERF_PORT, crr: CRR_PORT, unit: 'dp' },
    {
      key: 'local',
      state: 'cluster',
      host: NODE_IP,
      iperf: NODEPORT.iperfLocal,
      crr: NODEPORT.crrLocal,
      unit: 'local',
    },
    { key: 'snat', state: 'snat', host: NODE_IP, iperf: NODEPORT.iperf, crr: NODEPORT.crr, unit: 'snat' },
  ];
  const seed = Number(process.env.BENCH_SEED ?? randomBytes(4).readUInt32LE());
  const random = mulberry32(seed);
  console.log(`  (order seed ${seed})`);
  const podNetns = path(podNs);
  const run = (row: (typeof rows)[number]) => {
    enter(row.state);
    return measure(world, podNetns, row.host, row.iperf, row.crr);
  };
  for (let round = 0; round < ROUNDS; round++) {
    const units = shuffle([...new Set(rows.map((r) => r.unit))], random);
    for (const u of units) {
      const [a, b] = shuffle(
        rows.filter((r) => r.unit === u),
        random,
      );
      if (b === undefined) {
        runs[a!.key].push(await run(a!));
        continue;
      }
      // the target's pair: A B B A
      const a1 = await run(a!);
      const b1 = await run(b);
      const b2 = await run(b);
      const a2 = await run(a!);
      runs[a!.key].push(mean2(a1, a2));
      runs[b.key].push(mean2(b1, b2));
    }
  }
  const fig = (fs: Figures[]): Figures => ({
    gbps: median(fs.map((f) => f.gbps)),
    cps: median(fs.map((f) => f.cps)),
    bytes: median(fs.map((f) => f.bytes)),
    rxPacketBytes: median(fs.map((f) => f.rxPacketBytes)),
    cpuMsPerGB: median(fs.map((f) => f.cpuMsPerGB)),
  });
  const per = (key: Key, f: 'gbps' | 'cps' | 'cpuMsPerGB') =>
    runs[key].map((r, i) => r[f] / runs.plain[i]![f]);
  const row = (name: string, key: Key) => {
    const f = fig(runs[key]);
    return (
      `  ${name.padEnd(44)} ${f.gbps.toFixed(2).padStart(6)} Gbit/s ${(f.cps / 1000).toFixed(2).padStart(5)}k conn/s ` +
      `${f.cpuMsPerGB.toFixed(0).padStart(4)} ms CPU/GB ${(f.rxPacketBytes / 1000).toFixed(1).padStart(4)} KB/packet` +
      (key === 'plain'
        ? '   (baseline)'
        : `   throughput ${ratioWithSpread(per(key, 'gbps'))}  rate ${ratioWithSpread(per(key, 'cps'))}  ` +
          `CPU/GB ${ratioWithSpread(per(key, 'cpuMsPerGB'))}`)
    );
  };
  console.log(
    `  rows: medians of ${ROUNDS} rounds (KB/packet: mean size of the packets the pod received); ratios: ` +
      'medians of per-round ratios to the plain path [their quartiles]',
  );
  console.log(row('plain routed path (no programs)', 'plain'));
  console.log(row('datapath, to the pod IP (no service)', 'dp'));
  console.log(row('NodePort (Cluster; local backend: no SNAT)', 'np'));
  console.log(row('NodePort, SNAT to the local backend', 'snat'));
  console.log(row('NodePort, externalTrafficPolicy Local', 'local'));
  const q = quartiles(per('np', 'gbps'));
  console.log(
    `  NodePort throughput vs plain (A B B A in each round): x${q.med.toFixed(3)} (target >= 0.95), ` +
      `quartiles ${q.q1.toFixed(3)}-${q.q3.toFixed(3)}, per round: ` +
      per('np', 'gbps')
        .map((r) => r.toFixed(3))
        .join(' '),
  );
  const c = quartiles(per('np', 'cpuMsPerGB'));
  console.log(
    `  NodePort CPU per GB vs plain (iperf3 client + server processes): x${c.med.toFixed(3)}, ` +
      `quartiles ${c.q1.toFixed(3)}-${c.q3.toFixed(3)}`,
  );

  // The programs' own run time per MB delivered (BPF stats held by an fd for this phase only):
  // the datapath's CPU cost, which the machine's load moves far less than a throughput.
  enter('cluster');
  const statsFd = bpf(BPF_ENABLE_STATS, new Uint8Array(8), 4).ret;
  if (statsFd >= 0) {
    undo.push(() => close(statsFd));
    const progs = [
      host.pinned().eth0?.ingress?.progId,
      endpoint?.ingress.progId,
      endpoint?.egress.progId,
    ].filter((id): id is number => id !== undefined);
    const cost = { np: [] as number[], dp: [] as number[] };
    for (let round = 0; round < STATS_ROUNDS; round++)
      for (const key of shuffle(['np', 'dp'] as const, random)) {
        const before = progs.map(progStats);
        const r = await iperf(
          world,
          key === 'np' ? NODE_IP : POD_IP,
          key === 'np' ? NODEPORT.iperf : IPERF_PORT,
        );
        const after = progs.map(progStats);
        const ns = after.reduce((sum, a, i) => sum + a.ns - before[i]!.ns, 0);
        cost[key].push(ns / (r.bytes / 1e6));
      }
    console.log(
      `datapath programs' run time per MB delivered (cil_from_netdev, the pod's cil_from_container and ` +
        `cil_to_container, BPF stats, ` +
        `median of ${STATS_ROUNDS}): NodePort ${median(cost.np).toFixed(0)} ns/MB, to the pod IP ` +
        `${median(cost.dp).toFixed(0)} ns/MB`,
    );
  } else console.log('BPF run-time stats unavailable: no per-MB program cost');

  // per packet: cil_from_netdev on an established NodePort packet and on one to no service
  const prog = Program.fromId(host.pinned().eth0!.ingress!.progId!);
  undo.push(() => prog.close());
  prog.testRun({ data: tcpFrame(WORLD_IP, NODE_IP, 45000, NODEPORT.iperf, 0x02) });
  const nsNodePort = perPacketNs(prog, tcpFrame(WORLD_IP, NODE_IP, 45000, NODEPORT.iperf, 0x10));
  const nsOther = perPacketNs(prog, tcpFrame(WORLD_IP, POD_IP, 45001, IPERF_PORT, 0x10));
  console.log(
    `cil_from_netdev per packet (PROG_TEST_RUN): ${nsNodePort} ns established NodePort (DNAT + SNAT, ` +
      `delivered to the pod), ${nsOther} ns to no service (to the stack)`,
  );
}

runBench(main);
