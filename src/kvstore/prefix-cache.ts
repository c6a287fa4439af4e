/**
 * Keeps a local copy of every key under a prefix and reports changes: list, then watch after the
 * list's revision. A failed watch resumes after the last revision it applied; when that history is
 * gone (compacted) it lists again and reports the difference, so a consumer sees every key that
 * appeared, changed or vanished, whatever happened in between.
 */
import { KvClosedError, KvCompactedError } from './errors.js';
import type { KvStore, KvWatch } from './types.js';

export interface PrefixChange {
  readonly type: 'upsert' | 'delete';
  readonly key: string;
  /** The new value (upsert) or the last known value (delete). */
  readonly value: string;
}

export interface PrefixCacheOptions {
  /** Delay before retrying after an error (default 1000 ms). */
  retryMs?: number;
  /** Told about errors the cache recovers from (a failed list or watch). */
  onError?: (err: unknown) => void;
}

export class KvPrefixCache {
  readonly #values = new Map<string, string>();
  #revision = 0;
  #closed = false;
  #watch: KvWatch | undefined;
  #wake: (() => void) | undefined;
  #started: Promise<void> | undefined;
  #ready!: () => void;
  readonly #readyPromise = new Promise<void>((r) => {
    this.#ready = r;
  });

  constructor(
    readonly store: KvStore,
    readonly prefix: string,
    private readonly onChanges: (changes: readonly PrefixChange[]) => void,
    private readonly opts: PrefixCacheOptions = {},
  ) {}

  /** Starts following the prefix; resolves once the first listing has been applied. */
  start(): Promise<void> {
    // When following ends (closed cache or store), nobody waits forever for a first listing.
    this.#started ??= this.#run().finally(() => this.#ready());
    return this.#readyPromise;
  }

  /** Revision of the last change applied. */
  get revision(): number {
    return this.#revision;
  }

  get(key: string): string | undefined {
    return this.#values.get(key);
  }

  entries(): [string, string][] {
    return [...this.#values];
  }

  close(): void {
    this.#closed = true;
    this.#watch?.close();
    this.#wake?.();
    this.#ready();
  }

  async #run(): Promise<void> {
    let relist = true;
    while (!this.#closed) {
      try {
        if (relist) {
          const list = await this.store.list(this.prefix);
          if (this.#closed) return;
          this.#applyListing(list.pairs);
          this.#revision = list.revision;
          relist = false;
          this.#ready();
        }
        this.#watch = this.store.watch(this.prefix, { afterRevision: this.#revision });
        for await (const batch of this.#watch) {
          const changes: PrefixChange[] = [];
          for (const e of batch.events) {
            const old = this.#values.get(e.key);
            if (e.type === 'put') {
              if (old === e.value) continue;
              this.#values.set(e.key, e.value);
              changes.push({ type: 'upsert', key: e.key, value: e.value });
            } else if (old !== undefined) {
              this.#values.delete(e.key);
              changes.push({ type: 'delete', key: e.key, value: old });
            }
          }
          this.#revision = batch.revision;
          this.#emit(changes);
        }
        return; // the watch ended: this cache or its store was closed
      } catch (err) {
        if (this.#closed || err instanceof KvClosedError) return;
        if (err instanceof KvCompactedError) relist = true;
        this.opts.onError?.(err);
        await new Promise<void>((r) => {
          const t = setTimeout(r, this.opts.retryMs ?? 1000);
          this.#wake = () => {
            clearTimeout(t);
            r();
          };
        });
        this.#wake = undefined;
      }
    }
  }

  #applyListing(pairs: readonly { key: string; value: string }[]): void {
    const changes: PrefixChange[] = [];
    const seen = new Set<string>();
    for (const p of pairs) {
      seen.add(p.key);
      if (this.#values.get(p.key) === p.value) continue;
      this.#values.set(p.key, p.value);
      changes.push({ type: 'upsert', key: p.key, value: p.value });
    }
    for (const [key, value] of this.#values) {
      if (seen.has(key)) continue;
      this.#values.delete(key);
      changes.push({ type: 'delete', key, value });
    }
    this.#emit(changes);
  }

  // A consumer's exception must not stop the cache (the changes are already applied).
  #emit(changes: PrefixChange[]): void {
    if (changes.length === 0) return;
    try {
      this.onChanges(changes);
    } catch (err) {
      this.opts.onError?.(err);
    }
  }
}
