/**
 * The generic target for a key/value BPF map: a reconciler writes each desired row with set(),
 * removes it with delete(), and a full pass deletes whatever the map holds that is not desired.
 * The map side is any `KeyedMap` (a typed BPF map wrapper, or an in-memory fake in tests).
 */
import type { Operations } from './reconciler.js';

export interface KeyedMap<V> {
  set(key: string, value: V): void;
  /** Removing an absent key is not an error. */
  delete(key: string): void;
  /** Every key the map holds now. */
  keys(): Iterable<string>;
}

export function mapTarget<V>(m: KeyedMap<V>, equals: (a: V, b: V) => boolean): Operations<V> {
  return {
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
}
