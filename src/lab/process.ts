/**
 * Processes the lab started, recognised by PID *and* start time. After a crash or a reboot a saved
 * PID may belong to an unrelated process; comparing the start time recorded at spawn with the one
 * in /proc/PID/stat tells them apart, so the lab never signals a process it does not own. Processes
 * found inside the lab's own network namespaces are the lab's by where they run.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A process the lab started: its PID and its start time (clock ticks since boot). */
export interface ProcessRef {
  pid: number;
  /** Absent in states written before start times were recorded: such a PID is never signalled. */
  startTime?: number;
}

/** State letter (field 3) and start time (field 22) of a /proc/PID/stat line. */
export function parseProcStat(stat: string): { state: string; startTime: number } | undefined {
  // comm (field 2) is in parentheses and may itself contain spaces and ')': split after the last one.
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const startTime = Number(rest[19]);
  if (!rest[0] || !Number.isSafeInteger(startTime)) return undefined;
  return { state: rest[0], startTime };
}

function procStat(pid: number): { state: string; startTime: number } | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Records a process just spawned (its start time is read now, while the PID is surely its own). */
export function processRef(pid: number): ProcessRef {
  const st = procStat(pid);
  return st ? { pid, startTime: st.startTime } : { pid };
}

/** Whether the process is still the one recorded (same PID and start time) and not a zombie. */
export function isRunning(ref: ProcessRef | undefined): boolean {
  if (!ref || ref.startTime === undefined) return false;
  const st = procStat(ref.pid);
  return st !== undefined && st.startTime === ref.startTime && st.state !== 'Z' && st.state !== 'X';
}

/**
 * SIGKILLs a recorded process and its process group (the lab starts each process as a group
 * leader), after checking it is still the recorded process. Returns whether it signalled anything.
 */
export function killRecorded(ref: ProcessRef | undefined): boolean {
  if (!ref || !isRunning(ref)) return false;
  try {
    process.kill(-ref.pid, 'SIGKILL');
    return true;
  } catch {
    // not a group leader after all: the process alone
  }
  try {
    process.kill(ref.pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGKILLs, one by one, every process inside a network namespace the lab made (they are the lab's
 * by where they run; their process groups may reach outside). Returns the PIDs signalled.
 */
export function killNetnsProcesses(netns: string): number[] {
  const out = spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).stdout ?? '';
  const killed: number[] = [];
  for (const pid of out.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}
