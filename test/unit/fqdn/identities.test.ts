import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FqdnIdentities } from '../../../src/fqdn/identities.js';
import { selectorPattern } from '../../../src/fqdn/match.js';
import { IdentityAllocator, isLocalIdentity } from '../../../src/identity/index.js';
import { LabelSource } from '../../../src/labels/index.js';
import { fqdnSelector } from '../../../src/policy/fqdn.js';
import { makeRequirement, Selector } from '../../../src/policy/selector.js';
import { SelectorCache } from '../../../src/policy/selectorcache.js';

const names = (m: Record<string, string[]>) => new Map(Object.entries(m).map(([k, v]) => [k, new Set(v)]));

describe('fqdn identities', () => {
  const star = selectorPattern({ matchPattern: '*.example.com' });
  const exact = selectorPattern({ matchName: 'api.example.com' });

  it('gives IPs of matching names local identities that toFQDNs selectors select, and nothing else', () => {
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache();
    cache.attach(alloc);
    const sel = cache.add(fqdnSelector(star));
    const selExact = cache.add(fqdnSelector(exact));
    const ids = new FqdnIdentities(alloc);
    ids.sync(
      new Set([star, exact]),
      names({
        'www.example.com.': ['192.0.2.1'],
        'api.example.com.': ['192.0.2.2'],
        'other.org.': ['192.0.2.9'],
      }),
    );
    const entries = ids.ipcacheEntries();
    assert.deepEqual([...entries.keys()].sort(), ['192.0.2.1', '192.0.2.2'], 'other.org matches no selector');
    const id1 = entries.get('192.0.2.1')!.identity;
    const id2 = entries.get('192.0.2.2')!.identity;
    assert.ok(isLocalIdentity(id1) && isLocalIdentity(id2));
    assert.deepEqual([...sel].sort(), [id1, id2].sort());
    assert.deepEqual([...selExact], [id2]);
    // The cidr: label keeps toCIDR rules covering the IP working on the same identity.
    const cidr = Selector.of([makeRequirement(LabelSource.Cidr, '192.0.2.0/24', 'Exists')]);
    assert.deepEqual([...cache.selections(cidr)].sort(), [id1, id2].sort());
    assert.deepEqual(alloc.lookup(id2)!.labels.toStrings().sort(), [
      'cidr:192.0.2.2/32',
      'fqdn:*.example.com.',
      'fqdn:api.example.com.',
      'reserved:world',
    ]);
  });

  it('follows a changing answer: new IPs are selected, dropped IPs lose their identity', () => {
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache();
    cache.attach(alloc);
    const sel = cache.add(fqdnSelector(star));
    const ids = new FqdnIdentities(alloc);
    ids.sync(new Set([star]), names({ 'www.example.com.': ['192.0.2.1'] }));
    const old = ids.ipcacheEntries().get('192.0.2.1')!.identity;
    const r = ids.sync(new Set([star]), names({ 'www.example.com.': ['192.0.2.7'] }));
    assert.equal(r.changed, 2);
    const now = ids.ipcacheEntries().get('192.0.2.7')!.identity;
    assert.deepEqual([...sel], [now]);
    assert.equal(alloc.lookup(old), undefined, 'released');
    assert.equal(ids.sync(new Set([star]), names({ 'www.example.com.': ['192.0.2.7'] })).changed, 0);
  });

  it('a policy losing its selector takes the label away; no selector left frees everything', () => {
    const alloc = new IdentityAllocator();
    const ids = new FqdnIdentities(alloc);
    const n = names({ 'api.example.com.': ['192.0.2.2'] });
    ids.sync(new Set([star, exact]), n);
    ids.sync(new Set([exact]), n);
    const id = ids.ipcacheEntries().get('192.0.2.2')!.identity;
    assert.deepEqual(alloc.lookup(id)!.labels.toStrings().sort(), [
      'cidr:192.0.2.2/32',
      'fqdn:api.example.com.',
      'reserved:world',
    ]);
    ids.sync(new Set(), n);
    assert.equal(ids.ipcacheEntries().size, 0);
    assert.equal(alloc.lookup(id), undefined);
  });
});
