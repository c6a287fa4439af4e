/**
 * Processes and clean-up for the benches that build namespaces and run clients in them
 * (bench/datapath.ts, bench/nodeport.ts): commands, processes inside a network namespace, their
 * output, and one stack of undo steps run at the end, on failure, on SIGINT/SIGTERM and when
 * stdout's reader goes away; also what other benches share of that (onStdoutClosed, buildCrr).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import koffi from 'koffi';

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

/**
 * Runs `stop` when whoever reads stdout goes away (`bench ... | head`): the next write fails with
 * EPIPE, which would otherwise end the process on the spot, its namespaces, mounts and servers left
 * behind.
 */
export function onStdoutClosed(stop: () => void): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    stop();
  });
}

/** Runs `main`, then the undo steps whatever happened (also on SIGINT/SIGTERM and a closed stdout);
 * errors set the exit code. */
export function runBench(main: () => Promise<void>): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      cleanup();
      process.exit(130);
    });
  onStdoutClosed(() => {
    cleanup();
    process.exit(141);
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

const libc = koffi.load('libc.so.6');
const sched = {
  get: libc.func('int sched_getaffinity(int pid, size_t size, _Out_ uint8_t *mask)'),
  set: libc.func('int sched_setaffinity(int pid, size_t size, const uint8_t *mask)'),
  cpu: libc.func('int sched_getcpu()'),
};

/**
 * Runs `fn` with the calling thread pinned to the CPU it is on (pid 0: this thread, which makes
 * the BPF_PROG_TEST_RUN calls), then restores its CPU set: a run that migrates between CPUs, or
 * shares one with the other CPU's interrupts and threads part of the time, mixes both into one
 * per-packet figure. Returns fn's result and the CPU.
 */
export function onOneCpu<T>(fn: () => T): { result: T; cpu: number } {
  const saved = Buffer.alloc(128);
  if ((sched.get(0, saved.length, saved) as number) < 0) throw new Error('sched_getaffinity failed');
  const cpu = sched.cpu() as number;
  const mask = Buffer.alloc(128);
  mask[cpu >> 3] = 1 << (cpu & 7);
  if ((sched.set(0, mask.length, mask) as number) < 0)
    throw new Error(`sched_setaffinity(cpu ${cpu}) failed`);
  try {
    return { result: fn(), cpu };
  } finally {
    sched.set(0, saved.length, saved);
  }
}

/** bench/helpers/crr.c (TCP_CRR and ping-pong in C), compiled into `dir` with the first C compiler found. */
export function buildCrr(dir: string): string {
  const source = fileURLToPath(new URL('../../../bench/helpers/crr.c', import.meta.url));
  const cc = ['cc', 'gcc', 'clang', 'clang-19'].find((c) => spawnSync(c, ['--version']).status === 0);
  if (!cc) throw new Error('no C compiler (cc, gcc, clang): scripts/setup.sh installs clang-19');
  const out = join(dir, 'crr');
  sh(cc, ['-O2', '-Wall', '-o', out, source]);
  return out;
}

let fullGc: (() => void) | undefined;

/**
 * Lets this process's own garbage collection happen before a path is measured, not during it:
 * a bench that has just loaded programs (megabytes of ELF objects read and relocated) would
 * otherwise have V8 mark and sweep on the other CPU while iperf3 runs, a cost of the bench and not
 * of the path. A full collection now (V8's gc, exposed for this), then a short pause.
 */
export async function settle(ms = 200): Promise<void> {
  if (fullGc === undefined) {
    setFlagsFromString('--expose-gc');
    fullGc = runInNewContext('gc') as () => void;
  }
  fullGc();
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * The second congestion control the benches measure throughput with (iperf3 -C). The machine's
 * default may pace: BBR, without an fq qdisc, paces each socket itself with a timer, and a single
 * stream then runs at the rate its pacing settles on (~9-12 Gb/s here, on our path and on a plain
 * one alike), which says more about the pacing than about the path. cubic sends as fast as the
 * path takes it.
 */
export const CONGESTION = 'cubic';

/**
 * One iperf3 stream from `netns` to host:port for `seconds` (with `congestion`, else the default
 * congestion control): the rate received, Gb/s. The server runs already.
 */
export async function iperfGbps(
  netns: string,
  host: string,
  port: number,
  seconds: number,
  congestion?: string,
): Promise<number> {
  const argv = ['iperf3', '-c', host, '-p', String(port), '-t', String(seconds), '-J'];
  if (congestion !== undefined) argv.push('-C', congestion);
  const r = JSON.parse(await collect(inNs(netns, argv))) as {
    end: { sum_received: { bits_per_second: number } };
  };
  return r.end.sum_received.bits_per_second / 1e9;
}

/** The congestion control new TCP sockets get by default (a pod's namespace inherits the machine's). */
export function defaultCongestion(): string {
  return readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();
}
