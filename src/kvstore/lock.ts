/**
 * A mutex over any KvStore: the lock is a key created only if absent, bound to the holder's lease
 * (a dead holder's lock vanishes with its lease); waiters watch the key for its deletion and try
 * again. This is what upstream takes around identity allocation (`identities/v1/locks/<labels>`).
 *
 * A holder that lives on must not leave its lock behind when the store goes away mid-way: its lease
 * is kept alive, so nothing would ever delete the key and every later allocation of those labels
 * (this node's retry included) would wait forever. So a release the store cannot take now, and a
 * create whose outcome is unknown (the store may have written it before the answer was lost), are
 * handed to a background release that retries until the store answers or the client closes.
 */
import { KvClosedError, KvCompactedError, KvLockError } from './errors.js';
import { isUnavailable, retryUnavailable } from './retry.js';
import type { KvStore } from './types.js';

export interface KvLock {
  readonly key: string;
  /**
   * Releases the lock if this holder still has it (a lost lease may have released it already).
   * A store that cannot be reached now does not fail it: the release goes on in the background.
   */
  unlock(): Promise<void>;
}

export interface LockOptions {
  /** Gives up waiting (KvLockError) when aborted, e.g. `AbortSignal.timeout(ms)`. */
  signal?: AbortSignal;
  /** Written into the lock key so operators can see who holds it. */
  owner?: string;
  /** Told when a release has to wait for the store (and when it failed for another reason). */
  onDeferredRelease?: (key: string, err: unknown) => void;
}

export async function lockKey(store: KvStore, key: string, opts: LockOptions = {}): Promise<KvLock> {
  // The token tells this holder's lock from a later holder's: unlock deletes only its own.
  const token = `${opts.owner ?? 'lock'}/${globalThis.crypto.randomUUID()}`;
  const release = async () => {
    try {
      await store.deleteIf(key, { value: token });
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      opts.onDeferredRelease?.(key, err);
      releaseLater(store, key, token, opts);
    }
  };
  for (;;) {
    if (opts.signal?.aborted) throw new KvLockError(`gave up waiting for lock ${key}`);
    let created: boolean;
    try {
      created = await store.create(key, token, { lease: true });
    } catch (err) {
      // Unknown outcome: the key may hold this token now. Only this token is ever deleted.
      if (isUnavailable(err)) releaseLater(store, key, token, opts);
      throw err;
    }
    if (created) return { key, unlock: release };
    const held = await store.get(key);
    if (held) await waitForDelete(store, key, held.modRevision, opts.signal);
  }
}

/** Deletes `key` if it holds `token`, once the store answers; gives up only when the client closes. */
function releaseLater(store: KvStore, key: string, token: string, opts: LockOptions): void {
  void retryUnavailable(() => store.deleteIf(key, { value: token }), { maxDelayMs: 1000 }).catch(
    (err: unknown) => {
      // A closed client revoked its lease, and the lock with it.
      if (!(err instanceof KvClosedError)) opts.onDeferredRelease?.(key, err);
    },
  );
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
    try {
      for await (const batch of watch) {
        if (batch.events.some((e) => e.key === key && e.type === 'delete')) return;
      }
    } catch (err) {
      // The store lost the history (etcd back from an empty data directory): look again.
      if (err instanceof KvCompactedError) return;
      throw err;
    }
    if (signal?.aborted) throw new KvLockError(`gave up waiting for lock ${key}`);
    throw new KvClosedError();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    watch.close();
  }
}
