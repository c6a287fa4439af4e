/**
 * A mutex over any KvStore: the lock is a key created only if absent, bound to the holder's lease
 * (a dead holder's lock vanishes with its lease); waiters watch the key for its deletion and try
 * again. This is what upstream takes around identity allocation (`identities/v1/locks/<labels>`).
 */
import { KvClosedError, KvLockError } from './errors.js';
import type { KvStore } from './types.js';

export interface KvLock {
  readonly key: string;
  /** Releases the lock if this holder still has it (a lost lease may have released it already). */
  unlock(): Promise<void>;
}

export interface LockOptions {
  /** Gives up waiting (KvLockError) when aborted, e.g. `AbortSignal.timeout(ms)`. */
  signal?: AbortSignal;
  /** Written into the lock key so operators can see who holds it. */
  owner?: string;
}

export async function lockKey(store: KvStore, key: string, opts: LockOptions = {}): Promise<KvLock> {
  // The token tells this holder's lock from a later holder's: unlock deletes only its own.
  const token = `${opts.owner ?? 'lock'}/${globalThis.crypto.randomUUID()}`;
  for (;;) {
    if (opts.signal?.aborted) throw new KvLockError(`gave up waiting for lock ${key}`);
    if (await store.create(key, token, { lease: true })) {
      return {
        key,
        unlock: async () => {
          await store.deleteIf(key, { value: token });
        },
      };
    }
    const held = await store.get(key);
    if (held) await waitForDelete(store, key, held.modRevision, opts.signal);
  }
}

/** Resolves once `key` is deleted after revision `after`. */
async function waitForDelete(
  store: KvStore,
  key: string,
  after: number,
  signal?: AbortSignal,
): Promise<void> {
  const watch = store.watch(key, { afterRevision: after });
  const onAbort = () => watch.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const batch of watch) {
      if (batch.events.some((e) => e.key === key && e.type === 'delete')) return;
    }
    if (signal?.aborted) throw new KvLockError(`gave up waiting for lock ${key}`);
    throw new KvClosedError();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    watch.close();
  }
}
