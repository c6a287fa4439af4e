/**
 * A real etcd for the lab (Debian's etcd-server). The agents run in node namespaces, where the root
 * namespace's loopback is out of reach, so the members run in a namespace of their own attached to
 * the lab's underlay bridge, each on its own address (client port 2379, peer port 2380). Tests in
 * the root namespace may instead run members on 127.0.0.1 with unique ports (no `netns`).
 *
 * The lab keeps the returned EtcdCluster in its state: every member records its PID and start time
 * (process.ts), so stop and teardown signal only the processes the lab started. Members' data
 * directories live under the lab's run directory: a stopped member starts again with its data.
 *
 *   const etcd = await createLabEtcd({ lab, dir, netns: `${prefix}etcd`, members: 1 | 3,
 *     underlay: { netns: world, bridge: 'br0', prefix: '192.168.211', prefixLen: 24 }, log });
 *     // = planEtcdCluster + createEtcdNamespace + startEtcd: members at .241, .242, .243
 *   agents: --kvstore etcd --kvstore-endpoints etcdEndpoints(etcd).join(',')
 *   await stopEtcd(etcd, { members: ['etcd2'] });  // `lab etcd stop`: returns once stopped
 *   await startEtcd(etcd, { log });                // `lab etcd start`: returns once it has quorum
 *   await destroyEtcd(etcd);                       // stops everything, removes data and the namespace
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CiliumTsError } from '../common/errors.js';
import { distRoot } from '../common/paths.js';
import { run } from '../datapath/linux/index.js';
import type { EtcdStatus } from '../kvstore/etcd.js';
import type { ForgottenKeys } from './forget-node.js';
import { isRunning, killNetnsProcesses, killRecorded, type ProcessRef, processRef } from './process.js';

/** A lab etcd request that cannot be done (`field` names bad input) or a member that fails to start. */
export class EtcdLabError extends CiliumTsError {}

function badInput(field: string, message: string): EtcdLabError {
  return new EtcdLabError(message, { code: 'invalid-argument', field });
}

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
const ETCD_BINARY = 'etcd';
const PROBE = join(distRoot, 'src', 'lab', 'etcd-probe-main.js');
const FORGET = join(distRoot, 'src', 'lab', 'forget-node-main.js');

export interface EtcdMember {
  /** Member name: etcd1, etcd2, ... */
  name: string;
  ip: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  log: string;
  pid?: number;
  /** Start time of `pid` (process.ts): a recycled PID is never signalled. */
  startTime?: number;
}

export interface EtcdCluster {
  /** Network namespace the members run in; absent: the caller's namespace (loopback tests). */
  netns?: string;
  /** The cluster token (keeps members of different labs from joining each other). */
  token: string;
  members: EtcdMember[];
}

