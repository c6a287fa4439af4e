/**
 * The lab: a local cluster on this machine. Each node is a network namespace (and a cgroup) running
 * its own agent; pods are network namespaces wired by the CNI plugin exactly as a container runtime
 * would call it; a "world" namespace plays the outside world and joins the nodes on an underlay
 * bridge. The lab also plays the API server and controllers for Services (IP and port allocation),
 * Deployments and EndpointSlices (controller.ts). All traffic stays inside namespaces the lab
 * created. `down` removes everything, also after a crash (it finds leftovers by name prefix).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { cliPath } from '../common/paths.js';
import { setupBigTcpIpv4 } from '../datapath/big-tcp.js';
import { run } from '../datapath/linux/index.js';
import { ClusterPool, DEFAULT_IPV6_CLUSTER_CIDR, DEFAULT_IPV6_NODE_MASK } from '../ipam/index.js';
import { type Deployment, type Manifests, POLICY_KINDS, podNamespace, policyRefOf } from '../k8s/objects.js';
import { ServiceValidationError } from '../service/errors.js';
import type { Service } from '../service/types.js';
import { parseService } from '../service/validate.js';
import {
  agentRef,
  client,
  ensureAgent,
  forAllAgents,
  type Log,
  startAgent,
  stopAgent,
  syncServicesTo,
} from './agents.js';
import { ETCD_LOCK, ensureEtcd, etcdStart, etcdStatus, etcdStop, removeNode, UNDERLAY } from './cluster.js';
import { clusterDnsManifests, DNS_NAMESPACE, DNS_SERVICE, waitClusterDns } from './cluster-dns.js';
import { ensureController, reconcile } from './controller.js';
import { podTemplateHash } from './deployments.js';
import { LabError } from './errors.js';
import { destroyEtcd, memberRef } from './etcd.js';
import { ensureForwarder, formatAddresses, nodeAddresses } from './forwarder.js';
import { withLock } from './lock.js';
import { ensureNodeCgroup, placedCommand, removeLabCgroups } from './placement.js';
import {
  applyPod,
  checkPodSpec,
  DEFAULT_GRACE_SECONDS,
  finalizeDue,
  makeSpareNetns,
  podPlacement,
  podRunning,
  podView,
  spareNetnsWanted,
  terminatePod,
} from './pods.js';
import { isRunning, killNetnsProcesses, killRecorded, type ProcessRef } from './process.js';
import { ensureRelay, formatRelay } from './relay.js';
import {
  applyResult,
  canonical,
  deploymentObject,
  endpointObject,
  endpointSliceObject,
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
  serviceObject,
} from './resources.js';
import { allocateService } from './service-alloc.js';
import {
  LAB_NAME,
  type LabNode,
  type LabPod,
  type LabState,
  labDir,
  loadLab,
  netnsPrefix,
  podKey,
  ROUTING_MODES,
  type RoutingMode,
  saveLab,
} from './state.js';
import { ensureUi, formatUi } from './ui.js';

export { agentRef, startAgent } from './agents.js';
export { LabError } from './errors.js';
export { cni, findExecutable } from './pods.js';
export type { Log };

const WORLD_IP = `${UNDERLAY.prefix}.254`;
const CLUSTER_POOL = '10.200.0.0/16';
/** Dual-stack labs carve each node's IPv6 pod CIDR from the IPAM's default cluster pool. */
const CLUSTER_POOL_V6 = DEFAULT_IPV6_CLUSTER_CIDR;
/** The underlay's IPv6 prefix in dual-stack labs; the world host answers on ::254 and ::253. */
export const UNDERLAY_V6 = { prefix: 'fd00:192:168:211::', prefixLen: 64 };
export const WORLD_IP_V6 = `${UNDERLAY_V6.prefix}254`;
export const WORLD2_IP_V6 = `${UNDERLAY_V6.prefix}253`;

export function checkLabName(name: string): void {
  if (!LAB_NAME.test(name))
    throw new LabError(`--name: "${name}" must be 1-12 lowercase letters, digits or '-'`, {
      code: 'invalid-argument',
      field: '--name',
    });
}

function nsPath(name: string): string {
  return `/run/netns/${name}`;
}

