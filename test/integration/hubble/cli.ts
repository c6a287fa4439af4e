/** `cilium-ts hubble ...` run in this process with its output captured (a failure as its Error: line). */
import { Command } from 'commander';
import { formatError } from '../../../src/cli/errors.js';
import { registerHubbleCommands } from '../../../src/cli/hubble.js';

export async function runHubbleCli(args: string[]): Promise<{ out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command().exitOverride();
  registerHubbleCommands(program, { out: (s) => out.push(s), err: (s) => err.push(s) });
  await program.parseAsync(['hubble', ...args], { from: 'user' }).catch((e) => err.push(formatError(e)));
  return { out, err };
}
