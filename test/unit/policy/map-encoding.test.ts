import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFS, policyEntry, policyKey } from '../../../src/datapath/maps/generated/layouts.js';
import { encodeBatch, encodePolicyKey, policyFlags } from '../../../src/datapath/maps/policy.js';
import type { MapEntry } from '../../../src/policy/mapstate.js';

describe('policy map batch encoding', () => {
  it('writes the same bytes as the per-entry codecs', () => {
    const entries: MapEntry[] = [
      {
        key: { identity: 0, egress: 0, protocol: 0, dport: 0, prefixLen: 40 },
        entry: { deny: false, proxyPort: 0, ruleCookie: 0 },
      },
      {
        key: { identity: 0x01020304, egress: 1, protocol: 6, dport: 8080, prefixLen: 64 },
        entry: { deny: false, proxyPort: 10080, ruleCookie: 7 },
      },
      {
        key: { identity: 16777217, egress: 0, protocol: 17, dport: 0x1234, prefixLen: 55 },
        entry: { deny: true, proxyPort: 0, ruleCookie: 0xfffffffe },
      },
      {
        key: { identity: 42, egress: 1, protocol: 6, dport: 443, prefixLen: 48 },
        entry: { deny: false, proxyPort: 0, ruleCookie: 3 },
      },
    ];
    const enforcement = { ingressEnforced: false, egressEnforced: true };
    const keys = new Uint8Array(entries.length * policyKey.size);
    const values = new Uint8Array(entries.length * policyEntry.size);
    encodeBatch(entries, keys, values, enforcement);
    entries.forEach(({ key, entry }, i) => {
      const k = keys.subarray(i * policyKey.size, (i + 1) * policyKey.size);
      assert.deepEqual(k, encodePolicyKey(key), `key ${i}`);
      const v = policyEntry.encode({
        proxyPort: entry.proxyPort,
        flags: policyFlags(key, entry, enforcement),
        authType: 0,
        ruleCookie: entry.ruleCookie,
      });
      assert.deepEqual(values.subarray(i * policyEntry.size, (i + 1) * policyEntry.size), v, `value ${i}`);
    });
    assert.equal(policyEntry.decode(values, 0).flags, DEFS.POLICY_F_UNENFORCED);
  });

  it('refuses a bad prefix length', () => {
    const bad: MapEntry[] = [
      {
        key: { identity: 1, egress: 0, protocol: 6, dport: 80, prefixLen: 65 },
        entry: { deny: false, proxyPort: 0, ruleCookie: 1 },
      },
    ];
    assert.throws(() => encodeBatch(bad, new Uint8Array(12), new Uint8Array(8)), /bad prefixLen 65/);
  });
});