export interface UpOptions {
  name: string;
  nodes: number;
  /** Run cluster DNS (a system pod behind the kube-dns Service on 10.96.0.10). */
  dns?: boolean;
  /** Members of the lab's etcd (more than one node): 1 (default) or 3. */
  etcdMembers?: number;
  /** TTL of the agents' etcd leases in seconds (more than one node): a dead agent's keys go this long after. */
  kvstoreLeaseTtl?: number;
  /** How nodes reach other nodes' pods (more than one node): vxlan (default) or native. */
  routingMode?: string;
  /**
   * Dual stack (the default for a new lab): every node gets an IPv6 pod CIDR too and pods an IPv6
   * address beside the IPv4 one; false makes an IPv4-only lab. Unset keeps an existing lab's.
   */
  ipv6?: boolean;
  log: Log;
}

/** Checks the cluster options before anything is made; returns the routing mode for a new lab. */
function checkClusterOptions(o: UpOptions): RoutingMode | undefined {
  if (o.kvstoreLeaseTtl !== undefined) {
    const field = '--kvstore-lease-ttl';
    if (o.nodes === 1)
      throw new LabError(`${field}: a lab of one node keeps its state in memory; give --nodes 2 or more`, {
        code: 'invalid-argument',
        field,
      });
    if (!Number.isInteger(o.kvstoreLeaseTtl) || o.kvstoreLeaseTtl < 2 || o.kvstoreLeaseTtl > 86400)
      throw new LabError(`${field}: ${o.kvstoreLeaseTtl}; give whole seconds from 2 to 86400`, {
        code: 'invalid-argument',
        field,
      });
  }
  if (o.etcdMembers !== undefined) {
    if (o.nodes === 1)
      throw new LabError(
        '--etcd-members: a lab of one node keeps its state in memory; give --nodes 2 or more',
        {
          code: 'invalid-argument',
          field: '--etcd-members',
        },
      );
    if (o.etcdMembers !== 1 && o.etcdMembers !== 3)
      throw new LabError(`--etcd-members: ${o.etcdMembers}; give 1 or 3 (an odd number keeps a majority)`, {
        code: 'invalid-argument',
        field: '--etcd-members',
      });
  }
  if (o.routingMode === undefined) return o.nodes > 1 ? 'vxlan' : undefined;
  if (!ROUTING_MODES.includes(o.routingMode as RoutingMode))
    throw new LabError(`--routing-mode: "${o.routingMode}"; expected ${ROUTING_MODES.join(' or ')}`, {
      code: 'invalid-argument',
      field: '--routing-mode',
    });
  if (o.nodes === 1)
    throw new LabError(
      '--routing-mode: a lab of one node has no other node to route to; give --nodes 2 or more',
      {
        code: 'invalid-argument',
        field: '--routing-mode',
      },
    );
  return o.routingMode as RoutingMode;
}

