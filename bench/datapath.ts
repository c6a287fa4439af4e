/**
 * Same-node pod-to-pod through the datapath vs. a plain routed veth path, measured in one run on
 * one topology (a node namespace, two pods plumbed by the CNI's setupEndpoint):
 *   plain     no programs: pod → host veth → node routing → host veth → pod
 *   scratch   a second plain path built from nothing with `ip` alone, sharing no code with the
 *             CNI: its own node namespace and two pods, veths, /32 routes, no programs at all
 *   dp 10     bpf_lxc on both host veths (redirect_peer between pods), 10 entries in the
 *             destination's policy trie, among them the ones allowing the traffic
 *   dp 10k    the same with 10,000 entries in that trie
 *   BIG TCP   plain and dp 10 again, throughput only, with both pods' eth0 and both host veths at
 *             the 192 KiB IPv4 GSO/GRO limit of IPv4 BIG TCP (what the lab's pods get with native
 *             routing, src/datapath/big-tcp.ts): against the plain path with the kernel's limits,
 *             and against the plain path with the same limits
 * Figures: TCP throughput (iperf3, 1 stream; with the machine's default congestion control, and
 * with cubic: see CONGESTION in helpers/proc.ts) and request/response latency (TCP ping-pong of 32 B
 * in C, bench/helpers/crr.c, 10k round trips after 500: a runtime between the packets would add
 * tens of µs to each round trip and hide the path's few) on ONE long connection: after its first
 * packet every packet is an established conntrack hit and policy is not consulted, so these rows
 * cannot show the cost of a large policy. The connection rate (TCP_CRR-style: a new TCP
 * connection per 32 B request, each from a source port never used before in the run, so each is a
 * new conntrack entry and a policy lookup) does. Plus the per-packet cost of the endpoint
 * programs on an established connection under BPF_PROG_TEST_RUN: cil_from_container both ways
 * between the pods (the original direction and its replies, delivered straight into the other pod)
 * and cil_to_container (a connection whose packets come through the node's stack).
 * Prints, asserts nothing.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupEndpoint, setupNodeRouter } from '../src/cni/endpoint-plumbing.js';
import { BIG_TCP_MAX_SIZE, LEGACY_GSO_MAX_SIZE, setIpv4GsoLimit } from '../src/datapath/big-tcp.js';
import {
  DatapathLoader,
  type EndpointDatapath,
  type EndpointDatapathConfig,
  parseIp,
  parseMac,
} from '../src/datapath/index.js';
import { Program } from '../src/ebpf/index.js';
import { type MapEntry, makeKey } from '../src/policy/mapstate.js';
import {
  buildCrr,
  CONGESTION,
  collect,
  defaultCongestion,
  inNs,
  iperfGbps,
  median,
  onOneCpu,
  runBench,
  settle,
  sh,
  undo,
  waitFor,
} from './helpers/proc.js';

const IPERF_PORT = 5201;
const PING_PORT = 5300;
const CRR_PORT = 5400;
const IPERF_SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 4);
const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 10000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 3000); // x 3 paths x 5 rounds: within the source ports
const CRR_WARMUP = 200;

/** bench/helpers/crr.c, built at the start (its echo server and ping-pong client). */
let crrBin = '';

// TCP_CRR: the server answers and closes, so TIME_WAIT stays on its side and the client's
// explicitly chosen source ports are free again at once.
const CRR_SERVER = `
  import net from 'node:net';
  net.createServer((c) => { c.setNoDelay(true); c.on('data', (d) => c.end(d)); c.on('error', () => {}); })
    .listen(${CRR_PORT}, '0.0.0.0', () => console.log('listening'));`;

