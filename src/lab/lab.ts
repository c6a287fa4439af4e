/**
 * The lab: a local cluster on this machine. Each node is a network namespace running its own
 * agent; pods are network namespaces wired by the CNI plugin exactly as a container runtime would
 * call it; a "world" namespace plays the outside world and joins the nodes on an underlay bridge.
 * All traffic stays inside namespaces the lab created. `down` removes everything, also after a
 * crash (it finds leftovers by name prefix).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { agentSocketPath } from '../agent/config.js';
import { AgentApi } from '../api/client.js';
import type { EndpointView } from '../api/types.js';
import { cliPath, distRoot } from '../common/paths.js';
import { run } from '../datapath/linux/index.js';
import { ClusterPool } from '../ipam/index.js';
import {
  type Manifests,
  POLICY_KINDS,
  type Pod,
  podNamedPorts,
  podNamespace,
  policyRefOf,
} from '../k8s/objects.js';
import {
  AGENT_HUBBLE_PORT,
  AGENT_METRICS_PORT,
  ensureForwarder,
  formatAddresses,
  nodeAddresses,
} from './forwarder.js';
import { isRunning, killRecorded, type ProcessRef, processRef } from './process.js';
import {
  applyResult,
  canonical,
  endpointObject,
  type KObject,
  namespaceObject,
  nodeObject,
  type Observed,
  POLICIES,
  podObject,
  policyObject,
  qualifiedName,
  qualifiedType,
  type ResourceType,
} from './resources.js';
import {
  LAB_NAME,
  type LabContainer,
  type LabNode,
  type LabPod,
  type LabState,
  labDir,
  loadLab,
  netnsPrefix,
  podKey,
  saveLab,
} from './state.js';

export class LabError extends Error {}

export type Log = (line: string) => void;

const UNDERLAY = '192.168.211';
const WORLD_IP = `${UNDERLAY}.254`;
const CLUSTER_POOL = '10.200.0.0/16';
const CNI_PLUGIN = join(distRoot, 'src', 'cni', 'plugin.js');

export function checkLabName(name: string): void {
  if (!LAB_NAME.test(name))
    throw new LabError(`--name: "${name}" must be 1-12 lowercase letters, digits or '-'`);
}

/** Serialises lab commands: one lab mutation at a time. */
function withLock<T>(lab: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(labDir(lab), { recursive: true });
  const lock = join(labDir(lab), 'lock');
  // Written first and linked into place, so the lock never exists without its holder's identity.
  const mine = `${lock}.${process.pid}`;
  writeFileSync(mine, JSON.stringify(processRef(process.pid)));
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      try {
        linkSync(mine, lock);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const holder = lockHolder(lock);
        if (!isRunning(holder)) {
          rmSync(lock, { force: true });
          continue;
        }
        if (Date.now() > deadline) throw new LabError(`lab ${lab} is busy (locked by pid ${holder?.pid})`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      }
    }
  } finally {
    rmSync(mine, { force: true });
  }
  return fn().finally(() => rmSync(lock, { force: true }));
}

function lockHolder(lock: string): ProcessRef | undefined {
  try {
    return JSON.parse(readFileSync(lock, 'utf8')) as ProcessRef;
  } catch {
    return undefined;
  }
}

function nsPath(name: string): string {
  return `/run/netns/${name}`;
}

export interface UpOptions {
  name: string;
  nodes: number;
  log: Log;
}

