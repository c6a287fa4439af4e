import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildFilters } from '../../../src/cli/hubble.js';

const e = (flag: string, value: string, negated = false) => ({ flag, value, negated });

describe('hubble observe: IP and label flags', () => {
  it('--ip/--label match either side; --from-*/--to-* one side', () => {
    assert.deepEqual(buildFilters([e('ip', '10.0.0.1'), e('label', 'app=a')]).whitelist, [
      { source_ip: ['10.0.0.1'], source_label: ['app=a'] },
      { destination_ip: ['10.0.0.1'], destination_label: ['app=a'] },
    ]);
    assert.deepEqual(buildFilters([e('from-ip', '10.0.0.0/8'), e('to-label', 'app=b')]).whitelist, [
      { source_ip: ['10.0.0.0/8'], destination_label: ['app=b'] },
    ]);
    assert.deepEqual(buildFilters([e('to-ip', 'fd00::1'), e('from-label', 'app=c', true)]), {
      whitelist: [{ destination_ip: ['fd00::1'] }],
      blacklist: [{ source_label: ['app=c'] }],
    });
  });
});
