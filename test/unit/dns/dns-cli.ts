/**
 * `cilium-ts dns ...` for tests that spawn the command: the same registerDnsCommands and error
 * reporting as src/cli/main.ts, run as its own process (`node dns-cli.js dns serve ...`).
 */
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerDnsCommands } from '../../../src/cli/dns.js';
import { reportAndExit } from '../../../src/cli/errors.js';

export const dnsCliPath = fileURLToPath(import.meta.url);

if (process.argv[1] === dnsCliPath && process.argv[2] === 'dns') {
  const program = new Command('cilium-ts');
  registerDnsCommands(program);
  program.parseAsync(process.argv).catch(reportAndExit);
}
