/**
 * A small in-memory table of desired state: string-keyed rows, each stamped with the table
 * revision of its last change, secondary indexes, and watchers told of every change after it
 * happened. Control-plane modules write desired state here; reconcilers (./reconciler.ts) read it
 * and push it into the datapath. Pure: no I/O.
 */
import { getOrInsert } from '../common/collections.js';

export interface Row<V> {
  readonly key: string;
  readonly value: V;
  /** Table revision at which this row last changed. */
  readonly revision: number;
}

export interface Change<V> {
  readonly kind: 'upsert' | 'delete';
  readonly key: string;
  /** The new value (upsert) or the value removed (delete). */
  readonly value: V;
  readonly revision: number;
}

export type Watcher<V> = (changes: readonly Change<V>[]) => void;

export type IndexFn<V> = (value: V) => Iterable<string>;

export interface TableOptions<V> {
  /** Secondary indexes: name → the index keys of a value. */
  indexes?: Record<string, IndexFn<V>>;
  /** Values equal by this test do not bump the revision or notify watchers (default: ===). */
  equals?: (a: V, b: V) => boolean;
}

/** A stored row is also the change that made it (one object per upsert). */
type StoredRow<V> = Row<V> & Change<V>;

export class Table<V> {
  readonly #rows = new Map<string, StoredRow<V>>();
  readonly #indexes = new Map<string, { fn: IndexFn<V>; map: Map<string, Set<string>> }>();
  readonly #watchers = new Set<Watcher<V>>();
  readonly #equals: (a: V, b: V) => boolean;
  #revision = 0;
  #batch: Change<V>[] | undefined;

  constructor(
    readonly name: string,
    opts: TableOptions<V> = {},
  ) {
    for (const [n, fn] of Object.entries(opts.indexes ?? {})) this.#indexes.set(n, { fn, map: new Map() });
    this.#equals = opts.equals ?? ((a, b) => a === b);
  }

  get revision(): number {
    return this.#revision;
  }

  get size(): number {
    return this.#rows.size;
  }

  get(key: string): V | undefined {
    return this.#rows.get(key)?.value;
  }

  row(key: string): Row<V> | undefined {
    return this.#rows.get(key);
  }

  has(key: string): boolean {
    return this.#rows.has(key);
  }

  keys(): IterableIterator<string> {
    return this.#rows.keys();
  }

  *entries(): IterableIterator<[string, V]> {
    for (const [k, r] of this.#rows) yield [k, r.value];
  }

  values(): V[] {
    return [...this.#rows.values()].map((r) => r.value);
  }

  /** Keys of the rows whose index `name` contains `indexKey`. */
  byIndex(name: string, indexKey: string): string[] {
    const idx = this.#indexes.get(name);
    if (!idx) throw new Error(`table ${this.name}: no index ${name}`);
    return [...(idx.map.get(indexKey) ?? [])];
  }

  /** Inserts or replaces a row; returns false when the value was equal (nothing changed). */
  upsert(key: string, value: V): boolean {
    const old = this.#rows.get(key);
    if (old && this.#equals(old.value, value)) return false;
    if (old && this.#indexes.size) this.#unindex(key, old.value);
    const row: StoredRow<V> = { kind: 'upsert', key, value, revision: ++this.#revision };
    this.#rows.set(key, row);
    if (this.#indexes.size) this.#index(key, value);
    this.#emit(row);
    return true;
  }

  delete(key: string): boolean {
    const old = this.#rows.get(key);
    if (!old) return false;
    this.#rows.delete(key);
    this.#unindex(key, old.value);
    this.#emit({ kind: 'delete', key, value: old.value, revision: ++this.#revision });
    return true;
  }

  /**
   * Runs `fn` as one batch: watchers get every change it made in a single call at the end
   * (a reconciler then sees the whole step, not each half of it).
   */
  batch<T>(fn: () => T): T {
    if (this.#batch) return fn();
    this.#batch = [];
    try {
      return fn();
    } finally {
      const changes = this.#batch;
      this.#batch = undefined;
      if (changes.length) for (const w of [...this.#watchers]) w(changes);
    }
  }

  /** Calls `watcher` after every change; with `replay`, first with every current row as an upsert. */
  watch(watcher: Watcher<V>, opts: { replay?: boolean } = {}): () => void {
    this.#watchers.add(watcher);
    if (opts.replay && this.#rows.size) watcher([...this.#rows.values()]);
    return () => {
      this.#watchers.delete(watcher);
    };
  }

  #emit(c: Change<V>): void {
    if (this.#batch) this.#batch.push(c);
    else for (const w of [...this.#watchers]) w([c]);
  }

  #index(key: string, value: V): void {
    for (const { fn, map } of this.#indexes.values())
      for (const ik of fn(value)) {
        getOrInsert(map, ik, () => new Set<string>()).add(key);
      }
  }

  #unindex(key: string, value: V): void {
    for (const { fn, map } of this.#indexes.values())
      for (const ik of fn(value)) {
        const s = map.get(ik);
        s?.delete(key);
        if (s?.size === 0) map.delete(ik);
      }
  }
}
