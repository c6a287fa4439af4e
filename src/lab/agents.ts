/**
 * The nodes' agents: starting one inside its node's namespace and cgroup, reaching it through the
 * typed API, and keeping what every agent holds of the cluster (namespaces, Services,
 * EndpointSlices: services are cluster-wide) equal to what the lab holds. An agent that is down
 * gets everything again when it is back (`lab up`, `lab agent restart`).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_MALLOC_ENV, AGENT_NODE_FLAGS, agentSocketPath } from '../agent/config.js';
import { AgentApi } from '../api/client.js';
import { AgentUnreachableError } from '../api/errors.js';
import type { KubeObject, KubeObjectsResponse } from '../api/types.js';
import { cliPath } from '../common/paths.js';
import { LabError } from './errors.js';
import { etcdEndpoints } from './etcd.js';
import { AGENT_HUBBLE_PORT, AGENT_METRICS_PORT } from './forwarder.js';
import { placedCommand } from './placement.js';
import { isRunning, type ProcessRef, processRef } from './process.js';
import { canonical } from './resources.js';
import { type LabNode, type LabState, labDir } from './state.js';

export type Log = (line: string) => void;

export function client(s: LabState, node: string, timeoutMs?: number): AgentApi {
  return new AgentApi(agentSocketPath(s.name, node), timeoutMs);
}

export async function forAllAgents(
  s: LabState,
  fn: (c: AgentApi, n: LabNode) => Promise<unknown>,
): Promise<void> {
  await Promise.all(s.nodes.map((n) => fn(client(s, n.name), n)));
}

/** The node's agent process as recorded when it was started. */
export function agentRef(n: LabNode): ProcessRef | undefined {
  return n.agentPid
    ? { pid: n.agentPid, ...(n.agentStartTime ? { startTime: n.agentStartTime } : {}) }
    : undefined;
}

/** Starts the node's agent unless the recorded one runs and answers; true when it started one. */
export async function ensureAgent(s: LabState, n: LabNode, log: Log): Promise<boolean> {
  if (isRunning(agentRef(n))) {
    try {
      await client(s, n.name, 2000).healthz();
      return false;
    } catch {
      // not answering: restart it below
    }
  }
  await startAgent(s, n, log);
  return true;
}

/** Starts (or restarts) a node's agent inside the node's namespace and cgroup; waits until it answers. */
export async function startAgent(s: LabState, n: LabNode, log: Log): Promise<void> {
  const dir = join(labDir(s.name), n.name);
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'agent.log');
  const out = openSync(logFile, 'a');
  // A lab of one node routes to no other node: no overlay to carry (pods keep the underlay's MTU)
  const routing = s.routingMode ?? (s.nodes.length === 1 ? 'native' : undefined);
  const argv = [
    process.execPath,
    ...AGENT_NODE_FLAGS,
    cliPath,
    'agent',
    '--lab',
    s.name,
    '--node',
    n.name,
    '--pod-cidr',
    n.podCidrV4,
    ...(n.podCidrV6 ? ['--pod-cidr-v6', n.podCidrV6] : []),
    // The underlay address: what other nodes route this node's pod CIDR to.
    '--node-ip',
    n.underlayIp,
    ...(n.underlayIpV6 ? [n.underlayIpV6] : []),
    '--node-label',
    `kubernetes.io/hostname=${n.name}`,
    // A cluster (more than one node): state in the lab's etcd, routes to other nodes' pod CIDRs.
    ...(s.etcd ? ['--kvstore', 'etcd', '--kvstore-endpoints', etcdEndpoints(s.etcd).join(',')] : []),
    ...(s.etcd && s.kvstoreLeaseTtlSeconds ? ['--kvstore-lease-ttl', String(s.kvstoreLeaseTtlSeconds)] : []),
    ...(routing ? ['--routing-mode', routing] : []),
    // Native routing: every device on the way is a veth, which takes BIG TCP's 192 KiB packets.
    ...(routing === 'native' ? ['--enable-ipv4-big-tcp'] : []),
    // Fixed ports inside the node's namespace, so the forwarder reaches a restarted agent too.
    '--hubble-port',
    String(AGENT_HUBBLE_PORT),
    '--metrics-port',
    String(AGENT_METRICS_PORT),
    // Socket-LB attaches to the node's cgroup, which holds the node's and its pods' processes.
    ...(n.cgroup ? ['--cgroup', n.cgroup] : []),
    // Traffic from the world arrives on the node's underlay device: NodePort load balancing there.
    '--devices',
    'eth0',
  ];
  const [file, ...args] = placedCommand({ netns: n.netns, ...(n.cgroup ? { cgroup: n.cgroup } : {}) }, argv);
  // libuv's pool runs the programs' verification, tcx attachments and state-file syncs of an ADD at
  // once: 4 threads (the default) would queue them.
  const env = {
    ...AGENT_MALLOC_ENV,
    ...process.env,
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16',
  };
  const child = spawn(file!, args, { detached: true, stdio: ['ignore', out, out], env });
  closeSync(out);
  child.unref();
  const ref = processRef(child.pid!);
  n.agentPid = ref.pid;
  n.agentStartTime = ref.startTime;
  log(`started agent on ${n.name} (pid ${child.pid}, log ${logFile})`);
  const api = client(s, n.name, 2000);
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

