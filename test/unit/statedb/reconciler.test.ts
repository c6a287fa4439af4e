import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type KeyedMap, mapTarget, setRows } from '../../../src/statedb/map-target.js';
import { Reconciler } from '../../../src/statedb/reconciler.js';
import { Table } from '../../../src/statedb/table.js';

/** A map that records every call, writes many rows at once when `batch`, and refuses values < 0. */
class LogMap implements KeyedMap<number> {
  readonly data = new Map<string, number>();
  readonly log: string[] = [];
  setMany?: KeyedMap<number>['setMany'];

  constructor(batch: boolean) {
    if (batch)
      this.setMany = (rows) => {
        this.log.push(`setMany ${rows.map(([k]) => k).join(',')}`);
        const errors = new Map<number, unknown>();
        for (const [i, [k, v]] of rows.entries())
          if (v < 0) errors.set(i, new Error(`${k}: negative`));
          else this.data.set(k, v);
        return errors;
      };
  }

  set(key: string, value: number): void {
    this.log.push(`set ${key}`);
    if (value < 0) throw new Error(`${key}: negative`);
    this.data.set(key, value);
  }

  delete(key: string): void {
    this.log.push(`delete ${key}`);
    this.data.delete(key);
  }

  keys(): Iterable<string> {
    return this.data.keys();
  }
}

const setup = (batch: boolean) => {
  const table = new Table<number>('t');
  const map = new LogMap(batch);
  const r = new Reconciler(
    't',
    table,
    mapTarget(map, (a, b) => a === b),
    {
      autoFlush: false,
      fullPassIntervalMs: 0,
      retryMinMs: 60_000,
    },
  );
  return { table, map, r };
};

