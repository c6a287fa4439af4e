import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  KvArgumentError,
  KvClosedError,
  KvCompactedError,
  type KvEvent,
  MemoryKvStore,
} from '../../../src/kvstore/index.js';
import { collect, until } from './helpers/until.js';

const brief = (e: KvEvent) =>
  e.type === 'put' ? `put ${e.key}=${e.value}@${e.modRevision}` : `del ${e.key}@${e.modRevision}`;

describe('memory kvstore', () => {
  it('stamps every write with the next revision; create revision stays, mod revision moves', async () => {
    const s = new MemoryKvStore();
    assert.equal(await s.revision(), 0);
    assert.equal(await s.put('a/1', 'x'), 1);
    assert.equal(await s.put('a/1', 'y'), 2);
    assert.deepEqual(await s.get('a/1'), {
      key: 'a/1',
      value: 'y',
      createRevision: 1,
      modRevision: 2,
      leased: false,
    });
    assert.equal(await s.get('a/2'), undefined);
    assert.equal(await s.delete('a/1'), true);
    assert.equal(await s.delete('a/1'), false);
    assert.equal(await s.revision(), 3);
    await s.put('a/1', 'z');
    assert.equal((await s.get('a/1'))?.createRevision, 4, 'a re-created key has a new create revision');
  });

  it('lists a prefix sorted by key with the revision it was read at', async () => {
    const s = new MemoryKvStore();
    await s.put('p/b', '2');
    await s.put('q/a', 'other');
    await s.put('p/a', '1');
    const l = await s.list('p/');
    assert.deepEqual(
      l.pairs.map((p) => [p.key, p.value]),
      [
        ['p/a', '1'],
        ['p/b', '2'],
      ],
    );
    assert.equal(l.revision, 3);
    assert.equal((await s.list('')).pairs.length, 3);
  });

  it('create writes only an absent key', async () => {
    const s = new MemoryKvStore();
    assert.equal(await s.create('k', 'first'), true);
    assert.equal(await s.create('k', 'second'), false);
    assert.equal((await s.get('k'))?.value, 'first');
    // Many concurrent creates of one key: exactly one wins.
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => s.create('race', String(i))));
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal((await s.get('race'))?.value, String(results.indexOf(true)));
  });

  it('deleteIf deletes only a key matching value and mod revision', async () => {
    const s = new MemoryKvStore();
    const rev = await s.put('k', 'v1');
    assert.equal(await s.deleteIf('k', { value: 'other' }), false);
    assert.equal(await s.deleteIf('k', { modRevision: rev + 1 }), false);
    assert.equal(await s.deleteIf('k', { value: 'v1', modRevision: rev + 1 }), false);
    assert.equal(await s.deleteIf('missing', { value: 'v1' }), false);
    assert.ok(await s.get('k'));
    assert.equal(await s.deleteIf('k', { value: 'v1', modRevision: rev }), true);
    assert.equal(await s.get('k'), undefined);
    await assert.rejects(s.deleteIf('k', {}), KvArgumentError);
  });

  it('deletes a prefix in one revision, watched as one batch', async () => {
    const s = new MemoryKvStore();
    await s.put('p/a', '1');
    await s.put('p/b', '2');
    await s.put('pq', 'not under p/');
    const w = collect(s.watch('p'));
    assert.equal(await s.deletePrefix('p/'), 2);
    assert.equal((await s.list('p')).pairs.length, 1);
    await until(() => w.items.length === 1, 'delete batch');
    assert.deepEqual(w.items[0]!.events.map(brief), ['del p/a@4', 'del p/b@4']);
    await assert.rejects(s.deletePrefix(''), KvArgumentError);
    await s.close();
    await w.done;
  });

  it('a watch after revision R delivers every change after R, then live changes, for its prefix only', async () => {
    const s = new MemoryKvStore();
    await s.put('w/a', '1'); // 1
    const listed = await s.list('w/');
    await s.put('w/b', '2'); // 2: made between the list and the watch
    await s.put('x/c', '3'); // 3: other prefix
    await s.delete('w/a'); // 4
    const w = collect(s.watch('w/', { afterRevision: listed.revision }));
    await s.put('w/b', '5'); // 5: live
    await until(() => w.items.length === 3, 'three batches');
    assert.deepEqual(
      w.items.map((b) => [b.revision, b.events.map(brief)]),
      [
        [2, ['put w/b=2@2']],
        [4, ['del w/a@4']],
        [5, ['put w/b=5@5']],
      ],
    );
    // Resuming after a disconnect: a new watch after the last revision seen gets only what followed.
    const resumed = collect(s.watch('w/', { afterRevision: 4 }));
    await until(() => resumed.items.length === 1, 'resumed batch');
    assert.equal(resumed.items[0]!.revision, 5);
    await s.close();
    assert.equal(await w.done, undefined, 'watches end when their client closes');
  });

  it('a watch without a revision starts now; a watch after a future revision waits for it', async () => {
    const s = new MemoryKvStore();
    await s.put('k', '1');
    const now = collect(s.watch('k'));
    const future = collect(s.watch('k', { afterRevision: 2 }));
    await s.put('k', '2'); // 2
    await s.put('k', '3'); // 3
    await until(() => now.items.length === 2 && future.items.length === 1, 'batches');
    assert.deepEqual(
      future.items.map((b) => b.revision),
      [3],
    );
    await s.close();
  });

  it('history older than the limit is compacted: resuming there fails with KvCompactedError', async () => {
    const s = new MemoryKvStore({ historyLimit: 2 });
    for (let i = 0; i < 5; i++) await s.put('k', String(i));
    const w = collect(s.watch('k', { afterRevision: 1 }));
    const err = await w.done;
    assert.ok(err instanceof KvCompactedError);
    assert.equal(err.code, 'failed-precondition');
    assert.equal(err.compactedUpTo, 3);
    const ok = collect(s.watch('k', { afterRevision: 3 }));
    await until(() => ok.items.length === 2, 'retained history');
    await s.close();
  });

  it("closing a session deletes its leased keys (one revision) and keeps the others' and unleased keys", async () => {
    const store = new MemoryKvStore();
    const a = store.session('agent-a');
    const b = store.session('agent-b');
    await a.put('nodes/a', 'A', { lease: true });
    await a.put('ids/256', 'perm');
    await a.put('ids/256/a', '256', { lease: true });
    await b.put('nodes/b', 'B', { lease: true });
    assert.equal((await b.get('nodes/a'))?.leased, true);
    const w = collect(b.watch(''));
    await a.close();
    await until(() => w.items.length === 1, 'lease revoke batch');
    assert.deepEqual(w.items[0]!.events.map(brief), ['del ids/256/a@5', 'del nodes/a@5']);
    assert.deepEqual(
      (await b.list('')).pairs.map((p) => p.key),
      ['ids/256', 'nodes/b'],
    );
    await assert.rejects(a.get('nodes/b'), KvClosedError);
    assert.deepEqual(a.status(), { ok: false, line: 'agent-a: closed' });
    assert.deepEqual(b.status(), { ok: true, line: 'agent-b: ok' });
    await b.close();
    await store.close();
  });

  it('a put without lease makes a leased key permanent', async () => {
    const store = new MemoryKvStore();
    const a = store.session();
    await a.put('k', '1', { lease: true });
    await a.put('k', '2');
    await a.close();
    assert.equal((await store.get('k'))?.value, '2');
    await store.close();
  });

  it('a lost lease deletes the leased keys, tells the listeners and later leased writes use a new lease', async () => {
    const store = new MemoryKvStore();
    const a = store.session();
    const oldLease = a.leaseId;
    let lost = 0;
    const off = a.onLeaseLost(() => lost++);
    await a.put('nodes/a', 'A', { lease: true });
    await a.expireLease();
    assert.equal(lost, 1);
    assert.equal(await store.get('nodes/a'), undefined);
    assert.notEqual(a.leaseId, oldLease);
    await a.put('nodes/a', 'A again', { lease: true });
    off();
    await a.expireLease();
    assert.equal(lost, 1, 'unsubscribed listener is not called');
    assert.equal(await store.get('nodes/a'), undefined, 'the new lease is the one that expired');
    await a.close();
    await store.close();
  });

  it('refuses bad arguments naming the field', async () => {
    const s = new MemoryKvStore();
    await assert.rejects(s.put('', 'x'), /key "": must be a non-empty string/);
    await assert.rejects(s.put('k', 5 as unknown as string), /value 5: must be a string/);
    assert.throws(() => s.watch('k', { afterRevision: -1 }), /afterRevision -1/);
    assert.throws(() => new MemoryKvStore({ historyLimit: 0 }), /historyLimit 0/);
    assert.equal((await s.list('')).pairs.length, 0, 'nothing was written');
    await s.close();
  });

  it('with latency, concurrent operations still apply atomically in some order', async () => {
    const s = new MemoryKvStore({ latency: () => Math.random() * 3 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.put(`k/${i % 4}`, String(i))));
    const l = await s.list('k/');
    assert.equal(l.pairs.length, 4);
    assert.equal(l.revision, 20);
    assert.deepEqual(
      [...new Set(l.pairs.map((p) => p.modRevision))].length,
      4,
      'each key last written at a different revision',
    );
    await s.close();
  });
});