/** Creates the lab (idempotent: an existing lab with its agents running is left as it is). */
export async function up(o: UpOptions): Promise<LabState> {
  checkLabName(o.name);
  if (o.nodes < 1 || o.nodes > 8) throw new LabError('--nodes: must be between 1 and 8');
  return withLock(o.name, async () => {
    let s = loadLab(o.name);
    if (s && s.nodes.length !== o.nodes) {
      throw new LabError(
        `lab ${o.name} exists with ${s.nodes.length} node(s); 'lab down --name ${o.name}' first to change it`,
      );
    }
    const prefix = netnsPrefix(o.name);
    if (!s) {
      s = {
        name: o.name,
        createdAt: new Date().toISOString(),
        world: { netns: `${prefix}world`, ip: WORLD_IP },
        nodes: [],
        namespaces: {
          default: {
            labels: { 'kubernetes.io/metadata.name': 'default' },
            createdAt: new Date().toISOString(),
          },
        },
        pods: {},
        policies: [],
        nextNode: 0,
      };
      const pool = new ClusterPool({ ipv4: { cidr: CLUSTER_POOL, nodeMaskSize: 24 } });
      for (let i = 1; i <= o.nodes; i++) {
        const name = `node${i}`;
        const cidr = pool.allocateNode(name).ipv4!;
        s.nodes.push({ name, netns: `${prefix}${name}`, underlayIp: `${UNDERLAY}.${i}`, podCidrV4: cidr });
      }
      saveLab(s);
    }
    await ensureWorld(s, o.log);
    for (const n of s.nodes) await ensureNode(s, n, o.log);
    saveLab(s);
    for (const n of s.nodes) await ensureAgent(s, n, o.log);
    saveLab(s);
    for (const n of s.nodes) n.forwarder = await ensureForwarder(s, n);
    saveLab(s);
    // Namespaces the lab knows are pushed to (possibly restarted) agents.
    for (const [ns, { labels }] of Object.entries(s.namespaces))
      await forAllAgents(s, (c) => c.putNamespace(ns, { labels }));
    o.log(
      `lab ${s.name} is up: ${s.nodes.map((n) => `${n.name} (${n.podCidrV4})`).join(', ')}; world ${WORLD_IP}`,
    );
    for (const line of formatAddresses(s)) o.log(line);
    return s;
  });
}

async function exists(netns: string): Promise<boolean> {
  return existsSync(nsPath(netns));
}

async function ensureWorld(s: LabState, log: Log): Promise<void> {
  const w = s.world.netns;
  if (await exists(w)) return;
  log(`creating world namespace ${w} (${WORLD_IP}) with the underlay bridge`);
  await run(['ip', 'netns', 'add', w]);
  await run(['ip', '-n', w, 'link', 'set', 'lo', 'up']);
  await run(['ip', '-n', w, 'link', 'add', 'br0', 'type', 'bridge']);
  await run(['ip', '-n', w, 'addr', 'add', `${WORLD_IP}/24`, 'dev', 'br0']);
  await run(['ip', '-n', w, 'link', 'set', 'br0', 'up']);
}

async function ensureNode(s: LabState, n: LabNode, log: Log): Promise<void> {
  if (await exists(n.netns)) return;
  log(`creating node ${n.name}: namespace ${n.netns}, underlay ${n.underlayIp}, pod CIDR ${n.podCidrV4}`);
  const idx = n.name.replace('node', '');
  await run(['ip', 'netns', 'add', n.netns]);
  await run([
    'ip',
    'link',
    'add',
    'eth0',
    'netns',
    n.netns,
    'type',
    'veth',
    'peer',
    'name',
    `n${idx}`,
    'netns',
    s.world.netns,
  ]);
  await run(['ip', '-n', s.world.netns, 'link', 'set', `n${idx}`, 'master', 'br0', 'up']);
  const batch = [
    'link set lo up',
    `addr add ${n.underlayIp}/24 dev eth0`,
    'link set eth0 up',
    `route add default via ${WORLD_IP} dev eth0`,
  ].join('\n');
  await run(['ip', '-n', n.netns, '-batch', '-'], { input: `${batch}\n` });
  await run(['ip', '-n', s.world.netns, 'route', 'replace', n.podCidrV4, 'via', n.underlayIp]);
  await run([
    'nsenter',
    `--net=${nsPath(n.netns)}`,
    'sh',
    '-c',
    'echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding',
  ]);
}

async function ensureAgent(s: LabState, n: LabNode, log: Log): Promise<void> {
  if (isRunning(agentRef(n))) {
    try {
      await new AgentApi(agentSocketPath(s.name, n.name), 2000).healthz();
      return;
    } catch {
      // not answering: restart it below
    }
  }
  await startAgent(s, n, log);
}

