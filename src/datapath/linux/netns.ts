/** Named network namespaces (`ip netns add/del`) and running commands inside one by path. */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { LinuxCommandError } from './errors.js';
import { type RunOptions, type RunResult, run } from './exec.js';

export const NETNS_RUN_DIR = '/run/netns';

/** Path of a named namespace (/run/netns/NAME). */
export function netnsPath(name: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new TypeError(`invalid netns name ${JSON.stringify(name)}`);
  return `${NETNS_RUN_DIR}/${name}`;
}

export function netnsExists(path: string): boolean {
  return existsSync(path);
}

/** Create a named namespace; returns its path. Idempotent when `ifMissing` (default true). */
export async function createNetns(name: string, opts: { ifMissing?: boolean } = {}): Promise<string> {
  const path = netnsPath(name);
  if ((opts.ifMissing ?? true) && existsSync(path)) return path;
  await run(['ip', 'netns', 'add', name]);
  return path;
}

/** Delete a named namespace; returns false when it did not exist. */
export async function deleteNetns(name: string): Promise<boolean> {
  const path = netnsPath(name);
  if (!existsSync(path)) return false;
  try {
    await run(['ip', 'netns', 'del', name]);
    return true;
  } catch (e) {
    if (e instanceof LinuxCommandError && !existsSync(path)) return false;
    throw e;
  }
}

/** Run a command inside the namespace at `path` (`nsenter --net=PATH -- argv...`). */
export function runInNetns(
  path: string,
  argv: readonly string[],
  opts: Omit<RunOptions, 'netns'> = {},
): Promise<RunResult> {
  return run(argv, { ...opts, netns: path });
}

// ---- sysctl ----

/** 'net.ipv4.conf.lxc1.rp_filter' → '/proc/sys/net/ipv4/conf/lxc1/rp_filter'; a key containing '/' is a path under /proc/sys. */
export function sysctlPath(key: string): string {
  if (key.startsWith('/proc/sys/')) return key;
  if (key.includes('/')) return `/proc/sys/${key.replace(/^\/+/, '')}`;
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

/**
 * Write sysctls. In the current namespace the files are written directly; inside another namespace,
 * entries sharing a value are written by one `tee` spawned there (one process per distinct value).
 * Interface names containing '.' must be given as paths ('net/ipv4/conf/eth0.5/rp_filter').
 */
export async function writeSysctls(
  entries: Record<string, string | number>,
  opts: { netns?: string | undefined } = {},
): Promise<void> {
  const byValue = new Map<string, string[]>();
  for (const [k, v] of Object.entries(entries)) {
    const val = String(v);
    const list = byValue.get(val) ?? [];
    list.push(sysctlPath(k));
    byValue.set(val, list);
  }
  for (const [val, paths] of byValue) {
    if (!opts.netns) {
      for (const p of paths) {
        try {
          await writeFile(p, `${val}\n`);
        } catch (e) {
          throw new LinuxCommandError(['write', p], 1, (e as Error).message);
        }
      }
    } else {
      await run(['tee', ...paths], { netns: opts.netns, input: `${val}\n` });
    }
  }
}

export async function readSysctl(key: string, opts: { netns?: string | undefined } = {}): Promise<string> {
  const p = sysctlPath(key);
  if (!opts.netns) return (await readFile(p, 'utf8')).trim();
  return (await run(['cat', p], { netns: opts.netns })).stdout.trim();
}
