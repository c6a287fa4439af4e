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
 * first, so TIME_WAIT stays on its side), median of interleaved rounds; plus the per-packet cost of
 * cil_from_netdev under BPF_PROG_TEST_RUN for an established NodePort packet and for a packet to
 * no service. Target (issue 10): NodePort throughput >= 0.95x the plain routed path. Prints,
 * asserts nothing. SNATed connections share 4536 ports per backend address and port, free again
 * 10 s after a close: BENCH_NODEPORT_CONNECTIONS (default 2000) per round stays inside it.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupEndpoint, setupNodeRouter } from '../src/cni/endpoint-plumbing.js';
import {
  DatapathLoader,
  DatapathMaps,
  DEFS,
  type EndpointDatapathConfig,
  HostDeviceLoader,
  parseIp,
} from '../src/datapath/index.js';
import { Program } from '../src/ebpf/index.js';
import { collect, inNs, median, runBench, sh, startServer, undo } from './helpers/proc.js';

const IPERF_PORT = 5201;
const CRR_PORT = 5400;
const NODEPORT = { iperf: 30201, crr: 30400, iperfLocal: 30202, crrLocal: 30401 } as const;
const SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 4);
const CONNECTIONS = Number(process.env.BENCH_NODEPORT_CONNECTIONS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
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
}

let nextPort = 1024;

async function measure(world: string, host: string, iperfPort: number, crrPort: number): Promise<Figures> {
  const ip = JSON.parse(
    await collect(inNs(world, ['iperf3', '-c', host, '-p', String(iperfPort), '-t', String(SECONDS), '-J'])),
  ) as { end: { sum_received: { bits_per_second: number } } };
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
  return { gbps: ip.end.sum_received.bits_per_second / 1e9, cps: crr.cps };
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
  for (let round = 0; round < ROUNDS; round++) {
    detach();
    runs.plain.push(await measure(world, POD_IP, IPERF_PORT, CRR_PORT));
    loader.load(pod);
    host.attach(device);
    runs.dp.push(await measure(world, POD_IP, IPERF_PORT, CRR_PORT));
    runs.np.push(await measure(world, NODE_IP, NODEPORT.iperf, NODEPORT.crr));
    runs.local.push(await measure(world, NODE_IP, NODEPORT.iperfLocal, NODEPORT.crrLocal));
    host.attach({ ...device, snatLocalBackends: true });
    runs.snat.push(await measure(world, NODE_IP, NODEPORT.iperf, NODEPORT.crr));
  }
  const fig = (fs: Figures[]): Figures => ({
    gbps: median(fs.map((f) => f.gbps)),
    cps: median(fs.map((f) => f.cps)),
  });
  const plain = fig(runs.plain);
  const x = (v: number, b: number) => `x${(v / b).toFixed(2)}`;
  const row = (name: string, f: Figures) =>
    `  ${name.padEnd(44)} ${f.gbps.toFixed(2).padStart(7)} Gbit/s ${(f.cps / 1000).toFixed(2).padStart(7)}k conn/s` +
    (f === plain ? '   (baseline)' : `   throughput ${x(f.gbps, plain.gbps)}  rate ${x(f.cps, plain.cps)}`);
  console.log(row('plain routed path (no programs)', plain));
  console.log(row('datapath, to the pod IP (no service)', fig(runs.dp)));
  const np = fig(runs.np);
  console.log(row('NodePort (Cluster; local backend: no SNAT)', np));
  console.log(row('NodePort, SNAT to the local backend', fig(runs.snat)));
  console.log(row('NodePort, externalTrafficPolicy Local', fig(runs.local)));
  console.log(
    `  NodePort throughput vs plain: x${(np.gbps / plain.gbps).toFixed(3)} (target >= 0.95), per round: ` +
      runs.np.map((f, i) => (f.gbps / runs.plain[i]!.gbps).toFixed(3)).join(' '),
  );

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
