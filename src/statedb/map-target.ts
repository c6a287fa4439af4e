/**
 * The generic target for a key/value BPF map: a reconciler writes each desired row with set() (or
 * many at once with setMany(), when the map has it), removes it with delete(), and a full pass
 * deletes whatever the map holds that is not desired. The map side is any `KeyedMap` (a typed BPF
 * map wrapper, or an in-memory fake in tests).
 */
import type { BatchErrors, Operations } from './reconciler.js';

export interface KeyedMap<V> {
  set(key: string, value: V): void;
  /**
   * Optional: writes several rows in order (fewer syscalls). Returns the error of each row that
   * failed, by index; the other rows are written.
   */
  setMany?(entries: readonly (readonly [key: string, value: V])[]): BatchErrors;
  /** Removing an absent key is not an error. */
  delete(key: string): void;
  /** Every key the map holds now. */
  keys(): Iterable<string>;
}

export function mapTarget<V>(m: KeyedMap<V>, equals: (a: V, b: V) => boolean): Operations<V> {
  const ops: Operations<V> = {
    update(key, value, applied) {
      if (applied !== undefined && equals(applied, value)) return;
      m.set(key, value);
    },
    delete(key) {
      m.delete(key);
    },
    prune(desired) {
      for (const k of [...m.keys()]) if (!desired.has(k)) m.delete(k);
    },
  };
  const setMany = m.setMany?.bind(m);
  if (setMany)
    ops.updateMany = (items) => {
      // Rows equal to what was written last are skipped; errors map back to the items' indexes
      // (`at`, from the first skipped row on: until then an entry's index is its item's).
      let at: number[] | undefined;
      const entries: [string, V][] = [];
      for (let i = 0; i < items.length; i++) {
        const it = items[i]!;
        if (it.applied === undefined || !equals(it.applied, it.value)) {
          at?.push(i);
          entries.push([it.key, it.value]);
        } else if (at === undefined) at = entries.map((_, j) => j);
      }
      if (entries.length === 0) return new Map();
      const errors = setMany(entries);
      return errors.size === 0 || at === undefined
        ? errors
        : new Map([...errors].map(([j, e]) => [at[j]!, e]));
    };
  return ops;
}

/** Writes rows through `m.setMany` when the map has it, else one set() each; errors by index. */
export function setRows<V>(m: KeyedMap<V>, rows: readonly (readonly [string, V])[]): BatchErrors {
  if (m.setMany) return m.setMany(rows);
  const errors = new Map<number, unknown>();
  for (const [i, [k, v]] of rows.entries())
    try {
      m.set(k, v);
    } catch (err) {
      errors.set(i, err);
    }
  return errors;
}
