/**
 * A generic reconciler: pushes the rows of a desired-state table into a target (a BPF map, a set
 * of programs, ...) through three operations, and keeps doing so until the target agrees.
 *
 *  - update(key, value, applied): make the target hold `value` for `key`. `applied` is the value
 *    last written successfully for that key, or undefined when the target's content is unknown
 *    (first write, after a failure, in a full pass): the operation must then converge from
 *    whatever the target holds.
 *  - delete(key, applied): remove `key` from the target.
 *  - prune(desired): remove from the target everything that is not desired (full pass only).
 *
 * Changes are processed right after they happen (or at once with flush()); a failed object is
 * retried with exponential backoff and its error is visible in status(); a periodic full pass
 * re-applies every object and prunes, so drift and leftovers from before a restart converge.
 * Pure: timers only, the target does the I/O.
 */
import type { Change, Row, Table } from './table.js';

export type FlushPhase = 'upserts' | 'deletes';

export interface Operations<V> {
  update(key: string, value: V, applied: V | undefined): void | Promise<void>;
  delete(key: string, applied: V | undefined): void | Promise<void>;
  prune(desired: ReadonlyMap<string, V>): void | Promise<void>;
  /**
   * Optional: several updates at once, in order (a target that writes them in one syscall). Returns
   * the error of each item that failed, by index; the other items are done.
   */
  updateMany?(items: readonly UpdateItem<V>[]): BatchErrors | Promise<BatchErrors>;
}

export interface UpdateItem<V> {
  readonly key: string;
  readonly value: V;
  /** As update()'s `applied`. */
  readonly applied: V | undefined;
}

/** Errors of a batch by item index; the items not named succeeded. */
export type BatchErrors = ReadonlyMap<number, unknown>;

export interface ReconcilerOptions {
  /** First retry delay; doubles per failed attempt up to retryMaxMs. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Period of the full pass (update all + prune); 0 = only when asked. */
  fullPassIntervalMs?: number;
  /** Told of each failure (for logs). */
  onError?: (key: string, err: unknown, attempts: number) => void;
  /**
   * false: changes wait for an explicit flush() (a caller that orders writes across several
   * targets drives them); retries and full passes still run. Default true.
   */
  autoFlush?: boolean;
  /**
   * false: update() always gets `applied` undefined and the reconciler keeps no copy of what it
   * wrote (one map entry less per row: 220,000 for 10,000 services), for a target whose write of
   * an unchanged value is harmless. The table already drops upserts equal to its row, so such a
   * write only happens when a row changes and changes back before a flush. Default true.
   */
  rememberApplied?: boolean;
}

export type ObjectState = 'pending' | 'done' | 'error';

export interface ObjectStatus {
  key: string;
  state: ObjectState;
  attempts: number;
  error?: string;
  /** Epoch ms of the last attempt. */
  updatedAt: number;
}

export interface ReconcilerStatus {
  name: string;
  objects: number;
  pending: number;
  errors: ObjectStatus[];
  fullPasses: number;
  lastFullPass?: string;
  lastFullPassError?: string;
  retries: number;
}

interface Failure {
  attempts: number;
  error: string;
  updatedAt: number;
  retryAt: number;
}

/** A reconciler seen from outside, whatever its row type. */
export interface ReconcilerHandle {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  flush(phase?: FlushPhase): Promise<void>;
  fullPass(): Promise<void>;
  objectStatus(key: string): ObjectStatus | undefined;
  status(): ReconcilerStatus;
}

export class Reconciler<V> implements ReconcilerHandle {
  /**
   * Keys to process, with the table's latest change of each when a change made them dirty (its
   * row: no table lookup when they are processed), undefined when only the key is known (a full
   * pass, a retry).
   */
  #dirty = new Map<string, Change<V> | undefined>();
  readonly #applied = new Map<string, V>();
  readonly #failed = new Map<string, Failure>();
  readonly #opts: Required<Omit<ReconcilerOptions, 'onError'>> & Pick<ReconcilerOptions, 'onError'>;
  #unwatch?: () => void;
  #running: Promise<void> | undefined;
  #scheduled = false;
  #retryTimer?: NodeJS.Timeout;
  #fullTimer?: NodeJS.Timeout;
  #fullPasses = 0;
  #lastFullPass?: string;
  #lastFullPassError?: string;
  #retries = 0;
  #stopped = true;