export interface EtcdPlan {
  /** Directory for the members' data directories and logs (the lab's run directory). */
  dir: string;
  token: string;
  netns?: string;
  /** One entry per member (1 or 3 usually): its address and, for members sharing one, its ports. */
  members: { ip: string; clientPort?: number; peerPort?: number }[];
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function checkPort(field: string, p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw badInput(field, `etcd ${field} ${p}: not a port`);
  return p;
}

/** The cluster to start: names, addresses, ports, data directories and logs (nothing is started). */
export function planEtcdCluster(p: EtcdPlan): EtcdCluster {
  if (p.members.length < 1 || p.members.length > 7)
    throw badInput('members', `etcd members: ${p.members.length}; give 1 to 7 (3 tolerates one failure)`);
  if (!/^[A-Za-z0-9-]{1,40}$/.test(p.token))
    throw badInput('token', `etcd token ${JSON.stringify(p.token)}: letters, digits and '-' only`);
  const seen = new Set<string>();
  const members = p.members.map((m, i) => {
    const name = `etcd${i + 1}`;
    const oct = IPV4.exec(m.ip);
    if (!oct || oct.slice(1).some((o) => Number(o) > 255))
      throw badInput(
        `members[${i}].ip`,
        `etcd members[${i}].ip ${JSON.stringify(m.ip)}: not an IPv4 address`,
      );
    const clientPort = checkPort(`members[${i}].clientPort`, m.clientPort ?? ETCD_CLIENT_PORT);
    const peerPort = checkPort(`members[${i}].peerPort`, m.peerPort ?? ETCD_PEER_PORT);
    for (const port of [clientPort, peerPort]) {
      const at = `${m.ip}:${port}`;
      if (seen.has(at)) throw badInput(`members[${i}]`, `etcd members[${i}]: ${at} is used twice`);
      seen.add(at);
    }
    return {
      name,
      ip: m.ip,
      clientPort,
      peerPort,
      dataDir: join(p.dir, `${name}.data`),
      log: join(p.dir, `${name}.log`),
    };
  });
  return { ...(p.netns ? { netns: p.netns } : {}), token: p.token, members };
}

/** The client URLs agents connect to (`--kvstore-endpoints`). */
export function etcdEndpoints(c: EtcdCluster): string[] {
  return c.members.map((m) => `http://${m.ip}:${m.clientPort}`);
}

export function memberRef(m: EtcdMember): ProcessRef | undefined {
  return m.pid ? { pid: m.pid, ...(m.startTime ? { startTime: m.startTime } : {}) } : undefined;
}

export function memberRunning(m: EtcdMember): boolean {
  return isRunning(memberRef(m));
}

export interface EtcdNamespaceOptions {
  /** The namespace to create for the members. */
  netns: string;
  /** The namespace holding the lab's underlay bridge, and the bridge's name. */
  underlay: { netns: string; bridge: string };
  /** Name of the veth end placed on the bridge (≤ 15 characters, unique in the underlay namespace). */
  link: string;
  /** The members' addresses with prefix length, e.g. `192.168.211.241/24`. */
  addresses: string[];
}

/** Creates the members' namespace on the underlay (nothing happens if it exists). */
export async function createEtcdNamespace(o: EtcdNamespaceOptions): Promise<void> {
  if (existsSync(`/run/netns/${o.netns}`)) return;
  for (const [field, name] of [
    ['netns', o.netns],
    ['underlay.netns', o.underlay.netns],
    ['underlay.bridge', o.underlay.bridge],
    ['link', o.link],
  ] as const)
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name))
      throw badInput(field, `${field} ${JSON.stringify(name)}: not a name`);
  if (o.link.length > 15) throw badInput('link', `link ${o.link}: longer than 15 characters`);
  await run(['ip', 'netns', 'add', o.netns]);
  try {
    // One veth: `eth0` in the members' namespace, `link` on the bridge (names checked above).
    await run(
      `ip link add eth0 netns ${o.netns} type veth peer name ${o.link} netns ${o.underlay.netns}`.split(' '),
    );
    await run(['ip', '-n', o.underlay.netns, 'link', 'set', o.link, 'master', o.underlay.bridge, 'up']);
    const batch = ['link set lo up', ...o.addresses.map((a) => `addr add ${a} dev eth0`), 'link set eth0 up'];
    await run(['ip', '-n', o.netns, '-batch', '-'], { input: `${batch.join('\n')}\n` });
  } catch (err) {
    // Nothing half-made stays: the veth goes with the namespace.
    spawnSync('ip', ['netns', 'del', o.netns]);
    throw err;
  }
}

function etcdArgs(c: EtcdCluster, m: EtcdMember): string[] {
  const peer = (x: EtcdMember) => `http://${x.ip}:${x.peerPort}`;
  const client = `http://${m.ip}:${m.clientPort}`;
  return [
    '--name',
    m.name,
    '--data-dir',
    m.dataDir,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer(m),
    '--initial-advertise-peer-urls',
    peer(m),
    '--initial-cluster',
    c.members.map((x) => `${x.name}=${peer(x)}`).join(','),
    '--initial-cluster-token',
    c.token,
    // Ignored once the data directory exists: a restarted member rejoins with its data.
    '--initial-cluster-state',
    'new',
    '--logger',
    'zap',
    '--log-outputs',
    'stderr',
  ];
}

