/**
 * The agent's idle collector: one full collection (and malloc_trim) when the process is quiet and
 * its RSS grew enough; nothing while the growth stays under the threshold, nothing without `gc`.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startIdleCollector } from '../../../src/agent/memory.js';

setFlagsFromString('--expose-gc');
const realGc = runInNewContext('gc') as () => void;
const g = globalThis as { gc?: () => void };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('idle collector', () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const s of stops.splice(0)) s();
    delete g.gc;
  });

  it('collects once the process is quiet and grew, and the garbage is gone', async () => {
    let calls = 0;
    g.gc = () => {
      calls++;
      realGc();
    };
    let garbage: number[][] | undefined = Array.from({ length: 64 }, () => new Array(4096).fill(1.5));
    const gone = new WeakRef(garbage);
    garbage = undefined;
    stops.push(startIdleCollector({ intervalMs: 20, maxBusy: 1, minGrowth: 0 }));
    for (let i = 0; i < 500 && (calls === 0 || gone.deref() !== undefined); i++) await sleep(20);
    assert.ok(calls >= 1, 'collected');
    assert.equal(gone.deref(), undefined, 'the garbage was collected');
  });

  it('does nothing while RSS grew less than the threshold', async () => {
    let calls = 0;
    g.gc = () => void calls++;
    stops.push(startIdleCollector({ intervalMs: 10, maxBusy: 1, minGrowth: 1024 ** 4 }));
    await sleep(200);
    assert.equal(calls, 0);
  });

  it('does nothing without gc (node started without --expose-gc)', () => {
    const stop = startIdleCollector({ intervalMs: 10, maxBusy: 1, minGrowth: 0 });
    stop();
  });
});
