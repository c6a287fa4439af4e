/**
 * In-memory kvstore: the backend of a single node, and the stand-in for etcd in tests.
 *
 * It behaves as etcd does where callers can tell: one revision counter, per-key create/mod
 * revisions, watches that replay history after a revision (the last `historyLimit` revisions are
 * kept; older ones fail with KvCompactedError), create-only and conditional deletes, and leases.
 *
 * Several clients share one store through `session()`: each session is a KvStore with its own lease,
 * as agents sharing an etcd cluster are. Closing a session deletes the keys it wrote with
 * `lease: true`; `expireLease()` models a lease lost during an outage. This lets tests run several
 * "agents" against one store in one process.
 */
import { KvArgumentError, KvClosedError, KvCompactedError } from './errors.js';
import { AsyncQueue } from './queue.js';
import type {
  KvCondition,
  KvEvent,
  KvList,
  KvPair,
  KvPutOptions,
  KvStatus,
  KvStore,
  KvWatch,
  KvWatchBatch,
  KvWatchOptions,
} from './types.js';

export interface MemoryKvStoreOptions {
  /** Revisions of history kept for watches that resume (default 10000). */
  historyLimit?: number;
  /**
   * Milliseconds each operation waits before it runs (default: none, operations still complete
   * asynchronously). Tests pass a random jitter to vary how concurrent clients interleave.
   */
  latency?: () => number;
  /** Name shown in status (default `memory`). */
  name?: string;
}

interface Entry {
  value: string;
  createRevision: number;
  modRevision: number;
  /** Lease ID, 0 for none. */
  lease: number;
}

interface Watcher {
  prefix: string;
  after: number;
  queue: AsyncQueue<KvWatchBatch>;
}

/** The data all sessions of one store share. */
class Backend {
  revision = 0;
  readonly data = new Map<string, Entry>();
  readonly leases = new Map<number, Set<string>>();
  readonly history: KvWatchBatch[] = [];
  /** Revisions up to this one are no longer in `history`. */
  compactedUpTo = 0;
  readonly watchers = new Set<Watcher>();
  #nextLease = 1;

  constructor(readonly opts: Required<Pick<MemoryKvStoreOptions, 'historyLimit'>> & MemoryKvStoreOptions) {}

  grantLease(): number {
    const id = this.#nextLease++;
    this.leases.set(id, new Set());
    return id;
  }

  /** Applies one write: every change gets the same new revision. Returns it (or the current one if nothing changed). */
  commit(changes: { key: string; value?: string; lease?: number }[]): number {
    if (changes.length === 0) return this.revision;
    const rev = ++this.revision;
    const events: KvEvent[] = [];
    for (const c of changes) {
      const old = this.data.get(c.key);
      if (old && old.lease !== 0) this.leases.get(old.lease)?.delete(c.key);
      if (c.value === undefined) {
        this.data.delete(c.key);
        events.push({ type: 'delete', key: c.key, modRevision: rev });
        continue;
      }
      const lease = c.lease ?? 0;
      const entry: Entry = {
        value: c.value,
        createRevision: old?.createRevision ?? rev,
        modRevision: rev,
        lease,
      };
      this.data.set(c.key, entry);
      if (lease !== 0) this.leases.get(lease)?.add(c.key);
      events.push({
        type: 'put',
        key: c.key,
        value: c.value,
        createRevision: entry.createRevision,
        modRevision: rev,
      });
    }
    const batch: KvWatchBatch = { revision: rev, events };
    this.history.push(batch);
    while (this.history.length > this.opts.historyLimit) this.compactedUpTo = this.history.shift()!.revision;
    for (const w of this.watchers) {
      if (rev <= w.after) continue;
      const mine = filterBatch(batch, w.prefix);
      if (mine) w.queue.push(mine);
    }
    return rev;
  }

  /** Deletes every key of a lease (one revision) and forgets the lease. */
  revoke(lease: number): void {
    const keys = this.leases.get(lease);
    this.leases.delete(lease);
    if (keys && keys.size > 0) this.commit([...keys].sort().map((key) => ({ key })));
  }
}

function filterBatch(batch: KvWatchBatch, prefix: string): KvWatchBatch | undefined {
  if (prefix === '') return batch;
  const events = batch.events.filter((e) => e.key.startsWith(prefix));
  return events.length === 0 ? undefined : { revision: batch.revision, events };
}

function pairOf(key: string, e: Entry): KvPair {
  return {
    key,
    value: e.value,
    createRevision: e.createRevision,
    modRevision: e.modRevision,
    leased: e.lease !== 0,
  };
}

function checkKey(key: unknown, field = 'key'): string {
  if (typeof key !== 'string' || key.length === 0)
    throw new KvArgumentError(field, key, 'must be a non-empty string');
  return key;
}

function checkValue(value: unknown): string {
  if (typeof value !== 'string') throw new KvArgumentError('value', value, 'must be a string');
  return value;
}

const shared = Symbol('shared backend');

export class MemoryKvStore implements KvStore {
  readonly #backend: Backend;
  readonly #name: string;
  #lease: number;
  #closed = false;
  readonly #watchers = new Set<Watcher>();
  readonly #leaseLost = new Set<() => void>();

