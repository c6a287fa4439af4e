/**
 * Each node's Hubble and metrics ports listen on the loopback of the node's own network namespace,
 * which the machine's shell cannot reach. The lab exposes them on the root namespace's loopback
 * (127.0.0.1 only) through one forwarder process per node: the lab opens the listening sockets
 * here, in the root namespace, then hands them to a process it starts inside the node's namespace
 * (forwarder-main.ts), whose upstream connections therefore reach the agent. No process enters a
 * namespace per connection; `lab down` stops the forwarder like any process of the lab.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { agentSocketPath } from '../agent/config.js';
import { distRoot } from '../common/paths.js';
import { isRunning, processRef } from './process.js';
import { type LabForwarder, type LabNode, type LabState, labDir, loadLab } from './state.js';

/** Ports the lab gives each agent inside its node namespace (upstream's defaults). */
export const AGENT_HUBBLE_PORT = 4244;
export const AGENT_METRICS_PORT = 9962;

const FORWARDER = join(distRoot, 'src', 'lab', 'forwarder-main.js');
const LOOPBACK = '127.0.0.1';

export class ForwarderError extends Error {}

/** Listens on 127.0.0.1, on the port used before when it is still free (addresses stay the same). */
function listenLoopback(preferred?: number): Promise<Server> {
  const attempt = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen({ host: LOOPBACK, port, exclusive: true }, () => resolve(s));
    });
  return preferred ? attempt(preferred).catch(() => attempt(0)) : attempt(0);
}

function portOf(s: Server): number {
  return (s.address() as { port: number }).port;
}

/** Starts the node's forwarder unless the recorded one still runs; returns what to record. */
export async function ensureForwarder(s: LabState, n: LabNode): Promise<LabForwarder> {
  if (n.forwarder && isRunning(n.forwarder)) return n.forwarder;
  const hubble = await listenLoopback(n.forwarder?.hubblePort);
  const metrics = await listenLoopback(n.forwarder?.metricsPort).catch((e: unknown) => {
    hubble.close();
    throw e;
  });
  try {
    const dir = join(labDir(s.name), n.name);
    mkdirSync(dir, { recursive: true });
    const out = openSync(join(dir, 'forwarder.log'), 'a');
    const child = spawn('nsenter', [`--net=/run/netns/${n.netns}`, '--', process.execPath, FORWARDER], {
      detached: true,
      stdio: ['ignore', out, out, 'ipc'],
    });
    closeSync(out);
    const ref = processRef(child.pid!);
    const handed = new Promise<void>((resolve, reject) => {
      const ready = new Set<string>();
      const timer = setTimeout(
        () => reject(new ForwarderError(`forwarder of ${n.name}: no answer in 10 s`)),
        10_000,
      );
      child.on('message', (m: { ready?: string }) => {
        if (m.ready) ready.add(m.ready);
        if (ready.size === 2) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(
          new ForwarderError(`forwarder of ${n.name} exited (${code}); see ${join(dir, 'forwarder.log')}`),
        );
      });
    });
    child.send({ name: 'hubble', to: { host: LOOPBACK, port: AGENT_HUBBLE_PORT } }, hubble);
    child.send({ name: 'metrics', to: { host: LOOPBACK, port: AGENT_METRICS_PORT } }, metrics);
    try {
      await handed;
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    }
    child.removeAllListeners('exit');
    child.disconnect();
    child.unref();
    return { ...ref, hubblePort: portOf(hubble), metricsPort: portOf(metrics) };
  } finally {
    // The forwarder holds its own copies of the sockets now; this process stops listening.
    hubble.close();
    metrics.close();
  }
}

/** Addresses of a node that work from the machine's shell (where the CLI runs). */
export interface NodeAddresses {
  agent: string;
  hubble?: string;
  hubbleUnix: string;
  metrics?: string;
}

export function nodeAddresses(s: LabState, n: LabNode): NodeAddresses {
  const f = n.forwarder && isRunning(n.forwarder) ? n.forwarder : undefined;
  return {
    agent: `unix://${agentSocketPath(s.name, n.name)}`,
    hubbleUnix: `unix://${join(labDir(s.name), n.name, 'hubble.sock')}`,
    ...(f
      ? { hubble: `${LOOPBACK}:${f.hubblePort}`, metrics: `http://${LOOPBACK}:${f.metricsPort}/metrics` }
      : {}),
  };
}

/** The addresses of a lab's node from its state, or undefined when there is no such lab or node. */
export function labNodeAddresses(lab: string, node: string): NodeAddresses | undefined {
  const s = loadLab(lab);
  const n = s?.nodes.find((x) => x.name === node);
  return s && n ? nodeAddresses(s, n) : undefined;
}

/** The lines `lab up` ends with. */
export function formatAddresses(s: LabState): string[] {
  const lines = ['addresses (from this machine):'];
  for (const n of s.nodes) {
    const a = nodeAddresses(s, n);
    lines.push(`  ${n.name} agent     ${a.agent}`);
    lines.push(`  ${n.name} hubble    ${a.hubble ? `${a.hubble}  or  ` : ''}${a.hubbleUnix}`);
    if (a.metrics) lines.push(`  ${n.name} metrics   ${a.metrics}`);
  }
  return lines;
}
