import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_GC_INTERVAL, nextGcInterval } from '../../../src/conntrack/interval.js';

const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;

describe('conntrack GC interval (upstream rule)', () => {
  it('first run starts from 5 min; keeps it when nothing or a middling share was deleted', () => {
    assert.equal(nextGcInterval(0, 0, 0), 5 * MIN);
    assert.equal(nextGcInterval(0, 0, 0.1), 5 * MIN);
    assert.equal(nextGcInterval(0, 0, 0.25), 5 * MIN);
  });

  it('more than 25 % deleted shortens by that share (at most 10x), not below 10 s, rounded to 1 s', () => {
    assert.equal(nextGcInterval(0, 0, 0.5), 150 * S);
    assert.equal(nextGcInterval(0, 0, 1 / 3), 200 * S);
    assert.equal(nextGcInterval(0, 0, 0.95), 30 * S);
    assert.equal(nextGcInterval(20 * S, 20 * S, 0.99), 10 * S);
  });

  it('under 5 % deleted grows 1.5x up to 12 h, or up to a configured maximum', () => {
    assert.equal(nextGcInterval(5 * MIN, 5 * MIN, 0.01), 7.5 * MIN);
    assert.equal(nextGcInterval(10 * H, 10 * H, 0.001), 12 * H);
    assert.equal(nextGcInterval(50 * MIN, 50 * MIN, 0.01, { ...DEFAULT_GC_INTERVAL, maxMs: H }), H);
  });

  it('a run that came early scales the ratio by how early it was', () => {
    // 20 % is "keep"; the run came after half its interval, so it counts as 40 %: shorten by 40 %.
    assert.equal(nextGcInterval(5 * MIN, 10 * MIN, 0.2), 6 * MIN);
    assert.equal(nextGcInterval(10 * MIN, 10 * MIN, 0.2), 10 * MIN);
  });

  it('a fixed interval wins', () => {
    assert.equal(nextGcInterval(0, 0, 0.9, { ...DEFAULT_GC_INTERVAL, fixedMs: 42 * S }), 42 * S);
  });
});
