import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nameMatches, patternRegExp, selectorPattern, toFqdn } from '../../../src/fqdn/match.js';

const pat = (matchPattern: string) => selectorPattern({ matchPattern });
const name = (matchName: string) => selectorPattern({ matchName });

describe('fqdn names and selectors', () => {
  it('names are lower-cased and fully qualified', () => {
    assert.equal(toFqdn('WWW.Cilium.IO'), 'www.cilium.io.');
    assert.equal(toFqdn('cilium.io.'), 'cilium.io.');
    assert.equal(name('Cilium.io'), 'cilium.io.');
    assert.equal(pat('*.Cilium.io'), '*.cilium.io.');
    assert.equal(pat('*'), '*');
  });

  it('matchName is an exact match, in any case, with or without the trailing dot', () => {
    const p = name('cilium.io');
    assert.ok(nameMatches(p, 'cilium.io'));
    assert.ok(nameMatches(p, 'CILIUM.IO.'));
    assert.ok(!nameMatches(p, 'sub.cilium.io'));
    assert.ok(!nameMatches(p, 'cilium.io.evil.com'));
    assert.ok(!nameMatches(p, 'xcilium.io'));
  });

  it('dots in a name are literal, not "any character"', () => {
    assert.ok(!nameMatches(name('cilium.io'), 'ciliumxio'));
    assert.ok(!nameMatches(pat('*.cilium.io'), 'a.ciliumxio'));
  });

  it('* inside a label matches name characters and never crosses a dot', () => {
    const p = pat('*.cilium.io');
    assert.ok(nameMatches(p, 'sub.cilium.io'));
    assert.ok(nameMatches(p, 'a-b_c9.cilium.io.'));
    assert.ok(!nameMatches(p, 'cilium.io'));
    assert.ok(!nameMatches(p, 'a.b.cilium.io'));
    assert.ok(!nameMatches(p, 'sub.cilium.io.com'));
  });

  it('* may match nothing, and may sit anywhere in a label', () => {
    const p = pat('sub*.cilium.io');
    assert.ok(nameMatches(p, 'sub.cilium.io'));
    assert.ok(nameMatches(p, 'subway.cilium.io'));
    assert.ok(!nameMatches(p, 'asub.cilium.io'));
    const q = pat('*cilium.io');
    assert.ok(nameMatches(q, 'cilium.io'));
    assert.ok(nameMatches(q, 'mycilium.io'));
    assert.ok(!nameMatches(q, 'my.cilium.io'));
    const r = pat('ci*um.io');
    assert.ok(nameMatches(r, 'cilium.io'));
    assert.ok(nameMatches(r, 'cium.io'));
    assert.ok(!nameMatches(r, 'ci.um.io'));
  });

  it('** as the first label matches one or more labels', () => {
    const p = pat('**.cilium.io');
    assert.ok(nameMatches(p, 'a.cilium.io'));
    assert.ok(nameMatches(p, 'a.b.c.cilium.io'));
    assert.ok(!nameMatches(p, 'cilium.io'));
    assert.ok(!nameMatches(p, 'a.cilium.io.org'));
  });

  it('* alone matches every name, the root included', () => {
    const p = pat('*');
    for (const n of ['cilium.io', 'a.b.c.d.', '.', 'x']) assert.ok(nameMatches(p, n), n);
  });

  it('several stars in one pattern, cluster-internal names', () => {
    const p = pat('*.*.svc.cluster.local');
    assert.ok(nameMatches(p, 'kube-dns.kube-system.svc.cluster.local'));
    assert.ok(!nameMatches(p, 'kube-system.svc.cluster.local'));
    assert.ok(!nameMatches(p, 'a.b.c.svc.cluster.local'));
  });

  it('the regular expression is anchored', () => {
    assert.equal(patternRegExp('cilium.io.').source, '^cilium[.]io[.]$');
  });
});
