/**
 * Services (kube-proxy replacement), measured on the agent's own code with real maps, programs,
 * sockets and namespaces. One agent hive per service count (1, 1,000, 10,000 ClusterIP services ×
 * 10 backends): the control-plane cells plus the datapath, datapath-targets and socket-lb cells,
 * each with a private bpffs and its own cgroup, so the three sizes are measured side by side.
 *
 * Control plane: Service and EndpointSlice objects handed to the agent (its resource stores) →
 * the services cell's apply() (parse, LB rows, six reconcilers in order, batched map writes) → the
 * pinned LB maps (total time for 10,000 × 10); then one endpoint change (a slice update) → maps,
 * through the services cell (with the LB rows it changed: the changed service's only) and through
 * the agent's resource path as a REST PUT runs it (check, store, apply, flush, start the state
 * save); then an agent restart with those services in its state.
 *
 * Datapath (TCP_CRR-style: connect, 32 B request, 32 B reply, close; a new 4-tuple each): a client
 * in a namespace C, a server in a namespace S holding the 10 backend addresses, both the C program
 * bench/helpers/crr.c (compiled at start) so that the kernel's path dominates the figures.
 *   pod IP, no socket-LB     the client outside every socket-LB cgroup, straight to the backends
 *   pod IP, socket-LB, N     the client in size N's cgroup (the hooks run and find no service)
 *   ClusterIP, socket-LB, N  the same client to the measured service's VIP: the connect hook picks
 *                            a backend (C has no route to the VIPs: only translation reaches S)
 *   ClusterIP, iptables, N   a client in namespace K_N whose nat table holds a kube-proxy-shaped
 *                            ruleset of N services × 10 endpoints (bench/helpers/kube-proxy-rules)
 *   pod IP, iptables, max    the backends straight from K_max: what every other connection pays
 * The measured service sits in the middle of KUBE-SERVICES (kube-proxy's order is arbitrary).
 * Rounds are interleaved: each round runs the rows in a new random order (seeded), every row of
 * the client namespace (socket-LB and the plain baseline) back to back and the kube-proxy rows
 * back to back; ratios are medians of per-round ratios. The two rows a target compares (pod IP
 * and ClusterIP through the same size's hooks) run in one client process, interleaved connection
 * by connection (`crr pair`, after a warm-up of both): the load of a shared machine moves within
 * seconds, so two runs one after the other still see different machines. A side's rate leaves
 * its slowest 5% of connections out (preempted by other work: milliseconds that say nothing about
 * the path); p99 shows them. On a loaded machine the figures still move with the load:
 * the client's CPU per connection and the socket-LB hooks' own run time per connection (connect
 * and close; kernel BPF stats, a phase of its own at the end, pod IP and ClusterIP rows
 * interleaved) are the figures the load moves least, though it moves them too (cache misses).
 * Knobs: BENCH_SERVICE_SIZES (1,1000,10000), BENCH_ROUNDS (15), BENCH_CONNECTIONS (5000 per
 * measurement), BENCH_ENDPOINT_CHANGES (20), BENCH_HOOK_ROUNDS (5), BENCH_SEED (the rows' order),
 * BENCH_CONTROL_PLANE_ONLY=1 (stop after the control-plane figures).
 * All traffic stays inside the namespaces this bench creates; iptables only runs inside them.
 * Everything is removed at the end: hives, cgroups, bpffs mounts, namespaces, processes.
 * Prints, asserts only that each row reached the backends it should.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { pino } from 'pino';
import { CONTROL_PLANE_CELLS } from '../src/agent/agent.js';
import { datapathCell, socketLbCell, targetsCell } from '../src/agent/cells/datapath.js';
import { type ObjectRef, ServicesT } from '../src/agent/cells/services.js';
import { type AgentCellExtras, ConfigT, DatapathT, LogT, ResourcesT } from '../src/agent/cells/tokens.js';
import { type AgentConfig, defaultConfig } from '../src/agent/config.js';
import { SocketLbLoader } from '../src/datapath/index.js';
import { bpf, close } from '../src/ebpf/sys/libc.js';
import { type Cell, Hive } from '../src/hive/hive.js';
import { namespacedKey } from '../src/k8s/resources.js';
import type { Table } from '../src/statedb/table.js';
import type { Cleanup } from '../test/helpers/sys.js';
import { throwawayCgroup } from '../test/integration/datapath/cgroup-client.js';
import { type KubeProxyService, kubeProxyRuleset } from './helpers/kube-proxy-rules.js';
import { mulberry32, ratioWithSpread, shuffle } from './helpers/order.js';
import { buildCrr, onStdoutClosed } from './helpers/proc.js';

const SIZES = (process.env.BENCH_SERVICE_SIZES ?? '1,1000,10000').split(',').map(Number);
const MAX = Math.max(...SIZES);
const BACKENDS = 10;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 5000);
const WARMUP = 200;
const CHANGES = Number(process.env.BENCH_ENDPOINT_CHANGES ?? 20);
const HOOK_ROUNDS = Number(process.env.BENCH_HOOK_ROUNDS ?? 5);
const SERVICE_PORT = 80;
const TARGET_PORT = 8080;
/** Source ports the clients bind explicitly (each connection a 4-tuple never used before). */
const PORT_LO = 10000;
const PORT_HI = 60999;

const cleanups: (() => void | Promise<void>)[] = [];
async function cleanup(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch {
      // keep going
    }
  }
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const fmt = (n: number) => n.toLocaleString('en-US');
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(0));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Timing {
  wall: number;
  /** CPU of this process (every thread: GC, the fs thread pool) in ms. */
  cpu: number;
  /**
   * CPU of the main thread (the event loop: the agent's own work) in ms. V8's helper threads
   * (parallel and concurrent GC, the optimizing compiler) run beside it on another core: on a
   * machine with a core to spare the wall time is this, plus the waits.
   */
  main: number;
}