describe('reconciler batches', () => {
  it('writes runs of updates with one setMany each, deletes in between, in table order', async () => {
    const { table, map, r } = setup(true);
    await r.start();
    table.batch(() => {
      for (const k of ['a', 'b', 'c']) table.upsert(k, 1);
    });
    await r.flush();
    assert.deepEqual(map.log, ['setMany a,b,c']);
    map.log.length = 0;
    table.batch(() => {
      table.upsert('d', 4);
      table.delete('b');
      table.upsert('e', 5);
      table.upsert('a', 1); // equal: no change, not written
      table.upsert('c', 3);
    });
    await r.flush();
    assert.deepEqual(map.log, ['setMany d', 'delete b', 'setMany e,c']);
    assert.deepEqual(Object.fromEntries(map.data), { a: 1, c: 3, d: 4, e: 5 });
    await r.stop();
  });

  it('a row the map refuses is an error of its own; the rest of the batch is written', async () => {
    const { table, map, r } = setup(true);
    await r.start();
    table.batch(() => {
      table.upsert('a', 1);
      table.upsert('bad', -1);
      table.upsert('c', 3);
    });
    await r.flush();
    assert.deepEqual(Object.fromEntries(map.data), { a: 1, c: 3 });
    assert.equal(r.objectStatus('bad')?.state, 'error');
    assert.match(r.objectStatus('bad')?.error ?? '', /bad: negative/);
    assert.equal(r.objectStatus('a')?.state, 'done');
    assert.equal(r.status().errors.length, 1);
    // Fixed: the next pass writes only that row, its map content unknown (not skipped as equal).
    table.upsert('bad', 2);
    await r.flush();
    assert.deepEqual(map.log.at(-1), 'setMany bad');
    assert.equal(r.objectStatus('bad')?.state, 'done');
    await r.stop();
  });

  it('a full pass rewrites every row through setMany and prunes what is not desired', async () => {
    const { table, map, r } = setup(true);
    map.data.set('stale', 9);
    table.upsert('a', 1);
    table.upsert('b', 2);
    await r.start();
    assert.deepEqual(map.log, ['setMany a,b', 'delete stale']);
    await r.fullPass();
    assert.deepEqual(map.log.slice(2), ['setMany a,b'], 'target state unknown in a full pass: written again');
    await r.stop();
  });

  it('a map without setMany gets one set() per row, with the same results', async () => {
    const { table, map, r } = setup(false);
    await r.start();
    table.batch(() => {
      table.upsert('a', 1);
      table.upsert('bad', -1);
      table.delete('a');
      table.upsert('c', 3);
    });
    await r.flush();
    assert.deepEqual(
      map.log,
      ['delete a', 'set bad', 'set c'],
      'a was added and removed: removed from the map',
    );
    assert.deepEqual(Object.fromEntries(map.data), { c: 3 });
    assert.equal(r.objectStatus('bad')?.state, 'error');
    await r.stop();
  });

  it('rememberApplied: false hands update() no applied value; errors and retries as before', async () => {
    const table = new Table<number>('t');
    const seen: string[] = [];
    const data = new Map<string, number>();
    const r = new Reconciler(
      't',
      table,
      {
        update: (key, value, applied) => {
          seen.push(`${key}=${value} applied ${applied}`);
          if (value < 0) throw new Error('negative');
          data.set(key, value);
        },
        delete: (key, applied) => {
          seen.push(`delete ${key} applied ${applied}`);
          data.delete(key);
        },
        prune: () => {},
      },
      { autoFlush: false, fullPassIntervalMs: 0, retryMinMs: 60_000, rememberApplied: false },
    );
    await r.start();
    table.upsert('a', 1);
    table.upsert('b', -1);
    await r.flush();
    table.upsert('a', 2);
    table.upsert('a', 1); // changed back before the flush: written again (nothing remembered)
    table.upsert('b', 3);
    await r.flush();
    table.delete('a');
    await r.flush();
    assert.deepEqual(seen, [
      'a=1 applied undefined',
      'b=-1 applied undefined',
      'a=1 applied undefined',
      'b=3 applied undefined',
      'delete a applied undefined',
    ]);
    assert.deepEqual(Object.fromEntries(data), { b: 3 });
    assert.equal(r.objectStatus('b')?.state, 'done', 'the failed row was written by the next flush');
    await r.stop();
  });

  it('mapTarget skips rows equal to what was written and maps batch errors back to their items', () => {
    const map = new LogMap(true);
    const ops = mapTarget(map, (a, b) => a === b);
    const errors = ops.updateMany!([
      { key: 'a', value: -1, applied: undefined },
      { key: 'same', value: 1, applied: 1 },
      { key: 'b', value: 2, applied: 3 },
      { key: 'c', value: -3, applied: undefined },
    ]) as ReadonlyMap<number, unknown>;
    assert.deepEqual(map.log, ['setMany a,b,c']);
    assert.deepEqual([...errors.keys()], [0, 3]);
    map.log.length = 0;
    const none = ops.updateMany!([{ key: 'same', value: 1, applied: 1 }]) as ReadonlyMap<number, unknown>;
    assert.equal(none.size, 0);
    assert.deepEqual(map.log, [], 'nothing to write: no call');
  });

  it('setRows falls back to set() for a map without setMany, collecting errors by index', () => {
    const plain = new LogMap(false);
    const errors = setRows(plain, [
      ['a', 1],
      ['b', -1],
      ['c', 3],
    ]);
    assert.deepEqual([...errors.keys()], [1]);
    assert.deepEqual(plain.log, ['set a', 'set b', 'set c']);
    const batched = new LogMap(true);
    assert.equal(setRows(batched, [['a', 1]]).size, 0);
    assert.deepEqual(batched.log, ['setMany a']);
  });
});

describe('table', () => {
  it('a replay and a watcher see rows as upserts with their revisions', () => {
    const t = new Table<string>('t');
    t.upsert('a', 'x');
    t.upsert('b', 'y');
    t.upsert('a', 'z');
    const seen: string[] = [];
    t.watch((cs) => seen.push(...cs.map((c) => `${c.kind} ${c.key}=${c.value}@${c.revision}`)), {
      replay: true,
    });
    t.delete('b');
    assert.deepEqual(seen, ['upsert a=z@3', 'upsert b=y@2', 'delete b=y@4']);
    const row = t.row('a');
    assert.deepEqual([row?.key, row?.value, row?.revision], ['a', 'z', 3]);
  });
});