/** Starts (or restarts) a node's agent inside the node's namespace and waits until it answers. */
export async function startAgent(s: LabState, n: LabNode, log: Log): Promise<void> {
  const dir = join(labDir(s.name), n.name);
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'agent.log');
  const out = openSync(logFile, 'a');
  const args = [
    `--net=${nsPath(n.netns)}`,
    '--',
    process.execPath,
    cliPath,
    'agent',
    '--lab',
    s.name,
    '--node',
    n.name,
    '--pod-cidr',
    n.podCidrV4,
    '--node-ip',
    n.underlayIp,
    // Fixed ports inside the node's namespace, so the forwarder reaches a restarted agent too.
    '--hubble-port',
    String(AGENT_HUBBLE_PORT),
    '--metrics-port',
    String(AGENT_METRICS_PORT),
  ];
  const child = spawn('nsenter', args, { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  const ref = processRef(child.pid!);
  n.agentPid = ref.pid;
  n.agentStartTime = ref.startTime;
  log(`started agent on ${n.name} (pid ${child.pid}, log ${logFile})`);
  const api = new AgentApi(agentSocketPath(s.name, n.name), 2000);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await api.healthz()).ok) return;
    } catch {
      // not listening yet
    }
    if (!isRunning(ref))
      throw new LabError(`agent on ${n.name} exited during start-up; see ${logFile}:\n${tail(logFile)}`);
    if (Date.now() > deadline)
      throw new LabError(`agent on ${n.name} did not become ready in 30 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string, lines = 8): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The node's agent process as recorded when it was started. */
export function agentRef(n: LabNode): ProcessRef | undefined {
  return n.agentPid
    ? { pid: n.agentPid, ...(n.agentStartTime ? { startTime: n.agentStartTime } : {}) }
    : undefined;
}

function client(s: LabState, node: string): AgentApi {
  return new AgentApi(agentSocketPath(s.name, node));
}

async function forAllAgents(s: LabState, fn: (c: AgentApi, n: LabNode) => Promise<unknown>): Promise<void> {
  await Promise.all(s.nodes.map((n) => fn(client(s, n.name), n)));
}

export function requireLab(name: string): LabState {
  checkLabName(name);
  const s = loadLab(name);
  if (!s) throw new LabError(`lab ${name} does not exist; create it with 'cilium-ts lab up --name ${name}'`);
  return s;
}

// ---- apply / delete ----

export async function apply(lab: string, m: Manifests, log: Log): Promise<void> {
  if (m.other.length) {
    throw new LabError(
      `unsupported kind(s): ${m.other.map((o) => `${o.kind} (document ${o.document + 1})`).join(', ')}`,
    );
  }
  return withLock(lab, async () => {
    const s = requireLab(lab);
    // Validate every policy first, on one agent: a rejected file applies nothing.
    if (m.policies.length) {
      const v = await client(s, s.nodes[0]!.name).validatePolicies({ documents: m.policies });
      if (!v.valid) {
        throw new LabError(
          `policy rejected, nothing applied:\n${v.issues.map((i) => `  document ${i.document + 1}${i.kind ? ` (${i.kind} ${i.name ?? ''})` : ''}: ${i.path}: ${i.message}`).join('\n')}`,
        );
      }
    }
    for (const pod of m.pods) {
      const ns = podNamespace(pod);
      const what = `pod ${ns}/${pod.metadata.name}`;
      const known = s.namespaces[ns] || m.namespaces.some((n) => n.metadata.name === ns);
      if (!known) throw new LabError(`${what}: namespace "${ns}" not found`);
      const held = s.pods[podKey(ns, pod.metadata.name)];
      if (held) {
        // As in Kubernetes, a pod's spec is immutable (only its labels and annotations may change).
        if (held.manifest && canonical(held.manifest.spec) !== canonical(pod.spec))
          throw new LabError(
            `${what}: spec: Forbidden: pod updates may not change fields other than metadata (delete the pod and apply it again)`,
          );
        continue;
      }
      if (pod.spec.nodeName && !s.nodes.some((n) => n.name === pod.spec.nodeName)) {
        throw new LabError(
          `${what}: spec.nodeName: node "${pod.spec.nodeName}" does not exist (nodes: ${s.nodes.map((n) => n.name).join(', ')})`,
        );
      }
      for (const [i, c] of pod.spec.containers.entries()) containerArgv(what, c, i);
    }
    for (const n of m.namespaces) {
      const name = n.metadata.name;
      const labels = { ...(n.metadata.labels ?? {}), 'kubernetes.io/metadata.name': name };
      const held = s.namespaces[name];
      const result = applyResult(held?.labels, labels);
      if (result !== 'unchanged') {
        await forAllAgents(s, (c) => c.putNamespace(name, { labels }));
        s.namespaces[name] = { labels, createdAt: held?.createdAt ?? new Date().toISOString() };
        saveLab(s);
      }
      log(`${qualifiedName('Namespace', name)} ${result}`);
    }
    // Policies: one update with every new or changed document; unchanged ones are not re-sent.
    const results = m.policies.map((doc) => {
      const ref = policyRefOf(doc);
      const held = s.policies.find((x) => sameRef(x, ref));
      return { doc, ref, held, result: applyResult(held?.doc, doc) };
    });
    const changed = results.filter((r) => r.result !== 'unchanged');
    if (changed.length) {
      await forAllAgents(s, (c) => c.importPolicies({ documents: changed.map((r) => r.doc) }));
      for (const { doc, ref, held } of changed) {
        s.policies = s.policies.filter((x) => !sameRef(x, ref));
        s.policies.push({ ...ref, createdAt: held?.createdAt ?? new Date().toISOString(), doc });
      }
      saveLab(s);
    }
    for (const r of results) log(`${qualifiedName(r.ref.kind, r.ref.name)} ${r.result}`);
    for (const pod of m.pods) {
      await applyPod(s, pod, log);
      saveLab(s);
    }
  });
}

function sameRef(a: { kind: string; namespace: string; name: string }, b: typeof a): boolean {
  return a.kind === b.kind && a.namespace === b.namespace && a.name === b.name;
}

async function applyPod(s: LabState, pod: Pod, log: Log): Promise<void> {
  const ns = podNamespace(pod);
  const name = pod.metadata.name;
  const key = podKey(ns, name);
  const labels = pod.metadata.labels ?? {};
  const meta = {
    labels,
    namedPorts: podNamedPorts(pod),
    ...(pod.spec.serviceAccountName ? { serviceAccount: pod.spec.serviceAccountName } : {}),
  };
  const manifest = { metadata: { ...pod.metadata, namespace: ns }, spec: { ...pod.spec } };
  const existing = s.pods[key];
  if (existing) {
    // Only metadata can change (apply checked the spec); new labels give the pod a new identity.
    const result = existing.manifest
      ? applyResult(existing.manifest, manifest)
      : applyResult(existing.labels, labels);
    if (result === 'configured') {
      if (canonical(existing.labels) !== canonical(labels))
        await client(s, existing.node).putPod(ns, name, meta);
      existing.labels = labels;
      existing.manifest = manifest;
    }
    log(`${qualifiedName('Pod', name)} ${result}`);
    return;
  }
  const node = pod.spec.nodeName
    ? s.nodes.find((n) => n.name === pod.spec.nodeName)!
    : s.nodes[s.nextNode++ % s.nodes.length]!;
  const containerId = createHash('sha256')
    .update(`${s.name}/${key}/${randomBytes(8).toString('hex')}`)
    .digest('hex');
  const netns = `${netnsPrefix(s.name)}p${containerId.slice(0, 10)}`;
  await client(s, node.name).putPod(ns, name, meta);
  await run(['ip', 'netns', 'add', netns]);
  const record: LabPod = {
    namespace: ns,
    name,
    node: node.name,
    netns,
    containerId,
    labels,
    manifest,
    containers: [],
    createdAt: new Date().toISOString(),
  };
  s.pods[key] = record;
  try {
    await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
    const t0 = performance.now();
    const result = (await cni(s, node, 'ADD', record)) as { ips?: { address: string }[] };
    record.cniResult = result;
    const ip = result.ips?.find((i) => !i.address.includes(':'))?.address.split('/')[0];
    if (ip) record.ipv4 = ip;
    log(
      `${qualifiedName('Pod', name)} created on ${node.name}, IP ${ip ?? '-'} (CNI ADD ${(performance.now() - t0).toFixed(0)} ms)`,
    );
    for (const [i, c] of pod.spec.containers.entries())
      record.containers.push(startContainer(s, record, c, i));
  } catch (err) {
    await removePod(s, record, () => {}).catch(() => {});
    throw err;
  }
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
  const r = spawnSync('nsenter', [`--net=${nsPath(node.netns)}`, '--', process.execPath, CNI_PLUGIN], {
    env,
    input: JSON.stringify(conf),
    encoding: 'utf8',
    timeout: 60_000,
  });
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

type Container = Pod['spec']['containers'][number];

function containerPath(c: Container): string {
  return c.env?.find((e) => e.name === 'PATH')?.value ?? process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
}

/**
 * The argv a container runs (`cilium-ts` means this project's CLI). Like a container runtime, it
 * refuses a program that cannot be executed, before anything is created.
 */
function containerArgv(what: string, c: Container, index: number): string[] {
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  const field = `spec.containers[${index}].${c.command?.length ? 'command' : 'args'}[0]`;
  if (argv.length === 0)
    throw new LabError(
      `${what}: spec.containers[${index}].command: required (the lab runs processes, not images)`,
    );
  if (argv[0] === 'cilium-ts') return [process.execPath, cliPath, ...argv.slice(1)];
  if (!findExecutable(argv[0]!, containerPath(c)))
    throw new LabError(`${what}: ${field}: "${argv[0]}": executable file not found in $PATH`);
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
  // `--` ends nsenter's options: a command starting with "--net=..." is a program name, not an option.
  const child = spawn('nsenter', [`--net=${nsPath(pod.netns)}`, '--', ...resolved], {
    detached: true,
    stdio: ['ignore', out, out],
    env,
  });
  closeSync(out);
  child.unref();
  return { name: c.name, ...processRef(child.pid!), log: logFile };
}

export async function deleteManifests(lab: string, m: Manifests, log: Log): Promise<void> {
  return withLock(lab, async () => {
    const s = requireLab(lab);
    for (const pod of m.pods) {
      const key = podKey(podNamespace(pod), pod.metadata.name);
      const p = s.pods[key];
      if (!p) {
        log(`pods "${pod.metadata.name}" not found`);
        continue;
      }
      await removePod(s, p, log);
      saveLab(s);
    }
    if (m.policies.length) {
      const refs = m.policies.map(policyRefOf);
      await forAllAgents(s, (c) => c.deletePolicies({ refs }));
      s.policies = s.policies.filter(
        (x) => !refs.some((r) => r.kind === x.kind && r.namespace === x.namespace && r.name === x.name),
      );
      for (const r of refs) log(`${qualifiedType(r.kind)} "${r.name}" deleted`);
      saveLab(s);
    }
    for (const n of m.namespaces) {
      const name = n.metadata.name;
      for (const p of Object.values(s.pods)) if (p.namespace === name) await removePod(s, p, log);
      delete s.namespaces[name];
      log(`namespace "${name}" deleted`);
      saveLab(s);
    }
  });
}

async function removePod(s: LabState, p: LabPod, log: Log): Promise<void> {
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
  delete s.pods[podKey(p.namespace, p.name)];
  log(`pod "${p.name}" deleted`);
}

// ---- exec / get ----

/** The lab's objects of one type, as kubectl would show them (namespace undefined: all of them). */
export async function getObjects(s: LabState, type: ResourceType, namespace?: string): Promise<KObject[]> {
  const inNs = (ns: string) => namespace === undefined || ns === namespace;
  const observed: Observed = {
    running: (p) => p.containers.map((c) => isRunning(c)),
    nodeReady: (n) => isRunning(agentRef(n)),
    addresses: (n) => nodeAddresses(s, n),
  };
  const byName = (a: KObject, b: KObject) =>
    `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(
      `${b.metadata.namespace ?? ''}/${b.metadata.name}`,
    );
  const pods = Object.values(s.pods).filter((p) => inNs(p.namespace));
  switch (type.kind) {
    case 'Pod':
      return pods.map((p) => podObject(s, p, observed)).sort(byName);
    case 'Node':
      return s.nodes.map((n) => nodeObject(s, n, observed));
    case 'Namespace':
      return Object.entries(s.namespaces)
        .map(([name, ns]) => namespaceObject(name, ns.labels, ns.createdAt))
        .sort(byName);
    case 'CiliumEndpoint': {
      const eps = new Map<string, EndpointView>();
      await Promise.all(
        s.nodes.map(async (n) => {
          const list = await client(s, n.name)
            .endpoints()
            .catch(() => [] as EndpointView[]);
          for (const e of list) eps.set(podKey(e.podNamespace, e.podName), e);
        }),
      );
      return pods
        .flatMap((p) => {
          const e = eps.get(podKey(p.namespace, p.name));
          return e ? [endpointObject(s, p, e)] : [];
        })
        .sort(byName);
    }
    default: {
      const kinds = type === POLICIES ? [...POLICY_KINDS] : [type.kind];
      return s.policies
        .filter(
          (p) => kinds.includes(p.kind) && (p.kind === 'CiliumClusterwideNetworkPolicy' || inNs(p.namespace)),
        )
        .map(policyObject)
        .sort(byName);
    }
  }
}

