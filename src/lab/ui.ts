/**
 * The lab's Hubble UI: `cilium-ts hubble ui` in the root namespace (where the browser is), reading
 * flows from the lab's relay when it has one (several nodes), else from the node's Hubble socket,
 * and policies from the first node's agent (every agent holds the same policies). It listens on
 * 127.0.0.1:12000 when that port is free, else on any free port; `lab up` prints its URL. Recorded
 * with its start time like every process of the lab, so `lab down` stops it.
 */
import { join } from 'node:path';
import { startListener } from './listener.js';
import { isRunning, killRecorded } from './process.js';
import { type LabState, type LabUi, labDir } from './state.js';

export const UI_PORT = 12000;
const LISTENING = /hubble ui: listening on (http:\/\/127\.0\.0\.1:(\d+)\/)/;

/** The UI's command line: the relay's socket or the first node's Hubble socket, the first node's agent. */
export function uiArgs(s: Pick<LabState, 'name' | 'nodes' | 'relay'>, port: number): string[] {
  const node = join(labDir(s.name), s.nodes[0]!.name);
  const server = s.relay ? `unix://${s.relay.socket}` : `unix://${join(node, 'hubble.sock')}`;
  return [
    'hubble',
    'ui',
    '--listen',
    `127.0.0.1:${port}`,
    '--server',
    server,
    '--agent',
    join(node, 'agent.sock'),
  ];
}

async function startUi(s: LabState, port: number): Promise<LabUi> {
  const log = join(labDir(s.name), 'ui.log');
  const args = uiArgs(s, port);
  const { ref, match } = await startListener('hubble ui', args, log, LISTENING);
  return { ...ref, url: match[1]!, port: Number(match[2]), server: args[5]!, log };
}

/**
 * Starts the UI unless the recorded one runs with the same flow source (a lab that gained a relay
 * gets a new one): on the port it had, else 12000, else any free one.
 */
export async function ensureUi(s: LabState): Promise<LabUi> {
  const server = uiArgs(s, 0)[5];
  if (s.ui && isRunning(s.ui)) {
    if (s.ui.server === server) return s.ui;
    killRecorded(s.ui);
  }
  for (const port of new Set([s.ui?.port ?? UI_PORT, UI_PORT])) {
    try {
      return await startUi(s, port);
    } catch {
      // taken: the next one
    }
  }
  return startUi(s, 0);
}

/** The line `lab up` prints for the UI. */
export function formatUi(u: LabUi): string {
  return `  hubble ui       ${u.url}  (service map, flows, policy view; flows from ${u.server})`;
}