/** Run time of the main thread in ns (the scheduler's own account, /proc/<pid>/task/<pid>/schedstat). */
function mainThreadNs(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return Number.NaN; // a kernel without schedstats
  }
}

async function timed(fn: () => unknown): Promise<Timing> {
  const c0 = process.cpuUsage();
  const m0 = mainThreadNs();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000, main: (mainThreadNs() - m0) / 1e6 };
}

const showTiming = (t: Timing) => `${ms(t.wall)} ms (cpu ${ms(t.cpu)} ms, main thread ${ms(t.main)} ms)`;

function line(label: string, value: string, target?: string): void {
  console.log(`  ${label.padEnd(78)} ${value.padStart(26)}${target ? `   target ${target}` : ''}`);
}

// ---- objects ----

/** Address of backend k of the filler services: never reached, only stored. */
const fillerBackend = (k: number) => `10.${64 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
const vipOf = (i: number) => `10.96.${((i + 256) >> 8) & 255}.${(i + 256) & 255}`;

interface Objects {
  service: Record<string, unknown>;
  slice: Record<string, unknown>;
  ns: string;
  name: string;
  /** The slice's endpoint addresses. */
  endpoints: string[];
}

function serviceObjects(i: number, endpoints: string[]): Objects {
  const ns = `ns-${i % 50}`;
  const name = `svc-${i}`;
  return {
    ns,
    name,
    endpoints,
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: ns },
      spec: {
        clusterIP: vipOf(i),
        selector: { app: name },
        ports: [{ name: 'http', port: SERVICE_PORT, targetPort: TARGET_PORT }],
      },
    },
    slice: sliceObject(ns, name, endpoints),
  };
}

function sliceObject(ns: string, name: string, endpoints: string[]): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-abcde`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    endpoints: endpoints.map((address, j) => ({
      addresses: [address],
      conditions: { ready: true },
      nodeName: `node-${j % 3}`,
      targetRef: { kind: 'Pod', namespace: ns, name: `${name}-${j}` },
    })),
    ports: [{ name: 'http', port: TARGET_PORT, protocol: 'TCP' }],
  };
}

/** `n` services; the one in the middle (`measured`) has the real backends. */
function serviceSet(n: number, realBackends: string[]): { objects: Objects[]; measured: number } {
  const measured = Math.floor(n / 2);
  const objects = Array.from({ length: n }, (_, i) =>
    serviceObjects(
      i,
      i === measured
        ? realBackends
        : Array.from({ length: BACKENDS }, (_, j) => fillerBackend(i * BACKENDS + j)),
    ),
  );
  return { objects, measured };
}

// ---- agents ----

const AGENT_CELLS = [...CONTROL_PLANE_CELLS, datapathCell, targetsCell, socketLbCell] as Cell<
  unknown,
  AgentCellExtras
>[];

interface BenchAgent {
  size: number;
  cfg: AgentConfig;
  hive: Hive<AgentCellExtras>;
  cgroup: string;
  vip: string;
  objects: Objects[];
  measured: number;
}

async function startHive(cfg: AgentConfig): Promise<Hive<AgentCellExtras>> {
  const hive = new Hive<AgentCellExtras>(AGENT_CELLS, [
    [ConfigT, cfg],
    [LogT, pino({ level: 'silent' })],
  ]);
  await hive.start();
  return hive;
}

/** The bench's cleanup list as the test helpers take it. */
const cleanupStack: Cleanup = { add: (fn) => void cleanups.push(fn), run: cleanup };

async function startAgent(prefix: string, size: number, oct: number, index: number): Promise<BenchAgent> {
  const runDir = mkdtempSync(join(tmpdir(), `cts-bench-svc-${size}-`));
  const cgroup = throwawayCgroup(`${prefix}-${size}-`, cleanupStack);
  const cfg = defaultConfig(prefix, `node-${size}`, {
    runDir,
    stateDir: join(runDir, 'state'),
    bpffsDir: join(runDir, 'bpffs'),
    nodeIPs: [`10.${oct}.250.${index + 1}`],
    podCidrV4: `10.${oct}.${200 + index}.0/24`,
    cgroup,
  });
  const agent: BenchAgent = { size, cfg, cgroup, hive: undefined!, vip: '', objects: [], measured: 0 };
  // Registered before the start so that a failed start still unmounts and removes everything.
  cleanups.push(() => rmSync(runDir, { recursive: true, force: true }));
  cleanups.push(() => void spawnSync('umount', ['-l', cfg.bpffsDir]));
  cleanups.push(() => {
    const l = SocketLbLoader.open({ bpffs: cfg.bpffsDir });
    l.detach();
    l.close();
  });
  cleanups.push(() => agent.hive?.stop());
  agent.hive = await startHive(cfg);
  return agent;
}

const sliceName = (o: Objects) => `${o.name}-abcde`;

/**
 * Services and slices into the running agent as one step, the way its services cell takes every
 * change: the objects go into the resource stores (handed over, as the REST routes do with a
 * request body), then the services cell's apply() parses them, computes the LB rows and its six
 * reconcilers write them into the pinned maps; timed until the last map write.
 */