/** Creates the lab (idempotent: an existing lab with its agents running is left as it is). */
export async function up(o: UpOptions): Promise<LabState> {
  checkLabName(o.name);
  if (o.nodes < 1 || o.nodes > 8)
    throw new LabError('--nodes: must be between 1 and 8', { code: 'invalid-argument', field: '--nodes' });
  const routingMode = checkClusterOptions(o);
  return withLock(o.name, async () => {
    let s = loadLab(o.name);
    if (s && s.nodes.length !== o.nodes) {
      throw new LabError(
        `lab ${o.name} exists with ${s.nodes.length} node(s); 'lab down --name ${o.name}' first to change it`,
      );
    }
    if (s?.etcd && o.etcdMembers !== undefined && s.etcd.members.length !== o.etcdMembers)
      throw new LabError(
        `lab ${o.name} runs etcd with ${s.etcd.members.length} member(s); 'lab down --name ${o.name}' first to change it`,
      );
    if (s && o.routingMode !== undefined && s.routingMode !== o.routingMode)
      throw new LabError(
        `lab ${o.name} routes with ${s.routingMode ?? 'no routing mode'}; 'lab down --name ${o.name}' first to change it`,
      );
    if (s && o.ipv6 !== undefined && (s.ipv6 === true) !== o.ipv6)
      throw new LabError(
        `lab ${o.name} is ${s.ipv6 ? 'dual-stack' : 'IPv4 only'}; 'lab down --name ${o.name}' first to change --ipv6`,
        { code: 'invalid-argument', field: '--ipv6' },
      );
    const prefix = netnsPrefix(o.name);
    if (!s) {
      const ipv6 = o.ipv6 ?? true;
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
        deployments: {},
        services: {},
        endpointSlices: {},
        ...(routingMode ? { routingMode } : {}),
        ...(ipv6 ? { ipv6: true } : {}),
      };
      const pool = new ClusterPool({
        ipv4: { cidr: CLUSTER_POOL, nodeMaskSize: 24 },
        ...(ipv6 ? { ipv6: { cidr: CLUSTER_POOL_V6, nodeMaskSize: DEFAULT_IPV6_NODE_MASK } } : {}),
      });
      for (let i = 1; i <= o.nodes; i++) {
        const name = `node${i}`;
        const cidrs = pool.allocateNode(name);
        s.nodes.push({
          name,
          netns: `${prefix}${name}`,
          underlayIp: `${UNDERLAY.prefix}.${i}`,
          podCidrV4: cidrs.ipv4!,
          ...(cidrs.ipv6 ? { podCidrV6: cidrs.ipv6, underlayIpV6: `${UNDERLAY_V6.prefix}${i}` } : {}),
        });
      }
      saveLab(s);
    }
    if (o.dns) s.dns = { enabled: true };
    // Agents started from now on (a resumed lab's running agents keep theirs until restarted).
    if (o.kvstoreLeaseTtl !== undefined) s.kvstoreLeaseTtlSeconds = o.kvstoreLeaseTtl;
    const underlayRecreated = await ensureWorld(s, o.log);
    // A cluster's agents need etcd before they start (it holds identities and nodes).
    if (s.nodes.length > 1 || s.etcd) {
      await ensureEtcd(s, { members: o.etcdMembers ?? 1, underlayRecreated, log: o.log });
      saveLab(s);
    }
    for (const n of s.nodes) {
      await ensureNode(s, n, o.log);
      const cg = ensureNodeCgroup(s.name, n.name);
      if (cg) n.cgroup = cg;
    }
    saveLab(s);
    const started: LabNode[] = [];
    for (const n of s.nodes) if (await ensureAgent(s, n, o.log)) started.push(n);
    saveLab(s);
    for (const n of s.nodes) n.forwarder = await ensureForwarder(s, n);
    if (s.etcd) s.relay = await ensureRelay(s);
    s.ui = await ensureUi(s).catch((err: unknown) => {
      o.log(`warning: hubble ui: ${(err as Error).message}`);
      return undefined;
    });
    ensureController(s);
    saveLab(s);
    // Namespaces the lab knows are pushed to (possibly restarted) agents; services and slices too.
    for (const [ns, { labels }] of Object.entries(s.namespaces))
      await forAllAgents(s, (c) => c.putNamespace(ns, { labels }));
    if (s.dns?.enabled) await applyLocked(s, clusterDnsManifests(s), () => {});
    const [spares] = await Promise.all([makeSpareNetns(s.name, spareNetnsWanted(s)), reconcile(s, o.log)]);
    s.spareNetns = [...(s.spareNetns ?? []), ...spares];
    saveLab(s);
    if (s.dns?.enabled) await waitClusterDns(s);
    o.log(
      `lab ${s.name} is up: ${s.nodes.map((n) => `${n.name} (${[n.podCidrV4, n.podCidrV6].filter(Boolean).join(' ')})`).join(', ')}; world ${WORLD_IP}`,
    );
    if (s.dns?.enabled) {
      const dns = s.services[podKey(DNS_NAMESPACE, DNS_SERVICE)]?.object.spec.clusterIP;
      o.log(`cluster DNS: ${DNS_NAMESPACE}/${DNS_SERVICE} on ${dns} (zone cluster.local)`);
    }
    for (const line of formatAddresses(s)) o.log(line);
    if (s.relay) o.log(formatRelay(s.relay));
    if (s.ui) o.log(formatUi(s.ui));
    return s;
  });
}

/** Creates the world namespace with the underlay bridge unless it exists; true when it created it. */
async function ensureWorld(s: LabState, log: Log): Promise<boolean> {
  const w = s.world.netns;
  if (existsNetns(w)) {
    await enableForwarding(w);
    return false;
  }
  log(`creating world namespace ${w} (${WORLD_IP}) with the underlay bridge`);
  await run(['ip', 'netns', 'add', w]);
  await run(['ip', '-n', w, 'link', 'set', 'lo', 'up']);
  await run(['ip', '-n', w, 'link', 'add', UNDERLAY.bridge, 'type', 'bridge']);
  await run(['ip', '-n', w, 'addr', 'add', `${WORLD_IP}/${UNDERLAY.prefixLen}`, 'dev', UNDERLAY.bridge]);
  await run(['ip', '-n', w, 'link', 'set', UNDERLAY.bridge, 'up']);
  await enableForwarding(w);
  // A new world has none of the routes the lab had made in an old one.
  s.worldRoutes = [];
  return true;
}

/** Nodes forward for their pods; the world routes between nodes (to another node's pod CIDR). */
async function enableForwarding(netns: string): Promise<void> {
  await run([
    'nsenter',
    `--net=${nsPath(netns)}`,
    'sh',
    '-c',
    'echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding',
  ]);
}

