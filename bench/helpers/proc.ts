/**
 * Processes and clean-up for the benches that build namespaces and run clients in them
 * (bench/datapath.ts, bench/nodeport.ts): commands, processes inside a network namespace, their
 * output, and one stack of undo steps run at the end, on failure and on SIGINT/SIGTERM.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';

/** Undo steps, run last first; a failing step does not stop the others. */
export const undo: (() => void)[] = [];

export function cleanup(): void {
  while (undo.length) {
    try {
      undo.pop()!();
    } catch {
      // keep going
    }
  }
}

/** Runs `main`, then the undo steps whatever happened (also on SIGINT/SIGTERM); errors set the exit code. */
export function runBench(main: () => Promise<void>): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      cleanup();
      process.exit(130);
    });
  main()
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(cleanup);
}

/** Output of a command that must succeed (`input` on its stdin). */
export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A process inside the network namespace at `netns` (a /run/netns path). */
export function inNs(netns: string, argv: string[]): ChildProcess {
  return spawn('nsenter', [`--net=${netns}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Output of a process that must exit 0. */
export async function collect(p: ChildProcess): Promise<string> {
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  if (code !== 0) throw new Error(`exit ${code}: ${err || out}`);
  return out;
}

/** Resolves once a (server) process printed `text`; rejects if it exits first or after the timeout. */
export async function waitFor(p: ChildProcess, text: string, timeoutMs = 5000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for "${text}": ${out}`)), timeoutMs);
    let out = '';
    const on = (d: Buffer) => {
      out += d.toString();
      if (out.includes(text)) {
        clearTimeout(t);
        resolve();
      }
    };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
    p.on('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
  });
}

/** A long-running server in a namespace, killed by the undo steps; resolves once it printed `ready`. */
export async function startServer(netns: string, argv: string[], ready: string): Promise<ChildProcess> {
  const p = inNs(netns, argv);
  undo.push(() => void p.kill('SIGKILL'));
  await waitFor(p, ready);
  return p;
}

export const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
