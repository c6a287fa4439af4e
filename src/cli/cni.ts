/** `cilium-ts cni install`: set a container runtime up to use the node's agent through the CNI plugin. */
import { join } from 'node:path';
import type { Command } from 'commander';
import { distRoot } from '../common/paths.js';
import { CliError } from './errors.js';
import { targetOf } from './target.js';

export function registerCniCommands(program: Command): void {
  const cni = program.command('cni').description('the CNI plugin: configuration for container runtimes');
  cni
    .command('install')
    .description(
      "write the network configuration list and link the plugin into the runtime's plugin directory (the agent: --lab/--node, or --agent-socket)",
    )
    .option('--dir <dir>', 'network configuration directory', '/etc/cni/net.d')
    .option('--bin-dir <dir>', 'plugin directory', '/opt/cni/bin')
    .option('--name <name>', 'network name (podman run --network <name>)', 'cilium-ts')
    .option('--agent-socket <path>', "the agent's unix socket (default: the --lab/--node agent's)")
    .option(
      '--podman-root <dir>',
      "podman's storage root (podman --root, default /var/lib/containers/storage): containers' labels become their identity",
    )
    .option('--mtu <bytes>', 'MTU of the pod interfaces')
    .action(
      async (
        o: {
          dir: string;
          binDir: string;
          name: string;
          agentSocket?: string;
          podmanRoot?: string;
          mtu?: string;
        },
        cmd: Command,
      ) => {
        if (o.mtu !== undefined && !/^\d+$/.test(o.mtu))
          throw new CliError(`--mtu: "${o.mtu}" is not a number`);
        const { install } = await import('../cni/install.js');
        const r = install({
          confDir: o.dir,
          binDir: o.binDir,
          entry: join(distRoot, 'src', 'cni', 'cilium-ts-cni'),
          name: o.name,
          agentSocket: o.agentSocket ?? targetOf(cmd).agentSocket,
          podmanRoot: o.podmanRoot,
          mtu: o.mtu === undefined ? undefined : Number(o.mtu),
        });
        console.log(`wrote ${r.conflist}\nlinked ${r.plugin}`);
      },
    );
}