export function findPod(s: LabState, ns: string, name: string): LabPod {
  const p = s.pods[podKey(ns, name)];
  if (!p) throw new LabError(`pod ${ns}/${name} not found in lab ${s.name}`);
  return p;
}

/** Runs a command inside a pod's network namespace with inherited stdio; resolves with its exit code. */
export function exec(s: LabState, ns: string, name: string, argv: string[]): Promise<number> {
  const p = findPod(s, ns, name);
  if (argv.length === 0) throw new LabError('exec: give a command after --');
  const resolved = argv[0] === 'cilium-ts' ? [process.execPath, cliPath, ...argv.slice(1)] : argv;
  const env = { ...process.env, POD_NAME: p.name, POD_NAMESPACE: p.namespace, POD_IP: p.ipv4 ?? '' };
  return new Promise((resolve) => {
    const child = spawn('nsenter', [`--net=${nsPath(p.netns)}`, '--', ...resolved], {
      stdio: 'inherit',
      env,
    });
    child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 + 9 : 1)));
  });
}

// ---- down ----

/** Removes everything a lab made: processes, namespaces, bpffs mounts and state. Works after crashes. */
export async function down(lab: string, log: Log): Promise<void> {
  checkLabName(lab);
  const s = loadLab(lab);
  const prefix = netnsPrefix(lab);
  // Processes the lab recorded: signalled (with their process groups) only while PID and start
  // time still match, so a PID recycled by an unrelated process after a crash is left alone.
  const recorded: (ProcessRef | undefined)[] = [];
  for (const n of s?.nodes ?? []) recorded.push(agentRef(n), n.forwarder);
  for (const p of Object.values(s?.pods ?? {})) recorded.push(...p.containers);
  const stopped = new Set<number>();
  for (const ref of recorded) if (killRecorded(ref)) stopped.add(ref!.pid);
  // Whatever else still runs inside the lab's namespaces (crash leftovers): these belong to the lab
  // by where they run; each is signalled alone, its process group may reach outside.
  const all = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
  for (const ns of all) {
    const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
    for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
        stopped.add(Number(pid));
      } catch {
        // gone meanwhile
      }
    }
  }
  if (stopped.size) log(`stopped ${stopped.size} process(es)`);
  for (const ns of all) spawnSync('ip', ['netns', 'del', ns]);
  if (all.length) log(`deleted ${all.length} network namespace(s)`);
  const dir = labDir(lab);
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${dir}/`));
  for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
  if (mounts.length) log(`unmounted ${mounts.length} bpffs mount(s) (pinned programs and maps released)`);
  rmSync(dir, { recursive: true, force: true });
  try {
    unlinkSync(dir);
  } catch {
    // removed above
  }
  log(`lab ${lab} is down`);
}
