/**
 * A pod's life in the lab, as the kubelet and a container runtime give it: a network namespace wired
 * by the CNI plugin, a resolv.conf of its own, containers run as processes placed in the node's
 * cgroup, and, once deleted, a grace period: SIGTERM, endpoints terminating while the processes
 * still run (existing connections keep working), SIGKILL when the period ends, then the network
 * is torn down.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { agentSocketPath } from '../agent/config.js';
import { cliPath, distRoot } from '../common/paths.js';
import { run } from '../datapath/linux/index.js';
import { podResolvConf } from '../dns/resolv-conf.js';
import { type PodSpec, podNamedPorts } from '../k8s/objects.js';
import { client, type Log } from './agents.js';
import type { PodView } from './endpointslices.js';
import { LabError } from './errors.js';
import { type Placement, placedCommand } from './placement.js';
import { isRunning, killRecorded, processRef } from './process.js';
import { applyResult, canonical, qualifiedName } from './resources.js';
import { CLUSTER_DNS_IP } from './service-alloc.js';
import {
  type LabContainer,
  type LabNode,
  type LabPod,
  type LabState,
  labDir,
  netnsPrefix,
  podKey,
} from './state.js';

/** The compiled plugin entry (npm run build makes it; it starts in ~1 ms), else the node program. */
const COMPILED_CNI = join(distRoot, 'src', 'cni', 'cilium-ts-cni');
const CNI_PLUGIN = existsSync(COMPILED_CNI)
  ? [COMPILED_CNI]
  : [process.execPath, join(distRoot, 'src', 'cni', 'plugin.js')];
/** Kubernetes' default terminationGracePeriodSeconds. */
export const DEFAULT_GRACE_SECONDS = 30;

function nsPath(name: string): string {
  return `/run/netns/${name}`;
}

/**
 * Pod network namespaces kept made ahead, as a runtime keeps sandboxes ready: a pod takes one
 * instead of waiting for `ip netns add` (~30 ms, a tenth of `lab apply` to a reachable pod). The
 * lab's controller makes the next ones in the background (controller-main.ts), `lab up` the first.
 * They are in the lab's state, and `lab down` deletes them with the lab's other namespaces.
 */
export const SPARE_NETNS = 2;

/** A made-ahead namespace that still exists (it is the pod's from now on), or undefined. */
function takeSpareNetns(s: LabState): string | undefined {
  while (s.spareNetns?.length) {
    const name = s.spareNetns.shift()!;
    if (existsSync(nsPath(name))) return name;
  }
  return undefined;
}

/** How many namespaces the lab is short of SPARE_NETNS made ahead. */
export function spareNetnsWanted(s: LabState): number {
  return Math.max(0, SPARE_NETNS - (s.spareNetns?.length ?? 0));
}

/** Makes `n` pod namespaces of lab `lab` ahead; the names of those made (one that fails is left out). */
export async function makeSpareNetns(lab: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, () => `${netnsPrefix(lab)}p${randomBytes(5).toString('hex')}`);
  const made = await Promise.allSettled(names.map((name) => run(['ip', 'netns', 'add', name])));
  return names.filter((_, i) => made[i]!.status === 'fulfilled');
}

/** A pod as applied or made from a template. */
export interface PodManifest {
  metadata: Record<string, unknown> & { name: string; namespace: string; labels?: Record<string, string> };
  spec: PodSpec;
}

type Container = PodSpec['containers'][number];

function containerPath(c: Container): string {
  return c.env?.find((e) => e.name === 'PATH')?.value ?? process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
}

/**
 * The argv a container runs (`cilium-ts` means this project's CLI). Like a container runtime, it
 * refuses a program that cannot be executed, before anything is created. `field` is the pod
 * spec's path (`spec`, or `spec.template.spec` in a Deployment).
 */