function existsNetns(netns: string): boolean {
  return existsSync(nsPath(netns));
}

async function ensureNode(s: LabState, n: LabNode, log: Log): Promise<void> {
  if (existsNetns(n.netns)) return;
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
  await run(['ip', '-n', s.world.netns, 'link', 'set', `n${idx}`, 'master', UNDERLAY.bridge, 'up']);
  // The underlay's switch port takes BIG TCP's packets (what a node sends with it on, see agents.ts).
  setupBigTcpIpv4([`n${idx}`], nsPath(s.world.netns));
  const batch = [
    'link set lo up',
    `addr add ${n.underlayIp}/${UNDERLAY.prefixLen} dev eth0`,
    'link set eth0 up',
    `route add default via ${WORLD_IP} dev eth0`,
  ].join('\n');
  await run(['ip', '-n', n.netns, '-batch', '-'], { input: `${batch}\n` });
  await run(['ip', '-n', s.world.netns, 'route', 'replace', n.podCidrV4, 'via', n.underlayIp]);
  if (n.podCidrV6 && n.underlayIpV6) await ensureUnderlayV6(s, n, n.underlayIpV6);
  await enableForwarding(n.netns);
}

/**
 * Dual stack: the underlay carries IPv6 too (UNDERLAY_V6, node N at ::N, the world at ::254 and
 * ::253), so pods reach the world over IPv6, the world routes to each node's IPv6 pod CIDR and in
 * native routing the agents route other nodes' IPv6 pod CIDRs via their IPv6 underlay address.
 */
async function ensureUnderlayV6(s: LabState, n: LabNode, mine: string): Promise<void> {
  const w = s.world.netns;
  // The second address is deprecated (preferred_lft 0): it answers, but the world's own traffic
  // leaves from ::254 as it leaves from .254 over IPv4 (source-based CIDR rules tell them apart).
  for (const [a, extra] of [
    [WORLD_IP_V6, []],
    [WORLD2_IP_V6, ['preferred_lft', '0']],
  ] as const)
    await run([
      'ip',
      '-n',
      w,
      'addr',
      'replace',
      `${a}/${UNDERLAY_V6.prefixLen}`,
      'dev',
      UNDERLAY.bridge,
      'nodad',
      ...extra,
    ]);
  const batch = [
    `addr replace ${mine}/${UNDERLAY_V6.prefixLen} dev eth0 nodad`,
    `route replace default via ${WORLD_IP_V6} dev eth0`,
  ].join('\n');
  await run(['ip', '-n', n.netns, '-batch', '-'], { input: `${batch}\n` });
  await run(['ip', '-n', w, '-6', 'route', 'replace', n.podCidrV6!, 'via', mine]);
}

export function requireLab(name: string): LabState {
  checkLabName(name);
  const s = loadLab(name);
  if (!s) throw new LabError(`lab ${name} does not exist; create it with 'cilium-ts lab up --name ${name}'`);
  return s;
}

/** Restarts the agents of the given nodes (all when none is given); they get the lab's objects again. */
export async function restartAgents(lab: string, nodes: readonly string[], log: Log): Promise<void> {
  return withLock(lab, async () => {
    const s = requireLab(lab);
    for (const name of nodes)
      if (!s.nodes.some((n) => n.name === name))
        throw new LabError(`node "${name}" not found (nodes: ${s.nodes.map((n) => n.name).join(', ')})`, {
          code: 'not-found',
        });
    for (const n of s.nodes.filter((x) => nodes.length === 0 || nodes.includes(x.name))) {
      await stopAgent(n);
      await startAgent(s, n, log);
      saveLab(s);
      for (const [ns, { labels }] of Object.entries(s.namespaces))
        await client(s, n.name).putNamespace(ns, { labels });
      await syncServicesTo(s, n);
    }
  });
}

/**
 * `lab etcd stop|start|status [--member NAME...]` (stop and start return once done). Only the etcd
 * lock is taken, not the lab's: etcd can be started while an apply waits for it.
 */
export async function etcd(
  lab: string,
  action: 'stop' | 'start' | 'status',
  members: readonly string[],
  log: Log,
): Promise<void> {
  return withLock(
    lab,
    async () => {
      const s = requireLab(lab);
      if (action === 'stop') await etcdStop(s, members, log);
      else if (action === 'start') await etcdStart(s, members, log);
      else await etcdStatus(s, log);
    },
    ETCD_LOCK,
  );
}

