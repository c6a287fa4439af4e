/**
 * Same-node pod-to-pod through the datapath vs. a plain routed veth path, measured in one run on
 * one topology (a node namespace, two pods plumbed by the CNI's setupEndpoint):
 *   plain     no programs: pod → host veth → node routing → host veth → pod
 *   datapath  bpf_lxc on both host veths (redirect_peer between pods), a policy allowing the traffic
 *   dp+10k    the same with 10,000 more policy entries in the destination's trie
 * Figures: TCP throughput (iperf3, 1 stream), request/response latency (TCP ping-pong between two
 * node processes, 10k round trips), and the per-packet cost of cil_from_container under
 * BPF_PROG_TEST_RUN. Prints, asserts nothing.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupEndpoint, setupNodeRouter } from '../src/cni/endpoint-plumbing.js';
import { DatapathLoader, type EndpointDatapathConfig, parseIp, parseMac } from '../src/datapath/index.js';
import { Program } from '../src/ebpf/index.js';
import { type MapEntry, makeKey } from '../src/policy/mapstate.js';

const IPERF_PORT = 5201;
const PING_PORT = 5300;
const IPERF_SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 4);
const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 10000);

const cleanups: (() => void)[] = [];
function cleanup(): void {
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch {
      // keep going
    }
  }
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function inNs(netns: string, argv: string[]): ChildProcess {
  return spawn('nsenter', [`--net=${netns}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function waitFor(p: ChildProcess, text: string, timeoutMs = 5000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for "${text}": ${out}`)), timeoutMs);
    let out = '';
    const on = (d: Buffer) => {
      out += d.toString();
      if (out.includes(text)) {
        clearTimeout(t);
        resolve();
      }
    };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
    p.on('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
  });
}

async function collect(p: ChildProcess): Promise<string> {
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  if (code !== 0) throw new Error(`exit ${code}: ${err || out}`);
  return out;
}

const PING_SERVER = `
  import net from 'node:net';
  net.createServer((c) => { c.setNoDelay(true); c.on('data', (d) => c.write(d)); c.on('error', () => {}); })
    .listen(${PING_PORT}, '0.0.0.0', () => console.log('listening'));`;

const PING_CLIENT = `
  import net from 'node:net';
  const [host, n] = [process.argv[1], Number(process.argv[2])];
  const c = net.connect({ host, port: ${PING_PORT} }, () => c.setNoDelay(true));
  const msg = Buffer.alloc(32, 1);
  const rtts = [];
  let t0 = 0n; let i = 0; const warm = 500;
  c.on('connect', () => { t0 = process.hrtime.bigint(); c.write(msg); });
  c.on('data', () => {
    const t = process.hrtime.bigint();
    if (i >= warm) rtts.push(Number(t - t0) / 1000);
    if (++i >= n + warm) { c.end(); rtts.sort((a, b) => a - b);
      const q = (p) => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))];
      console.log(JSON.stringify({ p50: q(0.5), p99: q(0.99), n: rtts.length })); process.exit(0); }
    t0 = process.hrtime.bigint(); c.write(msg);
  });
  c.on('error', (e) => { console.error(e.message); process.exit(1); });`;

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

interface Figures {
  gbps: number;
  p50: number;
  p99: number;
}

function medianFigures(fs: Figures[]): Figures {
  return {
    gbps: median(fs.map((f) => f.gbps)),
    p50: median(fs.map((f) => f.p50)),
    p99: median(fs.map((f) => f.p99)),
  };
}

async function measure(podA: string, ipB: string): Promise<Figures> {
  const ip = JSON.parse(
    await collect(
      inNs(podA, ['iperf3', '-c', ipB, '-p', String(IPERF_PORT), '-t', String(IPERF_SECONDS), '-J']),
    ),
  ) as { end: { sum_received: { bits_per_second: number } } };
  const lat = JSON.parse(
    await collect(
      inNs(podA, [process.execPath, '--input-type=module', '-e', PING_CLIENT, ipB, String(ROUND_TRIPS)]),
    ),
  ) as { p50: number; p99: number };
  return { gbps: ip.end.sum_received.bits_per_second / 1e9, p50: lat.p50, p99: lat.p99 };
}

/** A TCP SYN+ACK-less data packet from pod A to pod B (established after the first run). */
function testFrame(a: EndpointDatapathConfig, b: EndpointDatapathConfig): Uint8Array {
  const f = Buffer.alloc(14 + 20 + 20);
  f.set(parseMac(a.nodeMac), 0);
  f.set(parseMac(a.mac), 6);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(40, 16);
  f[22] = 64;
  f[23] = 6;
  f.set(parseIp(a.ipv4!).bytes, 26);
  f.set(parseIp(b.ipv4!).bytes, 30);
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(IPERF_PORT, 36);
  f[46] = 5 << 4;
  f[47] = 0x10;
  return f;
}

function perPacketNs(progId: number, frame: Uint8Array): number {
  const p = Program.fromId(progId);
  try {
    p.testRun({ data: frame });
    return p.testRun({ data: frame, repeat: 200000 }).durationNs;
  } finally {
    p.close();
  }
}

function policyEntries(aIdentity: number, extra: number): MapEntry[] {
  const e = (id: number, egress: 0 | 1, proto: number, port: number, len: number): MapEntry => ({
    key: makeKey(id, egress, proto, port, len),
    entry: { deny: false, proxyPort: 0, ruleCookie: 1 },
  });
  const out = [e(aIdentity, 0, 6, IPERF_PORT, 64), e(aIdentity, 0, 6, PING_PORT, 64), e(0, 1, 0, 0, 40)];
  for (let i = 0; i < extra; i++)
    out.push(e(100000 + Math.floor(i / 50), 0, i % 2 ? 17 : 6, 1000 + (i % 50), 64));
  return out;
}

