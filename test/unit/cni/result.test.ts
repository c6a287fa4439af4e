import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildAddResult, convertResult, validateResult } from '../../../src/cni/result.js';

describe('CNI result builder', () => {
  const r = buildAddResult({
    hostInterface: { name: 'lxcabc', mac: '02:00:00:00:00:01' },
    podInterface: { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/run/netns/p', mtu: 1450 },
    ipv4: { ip: '10.200.0.5', gateway: '10.200.0.1' },
    ipv6: { ip: 'fd00:10:200::5', gateway: 'fd00:10:200::1' },
    dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] },
  });

  it('builds a 1.0.0 result', () => {
    assert.deepEqual(r, {
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'lxcabc', mac: '02:00:00:00:00:01' },
        { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/run/netns/p', mtu: 1450 },
      ],
      ips: [
        { address: '10.200.0.5/32', gateway: '10.200.0.1', interface: 1 },
        { address: 'fd00:10:200::5/128', gateway: 'fd00:10:200::1', interface: 1 },
      ],
      routes: [
        { dst: '0.0.0.0/0', gw: '10.200.0.1' },
        { dst: '::/0', gw: 'fd00:10:200::1' },
      ],
      dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] },
    });
    assert.deepEqual(validateResult(r), []);
  });

  it('validation reports precise problems', () => {
    assert.deepEqual(validateResult(null), ['result must be an object']);
    const bad = {
      cniVersion: 1,
      interfaces: [{ name: '', mac: 'zz' }],
      ips: [
        { address: '10.0.0.1', interface: 0 },
        { address: '10.0.0.1/24', gateway: 'fd00::1', interface: 3 },
      ],
      routes: [{ dst: '::/0', gw: '10.0.0.1' }, { dst: 'x' }],
      dns: { nameservers: [1] },
    };
    assert.deepEqual(validateResult(bad), [
      'cniVersion must be a string',
      'interfaces[0].name must be a non-empty string',
      'interfaces[0].mac is not a MAC address',
      'ips[0].address "10.0.0.1" is not a CIDR',
      'ips[1].gateway "fd00::1" is not an address of the same family',
      'ips[1].interface 3 does not index interfaces (length 1)',
      'routes[0].gw is not an address of the same family',
      'routes[1].dst is not a CIDR',
      'dns.nameservers must be an array of strings',
    ]);
  });

  it('converts to 0.3.x/0.4.0 (ips[].version) and back', () => {
    const old = convertResult(r, '0.3.1');
    assert.equal(old.cniVersion, '0.3.1');
    assert.deepEqual(
      old.ips!.map((i) => i.version),
      ['4', '6'],
    );
    const back = convertResult(old, '1.0.0');
    assert.deepEqual(back, r);
  });
});
