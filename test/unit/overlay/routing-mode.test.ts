/**
 * The agent's --routing-mode: vxlan (the overlay) by default, native on request, anything else
 * refused naming the flag; the pods' MTU leaves room for the VXLAN header only in vxlan mode.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { overlayMtu } from '../../../src/agent/cells/overlay.js';
import { configFromFlags } from '../../../src/agent/main.js';
import { VXLAN_OVERHEAD } from '../../../src/datapath/overlay.js';

const flags = {
  lab: 't',
  node: 'n1',
  podCidr: '10.200.0.0/24',
  monitorAggregation: '1',
  hubblePort: '0',
  metricsPort: '0',
  hubbleMetrics: '',
  logLevel: 'info',
};

describe('agent --routing-mode', () => {
  it('is vxlan by default and native on request', () => {
    assert.equal(configFromFlags(flags).routingMode, 'vxlan');
    assert.equal(configFromFlags({ ...flags, routingMode: 'native' }).routingMode, 'native');
    assert.equal(configFromFlags({ ...flags, routingMode: 'vxlan' }).routingMode, 'vxlan');
  });

  it('refuses another mode, naming the flag', () => {
    assert.throws(
      () => configFromFlags({ ...flags, routingMode: 'geneve' }),
      (e: Error & { field?: string }) => {
        assert.match(e.message, /--routing-mode geneve: expected vxlan or native/);
        assert.equal(e.field, 'routingMode');
        return true;
      },
    );
  });

  it('takes the VXLAN overhead off the pods’ MTU in vxlan mode only', () => {
    assert.equal(VXLAN_OVERHEAD, 50);
    assert.equal(overlayMtu({ routingMode: 'vxlan' }), 1450);
    assert.equal(overlayMtu({ routingMode: 'native' }), undefined);
  });

  it('IPv4 BIG TCP with native routing only, refused with vxlan naming the flag', () => {
    assert.equal(configFromFlags(flags).enableIpv4BigTcp, false);
    assert.equal(
      configFromFlags({ ...flags, routingMode: 'native', enableIpv4BigTcp: true }).enableIpv4BigTcp,
      true,
    );
    assert.throws(
      () => configFromFlags({ ...flags, routingMode: 'vxlan', enableIpv4BigTcp: true }),
      (e: Error & { field?: string }) => {
        assert.match(e.message, /--enable-ipv4-big-tcp needs --routing-mode native/);
        assert.equal(e.field, 'enableIpv4BigTcp');
        return true;
      },
    );
  });
});