  constructor(opts: MemoryKvStoreOptions & { [shared]?: Backend } = {}) {
    const limit = opts.historyLimit ?? 10_000;
    if (!Number.isInteger(limit) || limit < 1)
      throw new KvArgumentError('historyLimit', limit, 'must be a positive integer');
    this.#backend = opts[shared] ?? new Backend({ ...opts, historyLimit: limit });
    this.#name = opts.name ?? 'memory';
    this.#lease = this.#backend.grantLease();
  }

  /** Another client of the same store, with its own lease (an agent sharing the cluster's store). */
  session(name?: string): MemoryKvStore {
    this.#checkOpen();
    return new MemoryKvStore({ ...this.#backend.opts, name: name ?? this.#name, [shared]: this.#backend });
  }

  /** This client's lease ID (diagnostics). */
  get leaseId(): number {
    return this.#lease;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async get(key: string): Promise<KvPair | undefined> {
    checkKey(key);
    await this.#enter();
    const e = this.#backend.data.get(key);
    return e ? pairOf(key, e) : undefined;
  }

  async list(prefix: string): Promise<KvList> {
    if (typeof prefix !== 'string') throw new KvArgumentError('prefix', prefix, 'must be a string');
    await this.#enter();
    const pairs: KvPair[] = [];
    for (const [k, e] of this.#backend.data) if (k.startsWith(prefix)) pairs.push(pairOf(k, e));
    pairs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { pairs, revision: this.#backend.revision };
  }

  async revision(): Promise<number> {
    await this.#enter();
    return this.#backend.revision;
  }

  watch(prefix: string, opts: KvWatchOptions = {}): KvWatch {
    if (typeof prefix !== 'string') throw new KvArgumentError('prefix', prefix, 'must be a string');
    const b = this.#backend;
    const after = opts.afterRevision ?? b.revision;
    if (!Number.isInteger(after) || after < 0)
      throw new KvArgumentError('afterRevision', opts.afterRevision, 'must be a non-negative integer');
    const queue = new AsyncQueue<KvWatchBatch>();
    const w: Watcher = { prefix, after, queue };
    const close = () => {
      b.watchers.delete(w);
      this.#watchers.delete(w);
      queue.end();
    };
    if (this.#closed) queue.fail(new KvClosedError());
    else if (after < b.compactedUpTo) queue.fail(new KvCompactedError(after, b.compactedUpTo));
    else {
      for (const batch of b.history) {
        if (batch.revision <= after) continue;
        const mine = filterBatch(batch, prefix);
        if (mine) queue.push(mine);
      }
      b.watchers.add(w);
      this.#watchers.add(w);
    }
    return {
      close,
      [Symbol.asyncIterator]: () => ({
        next: () => queue.next(),
        return: () => {
          close();
          return queue.return();
        },
      }),
    };
  }

  async put(key: string, value: string, opts: KvPutOptions = {}): Promise<number> {
    checkKey(key);
    checkValue(value);
    await this.#enter();
    return this.#backend.commit([{ key, value, lease: opts.lease ? this.#lease : 0 }]);
  }

  async create(key: string, value: string, opts: KvPutOptions = {}): Promise<boolean> {
    checkKey(key);
    checkValue(value);
    await this.#enter();
    if (this.#backend.data.has(key)) return false;
    this.#backend.commit([{ key, value, lease: opts.lease ? this.#lease : 0 }]);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    await this.#enter();
    if (!this.#backend.data.has(key)) return false;
    this.#backend.commit([{ key }]);
    return true;
  }

  async deleteIf(key: string, cond: KvCondition): Promise<boolean> {
    checkKey(key);
    if (cond.value === undefined && cond.modRevision === undefined)
      throw new KvArgumentError('cond', cond, 'give value or modRevision');
    await this.#enter();
    const e = this.#backend.data.get(key);
    if (!e) return false;
    if (cond.value !== undefined && e.value !== cond.value) return false;
    if (cond.modRevision !== undefined && e.modRevision !== cond.modRevision) return false;
    this.#backend.commit([{ key }]);
    return true;
  }

  async deletePrefix(prefix: string): Promise<number> {
    checkKey(prefix, 'prefix');
    await this.#enter();
    const keys = [...this.#backend.data.keys()].filter((k) => k.startsWith(prefix)).sort();
    this.#backend.commit(keys.map((key) => ({ key })));
    return keys.length;
  }

  onLeaseLost(listener: () => void): () => void {
    this.#leaseLost.add(listener);
    return () => {
      this.#leaseLost.delete(listener);
    };
  }

  /**
   * Models the loss of this client's lease (it expired during an outage): its leased keys are
   * deleted, a new lease is granted and the lease-lost listeners run.
   */
  async expireLease(): Promise<void> {
    await this.#enter();
    this.#backend.revoke(this.#lease);
    this.#lease = this.#backend.grantLease();
    for (const l of [...this.#leaseLost]) l();
  }

  status(): KvStatus {
    if (this.#closed) return { ok: false, line: `${this.#name}: closed` };
    return { ok: true, line: `${this.#name}: ok` };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#backend.revoke(this.#lease);
    for (const w of [...this.#watchers]) {
      this.#backend.watchers.delete(w);
      w.queue.end();
    }
    this.#watchers.clear();
    this.#leaseLost.clear();
  }

  #checkOpen(): void {
    if (this.#closed) throw new KvClosedError();
  }

  /** Waits the configured latency, then checks the client is still open. */
  async #enter(): Promise<void> {
    const ms = this.#backend.opts.latency?.() ?? 0;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    else await Promise.resolve();
    this.#checkOpen();
  }
}
