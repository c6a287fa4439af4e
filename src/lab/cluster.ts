/**
 * What makes a lab of several nodes a cluster: the lab's etcd (cluster state every agent shares,
 * in a namespace of its own on the underlay), stopping and starting it for outage drills, and
 * removing a node (its pods, agent, namespace and everything it left in etcd, so the other agents
 * drop its routes and ipcache entries at once). One node keeps its state in memory, without etcd.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../datapath/linux/index.js';
import { type Log, stopAgent } from './agents.js';
import { reconcile } from './controller.js';
import { LabError } from './errors.js';
import {
  createEtcdNamespace,
  createLabEtcd,
  forgetNodeInEtcd,
  probeEtcd,
  startEtcd,
  stopEtcd,
} from './etcd.js';
import { withLock } from './lock.js';
import { removeCgroupTree } from './placement.js';
import { finalizePod, terminatePod } from './pods.js';
import { killNetnsProcesses, killRecorded } from './process.js';
import { type LabState, labDir, loadEtcdState, netnsPrefix, saveEtcdState, saveLab } from './state.js';

/** The cluster name agents publish under (`cilium/state/nodes/v1/<cluster>/<node>`): the agents' default. */
export const LAB_CLUSTER = 'default';
/** The world namespace's underlay bridge and the underlay /24 the nodes (and etcd members) are on. */
export const UNDERLAY = { bridge: 'br0', prefix: '192.168.211', prefixLen: 24 };
/** The etcd members' veth end on the underlay bridge. */
const ETCD_LINK = 'etcd0';
/** The lock of the etcd members alone (see saveEtcdState): `lab etcd` takes only this one. */
export const ETCD_LOCK = 'etcd.lock';

export function etcdNetns(lab: string): string {
  return `${netnsPrefix(lab)}etcd`;
}

/**
 * Starts the lab's etcd: created with `members` members the first time, otherwise every member
 * started again with its data (its namespace recreated when it is gone, or when the underlay it
 * was attached to was just recreated). Returns once the cluster has quorum. Under the etcd lock,
 * with the members' record as `lab etcd` last left it.
 */
export function ensureEtcd(
  s: LabState,
  o: { members: number; underlayRecreated: boolean; log: Log },
): Promise<void> {
  return withLock(s.name, () => ensureEtcdLocked(s, o), ETCD_LOCK);
}

async function ensureEtcdLocked(
  s: LabState,
  o: { members: number; underlayRecreated: boolean; log: Log },
): Promise<void> {
  s.etcd = loadEtcdState(s.name) ?? s.etcd;
  if (!s.etcd) {
    s.etcd = await createLabEtcd({
      lab: s.name,
      dir: join(labDir(s.name), 'etcd'),
      netns: etcdNetns(s.name),
      members: o.members,
      underlay: { netns: s.world.netns, ...UNDERLAY },
      link: ETCD_LINK,
      log: o.log,
    });
    saveEtcdState(s);
    return;
  }
  const netns = s.etcd.netns!;
  try {
    if (o.underlayRecreated && existsSync(`/run/netns/${netns}`)) {
      // Its veth went with the old underlay: the members and the namespace are started afresh.
      await stopEtcd(s.etcd, { graceMs: 2000 });
      spawnSync('ip', ['netns', 'del', netns]);
    }
    await createEtcdNamespace({
      netns,
      underlay: { netns: s.world.netns, bridge: UNDERLAY.bridge },
      link: ETCD_LINK,
      addresses: s.etcd.members.map((m) => `${m.ip}/${UNDERLAY.prefixLen}`),
    });
    const st = await startEtcd(s.etcd, { log: o.log });
    o.log(st.line);
  } finally {
    saveEtcdState(s); // members started before a failure are recorded
  }
}

function requireEtcd(s: LabState) {
  if (!s.etcd)
    throw new LabError(
      `lab ${s.name} has no etcd: a lab of one node keeps its cluster state in memory (create it with --nodes 2 or more)`,
      { code: 'invalid-argument' },
    );
  return s.etcd;
}

