/** `hubble list nodes` formatting: upstream's columns, Go-style ages, figures only for connected nodes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatAge, formatNodeList } from '../../../src/cli/hubble.js';

describe('hubble list nodes', () => {
  it('ages read as Go prints a duration truncated to seconds', () => {
    assert.deepEqual([0, 999e6, 45e9, 785.9e9, 3600e9, 7207e9].map(formatAge), [
      '0s',
      '0s',
      '45s',
      '13m5s',
      '1h0m0s',
      '2h0m7s',
    ]);
  });

  it('rows sorted by name; flows/s from seen flows over uptime; N/A for nodes not connected', () => {
    const text = formatNodeList([
      { name: 'node2', state: 'NODE_UNAVAILABLE', uptime_ns: 0, num_flows: 0, max_flows: 0 },
      {
        name: 'node1',
        state: 'NODE_CONNECTED',
        uptime_ns: 200e9,
        seen_flows: 500,
        num_flows: 100,
        max_flows: 4095,
        version: '0.1.0',
        address: '192.168.211.1:4244',
      },
    ]);
    assert.deepEqual(text.split('\n'), [
      'NAME    STATUS        AGE     FLOWS/S   CURRENT/MAX-FLOWS',
      'node1   Connected     3m20s   2.50      100/4095 (2.44%)',
      'node2   Unavailable   N/A     N/A       N/A',
    ]);
    const wide = formatNodeList(
      [{ name: 'n', state: 'NODE_CONNECTED', uptime_ns: 1e9, version: 'v', address: 'a' }],
      true,
    );
    assert.match(wide.split('\n')[0]!, /VERSION +ADDRESS$/);
    assert.match(wide.split('\n')[1]!, / v +a$/);
  });
});
