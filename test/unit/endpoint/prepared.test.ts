import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PreparedEndpoints } from '../../../src/endpoint/prepared.js';

/** A PreparedEndpoints whose begin() hands out numbered values and records what was given back. */
function fixture(ttlMs = 60_000, failFor?: string) {
  let n = 0;
  const aborted: number[] = [];
  const errors: string[] = [];
  const p = new PreparedEndpoints<number>({
    ttlMs,
    begin: (ns, name) => {
      if (`${ns}/${name}` === failFor) throw new Error('no free address');
      return ++n;
    },
    abort: (v) => aborted.push(v),
    onError: (err, pod) => errors.push(`${pod}: ${(err as Error).message}`),
  });
  return { p, aborted, errors };
}

describe('PreparedEndpoints', () => {
  it('begins once per pod; the claim takes it, and nothing is given back', () => {
    const { p, aborted } = fixture();
    assert.equal(p.prepare('default', 'a'), true);
    assert.equal(p.prepare('default', 'a'), true); // already begun: not again
    assert.equal(p.size, 1);
    assert.equal(p.claim('default', 'a'), 1);
    assert.equal(p.claim('default', 'a'), undefined);
    assert.deepEqual(aborted, []);
  });

  it('discard gives back what was begun; by pod or by namespace; clear drops all', () => {
    const { p, aborted } = fixture();
    p.prepare('default', 'a'); // 1
    p.prepare('default', 'b'); // 2
    p.prepare('other', 'a'); // 3
    p.prepare('default2', 'c'); // 4: a namespace whose name starts like another's
    p.discard('default', 'a');
    assert.deepEqual(aborted, [1]);
    p.discardNamespace('default');
    assert.deepEqual(aborted, [1, 2]);
    assert.equal(p.claim('default2', 'c'), 4);
    p.clear();
    assert.deepEqual(aborted, [1, 2, 3]);
    assert.equal(p.size, 0);
  });

  it('a begin that fails is reported and leaves no entry', () => {
    const { p, errors } = fixture(60_000, 'default/full');
    assert.equal(p.prepare('default', 'full'), false);
    assert.equal(p.size, 0);
    assert.deepEqual(errors, ['default/full: no free address']);
  });

  it('an entry nobody claims is given back after the TTL', async () => {
    const { p, aborted } = fixture(20);
    p.prepare('default', 'late');
    const deadline = Date.now() + 10_000;
    while (aborted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(aborted, [1]);
    assert.equal(p.claim('default', 'late'), undefined);
  });
});
