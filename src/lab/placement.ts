/**
 * Where a process of the lab runs: in its node's cgroup v2 (socket-LB programs are attached there,
 * so they see every socket of the node's pods and of the node itself), in a network namespace, and
 * for pods in a mount namespace of its own in which the pod's resolv.conf is bind-mounted over
 * /etc/resolv.conf (as `ip netns exec` does with /etc/netns/<name>/; the rest of the file system is
 * the machine's). Each step is taken by the process itself before it executes the program, so no
 * instruction of the program runs outside its cgroup or namespaces: a shell writes its own PID into
 * cgroup.procs and execs nsenter, which execs unshare, which execs the mount-then-exec shell.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Mount } from '../datapath/linux/index.js';

/** `<cgroup2>/cilium-ts/<lab>`: the lab's cgroups, one child per node (undefined without cgroup v2). */
export function labCgroup(lab: string): string | undefined {
  try {
    return join(cgroup2Mount(), 'cilium-ts', lab);
  } catch {
    return undefined; // no cgroup v2 here: the lab runs without node cgroups (and without socket-LB)
  }
}

/** Creates the node's cgroup (idempotent) and returns its path; undefined without cgroup v2. */
export function ensureNodeCgroup(lab: string, node: string): string | undefined {
  const root = labCgroup(lab);
  if (!root) return undefined;
  const dir = join(root, node);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** PIDs in a cgroup and its descendants. */
export function cgroupPids(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const own = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  const children = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory());
  return [...own, ...children.flatMap((d) => cgroupPids(join(dir, d.name)))];
}

/**
 * Removes a cgroup and its descendants once their processes are gone (the caller stopped them; what
 * remains is SIGKILLed: it runs in the lab's cgroup, so it is the lab's). Returns how many were removed.
 */
export async function removeCgroupTree(root: string): Promise<number> {
  if (!existsSync(root)) return 0;
  const dirs: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    dirs.push(d);
  };
  walk(root);
  const deadline = Date.now() + 5000;
  for (const d of dirs) {
    for (;;) {
      try {
        rmdirSync(d);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        // EBUSY: processes still in it (exiting ones leave a moment later).
        if (code !== 'EBUSY' || Date.now() > deadline) throw e;
        for (const pid of cgroupPids(d)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  return dirs.length;
}

/** Removes the lab's cgroups (see removeCgroupTree), and `<cgroup2>/cilium-ts` when no other lab uses it. */
export async function removeLabCgroups(lab: string): Promise<number> {
  const root = labCgroup(lab);
  if (!root) return 0;
  const removed = await removeCgroupTree(root);
  try {
    rmdirSync(join(root, '..')); // <cgroup2>/cilium-ts, when no other lab uses it
  } catch {
    // other labs' cgroups are there
  }
  return removed;
}

export interface Placement {
  /** The node's cgroup directory (omitted: the caller's cgroup). */
  cgroup?: string;
  /** The network namespace (a name under /run/netns). */
  netns: string;
  /** A file bind-mounted over /etc/resolv.conf in a mount namespace of the process's own. */
  resolvConf?: string;
}

/** The command line that runs `argv` placed as given: [file, ...args] for spawn(). */
export function placedCommand(p: Placement, argv: readonly string[]): string[] {
  // `--` ends nsenter's options: a command starting with "--net=..." is a program name, not an option.
  let cmd = ['nsenter', `--net=/run/netns/${p.netns}`, '--'];
  if (p.resolvConf)
    cmd.push(
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      'mount --bind "$0" /etc/resolv.conf && exec "$@"',
      p.resolvConf,
    );
  cmd.push(...argv);
  if (p.cgroup) cmd = ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', p.cgroup, ...cmd];
  return cmd;
}