async function loadServices(
  a: BenchAgent,
  objects: Objects[],
): Promise<{ total: Timing; store: Timing; apply: Timing }> {
  const res = a.hive.get(ResourcesT);
  const svc = a.hive.get(ServicesT);
  let store: Timing | undefined;
  let apply: Timing | undefined;
  const total = await timed(async () => {
    const changes: ObjectRef[] = [];
    store = await timed(() => {
      for (const o of objects) {
        res.stores.services.upsert(namespacedKey(o.ns, o.name), o.service, { handOver: true });
        res.stores.endpointSlices.upsert(namespacedKey(o.ns, sliceName(o)), o.slice, { handOver: true });
        changes.push(
          { kind: 'Service', namespace: o.ns, name: o.name },
          { kind: 'EndpointSlice', namespace: o.ns, name: sliceName(o) },
        );
      }
    });
    apply = await timed(() => svc.apply(changes));
  });
  return { total, store: store!, apply: apply! };
}

/** What the agent's LB maps hold, checked against what `n` services × BACKENDS must give. */
function checkMaps(a: BenchAgent, n: number): string {
  const lb = a.hive.get(DatapathT).m.lb;
  const got = {
    frontends: lb.listFrontends().length,
    entries: lb.listServiceEntries().length,
    backends: lb.listBackends().length,
    revNat: lb.listRevNat().length,
  };
  const want = { frontends: n, entries: n * (BACKENDS + 1), backends: n * BACKENDS, revNat: n };
  if (JSON.stringify(got) !== JSON.stringify(want))
    throw new Error(
      `LB maps of the ${n}-service agent: ${JSON.stringify(got)}, want ${JSON.stringify(want)}`,
    );
  return `${fmt(got.frontends)} frontends, ${fmt(got.entries)} service entries, ${fmt(got.backends)} backends, ${fmt(got.revNat)} rev-NAT`;
}

interface ChangeFigures {
  cell: Timing[];
  agent: Timing[];
  persist: Timing[];
  /** LB rows each update changed (the reconcilers write those and only those). */
  rows: number[];
  /** Garbage-collector pauses (ms) while the updates ran, by kind. */
  gc: { minor: number[]; major: number[] };
}

/**
 * The collector's pauses while `fn` runs: what a worst case is made of when its CPU time is far
 * below its wall time (the rest is the machine's other work taking the CPU).
 */
