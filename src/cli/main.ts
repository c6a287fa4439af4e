#!/usr/bin/env node
/**
 * cilium-ts command line: one entry point for the agent, the lab, introspection, Hubble and the
 * test workload. Subcommands load their modules lazily so that quick commands start fast. Every
 * command that talks to a node picks it with the global `--lab`/`--node` (src/cli/target.ts), and
 * every failure is thrown and reported here as one `Error: ...` line (src/cli/errors.ts).
 */
import { Command } from 'commander';
import { registerAgentCommands } from './agent.js';
import { registerCniCommands } from './cni.js';
import { registerDnsCommands } from './dns.js';
import { reportAndExit } from './errors.js';
import { registerFqdnCommands } from './fqdn.js';
import { registerHubbleCommands } from './hubble.js';
import { registerHubbleUiCommand } from './hubble-ui.js';
import { registerLab } from './lab.js';
import { registerRelayCommands } from './relay.js';
import { registerSelfcheck } from './selfcheck.js';
import { registerWorkload } from './workload.js';

// Piping into `head` closes stdout early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command('cilium-ts')
  .description('eBPF-based networking, security and observability for containers')
  .version('0.1.0')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) })
  .option('--lab <lab>', 'lab whose node to talk to (env CILIUM_TS_LAB, default "default")')
  .option(
    '--node <node>',
    "node whose agent and Hubble server to talk to (env CILIUM_TS_NODE, default: the lab's first)",
  );

registerAgentCommands(program);
registerLab(program);
registerWorkload(program);
registerSelfcheck(program);
registerHubbleCommands(program);
registerRelayCommands(program);
registerHubbleUiCommand(program);
registerDnsCommands(program);
registerFqdnCommands(program);
registerCniCommands(program);

program.parseAsync(process.argv).catch(reportAndExit);
