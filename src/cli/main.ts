#!/usr/bin/env node
/**
 * cilium-ts command line: one entry point for the agent, the lab, introspection, Hubble and the
 * test workload. Subcommands load their modules lazily so that quick commands start fast.
 */
import { Command } from 'commander';
import { registerHubbleCommands } from '../hubble/cli.js';
import { registerAgentCommands } from './agent.js';
import { reportAndExit } from './errors.js';
import { registerLab } from './lab.js';
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
  .option('--lab <lab>', 'lab whose agent to talk to (env CILIUM_TS_LAB)')
  .option('--node <node>', 'node whose agent to talk to (default: the first node)')
  // Subcommands that find their own sockets (hubble) read the lab and node from the environment.
  .hook('preAction', (_root, action) => {
    const g = action.optsWithGlobals<{ lab?: string; node?: string }>();
    if (g.lab) process.env.CILIUM_TS_LAB = g.lab;
    if (g.node) process.env.CILIUM_TS_NODE = g.node;
  });

registerAgentCommands(program);
registerLab(program);
registerWorkload(program);
registerSelfcheck(program);
registerHubbleCommands(program);

program.parseAsync(process.argv).catch(reportAndExit);