async function withGcPauses<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; minor: number[]; major: number[] }> {
  const minor: number[] = [];
  const major: number[] = [];
  const obs = new PerformanceObserver((list) => {
    // NODE_PERFORMANCE_GC_MINOR = 1 (scavenge); the rest are mark-compact steps and finalization
    for (const e of list.getEntries() as (PerformanceEntry & { detail?: { kind?: number } })[])
      (e.detail?.kind === 1 ? minor : major).push(e.duration);
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    const result = await fn();
    // entries are delivered asynchronously
    await new Promise((r) => setImmediate(r));
    return { result, minor, major };
  } finally {
    obs.disconnect();
  }
}

/** CHANGES slice updates (one pod replaced) through the services cell, then through setObject. */
async function endpointChanges(a: BenchAgent): Promise<ChangeFigures> {
  const res = a.hive.get(ResourcesT);
  const svc = a.hive.get(ServicesT);
  const n = a.objects.length;
  let last: { old: string; next: string } | undefined;
  const change = (g: number) => {
    let i = (g * 7919) % n;
    if (i === a.measured) i = (i + 1) % n;
    const o = a.objects[i]!;
    const next = `10.80.${g >> 8}.${g & 255}`;
    last = { old: o.endpoints[0]!, next };
    o.endpoints = [next, ...o.endpoints.slice(1)];
    o.slice = sliceObject(o.ns, o.name, o.endpoints);
    return o;
  };
  const out: ChangeFigures = { cell: [], agent: [], persist: [], rows: [], gc: { minor: [], major: [] } };
  // Incremental: the rows of the changed service only, not all of them again.
  let changed = 0;
  const unwatch = Object.values(svc.lb.tables).map((t: Table<unknown>) =>
    t.watch((cs) => {
      changed += cs.length;
    }),
  );
  const cellGc = await withGcPauses(async () => {
    for (let g = 1; g <= CHANGES; g++) {
      const o = change(g);
      changed = 0;
      out.cell.push(
        await timed(async () => {
          res.stores.endpointSlices.upsert(namespacedKey(o.ns, sliceName(o)), o.slice, { handOver: true });
          await svc.apply([{ kind: 'EndpointSlice', namespace: o.ns, name: sliceName(o) }]);
        }),
      );
      out.rows.push(changed);
      // One backend replaced: its slot, the new backend's row, the old one's removal (and the
      // slots after it when the slot order moves): never more than one service's rows.
      if (changed === 0 || changed > 2 * (2 * BACKENDS + 2))
        throw new Error(`one slice update changed ${changed} LB rows`);
    }
  });
  for (const u of unwatch) u();
  // The slices changed above skipped the resource path's save: saved once here (untimed), so
  // that the first change below does not serialize all of them in its own save.
  await res.persist();
  // What the REST route runs for a PUT of the slice (the HTTP exchange aside), back to back: the
  // state save each change starts (after its map writes) runs while the next change is handled.
  const agentGc = await withGcPauses(async () => {
    for (let g = CHANGES + 1; g <= 2 * CHANGES; g++) {
      const o = change(g);
      out.agent.push(await timed(() => res.setObject('EndpointSlice', o.ns, sliceName(o), o.slice)));
    }
  });
  out.gc = { minor: [...cellGc.minor, ...agentGc.minor], major: [...cellGc.major, ...agentGc.major] };
  for (let k = 0; k < 3; k++) out.persist.push(await timed(() => res.persist()));
  const addrs = new Set(
    a.hive
      .get(DatapathT)
      .m.lb.listBackends()
      .map((b) => b.address),
  );
  if (!last || !addrs.has(last.next) || addrs.has(last.old))
    throw new Error(`the last endpoint change is not in the backends map: ${JSON.stringify(last)}`);
  return out;
}

// ---- the connect hook's own run time ----

const BPF_ENABLE_STATS = 32;

/** BPF_ENABLE_STATS (run time): held by an fd, so the machine's sysctl is left alone. */
function enableBpfStats(): number | undefined {
  const r = bpf(BPF_ENABLE_STATS, new Uint8Array(8), 4); // type BPF_STATS_RUN_TIME = 0
  return r.ret >= 0 ? r.ret : undefined;
}

function progStats(id: number): { ns: number; runs: number } {
  const j = JSON.parse(sh('bpftool', ['prog', 'show', 'id', String(id), '--json'])) as {
    run_time_ns?: number;
    run_cnt?: number;
  };
  return { ns: j.run_time_ns ?? 0, runs: j.run_cnt ?? 0 };
}

/**
 * The socket-LB hooks' run time per connection (kernel BPF stats: connect4 at connect(),
 * sock_release at close(), where a TCP socket's slot is freed), for the pod IP and ClusterIP rows
 * of each size: what socket-LB adds to a connection, free of the machine's load. Stats are on for
 * this phase only (they cost every BPF program on the machine two clock reads per run).
 */
async function hookCost(
  crr: string,
  agents: Map<number, BenchAgent>,
  rows: Row[],
  random: () => number,
): Promise<void> {
  const fd = enableBpfStats();
  if (fd === undefined) {
    console.log('BPF run-time stats unavailable: no connect hook run time');
    return;
  }
  const off = () => close(fd);
  cleanups.push(off);
  try {
    // The hooks a client connection runs: connect4 at connect(), sock_release at close().
    const progsOf = new Map<number, { connect: number; release: number }>();
    for (const a of agents.values()) {
      const loader = SocketLbLoader.open({ bpffs: a.cfg.bpffsDir, maps: a.hive.get(DatapathT).m });
      const pinned = loader.pinned();
      loader.close();
      const connect = pinned.connect4?.progId;
      const release = pinned.release?.progId;
      if (connect === undefined || release === undefined)
        throw new Error(`no connect4 / sock_release hook pinned for the ${a.size}-service agent`);
      progsOf.set(a.size, { connect, release });
    }
    const measured = rows.filter((r) => r.size !== undefined);
    const ns = new Map<string, { connect: number[]; release: number[] }>(
      measured.map((r) => [r.key, { connect: [], release: [] }]),
    );
    const cpu = new Map<string, number[]>(measured.map((r) => [r.key, []]));
    for (let round = 0; round < HOOK_ROUNDS; round++)
      for (const row of shuffle(measured, random)) {
        const progs = progsOf.get(row.size!)!;
        const before = { connect: progStats(progs.connect), release: progStats(progs.release) };
        const f = await runClient(crr, row);
        for (const hook of ['connect', 'release'] as const) {
          const after = progStats(progs[hook]);
          const runs = after.runs - before[hook].runs;
          // release: the client's sockets, and now and then one of another process in the cgroup
          if (runs < CONNECTIONS + WARMUP || (hook === 'connect' && runs !== CONNECTIONS + WARMUP))
            throw new Error(
              `${row.label}: the ${hook} hook ran ${runs} times for ${CONNECTIONS + WARMUP} connections`,
            );
          ns.get(row.key)![hook].push((after.ns - before[hook].ns) / runs);
        }
        cpu.get(row.key)!.push(f.cpuUs * 1000);
      }
    console.log(
      `socket-LB hooks' run time per connection: connect (cil_sock4_connect) and close (cil_sock_release), ` +
        `median of ${HOOK_ROUNDS} interleaved rounds (BPF run-time stats, on for this phase only)`,
    );
    for (const size of agents.keys()) {
      const hook = (key: string, h: 'connect' | 'release') => median(ns.get(key)![h]);
      const pod = (h: 'connect' | 'release') => hook(`pod-${size}`, h);
      const lb = (h: 'connect' | 'release') => hook(`lb-${size}`, h);
      const added = lb('connect') + lb('release') - pod('connect') - pod('release');
      const share = (added / median(cpu.get(`lb-${size}`)!)) * 100;
      line(
        `${fmt(size)} service(s): connect pod IP / ClusterIP, close pod IP / ClusterIP; translating adds`,
        `${pod('connect').toFixed(0)} / ${lb('connect').toFixed(0)}, ${pod('release').toFixed(0)} / ` +
          `${lb('release').toFixed(0)} ns; ${added.toFixed(0)} ns, ${share.toFixed(1)}% of client CPU`,
      );
    }
  } finally {
    off();
    cleanups.splice(cleanups.indexOf(off), 1);
  }
}

// ---- order of the measurements ----

/** The blocks in random order, in each block its units (a pair's two rows, or a row of its own) in
 * random order, a pair's rows in random order: the rows a target compares run one right after the
 * other (no drift of the load between them), and whatever runs before a row (and leaves work
 * behind: conntrack and TIME_WAIT expiry) changes from round to round. */
function roundOrder(rows: Row[], random: () => number): Row[] {
  const blocks = [...new Set(rows.map((r) => r.block))];
  return shuffle(blocks, random).flatMap((b) => {
    const inBlock = rows.filter((r) => r.block === b);
    const units = [...new Set(inBlock.map((r) => r.pair ?? r.key))];
    return shuffle(units, random).flatMap((u) =>
      shuffle(
        inBlock.filter((r) => (r.pair ?? r.key) === u),
        random,
      ),
    );
  });
}

// ---- network ----

class SourcePool {
  private index = 0;
  private next = PORT_LO;
  constructor(readonly addrs: string[]) {}

  /** `n` consecutive source ports on one address, none handed out before. */
  take(n: number): { ip: string; base: number } {
    if (this.next + n > PORT_HI + 1) {
      this.index++;
      this.next = PORT_LO;
    }
    const ip = this.addrs[this.index];
    if (!ip) throw new Error(`out of source addresses (${this.addrs.length}) for new 4-tuples`);
    const r = { ip, base: this.next };
    this.next += n;
    return r;
  }
}

/** Refuses a path that is not a network namespace of its own (iptables must never reach the root's). */
function ownNetns(path: string): string {
  if (statSync(path).ino === statSync('/proc/self/ns/net').ino) throw new Error(`${path} is the root netns`);
  return path;
}

function iptablesRestore(netns: string, text: string): void {
  const r = spawnSync('nsenter', [`--net=${ownNetns(netns)}`, 'iptables-restore', '-w'], {
    input: text,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`iptables-restore in ${netns}: ${r.stderr || r.error}`);
}

function iptablesVersion(): string | undefined {
  const r = spawnSync('iptables-restore', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

interface Crr {
  cps: number;
  p50: number;
  p99: number;
  cpuUs: number;
  backends: Record<string, number>;
}

interface Row {
  key: string;
  /** Rows of one block run back to back (in random order): the rows compared for a target. */
  block: string;
  /** Rows of one pair run one right after the other (the two sides of a ratio's target). */
  pair?: string;
  /** Socket-LB rows: the service count of the agent whose hooks the client goes through. */
  size?: number;
  label: string;
  netns: string;
  /** Socket-LB cgroup the client joins before its first socket. */
  cgroup?: string;
  hosts: string[];
  port: number;
  pool: SourcePool;
}

function runClient(crr: string, row: Row): Promise<Crr> {
  const src = row.pool.take(CONNECTIONS + WARMUP);
  const argv = [
    'nsenter',
    `--net=${row.netns}`,
    crr,
    'connect',
    row.hosts.join(','),
    String(row.port),
    String(CONNECTIONS),
    String(WARMUP),
    src.ip,
    String(src.base),
  ];
  return runCrr<Crr>(argv, row.label, row.cgroup);
}

/** Runs `argv` (in the row's cgroup, if any) and parses the JSON line it prints. */
function runCrr<T>(argv: string[], label: string, cgroup: string | undefined): Promise<T> {
  // The shell joins the cgroup, then becomes the client: every socket is in the cgroup.
  const p = cgroup
    ? spawn('sh', ['-c', 'echo $$ > "$0" && exec "$@"', join(cgroup, 'cgroup.procs'), ...argv], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => void p.kill('SIGKILL');
  cleanups.push(kill);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (err += d));
    p.on('exit', (code) => {
      cleanups.splice(cleanups.indexOf(kill), 1);
      if (code !== 0) reject(new Error(`${label}: client exited ${code}: ${err || out}`));
      else resolve(JSON.parse(out) as T);
    });
  });
}

/** Two rows of one namespace and cgroup in one client process, interleaved connection by connection. */
async function runPair(crr: string, a: Row, b: Row): Promise<[Crr, Crr]> {
  if (a.netns !== b.netns || a.cgroup !== b.cgroup)
    throw new Error(`${a.label} / ${b.label}: not one client`);
  const side = (r: Row) => {
    const src = r.pool.take(CONNECTIONS + WARMUP);
    return [r.hosts.join(','), String(r.port), src.ip, String(src.base)];
  };
  const argv = [
    'nsenter',
    `--net=${a.netns}`,
    crr,
    'pair',
    ...side(a),
    ...side(b),
    String(CONNECTIONS),
    String(WARMUP),
  ];
  const f = await runCrr<{ a: Crr; b: Crr }>(argv, `${a.label} / ${b.label}`, a.cgroup);
  return [f.a, f.b];
}

function startServer(crr: string, netns: string): Promise<ChildProcess> {
  const p = spawn('nsenter', [`--net=${netns}`, crr, 'serve', String(TARGET_PORT)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(() => void p.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) resolve(p);
    };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
    p.on('exit', (c) => reject(new Error(`server exited ${c}: ${out}`)));
  });
}

interface Topology {
  client: string;
  server: string;
  kube: Map<number, string>;
  backends: string[];
  clientPool: SourcePool;
  kubePools: Map<number, SourcePool>;
  clusterCidr: string;
}

/**
 * S holds the backends (10.X.1.1-10 on its loopback) and one veth per client namespace: C
 * (10.X.0.0/24, no route to the VIPs) and K_n per size (10.X.(2+i).0/24, the VIPs routed to S so
 * that the nat table sees them). Veths are created inside the namespaces, never in the root one.
 */
function buildTopology(
  p: string,
  oct: number,
  clientAddrs: number,
  kubeAddrs: (size: number) => number,
): Topology {
  const ns = (x: string) => {
    sh('ip', ['netns', 'add', `${p}${x}`]);
    cleanups.push(() => void spawnSync('ip', ['netns', 'del', `${p}${x}`]));
    sh('ip', ['-n', `${p}${x}`, 'link', 'set', 'lo', 'up']);
    return `/run/netns/${p}${x}`;
  };
  const server = ns('s');
  // Every connection leaves a TIME_WAIT socket on the server's side: room for all of a run's.
  sh('ip', ['netns', 'exec', `${p}s`, 'sysctl', '-qw', 'net.ipv4.tcp_max_tw_buckets=2000000']);
  const backends = Array.from({ length: BACKENDS }, (_, j) => `10.${oct}.1.${j + 1}`);
  for (const b of backends) sh('ip', ['-n', `${p}s`, 'addr', 'add', `${b}/32`, 'dev', 'lo']);
  const link = (x: string, subnet: string, addrs: number) => {
    sh('ip', ['-n', `${p}${x}`, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', x, 'netns', `${p}s`]);
    const mine = Array.from({ length: addrs }, (_, k) => `${subnet}.${k + 1}`);
    for (const a of mine) sh('ip', ['-n', `${p}${x}`, 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', `${p}s`, 'addr', 'add', `${subnet}.254/24`, 'dev', x]);
    sh('ip', ['-n', `${p}${x}`, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', `${p}s`, 'link', 'set', x, 'up']);
    sh('ip', ['-n', `${p}${x}`, 'route', 'add', `10.${oct}.1.0/24`, 'via', `${subnet}.254`]);
    return mine;
  };
  const client = ns('c');
  const clientPool = new SourcePool(link('c', `10.${oct}.0`, clientAddrs));
  const kube = new Map<number, string>();
  const kubePools = new Map<number, SourcePool>();
  for (const [i, size] of SIZES.entries()) {
    kube.set(size, ns(`k${i}`));
    kubePools.set(size, new SourcePool(link(`k${i}`, `10.${oct}.${2 + i}`, kubeAddrs(size))));
    sh('ip', ['-n', `${p}k${i}`, 'route', 'add', '10.96.0.0/12', 'via', `10.${oct}.${2 + i}.254`]);
  }
  return { client, server, kube, backends, clientPool, kubePools, clusterCidr: `10.${oct}.0.0/16` };
}

// ---- main ----

async function main(): Promise<void> {
  const p = `svB${randomBytes(3).toString('hex')}`;
  const oct = 100 + (randomBytes(1)[0]! % 100);
  const iptables = iptablesVersion();
  const scratch = mkdtempSync(join(tmpdir(), 'cts-bench-svc-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  console.log(
    `# services bench: node ${process.version}, kernel ${release()}, ${cpus().length} CPUs, load average ` +
      `${loadavg()[0]!.toFixed(1)} (shared machine: wall times move with the load; CPU times given beside them)`,
  );

  // Source addresses: every connection of the run gets a 4-tuple never used before.
  const perAddr = Math.floor((PORT_HI - PORT_LO + 1) / (CONNECTIONS + WARMUP));
  if (perAddr < 1) throw new Error(`BENCH_CONNECTIONS: at most ${PORT_HI - PORT_LO + 1 - WARMUP}`);
  const rowsInC = 1 + 2 * SIZES.length;
  const need = (measurements: number) => Math.ceil(measurements / perAddr);
  // C: every round's rows, then the hook phase's rounds of a pod IP and a ClusterIP run per size.
  const topo = buildTopology(p, oct, need(rowsInC * ROUNDS + 2 * SIZES.length * HOOK_ROUNDS), (size) =>
    need((size === MAX ? 2 : 1) * ROUNDS),
  );
  const crr = buildCrr(scratch);
  await startServer(crr, topo.server);

  // ---- control plane ----
  console.log(
    `control plane: the agent's cells (resources, services, datapath, datapath-targets, socket-lb, ...) ` +
      `with real LB maps in a private bpffs, one agent per size`,
  );
  const agents = new Map<number, BenchAgent>();
  for (const [i, size] of SIZES.entries()) agents.set(size, await startAgent(p, size, oct, i));
  for (const a of agents.values()) {
    const { objects, measured } = serviceSet(a.size, topo.backends);
    Object.assign(a, { objects, measured, vip: vipOf(measured) });
    const t = await loadServices(a, objects);
    const held = checkMaps(a, a.size);
    // The resource path saves the state after the maps are written; once here, outside the timing.
    const save = await timed(() => a.hive.get(ResourcesT).persist());
    line(
      `${fmt(a.size)} Services + ${fmt(a.size)} EndpointSlices (× ${BACKENDS}) → LB maps, services cell apply()`,
      showTiming(t.total),
      a.size === 10000 ? '< 2 s' : undefined,
    );
    line(
      '  of which into the resource stores / apply (parse, LB rows, six reconcilers writing the maps)',
      `${ms(t.store.wall)} / ${ms(t.apply.wall)} ms`,
    );
    line('  then saving the resource state (not timed above)', showTiming(save));
    console.log(`    the maps hold ${held}`);
  }
  const big = agents.get(MAX)!;
  // The changes go to other services than the measured one: it needs two at least.
  if (MAX >= 2) {
    const changes = await endpointChanges(big);
    const q = (ts: Timing[], f: (t: Timing) => number) => median(ts.map(f));
    // Median and worst wall time; CPU (process / main thread): the median, the worst wall time's
    // (CPU far below its wall: the process waited for a core, not for its own work) and the most
    // any change took (the first ones: the optimizing compiler's threads).
    const changeRow = (ts: Timing[]) => {
      const worst = ts.reduce((a, b) => (b.wall > a.wall ? b : a));
      const most = (f: (t: Timing) => number) => ms(Math.max(...ts.map(f)));
      return (
        `${ms(q(ts, (t) => t.wall))} / ${ms(worst.wall)} ms (cpu ${ms(q(ts, (t) => t.cpu))} / ` +
        `${ms(worst.cpu)} / ${most((t) => t.cpu)}, main thread ${ms(q(ts, (t) => t.main))} / ` +
        `${ms(worst.main)} / ${most((t) => t.main)})`
      );
    };
    line(
      `one slice update → maps, services cell apply() (parse, LB rows, ordered flush), median / max of ${CHANGES} (cpu: median / the max's / most)`,
      changeRow(changes.cell),
      '< 10 ms',
    );
    line(
      `one slice update → maps, agent resource path (check, store, apply, flush, start the save), median / max of ${CHANGES}`,
      changeRow(changes.agent),
      '< 10 ms',
    );
    line(
      `  LB rows changed and written per update (of ${fmt(MAX * (2 * BACKENDS + 2))}), median / max`,
      `${median(changes.rows)} / ${Math.max(...changes.rows)}`,
    );
    const pauses = (xs: number[]) => (xs.length ? `${xs.length}, longest ${ms(Math.max(...xs))} ms` : 'none');
    line(
      `  garbage-collector pauses during the ${2 * CHANGES} updates: scavenges / mark-compact steps`,
      `${pauses(changes.gc.minor)} / ${pauses(changes.gc.major)}`,
    );
    line(
      `  saving the resource state (${fmt(2 * MAX)} objects, fsync'd JSON, after the maps), median of 3`,
      `${ms(q(changes.persist, (t) => t.wall))} ms (cpu ${ms(q(changes.persist, (t) => t.cpu))})`,
    );
  }
  for (const a of new Set([agents.get(Math.min(...SIZES))!, big])) {
    await a.hive.stop();
    let hive: Hive<AgentCellExtras> | undefined;
    const t = await timed(async () => {
      hive = await startHive(a.cfg);
    });
    a.hive = hive!;
    line(
      `agent restart with ${fmt(a.size)} service(s) in its state (every cell; LB: restore IDs, full pass, prune)`,
      showTiming(t),
    );
    checkMaps(a, a.size);
  }

  if (process.env.BENCH_CONTROL_PLANE_ONLY === '1') return;

  // ---- kube-proxy rulesets ----
  if (iptables) {
    console.log(`kube-proxy-shaped rulesets (${iptables}), nat table of namespaces K_n`);
    for (const a of agents.values()) {
      const services: KubeProxyService[] = a.objects.map((o, i) => ({
        name: `${o.ns}/${o.name}:http`,
        clusterIP: vipOf(i),
        port: SERVICE_PORT,
        protocol: 'tcp',
        endpoints: o.endpoints.map((ip) => ({ ip, port: TARGET_PORT })),
      }));
      const rs = kubeProxyRuleset(services, topo.clusterCidr);
      const netns = topo.kube.get(a.size)!;
      const t = await timed(() => iptablesRestore(netns, rs.text));
      // Closed connections leave conntrack at once (TIME_WAIT 1 s instead of 120 s): a run's
      // hundreds of thousands of entries would otherwise fill the table that every namespace shares.
      sh('nsenter', [
        `--net=${netns}`,
        'sysctl',
        '-qw',
        'net.netfilter.nf_conntrack_tcp_timeout_time_wait=1',
      ]);
      line(
        `${fmt(a.size)} services: ${fmt(rs.rules)} rules in ${fmt(rs.chains)} chains, iptables-restore`,
        `${ms(t.wall)} ms`,
      );
    }
  } else {
    console.log('iptables is not installed (scripts/setup.sh installs it): no kube-proxy rows');
  }

  // ---- datapath ----
  const rows: Row[] = [
    {
      key: 'plain',
      block: 'client',
      label: 'pod IP, no socket-LB',
      netns: topo.client,
      hosts: topo.backends,
      port: TARGET_PORT,
      pool: topo.clientPool,
    },
  ];
  for (const a of agents.values()) {
    const n = fmt(a.size);
    const c = {
      netns: topo.client,
      cgroup: a.cgroup,
      pool: topo.clientPool,
      block: 'client',
      pair: `size-${a.size}`,
      size: a.size,
    };
    rows.push({
      key: `pod-${a.size}`,
      label: `pod IP, socket-LB, ${n}`,
      hosts: topo.backends,
      port: TARGET_PORT,
      ...c,
    });
    rows.push({
      key: `lb-${a.size}`,
      label: `ClusterIP, socket-LB, ${n}`,
      hosts: [a.vip],
      port: SERVICE_PORT,
      ...c,
    });
    if (iptables) {
      const k = { netns: topo.kube.get(a.size)!, pool: topo.kubePools.get(a.size)! };
      const block = 'kube-proxy';
      rows.push({
        key: `ipt-${a.size}`,
        block,
        label: `ClusterIP, iptables, ${n}`,
        hosts: [a.vip],
        port: SERVICE_PORT,
        ...k,
      });
      if (a.size === MAX)
        rows.push({
          key: 'ipt-pod',
          block,
          label: `pod IP, iptables, ${n}`,
          hosts: topo.backends,
          port: TARGET_PORT,
          ...k,
        });
    }
  }
  const seed = Number(process.env.BENCH_SEED ?? randomBytes(4).readUInt32LE());
  const random = mulberry32(seed);
  console.log(
    `connection rate, TCP_CRR-style (connect, 32 B request, 32 B reply, close), ${fmt(CONNECTIONS)} connections ` +
      `per measurement after ${WARMUP} warm-up; median of ${ROUNDS} interleaved rounds (order seed ${seed}); ` +
      "rates of the connections' own time, their slowest 5% left out",
  );
  const runs = new Map<string, Crr[]>(rows.map((r) => [r.key, []]));
  const record = (row: Row, f: Crr) => {
    const reached = Object.keys(f.backends).sort();
    if (JSON.stringify(reached) !== JSON.stringify([...topo.backends].sort()))
      throw new Error(`${row.label}: reached ${JSON.stringify(f.backends)}, want the ${BACKENDS} backends`);
    runs.get(row.key)!.push(f);
  };
  for (let round = 0; round < ROUNDS; round++) {
    const paired = new Set<string>();
    for (const row of roundOrder(rows, random)) {
      if (row.pair === undefined) {
        record(row, await runClient(crr, row));
        continue;
      }
      // The pair's two rows in one process, its sides in the order the round drew them.
      if (paired.has(row.pair)) continue;
      paired.add(row.pair);
      const other = rows.find((r) => r.pair === row.pair && r !== row)!;
      const [a, b] = await runPair(crr, row, other);
      record(row, a);
      record(other, b);
    }
  }
  const med = (key: string, f: keyof Omit<Crr, 'backends'>) => median(runs.get(key)!.map((x) => x[f]));
  /** Median over rounds of a/b, each pair from the same round. */
  const ratios = (a: string, b: string, f: keyof Omit<Crr, 'backends'>) =>
    runs.get(a)!.map((x, r) => x[f] / runs.get(b)![r]![f]);
  const ratio = (a: string, b: string, f: keyof Omit<Crr, 'backends'>) => median(ratios(a, b, f));
  const x = (v: number) => `x${v.toFixed(2)}`;
  /** The median ratio and, in brackets, the quartiles of the per-round ratios (their spread). */
  const xq = (a: string, b: string, f: keyof Omit<Crr, 'backends'>) => ratioWithSpread(ratios(a, b, f));
  for (const r of rows)
    console.log(
      `  ${r.label.padEnd(30)} ${(med(r.key, 'cps') / 1000).toFixed(2).padStart(6)}k conn/s  ` +
        `p50 ${med(r.key, 'p50').toFixed(0).padStart(5)} µs  p99 ${med(r.key, 'p99').toFixed(0).padStart(5)} µs  ` +
        `client cpu ${med(r.key, 'cpuUs').toFixed(0).padStart(4)} µs/conn` +
        (r.key === 'plain' ? '' : `   rate ${x(ratio(r.key, 'plain', 'cps'))} of pod IP, no socket-LB`),
    );

  console.log(
    `figures against their targets (ratios: medians of ${ROUNDS} per-round ratios, pod IP and ClusterIP ` +
      'of one size in one client process, connection by connection; [quartiles of those ratios])',
  );
  const per = (f: (size: number) => string) => SIZES.map((s) => `${fmt(s)}: ${f(s)}`).join('  ');
  line(
    'ClusterIP vs pod IP, socket-LB, same cgroup: connection rate',
    per((s) => xq(`lb-${s}`, `pod-${s}`, 'cps')),
    '≥ 0.97',
  );
  line(
    '  p50 latency (lower is better)',
    per((s) => xq(`lb-${s}`, `pod-${s}`, 'p50')),
    '≤ 1.03',
  );
  line(
    '  p99 latency',
    per((s) => x(ratio(`lb-${s}`, `pod-${s}`, 'p99'))),
  );
  line(
    '  client CPU per connection',
    per((s) => xq(`lb-${s}`, `pod-${s}`, 'cpuUs')),
  );
  line(
    'ClusterIP, socket-LB vs pod IP with no socket-LB at all: connection rate',
    per((s) => x(ratio(`lb-${s}`, 'plain', 'cps'))),
  );
  const smallest = Math.min(...SIZES);
  const change = (key: (s: number) => string, f: keyof Omit<Crr, 'backends'>) =>
    per((s) => {
      const v = (ratio(key(s), key(smallest), f) - 1) * 100;
      return `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`;
    });
  // Sizes run in different processes, seconds apart: their rows see different loads. What a size
  // costs the ClusterIP is its ratio to the pod IP measured with it (one process), against the
  // smallest size's ratio of the same round.
  const pairChange = (f: keyof Omit<Crr, 'backends'>) =>
    per((s) => {
      const mine = ratios(`lb-${s}`, `pod-${s}`, f);
      const base = ratios(`lb-${smallest}`, `pod-${smallest}`, f);
      const v = (median(mine.map((r, i) => r / base[i]!)) - 1) * 100;
      return `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`;
    });
  line(
    `ClusterIP vs pod IP ratio, change vs ${fmt(smallest)} service(s) (same round): connection rate`,
    pairChange('cps'),
    '< 5%',
  );
  line('  p50 latency', pairChange('p50'), '< 5%');
  line(
    `ClusterIP, socket-LB: rate change vs ${fmt(smallest)} service(s) (rows of other processes)`,
    change((s) => `lb-${s}`, 'cps'),
  );
  line(
    '  p50 latency change',
    change((s) => `lb-${s}`, 'p50'),
  );
  line(
    '  client CPU per connection change',
    change((s) => `lb-${s}`, 'cpuUs'),
  );
  if (iptables) {
    line(
      'ClusterIP, iptables vs pod IP with no socket-LB: connection rate',
      per((s) => x(ratio(`ipt-${s}`, 'plain', 'cps'))),
      'none (expected to degrade)',
    );
    line(
      `  rate change vs ${fmt(smallest)} service(s)`,
      change((s) => `ipt-${s}`, 'cps'),
    );
    line(
      '  p50 latency',
      per((s) => `${med(`ipt-${s}`, 'p50').toFixed(0)} µs`),
    );
    line(
      `pod IP from the iptables namespace (${fmt(MAX)} services) vs pod IP, no socket-LB`,
      `rate ${x(ratio('ipt-pod', 'plain', 'cps'))}`,
    );
  }
  await hookCost(crr, agents, rows, random);
  console.log(`# load average at the end ${loadavg()[0]!.toFixed(1)}`);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });
}
onStdoutClosed(() => void cleanup().finally(() => process.exit(141)));

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanup();
    process.exit();
  });
