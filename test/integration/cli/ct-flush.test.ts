/**
 * `cilium-ts bpf ct flush` end to end: the CLI process picks the node with --lab/--node, calls the
 * typed API over the node's agent socket, and the conntrack routes empty real CT maps.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Router } from '../../../src/agent/http.js';
import { cliPath } from '../../../src/common/paths.js';
import { ConntrackGC, registerConntrackRoutes } from '../../../src/conntrack/index.js';
import { layouts } from '../../../src/datapath/index.js';
import { BpfMap, MapType } from '../../../src/ebpf/index.js';

function ctMap(name: string): BpfMap {
  return BpfMap.create({
    name,
    type: MapType.LRU_HASH,
    keySize: layouts.ctKey.size,
    valueSize: layouts.ctEntry.size,
    maxEntries: 64,
    flags: 0,
    pinning: 'none',
  });
}

function fill(m: BpfMap, n: number): void {
  for (let i = 0; i < n; i++) {
    const k = new Uint8Array(layouts.ctKey.size);
    k[0] = i + 1;
    m.update(k, new Uint8Array(layouts.ctEntry.size));
  }
}

const count = (m: BpfMap) => [...m.keys()].length;

describe('privileged: cilium-ts bpf ct flush', () => {
  const root = mkdtempSync(join(tmpdir(), 'cts-ctflush-'));
  let ct4: BpfMap;
  let ct6: BpfMap;
  let server: Server;

  /** The CLI as a user runs it, with the run root of this test. */
  const cli = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cliPath, '--lab', 'ctlab', '--node', 'n1', ...args], {
        env: { ...process.env, CILIUM_TS_RUN_ROOT: root },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  before(async () => {
    ct4 = ctMap('cts_ct4_cli');
    ct6 = ctMap('cts_ct6_cli');
    const router = new Router();
    registerConntrackRoutes(router, new ConntrackGC({ maps: { ct4, ct6 } }));
    mkdirSync(join(root, 'ctlab', 'n1'), { recursive: true });
    server = createServer((req, res) => void router.handle(req, res));
    await new Promise<void>((r) => server.listen(join(root, 'ctlab', 'n1', 'agent.sock'), r));
  });

  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    ct4.close();
    ct6.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('flushes one family, then every entry, and refuses an unknown family', async () => {
    fill(ct4, 3);
    fill(ct6, 2);
    const v6 = await cli('bpf', 'ct', 'flush', '--family', 'ipv6');
    assert.equal(v6.code, 0, v6.stderr);
    assert.equal(v6.stdout, 'Flushed 2 entries from cilium_ct6_global\n');
    assert.deepEqual([count(ct4), count(ct6)], [3, 0]);

    fill(ct6, 1);
    const all = await cli('bpf', 'ct', 'flush', '-o', 'json');
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(JSON.parse(all.stdout), { deleted: 4, families: { ipv4: 3, ipv6: 1 } });
    assert.deepEqual([count(ct4), count(ct6)], [0, 0]);

    const bad = await cli('bpf', 'ct', 'flush', '--family', 'ipv5');
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'Error: --family: "ipv5" (ipv4|ipv6)\n');
  });
});