/** `lab node remove NODE` (see cluster.ts). */
export async function removeLabNode(lab: string, node: string, log: Log): Promise<void> {
  return withLock(lab, async () => removeNode(requireLab(lab), node, log));
}

// ---- apply / delete / scale ----

/** EndpointSlices are the lab's to write; other kinds are named as unsupported. */
function refuseKinds(m: Manifests): void {
  const slices = m.other.filter((o) => o.kind === 'EndpointSlice');
  if (slices.length)
    throw new LabError(
      `EndpointSlice (document ${slices[0]!.document + 1}): the lab's endpoint controller writes EndpointSlices from Services with a selector and their pods; apply the Service and pods instead`,
      { code: 'invalid-argument', field: 'kind' },
    );
  if (m.other.length) {
    throw new LabError(
      `unsupported kind(s): ${m.other.map((o) => `${o.kind} (document ${o.document + 1})`).join(', ')}`,
      { code: 'invalid-argument', field: 'kind' },
    );
  }
}

export async function apply(lab: string, m: Manifests, log: Log): Promise<void> {
  refuseKinds(m);
  return withLock(lab, async () => {
    const s = requireLab(lab);
    ensureController(s);
    await applyLocked(s, m, log);
  });
}

function invalid(message: string, field: string): LabError {
  return new LabError(message, { code: 'invalid-argument', field });
}

/** Services as the API server stores them, or the error naming the field (nothing applied). */
function planServices(s: LabState, m: Manifests, knownNs: (ns: string) => boolean) {
  const planned = new Map<string, { manifest: Record<string, unknown>; object: Service; result: string }>();
  for (const raw of m.services) {
    let svc: Service;
    try {
      svc = parseService(raw);
    } catch (e) {
      if (!(e instanceof ServiceValidationError)) throw e;
      const name = ((raw.metadata ?? {}) as { name?: string }).name ?? '';
      const issues = e.issues.map((i) => `${i.path}: ${i.message}`);
      throw invalid(
        `The Service "${name}" is invalid: ${issues.length === 1 ? issues[0] : issues.map((x) => `\n* ${x}`).join('')}\n(nothing applied)`,
        e.issues[0]?.path ?? '',
      );
    }
    const { namespace: ns, name } = svc.metadata;
    if (!knownNs(ns))
      throw invalid(`service ${ns}/${name}: namespace "${ns}" not found`, 'metadata.namespace');
    const key = podKey(ns, name);
    const held = s.services[key];
    const result = applyResult(held?.manifest, raw);
    if (result === 'unchanged') {
      planned.set(key, { manifest: raw, object: held!.object, result });
      continue;
    }
    const others = [
      ...Object.entries(s.services)
        .filter(([k]) => k !== key && !planned.has(k))
        .map(([, v]) => v.object),
      ...[...planned.entries()].filter(([k]) => k !== key).map(([, v]) => v.object),
    ];
    let object: Service;
    try {
      object = allocateService(svc, held?.object, others);
    } catch (e) {
      if (!(e instanceof ServiceValidationError)) throw e;
      const i = e.issues[0]!;
      throw invalid(`The Service "${name}" is invalid: ${i.path}: ${i.message}\n(nothing applied)`, i.path);
    }
    object.metadata = {
      ...object.metadata,
      uid: held?.object.metadata.uid ?? randomUUID(),
      creationTimestamp: held?.object.metadata.creationTimestamp ?? new Date().toISOString(),
    };
    planned.set(key, { manifest: raw, object, result });
  }
  return planned;
}

