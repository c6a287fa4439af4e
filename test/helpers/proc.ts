/** Process checks for tests: liveness (zombies count as gone) and process-group members. */
import { readdirSync, readFileSync } from 'node:fs';

function stat(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after "(comm)": state is field 3, pgid field 5
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Whether a process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const f = stat(pid);
  return f !== undefined && f[0] !== 'Z' && f[0] !== 'X';
}

/** Live processes whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      const f = stat(pid);
      return f !== undefined && Number(f[2]) === pgid && f[0] !== 'Z';
    });
}

/** Waits (up to timeoutMs) until none of the processes is alive. */
export async function waitGone(pids: readonly number[], timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
