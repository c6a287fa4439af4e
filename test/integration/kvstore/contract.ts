/**
 * What every KvStore backend must do, as tests that run against any of them: the in-memory store
 * (memory-contract.test.ts) and a real etcd (etcd-contract.test.ts). Tests share one store, so each
 * writes under its own key prefix and compares revisions with the one it started from.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  KvArgumentError,
  KvClosedError,
  type KvEvent,
  type KvStore,
  type KvWatchBatch,
  lockKey,
} from '../../../src/kvstore/index.js';

export interface KvHarness {
  /** A new client of the shared store, with its own lease (an agent). */
  client(name: string): Promise<KvStore>;
  /** Makes the store drop `c`'s lease, as an expiry during an outage does. */
  loseLease(c: KvStore): Promise<void>;
  close(): Promise<void>;
}

/** Waits until `cond()` holds, failing after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Waits until the asynchronous `cond()` holds, failing after `timeoutMs`. A `cond` that throws (a
 * store electing a leader) has not held yet; its last error is reported at the timeout.
 */
export async function eventually(
  cond: () => Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await cond()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Collects a watch's batches in the background; `done` resolves to the error that ended it, if any. */
export function collect(it: AsyncIterable<KvWatchBatch>): { items: KvWatchBatch[]; done: Promise<unknown> } {
  const items: KvWatchBatch[] = [];
  const done = (async () => {
    for await (const x of it) items.push(x);
  })().catch((e: unknown) => e);
  return { items, done };
}

/** An event as text with its revision relative to `base`: `put p/a=1@+2`, `del p/a@+3`. */
export function brief(base: number, prefix = '') {
  return (e: KvEvent) => {
    const key = e.key.slice(prefix.length);
    return e.type === 'put'
      ? `put ${key}=${e.value}@+${e.modRevision - base}`
      : `del ${key}@+${e.modRevision - base}`;
  };
}

export function uniqueKeyPrefix(): string {
  return `test/${randomBytes(4).toString('hex')}/`;
}

export function kvStoreContract(title: string, makeHarness: () => Promise<KvHarness>): void {
  describe(title, () => {
    let h: KvHarness;
    const open: KvStore[] = [];
    const client = async (name = 'agent') => {
      const c = await h.client(name);
      open.push(c);
      return c;
    };
    before(async () => {
      h = await makeHarness();
    });
    after(async () => {
      for (const c of open) await c.close();
      await h?.close();
    });

    it('stamps every write with the next revision; create revision stays, mod revision moves', async () => {
      const s = await client();
      const p = uniqueKeyPrefix();
      const r0 = await s.revision();
      assert.equal(await s.put(`${p}1`, 'x'), r0 + 1);
      assert.equal(await s.put(`${p}1`, 'y'), r0 + 2);
      assert.deepEqual(await s.get(`${p}1`), {
        key: `${p}1`,
        value: 'y',
        createRevision: r0 + 1,
        modRevision: r0 + 2,
        leased: false,
      });
      assert.equal(await s.get(`${p}2`), undefined);
      assert.equal(await s.delete(`${p}1`), true);
      assert.equal(await s.delete(`${p}1`), false);
      assert.equal(await s.revision(), r0 + 3);
      await s.put(`${p}1`, 'z');
      assert.equal(
        (await s.get(`${p}1`))?.createRevision,
        r0 + 4,
        'a re-created key has a new create revision',
      );
    });

    it('lists a prefix sorted by key with the revision it was read at; values and keys are raw text', async () => {
      const s = await client();
      const p = uniqueKeyPrefix();
      await s.put(`${p}b`, '2');
      await s.put(`${p}x/k8s:app=web;k8s:io.kubernetes.pod.namespace=default;/node1`, 'ünïcode 🙂');
      await s.put(`${p.slice(0, -1)}-other`, 'not under the prefix');
      const rev = await s.put(`${p}a`, '1');
      const l = await s.list(p);
      assert.deepEqual(
        l.pairs.map((x) => [x.key.slice(p.length), x.value]),
        [
          ['a', '1'],
          ['b', '2'],
          ['x/k8s:app=web;k8s:io.kubernetes.pod.namespace=default;/node1', 'ünïcode 🙂'],
        ],
      );
      assert.equal(l.revision, rev);
      assert.deepEqual((await s.list(`${p}zz`)).pairs, []);
      assert.ok((await s.list('')).pairs.length >= 4, 'the empty prefix lists every key');
    });

    it('create writes only an absent key; of many clients creating one key at once, exactly one wins', async () => {
      const clients = await Promise.all([client('a'), client('b'), client('c')]);
      const s = clients[0]!;
      const p = uniqueKeyPrefix();
      assert.equal(await s.create(`${p}k`, 'first'), true);
      assert.equal(await s.create(`${p}k`, 'second'), false);
      assert.equal((await s.get(`${p}k`))?.value, 'first');
      for (let round = 0; round < 5; round++) {
        const key = `${p}race${round}`;
        const results = await Promise.all(
          clients.flatMap((c, i) => [0, 1, 2].map((j) => c.create(key, `${i}.${j}`, { lease: j === 1 }))),
        );
        assert.equal(results.filter(Boolean).length, 1, `round ${round}: one winner`);
        const winner = results.indexOf(true);
        assert.equal((await s.get(key))?.value, `${Math.floor(winner / 3)}.${winner % 3}`);
      }
    });

    it('deleteIf deletes only a key matching value and mod revision', async () => {
      const s = await client();
      const p = uniqueKeyPrefix();
      const k = `${p}k`;
      const rev = await s.put(k, 'v1');
      assert.equal(await s.deleteIf(k, { value: 'other' }), false);
      assert.equal(await s.deleteIf(k, { modRevision: rev + 1 }), false);
      assert.equal(await s.deleteIf(k, { value: 'v1', modRevision: rev + 1 }), false);
      assert.equal(await s.deleteIf(`${p}missing`, { value: 'v1' }), false);
      assert.equal(await s.deleteIf(`${p}missing`, { modRevision: rev }), false);
      assert.ok(await s.get(k));
      assert.equal(await s.deleteIf(k, { value: 'v1', modRevision: rev }), true);
      assert.equal(await s.get(k), undefined);
      await s.put(k, 'v2');
      assert.equal(await s.deleteIf(k, { value: 'v2' }), true);
      await assert.rejects(s.deleteIf(k, {}), KvArgumentError);
    });

    it('deletes a prefix in one revision, watched as one batch', async () => {
      const s = await client();
      const p = uniqueKeyPrefix();
      await s.put(`${p}d/a`, '1');
      await s.put(`${p}d/b`, '2');
      const base = await s.put(`${p}dq`, 'not under d/');
      const w = collect(s.watch(p, { afterRevision: base }));
      assert.equal(await s.deletePrefix(`${p}d/`), 2);
      assert.equal(await s.deletePrefix(`${p}d/`), 0);
      assert.deepEqual(
        (await s.list(p)).pairs.map((x) => x.key),
        [`${p}dq`],
      );
      await until(() => w.items.length === 1, 'delete batch');
      assert.deepEqual(w.items[0]!.events.map(brief(base, p)), ['del d/a@+1', 'del d/b@+1']);
      await assert.rejects(s.deletePrefix(''), KvArgumentError);
    });

    it('a watch after revision R delivers every change after R, then live changes, for its prefix only; a new watch resumes', async () => {
      const s = await client();
      const other = await client('writer');
      const p = uniqueKeyPrefix();
      await s.put(`${p}w/a`, '1');
      const listed = await s.list(`${p}w/`);
      const base = listed.revision;
      await other.put(`${p}w/b`, '2'); // +1: between the list and the watch
      await other.put(`${p}x/c`, '3'); // +2: another prefix
      await other.delete(`${p}w/a`); // +3
      const w = collect(s.watch(`${p}w/`, { afterRevision: base }));
      await until(() => w.items.length === 2, 'history');
      await other.put(`${p}w/b`, '5'); // +4: live
      await until(() => w.items.length === 3, 'live batch');
      assert.deepEqual(
        w.items.map((b) => [b.revision - base, b.events.map(brief(base, p))]),
        [
          [1, ['put w/b=2@+1']],
          [3, ['del w/a@+3']],
          [4, ['put w/b=5@+4']],
        ],
      );
      const put = w.items[0]!.events[0]!;
      assert.equal(put.type === 'put' && put.createRevision, base + 1);
      const resumed = collect(s.watch(`${p}w/`, { afterRevision: base + 3 }));
      await until(() => resumed.items.length === 1, 'resumed batch');
      assert.equal(resumed.items[0]!.revision, base + 4);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(w.items.length, 3, 'nothing delivered twice');
      await s.close();
      assert.equal(await w.done, undefined, 'watches end when their client closes');
      assert.equal(await resumed.done, undefined);
    });

    it('a watch without a revision starts now; a watch after a future revision waits for it; close ends a watch', async () => {
      const s = await client();
      const p = uniqueKeyPrefix();
      const r0 = await s.put(`${p}k`, '1');
      const now = collect(s.watch(`${p}k`));
      const future = collect(s.watch(`${p}k`, { afterRevision: r0 + 2 }));
      // A watch "from now" is live once it delivers a write made after it started.
      let n = 0;
      while (now.items.length === 0) {
        await s.put(`${p}k`, `probe${n++}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      let r1 = 0;
      while (r1 < r0 + 3) r1 = await s.put(`${p}k`, 'last');
      await until(() => now.items.at(-1)?.revision === r1, 'live batch');
      assert.ok(
        now.items.every((b) => b.revision > r0),
        'nothing from before the watch',
      );
      await until(() => future.items.at(-1)?.revision === r1, 'future batches');
      assert.equal(future.items[0]!.revision, r0 + 3, 'the future watch starts after its revision');
      const w = s.watch(`${p}k`);
      const c = collect(w);
      w.close();
      assert.equal(await c.done, undefined);
    });

    it("closing a client deletes its leased keys in one revision and keeps the others' and unleased keys; a closed client refuses requests", async () => {
      const a = await client('agent-a');
      const b = await client('agent-b');
      const p = uniqueKeyPrefix();
      await a.put(`${p}nodes/a`, 'A', { lease: true });
      await a.put(`${p}ids/256`, 'perm');
      await a.put(`${p}ids/256/a`, '256', { lease: true });
      const base = await b.put(`${p}nodes/b`, 'B', { lease: true });
      assert.equal((await b.get(`${p}nodes/a`))?.leased, true);
      assert.equal((await b.get(`${p}ids/256`))?.leased, false);
      const w = collect(b.watch(p, { afterRevision: base }));
      await a.close();
      await until(() => w.items.length === 1, 'lease revoke batch');
      assert.deepEqual(w.items[0]!.events.map(brief(base, p)), ['del ids/256/a@+1', 'del nodes/a@+1']);
      assert.deepEqual(
        (await b.list(p)).pairs.map((x) => x.key.slice(p.length)),
        ['ids/256', 'nodes/b'],
      );
      await assert.rejects(a.get(`${p}nodes/b`), KvClosedError);
      await assert.rejects(a.put(`${p}x`, '1'), KvClosedError);
      assert.equal(a.status().ok, false);
      assert.match(a.status().line, /closed/);
      const closedWatch = collect(a.watch(p));
      assert.ok((await closedWatch.done) instanceof KvClosedError, 'a watch of a closed client fails');
    });

    it('a put without lease makes a leased key permanent', async () => {
      const a = await client();
      const b = await client();
      const p = uniqueKeyPrefix();
      await a.put(`${p}k`, '1', { lease: true });
      await a.put(`${p}k`, '2');
      await a.close();
      assert.equal((await b.get(`${p}k`))?.value, '2');
    });

    it('a lost lease deletes the leased keys, tells the listeners, and later leased writes use a new lease', async () => {
      const a = await client('agent-a');
      const b = await client('observer');
      const p = uniqueKeyPrefix();
      let lost = 0;
      const off = a.onLeaseLost(() => lost++);
      await a.put(`${p}nodes/a`, 'A', { lease: true });
      await a.put(`${p}perm`, 'P');
      await h.loseLease(a);
      await until(() => lost === 1, 'lease-lost listener');
      assert.equal(await b.get(`${p}nodes/a`), undefined);
      assert.equal((await b.get(`${p}perm`))?.value, 'P');
      // The owner re-publishes with the new lease, which is alive: the key stays.
      await a.put(`${p}nodes/a`, 'A again', { lease: true });
      assert.equal((await b.get(`${p}nodes/a`))?.leased, true);
      off();
      let lostAgain = 0;
      a.onLeaseLost(() => lostAgain++);
      await h.loseLease(a);
      await until(() => lostAgain === 1, 'second loss');
      assert.equal(await b.get(`${p}nodes/a`), undefined, 'the new lease is the one that was lost');
      assert.equal(lost, 1, 'an unsubscribed listener is not called');
    });

    it('refuses bad arguments naming the field, writing nothing', async () => {
      const s = await client();
      const p = uniqueKeyPrefix();
      await assert.rejects(s.put('', 'x'), /key "": must be a non-empty string/);
      await assert.rejects(s.put(`${p}k`, 5 as unknown as string), /value 5: must be a string/);
      await assert.rejects(s.create(`${p}k`, undefined as unknown as string), /value/);
      assert.throws(() => s.watch(`${p}k`, { afterRevision: -1 }), /afterRevision -1/);
      await assert.rejects(s.deletePrefix(''), /prefix "": must be a non-empty string/);
      assert.deepEqual((await s.list(p)).pairs, [], 'nothing was written');
    });

    it('concurrent writes from several clients each apply atomically, at distinct revisions', async () => {
      const clients = await Promise.all([client('a'), client('b'), client('c')]);
      const p = uniqueKeyPrefix();
      const r0 = await clients[0]!.revision();
      const revs = await Promise.all(
        Array.from({ length: 30 }, (_, i) => clients[i % 3]!.put(`${p}k/${i % 4}`, String(i))),
      );
      assert.equal(new Set(revs).size, 30, 'every write has its own revision');
      assert.ok(revs.every((r) => r > r0 && r <= r0 + 30));
      const l = await clients[1]!.list(`${p}k/`);
      assert.equal(l.pairs.length, 4);
      for (const pair of l.pairs) {
        const i = Number(pair.value);
        assert.equal(pair.modRevision, revs[i], `${pair.key} holds the write made at its revision`);
      }
    });

    it('lockKey over the store admits one holder at a time across clients; a dead holder releases with its lease', async () => {
      const clients = await Promise.all([client('a'), client('b'), client('c')]);
      const p = uniqueKeyPrefix();
      let inside = 0;
      let maxInside = 0;
      let entries = 0;
      await Promise.all(
        clients.flatMap((s, i) =>
          [0, 1].map(async () => {
            const lock = await lockKey(s, `${p}locks/x`, { owner: `c${i}` });
            inside++;
            maxInside = Math.max(maxInside, inside);
            await new Promise((r) => setTimeout(r, 5));
            entries++;
            inside--;
            await lock.unlock();
          }),
        ),
      );
      assert.equal(maxInside, 1);
      assert.equal(entries, 6);
      assert.equal(await clients[0]!.get(`${p}locks/x`), undefined, 'released');
      const dying = await client('dying');
      await lockKey(dying, `${p}locks/y`, { owner: 'dying' });
      const waiting = lockKey(clients[1]!, `${p}locks/y`, { owner: 'b' });
      await new Promise((r) => setTimeout(r, 50));
      await dying.close(); // dies without unlocking
      const lock = await waiting;
      assert.match((await clients[0]!.get(`${p}locks/y`))!.value, /^b\//);
      await lock.unlock();
    });
  });
}
