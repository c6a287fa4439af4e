import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cidrIdentityLabels,
  cidrLabelKey,
  formatLabel,
  formatPrefix,
  LabelSet,
  parseCidrLabelKey,
  parseLabel,
  parsePrefix,
  parseSelectLabel,
  podIdentityLabels,
  prefixContains,
  subtractPrefixes,
} from '../../../src/labels/index.js';

describe('label parse/format', () => {
  it('parses source:key=value forms', () => {
    assert.deepEqual(parseLabel('k8s:app=web'), { source: 'k8s', key: 'app', value: 'web' });
    assert.deepEqual(parseLabel('reserved:host'), { source: 'reserved', key: 'host', value: '' });
    assert.deepEqual(parseLabel('app=web'), { source: 'unspec', key: 'app', value: 'web' });
    assert.deepEqual(parseSelectLabel('app=web'), { source: 'any', key: 'app', value: 'web' });
    assert.deepEqual(parseLabel('reserved.init'), { source: 'reserved', key: 'init', value: '' });
    assert.deepEqual(parseLabel('cidr:10.0.0.0/8'), { source: 'cidr', key: '10.0.0.0/8', value: '' });
    assert.deepEqual(parseLabel('k8s:a=b=c'), { source: 'k8s', key: 'a', value: 'b=c' });
    assert.throws(() => parseLabel(''));
    assert.throws(() => parseLabel('k8s:=x'));
  });

  it('formats and round-trips', () => {
    for (const s of ['k8s:app=web', 'reserved:world', 'cidr:10.0.0.0/8', 'any:x=1']) {
      assert.equal(formatLabel(parseLabel(s)), s);
    }
  });

  it('LabelSet is sorted, canonical and comparable', () => {
    const a = LabelSet.parse(['k8s:z=1', 'k8s:a=2']);
    const b = LabelSet.parse(['k8s:a=2', 'k8s:z=1']);
    assert.equal(a.toString(), 'k8s:a=2;k8s:z=1');
    assert.ok(a.equals(b));
    assert.ok(LabelSet.fromString(a.toString()).equals(a));
    assert.ok(!a.equals(LabelSet.parse(['k8s:a=3', 'k8s:z=1'])));
    assert.equal(a.get('a')?.value, '2');
    assert.ok(a.has('a', 'k8s') && a.has('a', 'any') && !a.has('a', 'container'));
    assert.equal(LabelSet.parse(['k8s:a=1', 'k8s:a=2']).size, 1);
  });
});

describe('pod identity labels', () => {
  it('derives namespace, namespace labels, service account and cluster', () => {
    const ls = podIdentityLabels({
      labels: {
        app: 'web',
        'pod-template-hash': 'abc',
        'controller-revision-hash': 'x',
        'app.kubernetes.io/name': 'w',
      },
      namespace: 'prod',
      namespaceLabels: { 'kubernetes.io/metadata.name': 'prod', team: 'a' },
      serviceAccount: 'sa1',
    });
    assert.deepEqual(ls.toStrings(), [
      'k8s:app=web',
      'k8s:app.kubernetes.io/name=w',
      'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=prod',
      'k8s:io.cilium.k8s.namespace.labels.team=a',
      'k8s:io.cilium.k8s.policy.cluster=default',
      'k8s:io.cilium.k8s.policy.serviceaccount=sa1',
      'k8s:io.kubernetes.pod.namespace=prod',
    ]);
  });
  it('uses the given cluster name and omits an empty service account', () => {
    const ls = podIdentityLabels({ namespace: 'n', cluster: 'c1' });
    assert.deepEqual(ls.toStrings(), [
      'k8s:io.cilium.k8s.policy.cluster=c1',
      'k8s:io.kubernetes.pod.namespace=n',
    ]);
  });
});

describe('CIDR prefixes and labels', () => {
  it('parses, normalizes and formats', () => {
    assert.equal(formatPrefix(parsePrefix('10.1.2.3/8')), '10.0.0.0/8');
    assert.equal(formatPrefix(parsePrefix('20.1.1.1')), '20.1.1.1/32');
    assert.equal(formatPrefix(parsePrefix('2001:db8::/32')), '2001:db8::/32');
    assert.equal(formatPrefix(parsePrefix('::/0')), '::/0');
    assert.throws(() => parsePrefix('10.0.0/8'), /invalid CIDR/);
    assert.throws(() => parsePrefix('10.0.0.0/33'), /exceeds/);
    assert.throws(() => parsePrefix('300.0.0.0/8'));
  });
  it('uses dashes for IPv6 label keys and reads them back', () => {
    const p = parsePrefix('2001:db8::/32');
    assert.equal(cidrLabelKey(p), '2001-db8--/32');
    assert.equal(formatPrefix(parseCidrLabelKey('2001-db8--/32')!), '2001:db8::/32');
    assert.deepEqual(LabelSet.of(cidrIdentityLabels(parsePrefix('10.0.0.0/8'))).toStrings(), [
      'cidr:10.0.0.0/8',
      'reserved:world',
    ]);
  });
  it('containment and subtraction', () => {
    assert.ok(prefixContains(parsePrefix('10.0.0.0/8'), parsePrefix('10.96.0.0/12')));
    assert.ok(!prefixContains(parsePrefix('10.96.0.0/12'), parsePrefix('10.0.0.0/8')));
    const rest = subtractPrefixes(parsePrefix('10.0.0.0/8'), [parsePrefix('10.96.0.0/12')]).map(formatPrefix);
    assert.deepEqual(rest, ['10.0.0.0/10', '10.64.0.0/11', '10.112.0.0/12', '10.128.0.0/9']);
    assert.deepEqual(subtractPrefixes(parsePrefix('10.0.0.0/8'), [parsePrefix('0.0.0.0/0')]), []);
  });
});
