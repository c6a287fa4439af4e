import { spawn } from 'node:child_process';
import { LinuxCommandError } from './errors.js';

export interface RunOptions {
  /** Run inside the network namespace at this path (via `nsenter --net=PATH`). */
  netns?: string | undefined;
  /** Text written to the command's stdin. */
  input?: string | undefined;
  /** Kill the command after this many milliseconds (default 30 s). */
  timeoutMs?: number | undefined;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Prefix argv with `nsenter --net=PATH --` when a namespace path is given. */
export function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  return netns ? ['nsenter', `--net=${netns}`, '--', ...argv] : [...argv];
}

/**
 * Spawn a command (no shell), optionally inside a network namespace, and collect its output.
 * Rejects with LinuxCommandError on a non-zero exit.
 */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const full = inNetns(opts.netns, argv);
  return new Promise((resolve, reject) => {
    const child = spawn(full[0]!, full.slice(1), {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 30_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new LinuxCommandError(full, null, e.message, opts.input)));
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code === 0) resolve({ stdout, stderr });
      else reject(new LinuxCommandError(full, code, stderr, opts.input));
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
  });
}