async function main(): Promise<void> {
  const p = `dpB${randomBytes(3).toString('hex')}`;
  const nodeNs = `/run/netns/${p}n`;
  const pod = (x: string) => `/run/netns/${p}${x}`;
  const oct = 100 + (randomBytes(1)[0]! % 100);
  const router = `10.${oct}.0.1`;

  const bpffs = mkdtempSync(join(tmpdir(), 'cts-bench-bpffs-'));
  sh('mount', ['-t', 'bpf', 'bpf', bpffs]);
  cleanups.push(() => {
    spawnSync('umount', ['-l', bpffs]);
    rmSync(bpffs, { recursive: true, force: true });
  });
  for (const ns of ['n', 'a', 'b']) {
    sh('ip', ['netns', 'add', `${p}${ns}`]);
    cleanups.push(() => void spawnSync('ip', ['netns', 'del', `${p}${ns}`]));
  }
  sh('ip', ['-n', `${p}n`, 'link', 'set', 'lo', 'up']);
  sh('ip', ['netns', 'exec', `${p}n`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  await setupNodeRouter({ nodeNetns: nodeNs, ipv4Router: router });
  const eps: EndpointDatapathConfig[] = [];
  for (const [i, x] of ['a', 'b'].entries()) {
    const ip = `10.${oct}.0.${10 + i}`;
    const r = await setupEndpoint({
      nodeNetns: nodeNs,
      podNetns: pod(x),
      ifName: 'eth0',
      hostIfName: `${p}${x.toUpperCase()}`,
      ipv4: { ip, router },
    });
    eps.push({
      id: 21 + i,
      identity: 6001 + i,
      ipv4: ip,
      mac: r.podMac,
      nodeMac: r.hostMac,
      interface: r.hostIfName,
      netns: nodeNs,
      routerIpv4: router,
    });
  }
  const [a, b] = eps as [EndpointDatapathConfig, EndpointDatapathConfig];

  const iperf = inNs(pod('b'), ['iperf3', '-s', '--forceflush', '-p', String(IPERF_PORT)]);
  cleanups.push(() => void iperf.kill('SIGKILL'));
  await waitFor(iperf, 'Server listening');
  const ping = inNs(pod('b'), [process.execPath, '--input-type=module', '-e', PING_SERVER]);
  cleanups.push(() => void ping.kill('SIGKILL'));
  await waitFor(ping, 'listening');

  console.log(
    `# datapath bench: same-node pod-to-pod, iperf3 ${IPERF_SECONDS}s x1 stream, ${ROUND_TRIPS} TCP round trips (32 B); ` +
      `median of ${ROUNDS} interleaved rounds`,
  );
  const loader = DatapathLoader.open({ bpffs });
  cleanups.push(() => {
    loader.remove(a.id);
    loader.remove(b.id);
    loader.close();
  });
  for (const ep of eps) loader.writeEndpoint(ep);
  const small = policyEntries(a.identity, 0);
  const large = policyEntries(a.identity, 10000);
  const enforcement = { ingressEnforced: true, egressEnforced: false };
  const runs: Record<'plain' | 'dp' | 'dp10k', Figures[]> = { plain: [], dp: [], dp10k: [] };
  const perPacket: Record<'dp' | 'dp10k', number[]> = { dp: [], dp10k: [] };
  const frame = testFrame(a, b);
  for (let round = 0; round < ROUNDS; round++) {
    for (const ep of eps) loader.remove(ep.id); // plain routed path: no programs
    runs.plain.push(await measure(pod('a'), b.ipv4!));
    loader.maps.policy.replace(b.id, small, enforcement);
    const loaded = eps.map((ep) => loader.load(ep));
    runs.dp.push(await measure(pod('a'), b.ipv4!));
    perPacket.dp.push(perPacketNs(loaded[0]!.ingress.progId, frame));
    loader.maps.policy.replace(b.id, large, enforcement);
    runs.dp10k.push(await measure(pod('a'), b.ipv4!));
    perPacket.dp10k.push(perPacketNs(loaded[0]!.ingress.progId, frame));
  }
  const plain = medianFigures(runs.plain);
  const dp = medianFigures(runs.dp);
  const dp10k = medianFigures(runs.dp10k);
  const n = large.length;
  const nsDp = median(perPacket.dp);
  const nsDp10k = median(perPacket.dp10k);

  const row = (name: string, f: Figures) =>
    `${name.padEnd(26)} ${f.gbps.toFixed(2).padStart(7)} Gbit/s  p50 ${f.p50.toFixed(1).padStart(6)} µs  p99 ${f.p99.toFixed(1).padStart(6)} µs` +
    (f === plain
      ? '   (baseline)'
      : `   throughput x${(f.gbps / plain.gbps).toFixed(2)}  p50 x${(f.p50 / plain.p50).toFixed(2)}  p99 x${(f.p99 / plain.p99).toFixed(2)}`);
  console.log(row('plain routed veth', plain));
  console.log(row('datapath + policy', dp));
  console.log(row(`datapath + ${n} entries`, dp10k));
  console.log(
    `cil_from_container per packet (PROG_TEST_RUN, established pod-to-pod TCP): ${nsDp} ns; with ${n} policy entries: ${nsDp10k} ns`,
  );
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(cleanup);