  constructor(
    readonly name: string,
    readonly table: Table<V>,
    readonly ops: Operations<V>,
    opts: ReconcilerOptions = {},
  ) {
    this.#opts = {
      retryMinMs: opts.retryMinMs ?? 100,
      retryMaxMs: opts.retryMaxMs ?? 30_000,
      fullPassIntervalMs: opts.fullPassIntervalMs ?? 5 * 60_000,
      autoFlush: opts.autoFlush ?? true,
      rememberApplied: opts.rememberApplied ?? true,
      onError: opts.onError,
    };
  }

  /**
   * Starts following the table. The first step is a full pass: every row is written with its
   * target state unknown and everything else is pruned (what a restart needs).
   */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#unwatch = this.table.watch((changes) => this.#onChanges(changes));
    await this.fullPass();
    if (this.#opts.fullPassIntervalMs > 0) {
      this.#fullTimer = setInterval(
        () => void this.fullPass().catch(() => {}),
        this.#opts.fullPassIntervalMs,
      );
      this.#fullTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwatch?.();
    clearInterval(this.#fullTimer);
    clearTimeout(this.#retryTimer);
    await this.#running;
  }

  /**
   * Processes pending changes now; resolves when the target has them (or they failed). With a
   * phase, only the writes ('upserts') or only the removals ('deletes'): a caller ordering several
   * targets adds in one order and removes in the reverse.
   */
  async flush(phase?: FlushPhase): Promise<void> {
    while (this.#running) await this.#running;
    if (this.#dirty.size === 0) return;
    this.#running = this.#drain(phase).finally(() => {
      this.#running = undefined;
    });
    await this.#running;
  }

  /** Re-applies every desired object (target state unknown) and prunes everything else. */
  async fullPass(): Promise<void> {
    while (this.#running) await this.#running;
    this.#running = (async () => {
      this.#applied.clear();
      for (const k of this.table.keys()) this.#dirty.set(k, undefined);
      await this.#drain();
      try {
        await this.ops.prune(new Map(this.table.entries()));
        this.#lastFullPassError = undefined;
      } catch (err) {
        this.#lastFullPassError = errText(err);
        this.#opts.onError?.('(prune)', err, 1);
      }
      this.#fullPasses++;
      this.#lastFullPass = new Date().toISOString();
    })().finally(() => {
      this.#running = undefined;
    });
    await this.#running;
  }

  /** Status of one object: done once written, error while it keeps failing. */
  objectStatus(key: string): ObjectStatus | undefined {
    const f = this.#failed.get(key);
    if (f) return { key, state: 'error', attempts: f.attempts, error: f.error, updatedAt: f.updatedAt };
    if (this.#dirty.has(key)) return { key, state: 'pending', attempts: 0, updatedAt: Date.now() };
    if (this.table.has(key)) return { key, state: 'done', attempts: 0, updatedAt: Date.now() };
    return undefined;
  }

  status(): ReconcilerStatus {
    const s: ReconcilerStatus = {
      name: this.name,
      objects: this.table.size,
      pending: this.#dirty.size,
      errors: [...this.#failed.keys()].map((k) => this.objectStatus(k)!),
      fullPasses: this.#fullPasses,
      retries: this.#retries,
    };
    if (this.#lastFullPass) s.lastFullPass = this.#lastFullPass;
    if (this.#lastFullPassError) s.lastFullPassError = this.#lastFullPassError;
    return s;
  }

  #onChanges(changes: readonly Change<V>[]): void {
    for (const c of changes) this.#dirty.set(c.key, c);
    if (this.#scheduled || this.#stopped || !this.#opts.autoFlush) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.flush();
    });
  }

  async #drain(phase?: FlushPhase): Promise<void> {
    for (;;) {
      // The keys of this phase; the others stay dirty (a new map: cheaper than deleting each key,
      // and none at all when every key is of this phase).
      const keys: string[] = [];
      const rows: (Row<V> | undefined)[] = [];
      let rest: Map<string, Change<V> | undefined> | undefined;
      this.#dirty.forEach((c, k) => {
        const row = c === undefined ? this.table.row(k) : c.kind === 'upsert' ? c : undefined;
        if (phase === undefined || (row !== undefined) === (phase === 'upserts')) {
          keys.push(k);
          rows.push(row);
        } else {
          rest ??= new Map();
          rest.set(k, c);
        }
      });
      if (keys.length === 0) break;
      this.#dirty = rest ?? new Map();
      if (this.ops.updateMany) await this.#batched(keys, rows, this.ops.updateMany.bind(this.ops));
      else for (const key of keys) await this.#one(key);
    }
    this.#armRetry();
  }

  /** The last value written for `key`, unless a failure left the target's content unknown. */
  #appliedOf(key: string): V | undefined {
    // Nothing written yet (a start) or nothing kept: no lookup per row.
    if (this.#applied.size === 0) return undefined;
    return this.#failed.size > 0 && this.#failed.has(key) ? undefined : this.#applied.get(key);
  }

  async #one(key: string): Promise<void> {
    const row = this.table.row(key);
    const applied = this.#appliedOf(key);
    try {
      if (row) await this.ops.update(key, row.value, applied);
      else await this.ops.delete(key, applied);
      this.#succeeded(key, row);
    } catch (err) {
      this.#fail(key, err);
    }
  }

  /**
   * Keys in order, runs of updates through updateMany (one call per run), deletes one by one
   * between them: the target sees the same order as one at a time.
   */
  async #batched(
    keys: readonly string[],
    rows: readonly (Row<V> | undefined)[],
    updateMany: NonNullable<Operations<V>['updateMany']>,
  ): Promise<void> {
    let run: UpdateItem<V>[] = [];
    const flushRun = async () => {
      if (run.length === 0) return;
      const items = run;
      run = [];
      let errors: BatchErrors;
      try {
        errors = await updateMany(items);
      } catch (err) {
        errors = new Map(items.map((_, i) => [i, err]));
      }
      for (let i = 0; i < items.length; i++) {
        const it = items[i]!;
        if (errors.size > 0 && errors.has(i)) this.#fail(it.key, errors.get(i));
        else this.#succeeded(it.key, it);
      }
    };
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const row = rows[i];
      if (row) run.push({ key, value: row.value, applied: this.#appliedOf(key) });
      else {
        await flushRun();
        await this.#one(key);
      }
    }
    await flushRun();
  }

  /** `key` now holds `row`'s value in the target (or is gone from it, without a row). */
  #succeeded(key: string, row: { value: V } | undefined): void {
    if (row) {
      if (this.#opts.rememberApplied) this.#applied.set(key, row.value);
    } else if (this.#applied.size > 0) this.#applied.delete(key);
    if (this.#failed.size > 0) this.#failed.delete(key);
  }

  #fail(key: string, err: unknown): void {
    // What the target holds for this key is unknown now: the retry converges from scratch.
    this.#applied.delete(key);
    const prev = this.#failed.get(key);
    const attempts = (prev?.attempts ?? 0) + 1;
    const delay = Math.min(this.#opts.retryMaxMs, this.#opts.retryMinMs * 2 ** (attempts - 1));
    const now = Date.now();
    this.#failed.set(key, { attempts, error: errText(err), updatedAt: now, retryAt: now + delay });
    this.#opts.onError?.(key, err, attempts);
  }

  /** One timer for the earliest due retry. */
  #armRetry(): void {
    clearTimeout(this.#retryTimer);
    if (this.#stopped || this.#failed.size === 0) return;
    let due = Number.POSITIVE_INFINITY;
    for (const f of this.#failed.values()) due = Math.min(due, f.retryAt);
    this.#retryTimer = setTimeout(
      () => {
        const now = Date.now();
        for (const [k, f] of this.#failed) if (f.retryAt <= now) this.#dirty.set(k, undefined);
        if (this.#dirty.size === 0) return this.#armRetry();
        this.#retries++;
        void this.flush();
      },
      Math.max(0, due - Date.now()),
    );
    this.#retryTimer.unref();
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
