/**
 * Which node the CLI talks to: `--lab`/`--node` (global options), else CILIUM_TS_LAB/CILIUM_TS_NODE,
 * else lab "default" and its first node. One answer for the agent's socket and the Hubble socket.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { runRoot } from '../common/paths.js';
import { loadLab } from '../lab/state.js';

export interface NodeTarget {
  lab: string;
  node: string;
  /** The node's run directory: /run/cilium-ts/<lab>/<node> (under CILIUM_TS_RUN_ROOT when set). */
  runDir: string;
  agentSocket: string;
  hubbleSocket: string;
}

export interface TargetOptions {
  lab?: string | undefined;
  node?: string | undefined;
}

export function resolveTarget(o: TargetOptions, env: NodeJS.ProcessEnv = process.env): NodeTarget {
  const lab = o.lab ?? env.CILIUM_TS_LAB ?? 'default';
  const node = o.node ?? env.CILIUM_TS_NODE ?? firstNode(lab) ?? 'node1';
  const runDir = join(runRoot, lab, node);
  return {
    lab,
    node,
    runDir,
    agentSocket: join(runDir, 'agent.sock'),
    hubbleSocket: join(runDir, 'hubble.sock'),
  };
}

/** The target of a command, from its global options. */
export function targetOf(cmd: Command): NodeTarget {
  return resolveTarget(cmd.optsWithGlobals<TargetOptions>());
}

/** The lab's first node; without lab state (an agent started by hand), the first node directory with a socket. */
function firstNode(lab: string): string | undefined {
  const fromLab = loadLab(lab)?.nodes[0]?.name;
  if (fromLab) return fromLab;
  const base = join(runRoot, lab);
  if (!existsSync(base)) return undefined;
  return readdirSync(base)
    .sort()
    .find((n) => existsSync(join(base, n, 'agent.sock')) || existsSync(join(base, n, 'hubble.sock')));
}
