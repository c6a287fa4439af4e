/** One lab mutation at a time: lab commands and the lab's controller take the lab's lock. */
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './errors.js';
import { isRunning, type ProcessRef, processRef } from './process.js';
import { labDir } from './state.js';

function lockHolder(lock: string): ProcessRef | undefined {
  try {
    return JSON.parse(readFileSync(lock, 'utf8')) as ProcessRef;
  } catch {
    return undefined;
  }
}

/**
 * The lock files this process holds or waits for, each with the end of its queue: the file lock
 * below is per process, so a process doing two things at once (the controller reconciling while it
 * applies a manifest for `lab apply`) takes turns here first instead of waiting on itself.
 */
const queues = new Map<string, Promise<unknown>>();

/**
 * Runs fn holding the lab's lock (a lock whose holder died is taken over). `name` picks another lock
 * of the lab: `etcd.lock` guards the etcd members alone (taken inside the lab's lock by lab up).
 */
export function withLock<T>(lab: string, fn: () => Promise<T>, name = 'lock'): Promise<T> {
  const lock = join(labDir(lab), name);
  const before = queues.get(lock) ?? Promise.resolve();
  const mine = before.then(() => withFileLock(lab, lock, name, fn));
  const tail = mine.catch(() => {});
  queues.set(lock, tail);
  void tail.then(() => {
    if (queues.get(lock) === tail) queues.delete(lock);
  });
  return mine;
}

function withFileLock<T>(lab: string, lock: string, name: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(labDir(lab), { recursive: true });
  // Written first and linked into place, so the lock never exists without its holder's identity.
  const mine = `${lock}.${process.pid}`;
  writeFileSync(mine, JSON.stringify(processRef(process.pid)));
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      try {
        linkSync(mine, lock);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const holder = lockHolder(lock);
        if (!isRunning(holder)) {
          rmSync(lock, { force: true });
          continue;
        }
        if (Date.now() > deadline)
          throw new LabError(`lab ${lab} is busy (${name} held by pid ${holder?.pid})`);
        // Short waits: a lab command (or the controller's reconcile) often holds it for tens of ms.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  } finally {
    rmSync(mine, { force: true });
  }
  return fn().finally(() => rmSync(lock, { force: true }));
}
