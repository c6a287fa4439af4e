/**
 * The agent refuses to run in the machine's own network namespace (it would create its router
 * device and routes there) unless explicitly told to.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cliPath } from '../../../src/common/paths.js';

describe('privileged: agent network namespace', () => {
  it('refuses to start in the root network namespace, naming the flag that allows it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cts-rootns-'));
    try {
      const r = spawnSync(
        process.execPath,
        [
          cliPath,
          'agent',
          '--lab',
          'cts-rootns',
          '--node',
          'n1',
          '--run-dir',
          dir,
          '--hubble-port',
          '-1',
          '--metrics-port',
          '-1',
        ],
        { encoding: 'utf8', timeout: 20_000 },
      );
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /refusing to run in the root network namespace/);
      assert.match(r.stderr, /--allow-host-netns/);
      // Nothing was set up: no socket, no bpffs, no state.
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
