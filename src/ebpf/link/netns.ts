/**
 * Runs a synchronous function with the calling thread inside another network namespace.
 * setns(2) changes only the calling thread, so the switch and the switch back happen within one
 * synchronous call; nothing else on the event loop runs in between.
 */
import { closeSync, openSync } from 'node:fs';
import { BpfSyscallError } from '../errors.js';
import { CLONE_NEWNET, ifNametoindex, setns } from '../sys/libc.js';

export function withNetns<T>(netnsPath: string | undefined, fn: () => T): T {
  if (!netnsPath) return fn();
  const target = openSync(netnsPath, 'r');
  const orig = openSync('/proc/thread-self/ns/net', 'r');
  try {
    const r = setns(target, CLONE_NEWNET);
    if (r.ret < 0) throw new BpfSyscallError(`enter network namespace ${netnsPath}`, r.errno);
    try {
      return fn();
    } finally {
      const back = setns(orig, CLONE_NEWNET);
      if (back.ret < 0) {
        // Continuing in the wrong namespace would silently misdirect every later operation.
        process.stderr.write(
          `fatal: could not return to the original network namespace (errno ${back.errno})\n`,
        );
        process.abort();
      }
    }
  } finally {
    closeSync(target);
    closeSync(orig);
  }
}

/** Interface index of `name` in the current (or given) network namespace; throws if absent. */
export function ifindexOf(name: string, netnsPath?: string): number {
  const idx = withNetns(netnsPath, () => ifNametoindex(name));
  if (!idx)
    throw new BpfSyscallError(
      `interface ${name}${netnsPath ? ` in ${netnsPath}` : ''}`,
      19,
      'no such interface',
    );
  return idx;
}
