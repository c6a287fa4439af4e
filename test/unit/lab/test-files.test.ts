/**
 * Tests clean up after themselves and do not depend on files outside the repository: manifests
 * written by the test helper are gone when the test process ends (normally, on an uncaught error or
 * on SIGTERM), and no test names an absolute path next to the repository.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../helpers/paths.js';

const helper = fileURLToPath(new URL('../../helpers/cli.js', import.meta.url));

/** Runs a script that writes two manifests with the helper, prints their paths, then `ending`. */
async function writeManifestsThen(ending: string): Promise<{ files: string[]; code: number | null }> {
  const script = `
    const { manifest } = await import(${JSON.stringify(helper)});
    console.log(JSON.stringify([manifest('a: 1'), manifest('b: 2')]));
    ${ending}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    if (ending.includes('setInterval') && out.includes('\n')) child.kill('SIGTERM');
  });
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  const files = JSON.parse(out.split('\n')[0]!) as string[];
  return { files, code };
}

describe('test hygiene', () => {
  for (const [how, ending] of [
    ['exits normally', ''],
    ['fails with an uncaught error', "throw new Error('test failed');"],
    ['is stopped by SIGTERM', 'setInterval(() => {}, 1000);'],
  ] as const) {
    it(`manifests written by a test are removed when the process ${how}`, async () => {
      const { files, code } = await writeManifestsThen(ending);
      assert.equal(files.length, 2);
      if (how !== 'exits normally') assert.notEqual(code, 0);
      for (const f of files) assert.equal(existsSync(f), false, `${f} left behind`);
      assert.equal(existsSync(dirname(files[0]!)), false, 'and their folder');
    });
  }

  it('no test refers to an absolute path of the repository or of what lies next to it', () => {
    // (a sibling checkout such as ../shared, named by its absolute path): found by what really lies there
    const parent = resolve(repoRoot, '..');
    const neighbours = readdirSync(parent).map((e) => join(parent, e));
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir)) {
        const p = join(dir, e);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(ts|py|sh)$/.test(e)) {
          const text = readFileSync(p, 'utf8');
          for (const n of neighbours) if (text.includes(n)) offenders.push(`${p}: ${n}`);
        }
      }
    };
    walk(join(repoRoot, 'test'));
    assert.deepEqual(offenders, [], 'use paths relative to the repository');
  });
});
