#!/usr/bin/env node
/**
 * cilium-ts command line: one entry point for the agent, the lab, introspection, Hubble and the
 * test workload. Subcommands load their modules lazily so that quick commands start fast.
 */
import { Command } from 'commander';
import { reportAndExit } from './errors.js';
import { registerSelfcheck } from './selfcheck.js';
import { registerWorkload } from './workload.js';

const program = new Command('cilium-ts')
  .description('eBPF-based networking, security and observability for containers')
  .version('0.1.0')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

registerWorkload(program);
registerSelfcheck(program);

program.parseAsync(process.argv).catch(reportAndExit);
