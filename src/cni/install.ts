/**
 * `cilium-ts cni install`: the network configuration list a runtime (podman, containerd, ...) reads,
 * and the plugin entry in the runtime's plugin directory (a symbolic link to the compiled entry, which
 * finds the node plugin next to its real path).
 */
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CiliumTsError } from '../common/errors.js';
import { CNI_VERSION, type NetConf } from './types.js';
import { parseNetConf } from './validate.js';

/** The plugin's type: the name of its executable in the runtime's plugin directory. */
export const PLUGIN_TYPE = 'cilium-ts-cni';

export interface InstallOptions {
  /** Directory of network configurations (podman: network_config_dir). */
  confDir: string;
  /** Directory of plugin executables (podman: cni_plugin_dirs). */
  binDir: string;
  /** The compiled entry to link to. */
  entry: string;
  name: string;
  agentSocket: string;
  /** Podman's storage root: the agent reads containers' labels from its state database. */
  podmanRoot?: string | undefined;
  mtu?: number | undefined;
}

export class CniInstallError extends CiliumTsError {
  override readonly name = 'CniInstallError';
  override readonly code = 'invalid-argument';
}

/** The configuration list, checked with the plugin's own validation (a bad value names its field). */
export function conflist(o: Omit<InstallOptions, 'confDir' | 'binDir' | 'entry'>): {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
} {
  const plugin: Record<string, unknown> = { type: PLUGIN_TYPE, agentSocket: o.agentSocket };
  if (o.mtu !== undefined) plugin.mtu = o.mtu;
  if (o.podmanRoot !== undefined) {
    if (!o.podmanRoot.startsWith('/'))
      throw new CniInstallError(`--podman-root: "${o.podmanRoot}" is not an absolute path`);
    plugin.podman = { db: join(o.podmanRoot, 'libpod', 'bolt_state.db') };
  }
  const netconf: NetConf = { cniVersion: CNI_VERSION, name: o.name, ...plugin } as NetConf;
  try {
    parseNetConf(JSON.stringify(netconf), 'ADD');
  } catch (e) {
    throw new CniInstallError(
      `network configuration: ${(e as Error & { details?: string }).details ?? (e as Error).message}`,
    );
  }
  return { cniVersion: CNI_VERSION, name: o.name, plugins: [plugin] };
}

/** Writes the configuration list and links the entry; returns the paths written. */
export function install(o: InstallOptions): { conflist: string; plugin: string } {
  const list = conflist(o);
  if (!existsSync(o.entry))
    throw new CniInstallError(`the compiled plugin entry ${o.entry} is missing (npm run build builds it)`);
  mkdirSync(o.confDir, { recursive: true });
  mkdirSync(o.binDir, { recursive: true });
  const confPath = join(o.confDir, `${o.name}.conflist`);
  writeFileSync(`${confPath}.tmp`, `${JSON.stringify(list, null, 2)}\n`);
  renameSync(`${confPath}.tmp`, confPath);
  const pluginPath = join(o.binDir, PLUGIN_TYPE);
  rmSync(`${pluginPath}.tmp`, { force: true });
  symlinkSync(o.entry, `${pluginPath}.tmp`);
  renameSync(`${pluginPath}.tmp`, pluginPath);
  return { conflist: confPath, plugin: pluginPath };
}