/** `lab etcd stop [--member NAME]` (etcd lock held): returns once the members are gone. */
export async function etcdStop(s: LabState, members: readonly string[], log: Log): Promise<void> {
  const etcd = requireEtcd(s);
  try {
    await stopEtcd(etcd, { ...(members.length ? { members } : {}), log });
  } finally {
    saveEtcdState(s);
  }
}

/** `lab etcd start [--member NAME]` (etcd lock held): returns once the cluster has quorum and the members answer. */
export async function etcdStart(s: LabState, members: readonly string[], log: Log): Promise<void> {
  const etcd = requireEtcd(s);
  try {
    log((await startEtcd(etcd, { ...(members.length ? { members } : {}), log })).line);
  } finally {
    saveEtcdState(s); // members started before a failure are recorded
  }
}

/** `lab etcd status`: the cluster as a client on the underlay sees it. */
export async function etcdStatus(s: LabState, log: Log): Promise<void> {
  const etcd = requireEtcd(s);
  log((await probeEtcd(etcd)).line);
}

/**
 * `lab node remove NODE`: its pods are deleted (through its agent, as pods bound to a deleted node
 * are collected), its agent and forwarder stopped, its keys deleted from etcd, its namespace, route,
 * cgroup, bpffs mount and run directory removed; Deployments get their pods back on other nodes.
 * Checked first (the node exists, is not the last, etcd has quorum), so a refused removal changes
 * nothing.
 */
export async function removeNode(s: LabState, name: string, log: Log): Promise<void> {
  const n = s.nodes.find((x) => x.name === name);
  if (!n)
    throw new LabError(`node "${name}" not found (nodes: ${s.nodes.map((x) => x.name).join(', ')})`, {
      code: 'not-found',
      field: 'node',
    });
  if (s.nodes.length === 1)
    throw new LabError(`node "${name}" is the lab's only node; 'lab down --name ${s.name}' removes the lab`, {
      code: 'invalid-argument',
      field: 'node',
    });
  if (s.etcd) {
    const st = await probeEtcd(s.etcd);
    if (!st.ok)
      throw new LabError(
        `etcd is not available (${st.line}); the node's keys could not be removed: start it first ('lab etcd start'); nothing was changed`,
        { code: 'unavailable' },
      );
  }
  for (const p of Object.values(s.pods).filter((x) => x.node === name)) {
    terminatePod(p, 0);
    await finalizePod(s, p, log);
    log(`pod "${p.name}" deleted (its node is removed)`);
  }
  saveLab(s);
  // SIGTERM: the agent closes its kvstore session, which deletes its leased keys at once.
  await stopAgent(n);
  killRecorded(n.forwarder);
  s.nodes = s.nodes.filter((x) => x !== n);
  saveLab(s);
  if (s.etcd) {
    // A node whose agent was killed left keys that would live until their lease expired.
    const f = await forgetNodeInEtcd(s.etcd, LAB_CLUSTER, name);
    if (f.node + f.ips + f.identityRefs > 0)
      log(
        `etcd: deleted what ${name} left: ${f.node} node key(s), ${f.ips} endpoint IP(s), ${f.identityRefs} identity reference(s)`,
      );
  }
  // Whatever else runs in the node's namespace is the node's (an `exec` onto it, say).
  killNetnsProcesses(n.netns);
  spawnSync('ip', ['netns', 'del', n.netns]); // its veth on the underlay goes with it
  await run(['ip', '-n', s.world.netns, 'route', 'del', n.podCidrV4]).catch(() => {});
  if (n.cgroup) await removeCgroupTree(n.cgroup);
  const dir = join(labDir(s.name), name);
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${dir}/`));
  for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
  rmSync(dir, { recursive: true, force: true });
  await reconcile(s, log);
  log(`node "${name}" removed`);
}