const CRR_CLIENT = `
  import net from 'node:net';
  const [host, n, base] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
  const warm = ${CRR_WARMUP};
  const msg = Buffer.alloc(32, 1);
  const lat = [];
  let i = 0; let t0 = 0n;
  const one = () => {
    if (i === warm) t0 = process.hrtime.bigint();
    if (i >= n + warm) {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      lat.sort((a, b) => a - b);
      const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
      console.log(JSON.stringify({ cps: n / s, p50: q(0.5), p99: q(0.99) })); process.exit(0);
    }
    const start = process.hrtime.bigint();
    const counted = i >= warm;
    let got = 0;
    const c = net.connect({ host, port: ${CRR_PORT}, localPort: base + i++, noDelay: true }, () => c.write(msg));
    c.on('data', (d) => (got += d.length));
    c.on('close', () => {
      if (got !== msg.length) { console.error('short reply on connection ' + i); process.exit(1); }
      if (counted) lat.push(Number(process.hrtime.bigint() - start) / 1000);
      one();
    });
    c.on('error', (e) => { console.error(e.message); process.exit(1); });
  };
  one();`;

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

interface Figures {
  gbps: number;
  /** with CONGESTION */
  cubic: number;
  p50: number;
  p99: number;
  /** New connections per second (TCP_CRR) and their latency, µs. */
  cps: number;
  crrP50: number;
  crrP99: number;
}

function medianFigures(fs: Figures[]): Figures {
  const m = (k: keyof Figures) => median(fs.map((f) => f[k]));
  return {
    gbps: m('gbps'),
    cubic: m('cubic'),
    p50: m('p50'),
    p99: m('p99'),
    cps: m('cps'),
    crrP50: m('crrP50'),
    crrP99: m('crrP99'),
  };
}

/** Source ports handed out so far, per client namespace: every connection of the run gets a port
 * never used before in its namespace. */
const nextCrrPort = new Map<string, number>();
const CRR_PORT_END = 60999;

async function measure(podA: string, ipB: string): Promise<Figures> {
  await settle();
  const gbps = await iperfGbps(podA, ipB, IPERF_PORT, IPERF_SECONDS);
  const cubic = await iperfGbps(podA, ipB, IPERF_PORT, IPERF_SECONDS, CONGESTION);
  const lat = JSON.parse(
    await collect(inNs(podA, [crrBin, 'pingpong', ipB, String(PING_PORT), String(ROUND_TRIPS), '500'])),
  ) as { p50: number; p99: number };
  const base = nextCrrPort.get(podA) ?? 10000;
  nextCrrPort.set(podA, base + CONNECTIONS + CRR_WARMUP);
  if (base + CONNECTIONS + CRR_WARMUP > CRR_PORT_END + 1)
    throw new Error(`BENCH_CONNECTIONS x rounds needs more than ${CRR_PORT_END - 10000} source ports`);
  const crr = JSON.parse(
    await collect(
      inNs(podA, [
        process.execPath,
        '--input-type=module',
        '-e',
        CRR_CLIENT,
        ipB,
        String(CONNECTIONS),
        String(base),
      ]),
    ),
  ) as { cps: number; p50: number; p99: number };
  return {
    gbps,
    cubic,
    p50: lat.p50,
    p99: lat.p99,
    cps: crr.cps,
    crrP50: crr.p50,
    crrP99: crr.p99,
  };
}

/**
 * A TCP ACK (no SYN) from `src` to `dst` as it leaves `src`'s pod (MACs of `src`'s veth pair),
 * TTL 255. Its first run makes the connection's entries, every later run is established.
 */
function testFrame(
  src: EndpointDatapathConfig,
  dst: EndpointDatapathConfig,
  sport: number,
  dport: number,
): Buffer {
  const f = Buffer.alloc(14 + 20 + 20);
  f.set(parseMac(src.nodeMac), 0);
  f.set(parseMac(src.mac), 6);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(40, 16);
  f[22] = 255;
  f[23] = 6;
  f.set(parseIp(src.ipv4!).bytes, 26);
  f.set(parseIp(dst.ipv4!).bytes, 30);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(dport, 36);
  f[46] = 5 << 4;
  f[47] = 0x10;
  return f;
}

/** The same frame as the node's stack hands it to `dst`'s veth (MACs of `dst`'s veth pair). */
function viaStack(frame: Buffer, dst: EndpointDatapathConfig): Buffer {
  const f = Buffer.from(frame);
  f.set(parseMac(dst.mac), 0);
  f.set(parseMac(dst.nodeMac), 6);
  return f;
}

