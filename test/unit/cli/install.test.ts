import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cliPath, projectRoot } from '../../../src/common/paths.js';

const installer = join(projectRoot, 'scripts', 'install-cli.sh');
const dir = mkdtempSync(join(tmpdir(), 'cts-install-'));

/** Runs the installer as scripts/setup.sh does, into a scratch bin directory. */
function install(binDir: string) {
  return spawnSync('bash', [installer], {
    env: { ...process.env, CILIUM_TS_BIN_DIR: binDir, CILIUM_TS_CLI: cliPath },
    encoding: 'utf8',
  });
}

/** A shell whose PATH starts with binDir, as a user's after setup. */
function sh(binDir: string, script: string) {
  return spawnSync('sh', ['-c', script], {
    env: { ...process.env, PATH: `${binDir}:${process.env.PATH}` },
    encoding: 'utf8',
  });
}

describe('setup puts cilium-ts on the PATH (scripts/install-cli.sh)', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('installs a wrapper that command -v finds and that runs the CLI', () => {
    const bin = join(dir, 'bin');
    const r = install(bin);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /installed .*\/cilium-ts -> /);
    assert.equal(sh(bin, 'command -v cilium-ts').stdout.trim(), join(bin, 'cilium-ts'));
    const v = sh(bin, 'cilium-ts --version');
    assert.equal(v.status, 0, v.stderr);
    assert.equal(
      v.stdout,
      `${JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')).version}\n`,
    );
    // Arguments pass through untouched.
    const h = sh(bin, "cilium-ts policy validate '/no such file.yaml'");
    assert.equal(h.status, 1);
    assert.equal(h.stderr, 'Error: /no such file.yaml: no such file\n');
  });

  it('is idempotent and leaves a cilium-ts it did not write alone', () => {
    const bin = join(dir, 'bin');
    const before = statSync(join(bin, 'cilium-ts')).mtimeMs;
    const again = install(bin);
    assert.equal(again.status, 0);
    assert.equal(again.stdout, '');
    assert.equal(statSync(join(bin, 'cilium-ts')).mtimeMs, before);

    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'cilium-ts'), '#!/bin/sh\necho mine\n', { mode: 0o755 });
    const r = install(other);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /was not installed by cilium-ts; leaving it/);
    assert.equal(readFileSync(join(other, 'cilium-ts'), 'utf8'), '#!/bin/sh\necho mine\n');
  });

  it('runs the bundle while it is newer than the last tsc build, else main.js', () => {
    // An out dir whose two entries say which one ran.
    const out = join(dir, 'out');
    mkdirSync(join(out, 'src', 'cli'), { recursive: true });
    mkdirSync(join(out, 'src', 'cli-bundle'), { recursive: true });
    const main = join(out, 'src', 'cli', 'main.js');
    const bundle = join(out, 'src', 'cli-bundle', 'cilium-ts.js');
    const buildInfo = join(out, '.tsbuildinfo');
    writeFileSync(main, "console.log('main', process.argv.slice(2).join(' '));\n");
    writeFileSync(bundle, "console.log('bundle', process.argv.slice(2).join(' '));\n");
    writeFileSync(buildInfo, '{}');
    const bin = join(dir, 'bin-out');
    const r = spawnSync('bash', [installer], {
      env: { ...process.env, CILIUM_TS_BIN_DIR: bin, CILIUM_TS_OUT_DIR: out, CILIUM_TS_CLI: '' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const at = (f: string, s: number) => utimesSync(f, s, s);
    at(buildInfo, 1_000_000);
    at(bundle, 1_000_100);
    assert.equal(sh(bin, "cilium-ts lab 'a b'").stdout, 'bundle lab a b\n');
    // tsc ran after the bundle was made: the bundle may be stale.
    at(buildInfo, 1_000_200);
    assert.equal(sh(bin, 'cilium-ts lab').stdout, 'main lab\n');
    rmSync(bundle);
    assert.equal(sh(bin, 'cilium-ts lab').stdout, 'main lab\n');
  });
});