/** Stops the node's agent (SIGTERM, SIGKILL after 10 s) and waits until it is gone. */
export async function stopAgent(n: LabNode): Promise<void> {
  const ref = agentRef(n);
  if (!isRunning(ref)) return;
  process.kill(ref!.pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (isRunning(ref) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isRunning(ref)) process.kill(-ref!.pid, 'SIGKILL');
  while (isRunning(ref)) await new Promise((r) => setTimeout(r, 20));
}

function tail(file: string, lines = 8): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

type Kind = 'Service' | 'EndpointSlice';

/** PUTs what differs, then DELETEs what the lab no longer has; returns how many calls it made. */
async function syncKind(
  api: AgentApi,
  kind: Kind,
  want: Record<string, KubeObject>,
  have: KubeObjectsResponse,
  phase: 'put' | 'delete',
): Promise<number> {
  let calls = 0;
  const put = (ns: string, name: string, o: KubeObject) =>
    kind === 'Service' ? api.putService(ns, name, o) : api.putEndpointSlice(ns, name, o);
  const del = (ns: string, name: string) =>
    kind === 'Service' ? api.deleteService(ns, name) : api.deleteEndpointSlice(ns, name);
  if (phase === 'put') {
    for (const [key, o] of Object.entries(want)) {
      if (have[key] && canonical(have[key]) === canonical(o)) continue;
      const [ns, name] = key.split('/') as [string, string];
      await put(ns, name, o);
      calls++;
    }
  } else {
    for (const key of Object.keys(have)) {
      if (want[key]) continue;
      const [ns, name] = key.split('/') as [string, string];
      await del(ns, name);
      calls++;
    }
  }
  return calls;
}

/**
 * Makes one agent hold exactly the lab's Services and EndpointSlices: Services first, so a slice
 * never arrives before its Service, and slices are removed before their Service.
 */
export async function syncServicesTo(s: LabState, n: LabNode): Promise<number> {
  const api = client(s, n.name);
  const services = Object.fromEntries(
    Object.entries(s.services).map(([k, v]) => [k, v.object as unknown as KubeObject]),
  );
  const slices = s.endpointSlices as unknown as Record<string, KubeObject>;
  const [haveSvc, haveSlices] = await Promise.all([api.services(), api.endpointSlices()]);
  let calls = await syncKind(api, 'Service', services, haveSvc, 'put');
  calls += await syncKind(api, 'EndpointSlice', slices, haveSlices, 'put');
  calls += await syncKind(api, 'EndpointSlice', slices, haveSlices, 'delete');
  calls += await syncKind(api, 'Service', services, haveSvc, 'delete');
  return calls;
}

/** A digest of the lab's Services and EndpointSlices (what syncServices makes the agents hold). */
function servicesDigest(s: LabState): string {
  return createHash('sha256')
    .update(canonical({ services: Object.values(s.services).map((v) => v.object), slices: s.endpointSlices }))
    .digest('hex');
}

/**
 * Syncs every agent. One that cannot be reached is reported and left for when it is back (it is
 * synced again on start); an agent refusing an object is an error. An agent (the same process)
 * synced since with what the lab holds now is not asked again: most reconciles change no Service
 * or slice (a pod no Service selects), and the lab is the only writer of the agents' copies.
 */
export async function syncServices(s: LabState, log: Log): Promise<void> {
  const digest = servicesDigest(s);
  await Promise.all(
    s.nodes.map(async (n) => {
      // what this agent process was last made to hold
      const mark = `${n.agentPid ?? 0}:${n.agentStartTime ?? 0} ${digest}`;
      if (s.servicesSynced?.[n.name] === mark) return;
      try {
        await syncServicesTo(s, n);
        s.servicesSynced = { ...s.servicesSynced, [n.name]: mark };
      } catch (e) {
        if (!(e instanceof AgentUnreachableError)) throw e;
        log(`warning: agent on ${n.name} is not reachable; it gets the services when it is back (lab up)`);
      }
    }),
  );
}
