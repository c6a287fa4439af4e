import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFqdnCache } from '../../../src/cli/fqdn.js';

describe('fqdn cache list output', () => {
  it('one row per endpoint, name and expiry, IPs joined, the time left with the TTL', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const out = formatFqdnCache(
      [
        {
          endpoint: 12,
          source: 'lookup',
          name: 'www.example.com.',
          lookupTime: '2026-01-01T00:00:00.000Z',
          ips: [
            { ip: '192.0.2.1', ttl: 30, expiresAt: '2026-01-01T00:00:30.000Z' },
            { ip: '192.0.2.2', ttl: 30, expiresAt: '2026-01-01T00:00:30.000Z' },
            { ip: '192.0.2.3', ttl: 300, expiresAt: '2026-01-01T00:05:00.000Z' },
          ],
        },
      ],
      now,
    );
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0]!, /^Endpoint\s+Source\s+FQDN\s+TTL\s+ExpirationTime\s+IPs$/);
    assert.match(
      lines[1]!,
      /^12\s+lookup\s+www\.example\.com\.\s+30 \(30s left\)\s+2026-01-01T00:00:30\.000Z\s+192\.0\.2\.1,192\.0\.2\.2$/,
    );
    assert.match(lines[2]!, /^12\s+lookup\s+www\.example\.com\.\s+300 \(300s left\)\s+\S+\s+192\.0\.2\.3$/);
    assert.equal(lines.length, 3);
  });
});
