import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlowMerger } from '../../../src/hubble/relay/merge.js';

interface It {
  sec: number;
  nsec: number;
  id: string;
}
const at = (id: string, sec: number, nsec = 0): It => ({ id, sec, nsec });
const ids = (xs: It[]) => xs.map((x) => x.id);

describe('relay flow merge', () => {
  it('k-way: an item goes out once every open stream has one queued; a finished stream stops counting', () => {
    const m = new FlowMerger<It>();
    for (const s of ['a', 'b', 'c']) m.addSource(s);
    m.push('a', at('a1', 1), 0);
    m.push('a', at('a4', 4), 0);
    m.push('b', at('b2', 2), 0);
    assert.deepEqual(ids(m.ready(0)), [], 'c may still send something older');
    m.push('c', at('c3', 3), 0);
    assert.deepEqual(ids(m.ready(0)), ['a1', 'b2'], 'b is empty after b2: wait for it');
    m.end('b');
    assert.deepEqual(ids(m.ready(0)), ['c3'], 'then c is empty');
    m.end('c');
    assert.deepEqual(ids(m.ready(0)), ['a4']);
    m.end('a');
    assert.equal(m.size, 0);
  });

  it('orders by seconds, then nanoseconds, then arrival', () => {
    const m = new FlowMerger<It>();
    m.addSource('a');
    m.addSource('b');
    m.push('a', at('a-late-ns', 5, 900), 0);
    m.push('b', at('b-early-ns', 5, 100), 0);
    m.push('b', at('b-tie', 5, 900), 0);
    m.end('a');
    m.end('b');
    assert.deepEqual(ids(m.ready(0)), ['b-early-ns', 'a-late-ns', 'b-tie']);
  });

  it('follow: items older than the window (by flow time or by waiting) go out without quiet streams', () => {
    const now = 1_000_000;
    const m = new FlowMerger<It>({ windowMs: 1000 });
    m.addSource('busy');
    m.addSource('quiet');
    m.push('busy', at('old', 900), now); // flow time far in the past
    m.push('busy', at('fresh', now / 1000), now);
    assert.deepEqual(ids(m.ready(now)), ['old']);
    assert.deepEqual(ids(m.ready(now + 999)), []);
    assert.deepEqual(ids(m.ready(now + 1000)), ['fresh']);
    // a clock ahead of ours: out after waiting the window here
    m.push('busy', at('future', now / 1000 + 3600), now + 2000);
    assert.deepEqual(ids(m.ready(now + 2500)), []);
    assert.deepEqual(ids(m.ready(now + 3000)), ['future']);
  });

  it('beyond maxLen the oldest goes out; nothing is ever dropped', () => {
    const m = new FlowMerger<It>({ maxLen: 2, windowMs: 60_000 });
    m.addSource('a');
    m.addSource('idle');
    m.push('a', at('3', 3), 0);
    m.push('a', at('1', 1), 0);
    assert.deepEqual(ids(m.ready(0)), []);
    m.push('a', at('2', 2), 0);
    assert.deepEqual(ids(m.ready(0)), ['1']);
    assert.deepEqual(ids(m.drain()), ['2', '3']);
  });

  it('counts queued items per stream, also after it ended, and can reopen it', () => {
    const m = new FlowMerger<It>();
    m.addSource('a');
    m.addSource('b');
    m.push('a', at('a1', 1), 0);
    m.push('a', at('a2', 2), 0);
    assert.equal(m.queued('a'), 2);
    m.end('a');
    assert.equal(m.queued('a'), 2);
    assert.deepEqual(m.openSources, ['b']);
    m.addSource('a');
    assert.deepEqual(ids(m.ready(0)), [], 'b has nothing yet');
    m.end('b');
    assert.deepEqual(ids(m.ready(0)), ['a1', 'a2'], 'a alone: its own items are in order');
    assert.equal(m.queued('a'), 0);
  });

  it('a thousand items from three shuffled-but-ordered streams come out sorted', () => {
    const m = new FlowMerger<It>();
    const streams: It[][] = [[], [], []];
    for (let i = 0; i < 1000; i++) streams[(i * 7919) % 3]!.push(at(String(i), 1000 + i));
    for (const s of ['0', '1', '2']) m.addSource(s);
    const out: It[] = [];
    const pos = [0, 0, 0];
    // feed in a deterministic irregular pattern
    for (let step = 0; pos.some((p, k) => p < streams[k]!.length); step++) {
      const k = (step * 7 + (step >> 2)) % 3;
      const item = streams[k]![pos[k]!];
      if (item) {
        m.push(String(k), item, 0);
        pos[k]!++;
        if (pos[k] === streams[k]!.length) m.end(String(k));
      }
      out.push(...m.ready(0));
    }
    out.push(...m.drain());
    assert.deepEqual(
      out.map((x) => Number(x.id)),
      Array.from({ length: 1000 }, (_, i) => i),
    );
  });
});