export function containerArgv(what: string, c: Container, index: number, field = 'spec'): string[] {
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  const at = `${field}.containers[${index}].${c.command?.length ? 'command' : 'args'}[0]`;
  if (argv.length === 0)
    throw new LabError(
      `${what}: ${field}.containers[${index}].command: required (the lab runs processes, not images)`,
      {
        code: 'invalid-argument',
        field: `${field}.containers[${index}].command`,
      },
    );
  if (argv[0] === 'cilium-ts') return [process.execPath, cliPath, ...argv.slice(1)];
  if (!findExecutable(argv[0]!, containerPath(c)))
    throw new LabError(`${what}: ${at}: "${argv[0]}": executable file not found in $PATH`, {
      code: 'invalid-argument',
      field: at,
    });
  return argv;
}

/** Where execvp would find a program, or undefined when it would not. */
export function findExecutable(program: string, path: string): string | undefined {
  const candidates = program.includes('/')
    ? [program]
    : path
        .split(':')
        .filter(Boolean)
        .map((d) => join(d, program));
  for (const f of candidates) {
    try {
      accessSync(f, constants.X_OK);
      if (statSync(f).isFile()) return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Checks a pod spec as a runtime would before anything is created (programs, node). */
export function checkPodSpec(s: LabState, what: string, spec: PodSpec, field = 'spec'): void {
  if (spec.nodeName && !s.nodes.some((n) => n.name === spec.nodeName)) {
    throw new LabError(
      `${what}: ${field}.nodeName: node "${spec.nodeName}" does not exist (nodes: ${s.nodes.map((n) => n.name).join(', ')})`,
      { code: 'invalid-argument', field: `${field}.nodeName` },
    );
  }
  for (const [i, c] of spec.containers.entries()) containerArgv(what, c, i, field);
}

/** The pod's resolv.conf (dnsPolicy ClusterFirst), or undefined when it uses the node's (Default). */
export function resolvConfPath(
  s: LabState,
  p: Pick<LabPod, 'namespace' | 'name' | 'manifest'>,
): string | undefined {
  if ((p.manifest?.spec as PodSpec | undefined)?.dnsPolicy === 'Default') return undefined;
  return join(labDir(s.name), 'resolv', `${p.namespace}_${p.name}.conf`);
}

/** Where the pod's processes run: its node's cgroup, its network namespace, its resolv.conf. */
export function podPlacement(s: LabState, p: LabPod): Placement {
  const node = s.nodes.find((n) => n.name === p.node);
  const resolv = resolvConfPath(s, p);
  return {
    netns: p.netns,
    ...(node?.cgroup ? { cgroup: node.cgroup } : {}),
    ...(resolv && existsSync(resolv) ? { resolvConf: resolv } : {}),
  };
}

/** Invokes the CNI plugin the way a container runtime does: env vars, config on stdin, in the node's namespace. */
export async function cni(
  s: LabState,
  node: LabNode,
  command: 'ADD' | 'DEL' | 'CHECK',
  pod: LabPod,
  prevResult?: unknown,
): Promise<unknown> {
  const conf: Record<string, unknown> = {
    cniVersion: '1.0.0',
    name: 'cilium-ts',
    type: 'cilium-ts-cni',
    agentSocket: agentSocketPath(s.name, node.name),
  };
  if (prevResult) conf.prevResult = prevResult;
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: nsPath(pod.netns),
    CNI_IFNAME: 'eth0',
    CNI_ARGS: `K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name}`,
    CNI_PATH: join(distRoot, 'src', 'cni'),
  };
  // Not spawnSync: an ADD may wait long (for etcd, when the pod needs a new identity), and a blocked
  // event loop would not see the agents close idle keep-alive connections, which the next API call
  // would then write to (EPIPE).
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn('nsenter', [`--net=${nsPath(node.netns)}`, '--', ...CNI_PLUGIN], {
        env,
        // Past the plugin's own deadline (120 s), which answers with a clear error first.
        timeout: 150_000,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', (e) => reject(new LabError(`CNI ${command}: cannot run the plugin: ${e.message}`)));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
      child.stdin.on('error', () => {});
      child.stdin.end(JSON.stringify(conf));
    },
  );
  let out: unknown;
  try {
    out = r.stdout ? JSON.parse(r.stdout) : {};
  } catch {
    throw new LabError(
      `CNI ${command} for ${pod.namespace}/${pod.name}: plugin printed invalid JSON: ${r.stdout} ${r.stderr}`,
    );
  }
  if (r.status !== 0) {
    const e = out as { code?: number; msg?: string; details?: string };
    throw new LabError(
      `CNI ${command} for ${pod.namespace}/${pod.name} failed (code ${e.code}): ${e.msg}${e.details ? `: ${e.details}` : ''}`,
    );
  }
  return out;
}

function startContainer(s: LabState, pod: LabPod, c: Container, index: number): LabContainer {
  const resolved = containerArgv(`pod ${pod.namespace}/${pod.name}`, c, index);
  const dir = join(labDir(s.name), 'pods');
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, `${pod.namespace}_${pod.name}_${c.name}.log`);
  const out = openSync(logFile, 'a');
  const env: Record<string, string> = {
    PATH: containerPath(c),
    POD_NAME: pod.name,
    POD_NAMESPACE: pod.namespace,
    POD_IP: pod.ipv4 ?? '',
    HOSTNAME: pod.name,
  };
  for (const e of c.env ?? []) env[e.name] = e.value ?? '';
  const [file, ...args] = placedCommand(podPlacement(s, pod), resolved);
  const child = spawn(file!, args, { detached: true, stdio: ['ignore', out, out], env });
  closeSync(out);
  child.unref();
  return { name: c.name, ...processRef(child.pid!), log: logFile };
}

function podMeta(m: PodManifest) {
  return {
    labels: m.metadata.labels ?? {},
    namedPorts: podNamedPorts(m),
    ...(m.spec.serviceAccountName ? { serviceAccount: m.spec.serviceAccountName } : {}),
  };
}

/**
 * Applies a pod: creates it, or (as Kubernetes allows) changes its labels and annotations.
 * The spec was checked by the caller.
 */
export async function applyPod(
  s: LabState,
  m: PodManifest,
  log: Log,
  owner?: LabPod['owner'],
): Promise<LabPod> {
  const { namespace: ns, name } = m.metadata;
  const existing = s.pods[podKey(ns, name)];
  if (existing) {
    // Only metadata can change (apply checked the spec); new labels give the pod a new identity.
    const result = existing.manifest
      ? applyResult(existing.manifest, m)
      : applyResult(existing.labels, m.metadata.labels ?? {});
    if (result === 'configured') {
      if (canonical(existing.labels) !== canonical(m.metadata.labels ?? {}))
        await client(s, existing.node).putPod(ns, name, podMeta(m));
      existing.labels = m.metadata.labels ?? {};
      existing.manifest = m;
    }
    log(`${qualifiedName('Pod', name)} ${result}`);
    return existing;
  }
  const node = m.spec.nodeName
    ? s.nodes.find((n) => n.name === m.spec.nodeName)!
    : s.nodes[s.nextNode++ % s.nodes.length]!;
  const key = podKey(ns, name);
  const containerId = createHash('sha256').update(`${s.name}/${key}/${randomUUID()}`).digest('hex');
  const spare = takeSpareNetns(s);
  const netns = spare ?? `${netnsPrefix(s.name)}p${containerId.slice(0, 10)}`;
  // The agent learns the pod (and begins its endpoint) while the namespace is made.
  const [put, made] = await Promise.allSettled([
    client(s, node.name).putPod(ns, name, podMeta(m)),
    spare ?? run(['ip', 'netns', 'add', netns]),
  ]);
  if (put.status === 'rejected') {
    if (made.status === 'fulfilled') await run(['ip', 'netns', 'del', netns]).catch(() => {});
    throw put.reason;
  }
  if (made.status === 'rejected') throw made.reason;
  const record: LabPod = {
    namespace: ns,
    name,
    node: node.name,
    netns,
    containerId,
    uid: randomUUID(),
    labels: m.metadata.labels ?? {},
    manifest: m,
    containers: [],
    createdAt: new Date().toISOString(),
    ...(owner ? { owner } : {}),
  };
  s.pods[key] = record;
  try {
    // (The plugin brings the namespace's loopback up.)
    const t0 = performance.now();
    const result = (await cni(s, node, 'ADD', record)) as { ips?: { address: string }[] };
    record.cniResult = result;
    const ip = result.ips?.find((i) => !i.address.includes(':'))?.address.split('/')[0];
    if (ip) record.ipv4 = ip;
    const ip6 = result.ips?.find((i) => i.address.includes(':'))?.address.split('/')[0];
    if (ip6) record.ipv6 = ip6;
    log(
      `${qualifiedName('Pod', name)} created on ${node.name}, IP ${[ip ?? '-', ip6].filter(Boolean).join(' ')} (CNI ADD ${(performance.now() - t0).toFixed(0)} ms)`,
    );
    const resolv = resolvConfPath(s, record);
    if (resolv) {
      mkdirSync(join(labDir(s.name), 'resolv'), { recursive: true });
      writeFileSync(resolv, podResolvConf({ namespace: ns, nameservers: [CLUSTER_DNS_IP] }));
    }
    for (const [i, c] of m.spec.containers.entries()) record.containers.push(startContainer(s, record, c, i));
  } catch (err) {
    await finalizePod(s, record, () => {}).catch(() => {});
    throw err;
  }
  return record;
}

/** Every container of the pod runs (the lab has no readiness probes: running is ready). */
export function podRunning(p: LabPod): boolean[] {
  return p.containers.map((c) => isRunning(c));
}

/** What the endpoint controller sees of a pod now. */
export function podView(p: LabPod): PodView {
  const running = podRunning(p);
  const ready = running.length > 0 && running.every(Boolean);
  return {
    namespace: p.namespace,
    name: p.name,
    uid: p.uid ?? p.containerId,
    labels: p.labels,
    spec: (p.manifest?.spec as PodSpec | undefined) ?? { containers: [] },
    nodeName: p.node,
    ...(p.ipv4 ? { ip: p.ipv4 } : {}),
    ready,
    terminating: p.deletion !== undefined,
    terminal: !ready,
  };
}

/**
 * Deletes a pod as the kubelet does: SIGTERM to its containers' processes now, its endpoints
 * terminating; finalizePod ends it when they have exited or the grace period is over.
 */
export function terminatePod(p: LabPod, graceSeconds?: number): void {
  if (p.deletion) return;
  const grace =
    graceSeconds ??
    (p.manifest?.spec as PodSpec | undefined)?.terminationGracePeriodSeconds ??
    DEFAULT_GRACE_SECONDS;
  p.deletion = { at: new Date().toISOString(), graceSeconds: grace };
  for (const c of p.containers) {
    if (!isRunning(c)) continue;
    try {
      process.kill(c.pid, 'SIGTERM');
    } catch {
      // gone meanwhile
    }
  }
}

/** A terminating pod whose processes have all exited, or whose grace period is over. */
export function finalizeDue(p: LabPod, now = Date.now()): boolean {
  if (!p.deletion) return false;
  if (now >= Date.parse(p.deletion.at) + p.deletion.graceSeconds * 1000) return true;
  return !p.containers.some((c) => isRunning(c));
}

/** Ends a pod: SIGKILL whatever still runs, CNI DEL, the agent forgets it, the namespace goes. */
export async function finalizePod(s: LabState, p: LabPod, log: Log): Promise<void> {
  for (const c of p.containers) killRecorded(c);
  const node = s.nodes.find((n) => n.name === p.node);
  if (node) {
    try {
      await cni(s, node, 'DEL', p, p.cniResult);
    } catch (err) {
      log(`warning: ${(err as Error).message}`);
    }
    await client(s, node.name)
      .deletePod(p.namespace, p.name)
      .catch(() => {});
  }
  await run(['ip', 'netns', 'del', p.netns]).catch(() => {});
  const resolv = resolvConfPath(s, p);
  if (resolv) rmSync(resolv, { force: true });
  delete s.pods[podKey(p.namespace, p.name)];
}