/*
 * PROG_TEST_RUN runs a program `repeat` times on ONE skb, so a frame delivered into a pod loses one
 * TTL per run: batches of 250 runs of a TTL 255 frame, every run forwarded. The figure is the
 * median of the batches' averages; `best` the lowest one (what a quiet machine shows).
 */
const PP_BATCH = 250;
const PP_BATCHES = Number(process.env.BENCH_PP_BATCHES ?? 400);
const TC_ACT_SHOT = 2;

/** Per-packet ns: the median batch average and the best batch's. */
interface PpFigure {
  ns: number;
  best: number;
}

function perPacketNs(progId: number, frame: Uint8Array): PpFigure {
  const p = Program.fromId(progId);
  try {
    if (p.testRun({ data: frame }).retval === TC_ACT_SHOT)
      throw new Error(`program ${progId} drops the test frame`);
    const avgs: number[] = [];
    for (let i = 0; i < PP_BATCHES; i++) {
      const r = p.testRun({ data: frame, repeat: PP_BATCH });
      if (r.retval === TC_ACT_SHOT) throw new Error(`program ${progId} dropped the test frame in batch ${i}`);
      avgs.push(r.durationNs);
    }
    return { ns: median(avgs), best: Math.min(...avgs) };
  } finally {
    p.close();
  }
}

/** `total` entries: the four the traffic needs, then entries for identities that never send. */
function policyEntries(aIdentity: number, total: number): MapEntry[] {
  const e = (id: number, egress: 0 | 1, proto: number, port: number, len: number): MapEntry => ({
    key: makeKey(id, egress, proto, port, len),
    entry: { deny: false, proxyPort: 0, ruleCookie: 1 },
  });
  const out = [
    e(aIdentity, 0, 6, IPERF_PORT, 64),
    e(aIdentity, 0, 6, PING_PORT, 64),
    e(aIdentity, 0, 6, CRR_PORT, 64),
    e(0, 1, 0, 0, 40),
  ];
  for (let i = 0; out.length < total; i++)
    out.push(e(100000 + Math.floor(i / 50), 0, i % 2 ? 17 : 6, 1000 + (i % 50), 64));
  return out;
}

/**
 * The from-scratch plain path: node namespace `${p}s`, pods `${p}c` and `${p}d` at
 * 10.<oct>.1.10/.11, each joined to the node by a veth whose node end holds the gateway
 * 10.<oct>.1.1/32; /32 routes both ways, forwarding on, nothing else. Returns pod c's netns
 * path and pod d's address.
 */
