/** Talking to a forked bench role over its IPC channel. */
import type { ChildProcess } from 'node:child_process';

/** Sends `msg` (unless empty) and resolves with the first answer `pick` accepts. */
export function request<T>(
  child: ChildProcess,
  msg: object,
  pick: (m: Record<string, unknown>) => T | undefined,
): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>) => {
      const v = pick(m);
      if (v === undefined) return;
      child.off('message', on);
      resolve(v);
    };
    child.on('message', on);
    if (Object.keys(msg).length > 0) child.send(msg);
  });
}
