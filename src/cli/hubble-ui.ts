/**
 * `cilium-ts hubble ui`: serves the Hubble UI (service map, flows table, policy view) and its
 * backend (src/hubble/ui/server.ts), reading flows from the Observer API that `hubble observe`
 * would use (the lab's relay, else the node's Hubble server) and policies from the node's agent.
 * registerHubbleUiCommand adds `ui` to the program's `hubble` command (creating it when missing).
 */
import { join } from 'node:path';
import { Command } from 'commander';
import { AgentApi } from '../api/client.js';
import { distRoot } from '../common/paths.js';
import type { PolicySource } from '../hubble/ui/explain.js';
import { CliError } from './errors.js';
import { defaultServer } from './hubble.js';
import { resolveTarget, type TargetOptions } from './target.js';

interface UiFlags extends TargetOptions {
  listen: string;
  server?: string;
  agent?: string;
  maxFlows: string;
  policy: boolean;
}

/** The agent's policy list and trace, as the UI's policy view reads them. */
export function agentPolicySource(socket: string): PolicySource {
  const api = new AgentApi(socket, 10_000);
  return {
    list: async () => (await api.policies()).policies,
    trace: (q) => api.tracePolicy(q),
  };
}

export function registerHubbleUiCommand(program: Command): Command {
  let hubble = program.commands.find((c) => c.name() === 'hubble');
  if (!hubble) {
    hubble = new Command('hubble').description('Flow observability (Hubble Observer API)');
    program.addCommand(hubble);
  }
  const cmd = new Command('ui')
    .description('Serve the Hubble UI: a live service map, a flows table and the policy view')
    .option('--listen <host:port>', 'address to serve the UI on', '127.0.0.1:12000')
    .option(
      '--server <address>',
      "Observer API to read flows from (default: the lab's relay, else the node --lab/--node pick)",
    )
    .option('--agent <socket>', "agent API socket for the policy view (default: the node's agent)")
    .option('--no-policy', 'no policy view (no agent to ask)')
    .option('--max-flows <n>', 'flows held for the table', '10000')
    .action(async (_o, c: Command) => {
      const o = c.optsWithGlobals<UiFlags>();
      if (!/^\d+$/.test(o.maxFlows) || Number(o.maxFlows) < 1)
        throw new CliError(`--max-flows: "${o.maxFlows}" is not a positive integer`);
      const server = defaultServer(o);
      const { UiServer } = await import('../hubble/ui/server.js');
      const line = (s: string) => process.stdout.write(`${s}\n`);
      const ui = await UiServer.start({
        listen: o.listen,
        server,
        assetsDir: join(distRoot, 'ui'),
        maxFlows: Number(o.maxFlows),
        ...(o.policy ? { policy: agentPolicySource(o.agent ?? resolveTarget(o).agentSocket) } : {}),
        logger: { info: line, warn: (s) => line(`warning: ${s}`) },
      });
      line(`hubble ui: listening on ${ui.url} (flows from ${server})`);
      const stop = () => void ui.stop().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  hubble.addCommand(cmd);
  return cmd;
}
