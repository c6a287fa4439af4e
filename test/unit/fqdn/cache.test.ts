import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FqdnCache } from '../../../src/fqdn/cache.js';

const T0 = 1_700_000_000_000;

describe('fqdn cache', () => {
  it('keeps each IP for its TTL, per endpoint and name; lookups see only live IPs', () => {
    const c = new FqdnCache();
    assert.equal(c.update(1, 'WWW.Example.com', [{ ip: '192.0.2.1', ttl: 30 }], T0), true);
    assert.deepEqual(c.lookup('www.example.com.', T0 + 29_999), ['192.0.2.1']);
    assert.deepEqual(c.lookup('www.example.com', T0 + 30_000), []);
    assert.deepEqual(
      c.rows().map((r) => [r.endpointId, r.name, r.ips.length]),
      [[1, 'www.example.com.', 1]],
    );
  });

  it('raises TTLs to the minimum', () => {
    const c = new FqdnCache({ minTtl: 60 });
    c.update(1, 'a.test', [{ ip: '192.0.2.1', ttl: 5 }], T0);
    assert.equal(c.rows()[0]!.ips[0]!.ttl, 60);
    assert.deepEqual(c.lookup('a.test', T0 + 59_000), ['192.0.2.1']);
    assert.deepEqual(c.lookup('a.test', T0 + 60_000), []);
  });

  it('a new answer adds IPs and refreshes repeated ones; left-out IPs live until they expire', () => {
    const c = new FqdnCache();
    c.update(1, 'a.test', [{ ip: '192.0.2.1', ttl: 10 }], T0);
    assert.equal(c.update(1, 'a.test', [{ ip: '192.0.2.1', ttl: 10 }], T0 + 5000), false, 'nothing new');
    assert.equal(c.update(1, 'a.test', [{ ip: '192.0.2.2', ttl: 10 }], T0 + 6000), true);
    assert.deepEqual(c.lookup('a.test', T0 + 14_000), ['192.0.2.1', '192.0.2.2']);
    assert.deepEqual(c.lookup('a.test', T0 + 15_000), ['192.0.2.2']);
  });

  it('unions names over endpoints and forgets a removed endpoint', () => {
    const c = new FqdnCache();
    c.update(1, 'a.test', [{ ip: '192.0.2.1', ttl: 10 }], T0);
    c.update(2, 'a.test', [{ ip: '192.0.2.2', ttl: 10 }], T0);
    assert.deepEqual(c.lookup('a.test', T0), ['192.0.2.1', '192.0.2.2']);
    assert.equal(c.removeEndpoint(1), true);
    assert.deepEqual(c.lookup('a.test', T0), ['192.0.2.2']);
  });

  it('gc drops expired IPs and empty names and says whether anything went', () => {
    const c = new FqdnCache();
    c.update(
      1,
      'a.test',
      [
        { ip: '192.0.2.1', ttl: 1 },
        { ip: '192.0.2.2', ttl: 100 },
      ],
      T0,
    );
    assert.equal(c.nextExpiry(), T0 + 1000);
    assert.equal(c.gc(T0 + 500), false);
    assert.equal(c.gc(T0 + 1000), true);
    assert.deepEqual(
      c.rows()[0]!.ips.map((i) => i.ip),
      ['192.0.2.2'],
    );
    c.gc(T0 + 100_000);
    assert.deepEqual(c.rows(), []);
  });

  it('evicts the IPs that expire first beyond maxIpsPerName', () => {
    const c = new FqdnCache({ maxIpsPerName: 2 });
    c.update(1, 'a.test', [{ ip: '192.0.2.1', ttl: 5 }], T0);
    c.update(
      1,
      'a.test',
      [
        { ip: '192.0.2.2', ttl: 50 },
        { ip: '192.0.2.3', ttl: 60 },
      ],
      T0,
    );
    assert.deepEqual(c.lookup('a.test', T0), ['192.0.2.2', '192.0.2.3']);
  });

  it('a TTL of 0 keeps the IP for a second only: the pod can connect right after the answer', () => {
    const c = new FqdnCache();
    c.update(1, 'a.test', [{ ip: '192.0.2.1', ttl: 0 }], T0);
    assert.equal(c.rows()[0]!.ips[0]!.ttl, 0);
    assert.deepEqual(c.lookup('a.test', T0 + 999), ['192.0.2.1']);
    assert.deepEqual(c.lookup('a.test', T0 + 1000), []);
  });

  it('export and restore round-trip; a malformed state is refused and changes nothing', () => {
    const c = new FqdnCache();
    c.update(
      3,
      'a.test',
      [
        { ip: '192.0.2.1', ttl: 10 },
        { ip: '2001:db8::1', ttl: 20 },
      ],
      T0,
    );
    const saved = JSON.parse(JSON.stringify(c.export()));
    const d = new FqdnCache();
    d.restore(saved);
    assert.deepEqual(d.rows(), c.rows());
    assert.throws(() => d.restore({ version: 2, rows: [] } as never), /version 2/);
    assert.throws(
      () =>
        d.restore({
          version: 1,
          rows: [{ endpointId: 1, name: 'x.', lookupTime: 0, ips: [{ ip: 1 }] }],
        } as never),
      /malformed IP of x\./,
    );
    assert.deepEqual(d.rows(), c.rows());
  });

  it('refuses bad options, naming them', () => {
    assert.throws(() => new FqdnCache({ minTtl: -1 }), /minTtl/);
    assert.throws(() => new FqdnCache({ maxIpsPerName: 0 }), /maxIpsPerName/);
  });
});
