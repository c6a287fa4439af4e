import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LbError } from '../../../src/service/errors.js';
import { BackendIdAllocator, IdAllocator, ServiceIdAllocator } from '../../../src/service/ids.js';

describe('ID allocators', () => {
  it('an ID stays with its key; a released one is not handed out again until the space wraps', () => {
    const a = new IdAllocator('test', 1, 4);
    assert.equal(a.acquire('a'), 1);
    assert.equal(a.acquire('b'), 2);
    assert.equal(a.acquire('a'), 1);
    assert.ok(a.release('a'));
    assert.equal(a.acquire('c'), 3);
    assert.equal(a.acquire('d'), 4);
    assert.equal(a.acquire('e'), 1, 'wrapped: the released 1 is free again');
    assert.equal(a.keyOf(1), 'e');
    assert.equal(a.lookup('a'), undefined);
    assert.ok(!a.release('a'));
  });

  it('a full space fails with resource-exhausted and gives nothing out', () => {
    const a = new IdAllocator('rev-NAT', 1, 2);
    a.acquire('a');
    a.acquire('b');
    assert.throws(
      () => a.acquire('c'),
      (e: unknown) =>
        e instanceof LbError && e.code === 'resource-exhausted' && /rev-NAT IDs exhausted/.test(e.message),
    );
    assert.equal(a.size, 2);
  });

  it('restored IDs come back to their key, new IDs start after them, unclaimed ones are pruned', () => {
    const a = new ServiceIdAllocator();
    a.restore('10.96.0.10:53/UDP', 7);
    a.restore('10.96.0.11:80/TCP', 9);
    assert.equal(a.acquire('10.96.0.99:80/TCP'), 10);
    assert.equal(a.acquire('10.96.0.10:53/UDP'), 7);
    assert.deepEqual(a.pruneRestored(), ['10.96.0.11:80/TCP']);
    assert.equal(a.keyOf(9), undefined);
    assert.equal(a.keyOf(7), '10.96.0.10:53/UDP');
  });

  it('restoring an ID held by another key, or out of range, is refused', () => {
    const a = new BackendIdAllocator();
    a.acquire('10.0.0.1:80/TCP');
    assert.throws(
      () => a.restore('10.0.0.2:80/TCP', 1),
      (e: unknown) => e instanceof LbError && e.code === 'conflict',
    );
    assert.throws(() => new ServiceIdAllocator().restore('x', 70000), /out of range 1-65535/);
  });
});
