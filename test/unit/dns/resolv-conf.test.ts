import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { podResolvConf } from '../../../src/dns/index.js';

describe('pod resolv.conf', () => {
  it('search path of the pod’s namespace, the cluster DNS, ndots:5', () => {
    assert.equal(
      podResolvConf({ namespace: 'default', nameservers: ['10.96.0.10'] }),
      'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
    );
    assert.equal(
      podResolvConf({
        namespace: 'empire',
        nameservers: ['10.96.0.10', 'fd00:96::a'],
        zone: 'lab.example.',
        ndots: 2,
        extraSearches: ['corp.example'],
      }),
      'search empire.svc.lab.example svc.lab.example lab.example corp.example\n' +
        'nameserver 10.96.0.10\nnameserver fd00:96::a\noptions ndots:2\n',
    );
  });

  it('bad input is refused naming the field', () => {
    const ok = { namespace: 'default', nameservers: ['10.96.0.10'] };
    assert.throws(() => podResolvConf({ ...ok, namespace: 'Default' }), /^DnsArgumentError: namespace: /);
    assert.throws(() => podResolvConf({ ...ok, nameservers: [] }), /nameservers: needs 1 to 3/);
    assert.throws(
      () => podResolvConf({ ...ok, nameservers: ['a', 'b', 'c', 'd'] }),
      /nameservers: needs 1 to 3/,
    );
    assert.throws(() => podResolvConf({ ...ok, nameservers: ['kube-dns'] }), /nameservers\[0\]: "kube-dns"/);
    assert.throws(() => podResolvConf({ ...ok, ndots: 16 }), /ndots: /);
    assert.throws(() => podResolvConf({ ...ok, zone: 'bad..zone' }), /zone: /);
    assert.throws(() => podResolvConf({ ...ok, extraSearches: ['x y'] }), /extraSearches\[0\]: /);
  });
});