function pick(c: EtcdCluster, names: readonly string[] | undefined): EtcdMember[] {
  if (!names) return c.members;
  return names.map((n) => {
    const m = c.members.find((x) => x.name === n);
    if (!m)
      throw new EtcdLabError(
        `etcd member ${n}: no such member (${c.members.map((x) => x.name).join(', ')})`,
        {
          code: 'not-found',
          field: 'member',
        },
      );
    return m;
  });
}

function tail(file: string, lines = 6): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface EtcdStartOptions {
  /** Members to start (default: all). Running members are left alone. */
  members?: readonly string[];
  /** How long to wait for quorum and the started members (default 30 s). */
  timeoutMs?: number;
  log?: (line: string) => void;
}

/**
 * Starts the members that do not run, then waits until the cluster has quorum and every started
 * member answers. The members' PIDs and start times are recorded in `c` (save it).
 */
export async function startEtcd(c: EtcdCluster, o: EtcdStartOptions = {}): Promise<EtcdStatus> {
  const started: EtcdMember[] = [];
  for (const m of pick(c, o.members)) {
    if (memberRunning(m)) continue;
    mkdirSync(m.dataDir, { recursive: true, mode: 0o700 });
    const out = openSync(m.log, 'a');
    const cmd = [ETCD_BINARY, ...etcdArgs(c, m)];
    const argv = c.netns ? ['nsenter', `--net=/run/netns/${c.netns}`, '--', ...cmd] : cmd;
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (err) => reject(new EtcdLabError(`cannot start ${argv[0]}: ${err.message}`)));
    });
    child.unref();
    const ref = processRef(spawned);
    m.pid = ref.pid;
    if (ref.startTime === undefined) delete m.startTime;
    else m.startTime = ref.startTime;
    started.push(m);
    o.log?.(`started etcd member ${m.name} at ${m.ip}:${m.clientPort} (pid ${m.pid}, log ${m.log})`);
  }
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    const st = await probeEtcd(c);
    const answering = (m: EtcdMember) =>
      st.members.find((x) => x.endpoint === `http://${m.ip}:${m.clientPort}`)?.connected === true;
    if (st.ok && started.every(answering)) return st;
    const dead = started.find((m) => !memberRunning(m));
    if (dead)
      throw new EtcdLabError(
        `etcd member ${dead.name} exited during start-up; see ${dead.log}:\n${tail(dead.log)}`,
      );
    if (Date.now() > deadline)
      throw new EtcdLabError(`etcd did not become ready in ${o.timeoutMs ?? 30_000} ms: ${st.line}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface EtcdStopOptions {
  /** Members to stop (default: all). */
  members?: readonly string[];
  /** Grace period after SIGTERM before SIGKILL (default 10 s). */
  graceMs?: number;
  log?: (line: string) => void;
}

/** Stops members (SIGTERM, then SIGKILL after the grace period); returns once they are gone. */
export async function stopEtcd(c: EtcdCluster, o: EtcdStopOptions = {}): Promise<void> {
  const targets = pick(c, o.members).filter(memberRunning);
  for (const m of targets) {
    try {
      process.kill(m.pid!, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
  }
  const deadline = Date.now() + (o.graceMs ?? 10_000);
  while (targets.some(memberRunning) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const m of targets) {
    if (killRecorded(memberRef(m))) o.log?.(`etcd member ${m.name} did not stop in time: killed`);
    o.log?.(`stopped etcd member ${m.name} (pid ${m.pid})`);
    delete m.pid;
    delete m.startTime;
  }
}

/** Stops every member, removes their data and logs, and deletes the members' namespace. */
export async function destroyEtcd(c: EtcdCluster, o: { log?: (line: string) => void } = {}): Promise<void> {
  await stopEtcd(c, { graceMs: 2000, ...(o.log ? { log: o.log } : {}) });
  for (const m of c.members) {
    rmSync(m.dataDir, { recursive: true, force: true });
    rmSync(m.log, { force: true });
  }
  if (c.netns && existsSync(`/run/netns/${c.netns}`)) {
    // Anything still running there belongs to the namespace (a member started by a crashed lab).
    killNetnsProcesses(c.netns);
    spawnSync('ip', ['netns', 'del', c.netns]);
  }
}

/** One status check of the endpoints, as a client in the namespace sees them. */
export async function checkEndpoints(endpoints: readonly string[]): Promise<EtcdStatus> {
  // Loaded here: the etcd client (gRPC) is not needed by lab commands that only read the state.
  const { EtcdKvStore } = await import('../kvstore/etcd.js');
  const store = new EtcdKvStore({ endpoints, statusIntervalMs: 3_600_000, quorumTimeoutMs: 1000 });
  try {
    return await store.checkStatus();
  } finally {
    await store.close();
  }
}

/**
 * The cluster's status as a client sees it. Members in a namespace are asked from inside it (a
 * short-lived process there), since the root namespace cannot reach their addresses.
 */
export async function probeEtcd(c: EtcdCluster): Promise<EtcdStatus> {
  if (!c.netns) return checkEndpoints(etcdEndpoints(c));
  const r = await run([process.execPath, PROBE, ...etcdEndpoints(c)], {
    netns: `/run/netns/${c.netns}`,
    timeoutMs: 15_000,
  });
  return JSON.parse(r.stdout) as EtcdStatus;
}

/**
 * Deletes a removed node's keys (forget-node.ts) through a client in the members' namespace;
 * returns how many of each kind it deleted.
 */
export async function forgetNodeInEtcd(
  c: EtcdCluster,
  cluster: string,
  node: string,
): Promise<ForgottenKeys> {
  const argv = [process.execPath, FORGET, cluster, node, ...etcdEndpoints(c)];
  const r = await run(argv, { ...(c.netns ? { netns: `/run/netns/${c.netns}` } : {}), timeoutMs: 30_000 });
  return JSON.parse(r.stdout) as ForgottenKeys;
}

/** Host part of the first member's underlay address (members take .241, .242, ...). */
export const ETCD_FIRST_HOST = 241;

export interface LabEtcdOptions {
  /** The lab's name (the cluster token). */
  lab: string;
  /** Where the members' data directories and logs go (e.g. `<lab dir>/etcd`). */
  dir: string;
  /** The members' namespace (e.g. `cts-<lab>-etcd`, so that `lab down` finds it by prefix). */
  netns: string;
  /** 1 (default) or 3 (tolerates one member down). */
  members?: number;
  /** The lab's underlay: the namespace with its bridge, and the /24 the nodes are on. */
  underlay: { netns: string; bridge: string; prefix: string; prefixLen: number };
  /** Name of the members' veth end on the bridge (default `etcd0`). */
  link?: string;
  log?: (line: string) => void;
}

/** The lab's etcd: planned, its namespace created on the underlay, every member started and healthy. */
export async function createLabEtcd(o: LabEtcdOptions): Promise<EtcdCluster> {
  const n = o.members ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 7 || n % 2 === 0)
    throw badInput(
      '--etcd-members',
      `--etcd-members: ${n}; give 1, 3, 5 or 7 (an odd number keeps a majority)`,
    );
  const ips = Array.from({ length: n }, (_, i) => `${o.underlay.prefix}.${ETCD_FIRST_HOST + i}`);
  const c = planEtcdCluster({ dir: o.dir, token: o.lab, netns: o.netns, members: ips.map((ip) => ({ ip })) });
  mkdirSync(o.dir, { recursive: true });
  o.log?.(`creating etcd namespace ${o.netns} (${ips.join(', ')}) on the underlay`);
  await createEtcdNamespace({
    netns: o.netns,
    underlay: { netns: o.underlay.netns, bridge: o.underlay.bridge },
    link: o.link ?? 'etcd0',
    addresses: ips.map((ip) => `${ip}/${o.underlay.prefixLen}`),
  });
  const st = await startEtcd(c, o.log ? { log: o.log } : {});
  o.log?.(st.line);
  return c;
}