/** apply with the lab's lock held: everything is checked before anything is applied. */
async function applyLocked(s: LabState, m: Manifests, log: Log): Promise<void> {
  const knownNs = (ns: string) => !!s.namespaces[ns] || m.namespaces.some((n) => n.metadata.name === ns);
  // Validate every policy first, on one agent: a rejected file applies nothing.
  if (m.policies.length) {
    const v = await client(s, s.nodes[0]!.name).validatePolicies({ documents: m.policies });
    if (!v.valid) {
      throw new LabError(
        `policy rejected, nothing applied:\n${v.issues.map((i) => `  document ${i.document + 1}${i.kind ? ` (${i.kind} ${i.name ?? ''})` : ''}: ${i.path}: ${i.message}`).join('\n')}`,
        { code: 'invalid-argument', ...(v.issues[0] ? { field: v.issues[0].path } : {}) },
      );
    }
  }
  for (const pod of m.pods) {
    const ns = podNamespace(pod);
    const what = `pod ${ns}/${pod.metadata.name}`;
    if (!knownNs(ns)) throw invalid(`${what}: namespace "${ns}" not found`, 'metadata.namespace');
    const held = s.pods[podKey(ns, pod.metadata.name)];
    if (held?.deletion)
      throw new LabError(`${what}: object is being deleted: pods "${pod.metadata.name}" already exists`, {
        code: 'already-exists',
      });
    if (held) {
      // As in Kubernetes, a pod's spec is immutable (only its labels and annotations may change).
      if (held.manifest && canonical(held.manifest.spec) !== canonical(pod.spec))
        throw invalid(
          `${what}: spec: Forbidden: pod updates may not change fields other than metadata (delete the pod and apply it again)`,
          'spec',
        );
      continue;
    }
    checkPodSpec(s, what, pod.spec);
  }
  for (const d of m.deployments) {
    const ns = podNamespace(d);
    const what = `deployment ${ns}/${d.metadata.name}`;
    if (!knownNs(ns)) throw invalid(`${what}: namespace "${ns}" not found`, 'metadata.namespace');
    const held = s.deployments[podKey(ns, d.metadata.name)];
    if (held && canonical(held.manifest.spec.selector) !== canonical(d.spec.selector))
      throw invalid(
        `${what}: spec.selector: Invalid value: ${JSON.stringify(d.spec.selector)}: field is immutable`,
        'spec.selector',
      );
    checkPodSpec(s, what, d.spec.template.spec, 'spec.template.spec');
  }
  const services = planServices(s, m, knownNs);

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
  for (const [key, p] of services) {
    s.services[key] = { manifest: p.manifest, object: p.object };
    log(`${qualifiedName('Service', p.object.metadata.name)} ${p.result}`);
  }
  for (const d of m.deployments) applyDeployment(s, d, log);
  saveLab(s);
  for (const pod of m.pods) {
    const ns = podNamespace(pod);
    await applyPod(s, { metadata: { ...pod.metadata, namespace: ns }, spec: { ...pod.spec } }, log);
    saveLab(s);
  }
  await reconcile(s, log);
}

/**
 * Stores a Deployment. As kubectl apply's three-way merge does, replicas set by `lab scale` stay
 * unless the manifest's replicas changed since it was last applied.
 */
function applyDeployment(s: LabState, d: Deployment, log: Log): void {
  const ns = podNamespace(d);
  const key = podKey(ns, d.metadata.name);
  const held = s.deployments[key];
  const result = applyResult(held?.manifest, d);
  if (result !== 'unchanged') {
    const replicas =
      held && held.manifest.spec.replicas === d.spec.replicas ? held.replicas : (d.spec.replicas ?? 1);
    s.deployments[key] = {
      namespace: ns,
      name: d.metadata.name,
      uid: held?.uid ?? randomUUID(),
      createdAt: held?.createdAt ?? new Date().toISOString(),
      manifest: d,
      replicas,
    };
  }
  log(`${qualifiedName('Deployment', d.metadata.name)} ${result}`);
}

function sameRef(a: { kind: string; namespace: string; name: string }, b: typeof a): boolean {
  return a.kind === b.kind && a.namespace === b.namespace && a.name === b.name;
}

export interface DeleteOptions {
  /** Overrides the pods' terminationGracePeriodSeconds (0: at once). */
  gracePeriodSeconds?: number;
  /** Wait until the deleted pods are gone (kubectl's default). */
  wait?: boolean;
}

