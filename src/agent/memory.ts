/**
 * Gives memory back once the agent goes quiet. V8's memory reducer is meant to collect some seconds
 * after allocation slows down, but in bench/agent-memory it did not always do so: 20 s after the
 * 1,000th pod the agent sometimes still held ~220 MiB of RSS, ~105 MiB of it garbage. So every
 * interval, if RSS stopped growing (the burst of work is over), the event loop was busy less than
 * `maxBusy` of the time and RSS grew by `minGrowth` since the last collection, the agent runs one
 * full collection (`gc`, exposed by AGENT_NODE_FLAGS' --expose-gc; without it nothing is done) and
 * then glibc's malloc_trim, which hands free pages inside malloc's heaps back to the kernel (free()
 * gives back only the top of a heap).
 */
import { performance } from 'node:perf_hooks';
import koffi from 'koffi';

export interface IdleCollectorOptions {
  intervalMs?: number;
  /** Event loop utilization (0..1) over the last interval below which the agent counts as quiet. */
  maxBusy?: number;
  /** Bytes of RSS growth since the last collection that make one worth it. */
  minGrowth?: number;
}

let mallocTrim: ((pad: number) => number) | undefined;

/** glibc's malloc_trim(0): free pages anywhere in malloc's heaps go back to the kernel. */
export function trimMalloc(): void {
  try {
    mallocTrim ??= koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    mallocTrim(0);
  } catch {
    // not glibc: nothing to trim
  }
}

/** Starts the collector; returns a stop function. The timer does not keep the process alive. */
export function startIdleCollector(opts: IdleCollectorOptions = {}): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return () => {};
  const maxBusy = opts.maxBusy ?? 0.25;
  const minGrowth = opts.minGrowth ?? 8 * 1024 * 1024;
  let baseline = process.memoryUsage.rss();
  let last = baseline;
  let elu = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    const rss = process.memoryUsage.rss();
    // Quiet: RSS stopped growing over the last interval (allocation is over) and the loop is mostly idle.
    const settled = rss - last < FLAT;
    last = rss;
    if (rss < baseline) baseline = rss;
    if (!settled || busy > maxBusy || rss - baseline < minGrowth) return;
    gc();
    trimMalloc();
    baseline = last = process.memoryUsage.rss();
  }, opts.intervalMs ?? 5_000);
  timer.unref();
  return () => clearInterval(timer);
}

/** RSS growth over one interval that still counts as flat. */
const FLAT = 1024 * 1024;
