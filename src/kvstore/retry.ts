/**
 * Waiting for a store that cannot be reached. Requests to an unreachable etcd fail fast with
 * KvUnavailableError; a caller that must finish (an identity allocation for a new pod) runs its
 * operation under retryUnavailable, which tries again with backoff until the store answers, the
 * caller gives up (signal), or the error is of another kind.
 */
import { KvStoreError } from './errors.js';

/** The store cannot be reached, has no quorum, or did not answer in time (`code` unavailable or timeout). */
export class KvUnavailableError extends KvStoreError {
  override readonly code: 'unavailable' | 'timeout';
  constructor(message: string, opts: { timeout?: boolean; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.code = opts.timeout ? 'timeout' : 'unavailable';
  }
}

export interface RetryOptions {
  /** Stops waiting: the last error is thrown. */
  signal?: AbortSignal;
  /** Told about each failed attempt before the wait (e.g. to log "waiting for the kvstore"). */
  onRetry?: (err: KvUnavailableError, attempt: number) => void;
  /** First wait in ms (default 100), doubled up to maxDelayMs (default 2000). */
  minDelayMs?: number;
  maxDelayMs?: number;
}

/** Whether `err` says the store could not be reached (a closed client, KvClosedError, never comes back). */
export function isUnavailable(err: unknown): err is KvUnavailableError {
  return err instanceof KvUnavailableError;
}

/** Runs `fn` until it settles with anything but KvUnavailableError. */
export async function retryUnavailable<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  let wait = opts.minDelayMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isUnavailable(err) || opts.signal?.aborted) throw err;
      opts.onRetry?.(err, attempt);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          opts.signal?.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, wait);
        opts.signal?.addEventListener('abort', done, { once: true });
      });
      if (opts.signal?.aborted) throw err;
      wait = Math.min(wait * 2, opts.maxDelayMs ?? 2000);
    }
  }
}