export async function deleteManifests(
  lab: string,
  m: Manifests,
  log: Log,
  o: DeleteOptions = {},
): Promise<void> {
  const gone: string[] = [];
  await withLock(lab, async () => {
    const s = requireLab(lab);
    ensureController(s);
    const terminate = (p: LabPod) => {
      terminatePod(p, o.gracePeriodSeconds);
      gone.push(podKey(p.namespace, p.name));
    };
    for (const pod of m.pods) {
      const p = s.pods[podKey(podNamespace(pod), pod.metadata.name)];
      if (!p) {
        log(`Error from server (NotFound): pods "${pod.metadata.name}" not found`);
        continue;
      }
      terminate(p);
      log(`pod "${p.name}" deleted`);
    }
    for (const d of m.deployments) {
      const ns = podNamespace(d);
      const key = podKey(ns, d.metadata.name);
      if (!s.deployments[key]) {
        log(`Error from server (NotFound): deployments.apps "${d.metadata.name}" not found`);
        continue;
      }
      delete s.deployments[key];
      for (const p of Object.values(s.pods))
        if (p.namespace === ns && p.owner?.deployment === d.metadata.name) terminate(p);
      log(`${qualifiedType('Deployment')} "${d.metadata.name}" deleted`);
    }
    for (const raw of m.services) {
      const md = (raw.metadata ?? {}) as { name?: string; namespace?: string };
      const key = podKey(md.namespace ?? 'default', md.name ?? '');
      if (!s.services[key]) {
        log(`Error from server (NotFound): services "${md.name}" not found`);
        continue;
      }
      delete s.services[key];
      log(`service "${md.name}" deleted`);
    }
    if (m.policies.length) {
      const refs = m.policies.map(policyRefOf);
      await forAllAgents(s, (c) => c.deletePolicies({ refs }));
      s.policies = s.policies.filter(
        (x) => !refs.some((r) => r.kind === x.kind && r.namespace === x.namespace && r.name === x.name),
      );
      for (const r of refs) log(`${qualifiedType(r.kind)} "${r.name}" deleted`);
    }
    for (const n of m.namespaces) {
      const name = n.metadata.name;
      for (const p of Object.values(s.pods)) if (p.namespace === name) terminate(p);
      for (const [k, d] of Object.entries(s.deployments)) if (d.namespace === name) delete s.deployments[k];
      for (const [k, v] of Object.entries(s.services))
        if (v.object.metadata.namespace === name) delete s.services[k];
      delete s.namespaces[name];
      log(`namespace "${name}" deleted`);
    }
    saveLab(s);
    await reconcile(s, () => {});
  });
  if (o.wait !== false) await waitPodsGone(lab, gone);
}

/** Waits until the pods are gone, ending those whose processes exited without waiting for the controller. */
async function waitPodsGone(lab: string, keys: readonly string[]): Promise<void> {
  let deadline = Date.now() + 30_000;
  for (;;) {
    const s = loadLab(lab);
    const left = keys.map((k) => s?.pods[k]).filter((p): p is LabPod => p !== undefined);
    if (left.length === 0) return;
    const graceEnd = Math.max(
      ...left.map(
        (p) => Date.parse(p.deletion?.at ?? '0') + (p.deletion?.graceSeconds ?? DEFAULT_GRACE_SECONDS) * 1000,
      ),
    );
    deadline = Math.max(deadline, graceEnd + 30_000);
    if (Date.now() > deadline)
      throw new LabError(
        `timed out waiting for ${left.map((p) => `pod "${p.name}"`).join(', ')} to be deleted`,
        {
          code: 'timeout',
        },
      );
    if (left.some((p) => finalizeDue(p)))
      await withLock(lab, async () => {
        const locked = loadLab(lab);
        if (locked) await reconcile(locked, () => {});
      });
    else await new Promise((r) => setTimeout(r, 100));
  }
}

/** `lab scale deployment NAME --replicas N`: the controller creates or removes pods. */
export async function scale(
  lab: string,
  ns: string,
  name: string,
  replicas: number,
  log: Log,
): Promise<void> {
  if (!Number.isInteger(replicas) || replicas < 0)
    throw new LabError(`--replicas: "${replicas}" must be a non-negative integer`, {
      code: 'invalid-argument',
      field: '--replicas',
    });
  return withLock(lab, async () => {
    const s = requireLab(lab);
    ensureController(s);
    const d = s.deployments[podKey(ns, name)];
    if (!d)
      throw new LabError(`Error from server (NotFound): deployments.apps "${name}" not found`, {
        code: 'not-found',
      });
    d.replicas = replicas;
    saveLab(s);
    await reconcile(s, () => {});
    log(`${qualifiedName('Deployment', name)} scaled`);
  });
}

// ---- exec / get ----

