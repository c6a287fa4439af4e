/**
 * The lab's Hubble Relay: `cilium-ts hubble relay` in the root namespace (where the CLI runs),
 * serving every node's flows merged by time on 127.0.0.1 and on a unix socket under the lab's run
 * directory. It finds the nodes through the Peer service of any node's Hubble server (each node's
 * unix socket, reachable by path from every namespace, is one fallback). Recorded with its start
 * time like every process of the lab; `hubble observe` uses its socket by default (src/cli/hubble.ts).
 */
import { join } from 'node:path';
import { startListener } from './listener.js';
import { isRunning, killRecorded } from './process.js';
import { type LabRelay, type LabState, labDir, relaySocketPath } from './state.js';

const LISTENING = /hubble relay: listening on 127\.0\.0\.1:(\d+)/;

/** The relay's command line: every node's Hubble socket as a Peer service, in node order. */
export function relayArgs(s: Pick<LabState, 'name' | 'nodes'>, port: number): string[] {
  return [
    'hubble',
    'relay',
    '--listen',
    `127.0.0.1:${port}`,
    '--unix-socket',
    relaySocketPath(s.name),
    ...s.nodes.flatMap((n) => ['--peer-service', `unix://${join(labDir(s.name), n.name, 'hubble.sock')}`]),
  ];
}

/** Starts the relay on `port` (0: a free one) and resolves once it listens, with what to record. */
async function startRelay(s: LabState, port: number): Promise<LabRelay> {
  const log = join(labDir(s.name), 'relay.log');
  const { ref, match } = await startListener('hubble relay', relayArgs(s, port), log, LISTENING);
  return { ...ref, port: Number(match[1]), socket: relaySocketPath(s.name), log };
}

/**
 * Starts the lab's relay unless the recorded one runs; a restarted relay keeps its port when it is
 * still free. Returns what to record in the lab's state.
 */
export async function ensureRelay(s: LabState): Promise<LabRelay> {
  if (s.relay && isRunning(s.relay)) return s.relay;
  if (s.relay?.port) {
    try {
      return await startRelay(s, s.relay.port);
    } catch {
      // the port is taken now: any free one
    }
  }
  return startRelay(s, 0);
}

/** Stops the recorded relay (only while PID and start time match); true when it signalled it. */
export function stopRelay(s: LabState): boolean {
  return killRecorded(s.relay);
}

/** The line `lab up` prints for the relay. */
export function formatRelay(r: LabRelay): string {
  return `  relay hubble    127.0.0.1:${r.port}  or  unix://${r.socket}  (every node; hubble observe's default)`;
}
