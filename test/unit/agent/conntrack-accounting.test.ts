/**
 * `--bpf-conntrack-accounting` (upstream's flag of the same name): off by default; on, the node's
 * datapath objects get CT_ACCOUNTING = 1 (the counting itself: test/integration/datapath/prog-test-run).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeDatapathConfig } from '../../../src/agent/datapath.js';
import { configFromFlags } from '../../../src/agent/main.js';
import { nodeConstants } from '../../../src/datapath/loader.js';
import { agentFlags } from './flags.js';

describe('agent --bpf-conntrack-accounting', () => {
  it('is off by default and reaches the datapath constants when given', () => {
    const flags = agentFlags({ podCidr: '10.200.0.0/24', routingMode: 'native' });
    const off = configFromFlags(flags);
    assert.equal(off.conntrackAccounting, false);
    assert.equal(nodeConstants(nodeDatapathConfig(off)).CT_ACCOUNTING, 0);
    const on = configFromFlags({ ...flags, bpfConntrackAccounting: true });
    assert.equal(on.conntrackAccounting, true);
    assert.equal(nodeConstants(nodeDatapathConfig(on)).CT_ACCOUNTING, 1);
  });
});