/** The lab's objects of one type, as kubectl would show them (namespace undefined: all of them). */
export async function getObjects(s: LabState, type: ResourceType, namespace?: string): Promise<KObject[]> {
  const inNs = (ns: string) => namespace === undefined || ns === namespace;
  const observed: Observed = {
    running: podRunning,
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
    case 'Service':
      return Object.values(s.services)
        .filter((x) => inNs(x.object.metadata.namespace))
        .map((x) => serviceObject(x.object))
        .sort(byName);
    case 'EndpointSlice':
      return Object.values(s.endpointSlices)
        .filter((x) => inNs(x.metadata.namespace))
        .map(endpointSliceObject)
        .sort(byName);
    case 'Deployment':
      return Object.values(s.deployments)
        .filter((d) => inNs(d.namespace))
        .map((d) => {
          const hash = podTemplateHash(d.manifest.spec.template);
          const owned = pods
            .filter((p) => p.namespace === d.namespace && p.owner?.deployment === d.name)
            .map((p) => ({ pod: p, ready: podView(p).ready, current: p.owner!.templateHash === hash }));
          return deploymentObject(d, owned);
        })
        .sort(byName);
    case 'CiliumEndpoint': {
      const eps = new Map<string, Awaited<ReturnType<ReturnType<typeof client>['endpoints']>>[number]>();
      await Promise.all(
        s.nodes.map(async (n) => {
          const list = await client(s, n.name)
            .endpoints()
            .catch(() => []);
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
  if (!p) throw new LabError(`pod ${ns}/${name} not found in lab ${s.name}`, { code: 'not-found' });
  return p;
}

/**
 * Runs a command with inherited stdio inside a pod (`NAME` or `pod/NAME`: its network namespace,
 * resolv.conf and node cgroup), on a node (`node/NAME`: its network namespace and cgroup) or in the
 * world namespace (`world`), as kubectl exec does; resolves with its exit code.
 */
export function exec(s: LabState, ns: string, target: string, argv: string[]): Promise<number> {
  if (argv.length === 0) throw new LabError('exec: give a command after --', { code: 'invalid-argument' });
  const resolved = argv[0] === 'cilium-ts' ? [process.execPath, cliPath, ...argv.slice(1)] : argv;
  const [kind, name] = target.includes('/') ? (target.split('/', 2) as [string, string]) : ['pod', target];
  let cmd: string[];
  let env: NodeJS.ProcessEnv = { ...process.env };
  if (target === 'world') {
    // The lab's outside world: the host namespace clients of NodePorts and LoadBalancers live in.
    cmd = ['nsenter', `--net=${nsPath(s.world.netns)}`, '--', ...resolved];
  } else if (kind === 'node' || kind === 'no' || kind === 'nodes') {
    const n = s.nodes.find((x) => x.name === name);
    if (!n)
      throw new LabError(
        `node ${name} not found in lab ${s.name} (nodes: ${s.nodes.map((x) => x.name).join(', ')})`,
        {
          code: 'not-found',
        },
      );
    cmd = placedCommand({ netns: n.netns, ...(n.cgroup ? { cgroup: n.cgroup } : {}) }, resolved);
  } else if (kind === 'pod' || kind === 'po' || kind === 'pods') {
    const p = findPod(s, ns, name);
    env = { ...env, POD_NAME: p.name, POD_NAMESPACE: p.namespace, POD_IP: p.ipv4 ?? '' };
    cmd = placedCommand(podPlacement(s, p), resolved);
  } else {
    throw new LabError(`exec: "${target}": give a pod (NAME or pod/NAME), a node (node/NAME) or world`, {
      code: 'invalid-argument',
    });
  }
  return new Promise((resolve) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'inherit', env });
    child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 + 9 : 1)));
  });
}

// ---- down ----

/** Removes everything a lab made: processes, namespaces, cgroups, bpffs mounts and state. Works after crashes. */
export async function down(lab: string, log: Log): Promise<void> {
  checkLabName(lab);
  const s = loadLab(lab);
  const prefix = netnsPrefix(lab);
  // Processes the lab recorded: signalled (with their process groups) only while PID and start
  // time still match, so a PID recycled by an unrelated process after a crash is left alone. The
  // controller goes first, so that it does not act on a lab being taken down.
  const recorded: (ProcessRef | undefined)[] = [s?.controller, s?.relay, s?.ui];
  for (const n of s?.nodes ?? []) recorded.push(agentRef(n), n.forwarder);
  for (const p of Object.values(s?.pods ?? {})) recorded.push(...p.containers);
  const stopped = new Set<number>();
  for (const ref of recorded) if (killRecorded(ref)) stopped.add(ref!.pid);
  // etcd: its recorded members, then whatever runs in its namespace; data, logs and namespace go.
  let members = 0;
  if (s?.etcd) {
    members = s.etcd.members.filter((m) => isRunning(memberRef(m))).length;
    await destroyEtcd(s.etcd).catch((e: unknown) => log(`warning: etcd: ${(e as Error).message}`));
  }
  // Whatever else still runs inside the lab's namespaces (crash leftovers): these belong to the lab
  // by where they run; each is signalled alone, its process group may reach outside.
  const all = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
  for (const ns of all) for (const pid of killNetnsProcesses(ns)) stopped.add(pid);
  if (stopped.size) log(`stopped ${stopped.size} process(es)`);
  if (members) log(`stopped ${members} etcd member(s), removed their data`);
  for (const ns of all) spawnSync('ip', ['netns', 'del', ns]);
  if (all.length) log(`deleted ${all.length} network namespace(s)`);
  const cgroups = await removeLabCgroups(lab);
  if (cgroups) log(`removed ${cgroups} cgroup(s)`);
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