function scratchPath(p: string, oct: number): { client: string; serverNs: string; serverIp: string } {
  const gw = `10.${oct}.1.1`;
  for (const ns of ['s', 'c', 'd']) {
    sh('ip', ['netns', 'add', `${p}${ns}`]);
    undo.push(() => void spawnSync('ip', ['netns', 'del', `${p}${ns}`]));
    sh('ip', ['-n', `${p}${ns}`, 'link', 'set', 'lo', 'up']);
  }
  sh('ip', ['netns', 'exec', `${p}s`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  for (const [i, x] of ['c', 'd'].entries()) {
    const ip = `10.${oct}.1.${10 + i}`;
    const host = `${p}${x}h`;
    sh('ip', [
      '-n',
      `${p}s`,
      'link',
      'add',
      host,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      `${p}${x}`,
    ]);
    sh('ip', ['-n', `${p}s`, 'addr', 'add', `${gw}/32`, 'dev', host]);
    sh('ip', ['-n', `${p}s`, 'link', 'set', host, 'up']);
    sh('ip', ['-n', `${p}s`, 'route', 'add', `${ip}/32`, 'dev', host]);
    sh('ip', ['-n', `${p}${x}`, 'addr', 'add', `${ip}/32`, 'dev', 'eth0']);
    sh('ip', ['-n', `${p}${x}`, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', `${p}${x}`, 'route', 'add', `${gw}/32`, 'dev', 'eth0']);
    sh('ip', ['-n', `${p}${x}`, 'route', 'add', 'default', 'via', gw, 'dev', 'eth0']);
  }
  return { client: `/run/netns/${p}c`, serverNs: `/run/netns/${p}d`, serverIp: `10.${oct}.1.11` };
}

/** The three servers the figures need, in `netns`. */
async function startServers(netns: string): Promise<void> {
  const iperf = inNs(netns, ['iperf3', '-s', '--forceflush', '-p', String(IPERF_PORT)]);
  undo.push(() => void iperf.kill('SIGKILL'));
  await waitFor(iperf, 'Server listening');
  const ping = inNs(netns, [crrBin, 'echo', String(PING_PORT)]);
  undo.push(() => void ping.kill('SIGKILL'));
  await waitFor(ping, 'listening');
  const crrServer = inNs(netns, [process.execPath, '--input-type=module', '-e', CRR_SERVER]);
  undo.push(() => void crrServer.kill('SIGKILL'));
  await waitFor(crrServer, 'listening');
}

async function main(): Promise<void> {
  const p = `dpB${randomBytes(3).toString('hex')}`;
  const nodeNs = `/run/netns/${p}n`;
  const pod = (x: string) => `/run/netns/${p}${x}`;
  const oct = 100 + (randomBytes(1)[0]! % 100);
  const router = `10.${oct}.0.1`;

  const bin = mkdtempSync(join(tmpdir(), 'cts-bench-crr-'));
  undo.push(() => rmSync(bin, { recursive: true, force: true }));
  crrBin = buildCrr(bin);
  const bpffs = mkdtempSync(join(tmpdir(), 'cts-bench-bpffs-'));
  sh('mount', ['-t', 'bpf', 'bpf', bpffs]);
  undo.push(() => {
    spawnSync('umount', ['-l', bpffs]);
    rmSync(bpffs, { recursive: true, force: true });
  });
  for (const ns of ['n', 'a', 'b']) {
    sh('ip', ['netns', 'add', `${p}${ns}`]);
    undo.push(() => void spawnSync('ip', ['netns', 'del', `${p}${ns}`]));
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
  const scratch = scratchPath(p, oct);
  // The clients' own ephemeral ports (iperf3, ping) stay clear of the source ports TCP_CRR picks.
  for (const client of [`${p}a`, `${p}c`])
    sh('ip', [
      'netns',
      'exec',
      client,
      'sysctl',
      '-qw',
      `net.ipv4.ip_local_port_range=${CRR_PORT_END + 1} 65535`,
    ]);
  await startServers(pod('b'));
  await startServers(scratch.serverNs);

  console.log(
    `# datapath bench: same-node pod-to-pod, iperf3 ${IPERF_SECONDS}s x1 stream, ${ROUND_TRIPS} TCP round trips (32 B, ping-pong in C), ` +
      `${CONNECTIONS} new TCP connections (TCP_CRR, 32 B each); median of ${ROUNDS} interleaved rounds`,
  );
  const loader = DatapathLoader.open({ bpffs });
  undo.push(() => {
    loader.remove(a.id);
    loader.remove(b.id);
    loader.close();
  });
  for (const ep of eps) loader.writeEndpoint(ep);
  const small = policyEntries(a.identity, 10);
  const large = policyEntries(a.identity, 10000);
  const enforcement = { ingressEnforced: true, egressEnforced: false };
  const runs: Record<'scratch' | 'plain' | 'dp' | 'dp10k', Figures[]> = {
    scratch: [],
    plain: [],
    dp: [],
    dp10k: [],
  };
  // Per-packet cases: from_container A -> B, from_container B -> A (its replies), to_container of
  // B for a connection from A that comes through the node's stack.
  const ppCases = ['from', 'reply', 'to'] as const;
  type PpCase = (typeof ppCases)[number];
  const perPacket: Record<'dp' | 'dp10k', Record<PpCase, PpFigure[]>> = {
    dp: { from: [], reply: [], to: [] },
    dp10k: { from: [], reply: [], to: [] },
  };
  const frames: Record<PpCase, Uint8Array> = {
    from: testFrame(a, b, 40000, IPERF_PORT),
    reply: testFrame(b, a, IPERF_PORT, 40000),
    to: viaStack(testFrame(a, b, 40001, IPERF_PORT), b),
  };
  const ppCpus = new Set<number>();
  const measurePp = (loaded: EndpointDatapath[], into: Record<PpCase, PpFigure[]>) => {
    const { cpu } = onOneCpu(() => {
      into.from.push(perPacketNs(loaded[0]!.ingress.progId, frames.from));
      into.reply.push(perPacketNs(loaded[1]!.ingress.progId, frames.reply));
      into.to.push(perPacketNs(loaded[1]!.egress.progId, frames.to));
    });
    ppCpus.add(cpu);
  };
  // Conntrack entries the CRR connections made at pod A's egress: one per connection shows that
  // each was new to conntrack (so policy was consulted for each).
  const crrEntries: number[] = [];
  const measureDp = async (): Promise<Figures> => {
    loader.maps.conntrack.flush();
    const f = await measure(pod('a'), b.ipv4!);
    crrEntries.push(
      loader.maps.conntrack.list({ family: 4 }).filter((e) => e.dport === CRR_PORT && e.side === 'egress')
        .length,
    );
    return f;
  };
  // IPv4 BIG TCP on every device of the same-node path: both pods' eth0 and both host veths
  const gsoLimit = (size: number) =>
    setIpv4GsoLimit(
      [
        [pod('a'), 'eth0'],
        [pod('b'), 'eth0'],
        [nodeNs, String(a.interface)],
        [nodeNs, String(b.interface)],
      ],
      size,
    );
  const big: Record<'plain' | 'dp', number[]> = { plain: [], dp: [] };
  for (let round = 0; round < ROUNDS; round++) {
    runs.scratch.push(await measure(scratch.client, scratch.serverIp));
    for (const ep of eps) loader.remove(ep.id); // plain routed path: no programs
    runs.plain.push(await measure(pod('a'), b.ipv4!));
    loader.maps.policy.replace(b.id, small, enforcement);
    const loaded = eps.map((ep) => loader.load(ep));
    runs.dp.push(await measureDp());
    measurePp(loaded, perPacket.dp);
    loader.maps.policy.replace(b.id, large, enforcement);
    runs.dp10k.push(await measureDp());
    measurePp(loaded, perPacket.dp10k);
    loader.maps.policy.replace(b.id, small, enforcement);
    gsoLimit(BIG_TCP_MAX_SIZE);
    for (const which of round % 2 ? (['plain', 'dp'] as const) : (['dp', 'plain'] as const)) {
      if (which === 'plain') for (const ep of eps) loader.remove(ep.id);
      else for (const ep of eps) loader.load(ep);
      await settle();
      big[which].push(await iperfGbps(pod('a'), b.ipv4!, IPERF_PORT, IPERF_SECONDS));
    }
    gsoLimit(LEGACY_GSO_MAX_SIZE);
  }
  const scratchF = medianFigures(runs.scratch);
  const plain = medianFigures(runs.plain);
  const dp = medianFigures(runs.dp);
  const dp10k = medianFigures(runs.dp10k);
  const x = (v: number, base: number) => `x${(v / base).toFixed(2)}`;
  const names = {
    scratch: 'plain, built from scratch',
    plain: 'plain routed veth',
    dp: `datapath, ${small.length} policy entries`,
    dp10k: `datapath, ${large.length.toLocaleString('en-US')} entries`,
  };

  console.log(
    `one long connection each (established: policy is not consulted after its first packet); ratios vs plain routed veth; throughput with ${defaultCongestion()} (the machine's default) and ${CONGESTION}`,
  );
  const row = (name: string, f: Figures) =>
    `  ${name.padEnd(32)} ${f.gbps.toFixed(2).padStart(7)} Gbit/s (${CONGESTION} ${f.cubic.toFixed(2).padStart(6)})  p50 ${f.p50.toFixed(1).padStart(6)} µs  p99 ${f.p99.toFixed(1).padStart(6)} µs` +
    (f === plain
      ? '   (baseline)'
      : `   throughput ${x(f.gbps, plain.gbps)} (${CONGESTION} ${x(f.cubic, plain.cubic)})  p50 ${x(f.p50, plain.p50)}  p99 ${x(f.p99, plain.p99)}`);
  console.log(row(names.scratch, scratchF));
  console.log(row(names.plain, plain));
  console.log(row(names.dp, dp));
  console.log(row(names.dp10k, dp10k));
  // Each round measures every path back to back: the median of the rounds' own ratios cancels the
  // machine's drift between rounds.
  const roundRatio = (base: Figures[], k: keyof Figures) =>
    `x${median(runs.dp.map((f, i) => f[k] / base[i]![k])).toFixed(2)}`;
  for (const [label, base] of [
    ['plain routed veth', runs.plain],
    ['plain built from scratch', runs.scratch],
  ] as const)
    console.log(
      `  datapath (${small.length} entries) vs ${label.padEnd(25)} median of the ${ROUNDS} rounds' ratios: ` +
        `throughput ${roundRatio(base, 'gbps')}  p50 ${roundRatio(base, 'p50')}  conn/s ${roundRatio(base, 'cps')}  ` +
        `throughput with ${CONGESTION} ${roundRatio(base, 'cubic')}`,
    );

  const bigRatio = (base: number[]) => `x${median(big.dp.map((v, i) => v / base[i]!)).toFixed(2)}`;
  console.log(
    `IPv4 BIG TCP (192 KiB GSO/GRO on both pods' eth0 and host veths), throughput with ${defaultCongestion()}: ` +
      `plain ${median(big.plain).toFixed(2)} Gbit/s, datapath (${small.length} entries) ${median(big.dp).toFixed(2)} Gbit/s; ` +
      `median of the rounds' ratios: datapath with BIG TCP vs plain routed veth with the kernel's limits ` +
      `${bigRatio(runs.plain.map((f) => f.gbps))}, vs plain with the same limits ${bigRatio(big.plain)}`,
  );
  console.log(
    'connection rate (TCP_CRR: connect, 32 B request, reply, close; each a new conntrack entry and policy lookup)',
  );
  const crrRow = (name: string, f: Figures, extra = '') =>
    `  ${name.padEnd(32)} ${(f.cps / 1000).toFixed(2).padStart(7)}k conn/s  p50 ${f.crrP50.toFixed(0).padStart(5)} µs  p99 ${f.crrP99.toFixed(0).padStart(5)} µs` +
    (f === plain
      ? '   (baseline)'
      : `   rate ${x(f.cps, plain.cps)}  p50 ${x(f.crrP50, plain.crrP50)}${extra}`);
  console.log(crrRow(names.scratch, scratchF));
  console.log(crrRow(names.plain, plain));
  console.log(crrRow(names.dp, dp));
  console.log(
    crrRow(
      names.dp10k,
      dp10k,
      `;  vs ${small.length} entries: rate ${x(dp10k.cps, dp.cps)}  p50 ${x(dp10k.crrP50, dp.crrP50)}`,
    ),
  );
  console.log(
    `  conntrack entries made per datapath CRR run: ${[...new Set(crrEntries)].join(', ')} ` +
      `for ${CONNECTIONS + CRR_WARMUP} connections (${CRR_WARMUP} of them warm-up)`,
  );
  console.log(
    `per packet on an established TCP connection (PROG_TEST_RUN, ${PP_BATCHES} batches of ${PP_BATCH}; ` +
      `median of the rounds of the batch median, best batch in brackets; the measuring thread pinned to the CPU it was on: ${[...ppCpus].join(', ')})`,
  );
  const ppNames: Record<PpCase, string> = {
    from: 'cil_from_container, pod A -> pod B',
    reply: 'cil_from_container, its replies',
    to: 'cil_to_container, via the stack',
  };
  const pp = (xs: PpFigure[]) =>
    `${median(xs.map((x) => x.ns))
      .toFixed(0)
      .padStart(4)} ns (${Math.min(...xs.map((x) => x.best))})`;
  for (const c of ppCases)
    console.log(
      `  ${ppNames[c].padEnd(36)} ${pp(perPacket.dp[c])} with ${small.length} policy entries, ${pp(perPacket.dp10k[c])} with ${large.length}`,
    );
}

runBench(main);
