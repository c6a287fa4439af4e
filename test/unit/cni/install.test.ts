import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { conflist, install } from '../../../src/cni/install.js';
import { parseNetConf } from '../../../src/cni/validate.js';

describe('cni install', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cni-install-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const base = { name: 'cilium-ts', agentSocket: '/run/cilium-ts/lab/node1/agent.sock' };

  it('builds a configuration list whose plugin configuration the plugin accepts', () => {
    const list = conflist({ ...base, podmanRoot: '/var/lib/containers/storage', mtu: 1450 });
    assert.deepEqual(list, {
      cniVersion: '1.0.0',
      name: 'cilium-ts',
      plugins: [
        {
          type: 'cilium-ts-cni',
          agentSocket: '/run/cilium-ts/lab/node1/agent.sock',
          mtu: 1450,
          podman: { db: '/var/lib/containers/storage/libpod/bolt_state.db' },
        },
      ],
    });
    // What a runtime hands the plugin: the list's name and version with the plugin's fields.
    const conf = { cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] };
    assert.equal(parseNetConf(JSON.stringify(conf), 'ADD').podman?.db, list.plugins[0]!.podman!.db);
  });

  it('refuses bad values, naming the field', () => {
    assert.throws(
      () => conflist({ ...base, agentSocket: 'agent.sock' }),
      /"agentSocket" must be an absolute path/,
    );
    assert.throws(() => conflist({ ...base, name: '-bad name' }), /"name" must start with an alphanumeric/);
    assert.throws(() => conflist({ ...base, mtu: 20 }), /"mtu" must be an integer between 68 and 65535/);
    assert.throws(
      () => conflist({ ...base, podmanRoot: 'storage' }),
      /--podman-root: "storage" is not an absolute path/,
    );
  });

  it('writes the list and links the entry; a missing entry writes nothing', () => {
    const entry = join(dir, 'cilium-ts-cni');
    const o = { ...base, confDir: join(dir, 'net.d'), binDir: join(dir, 'bin'), entry };
    assert.throws(() => install(o), /compiled plugin entry .* is missing/);
    assert.equal(existsSync(join(dir, 'net.d', 'cilium-ts.conflist')), false);
    writeFileSync(entry, '#!/bin/sh\n', { mode: 0o755 });
    const r = install(o);
    assert.equal(r.conflist, join(dir, 'net.d', 'cilium-ts.conflist'));
    assert.deepEqual(JSON.parse(readFileSync(r.conflist, 'utf8')), conflist(base));
    assert.equal(readlinkSync(r.plugin), entry);
    // Again: replaced in place.
    assert.deepEqual(install(o), r);
    assert.equal(readlinkSync(r.plugin), entry);
  });
});
