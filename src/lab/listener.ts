/**
 * A lab service that is a `cilium-ts` command of its own in the root namespace (the relay, the
 * Hubble UI): started detached with its output appended to a log, recorded with its start time,
 * and ready once its log says where it listens.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { cliPath } from '../common/paths.js';
import { LabError } from './errors.js';
import { isRunning, killRecorded, type ProcessRef, processRef } from './process.js';

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Runs `cilium-ts ARGS` and resolves once what it writes to `log` from now on matches `listening`,
 * with its process and the match; fails with the log's new lines when it exits first, and stops it
 * when it does not listen within 15 s. `what` names it in errors.
 */
export async function startListener(
  what: string,
  args: readonly string[],
  log: string,
  listening: RegExp,
): Promise<{ ref: ProcessRef; match: RegExpExecArray }> {
  const from = size(log);
  const out = openSync(log, 'a');
  const child = spawn(process.execPath, [cliPath, ...args], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  const ref = processRef(child.pid!);
  const written = () => readFileSync(log, 'utf8').slice(from);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const match = listening.exec(written());
    if (match) return { ref, match };
    if (!isRunning(ref))
      throw new LabError(`${what} exited during start-up; see ${log}:\n${written().trimEnd()}`);
    if (Date.now() > deadline) {
      killRecorded(ref);
      throw new LabError(`${what} did not listen within 15 s; see ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
