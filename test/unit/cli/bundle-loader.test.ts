/**
 * The bundled CLI's entry (src/cli/bundle-loader.ts): it runs bundle.cjs beside it as Node runs a
 * CommonJS module, with a V8 code cache per command written after the command's first successful run.
 * Here with a small bundle of our own in a scratch folder, run as real processes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const loader = fileURLToPath(new URL('../../../src/cli/bundle-loader.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cts-bundle-loader-'));
const entry = join(dir, 'cilium-ts.js');
copyFileSync(loader, entry);
// A package.json of type module, as the project's: the copied entry is an ES module.
writeFileSync(join(dir, 'package.json'), '{"type": "module"}');
writeFileSync(
  join(dir, 'bundle.cjs'),
  `#!/usr/bin/env node
'use strict';
const { basename } = require('node:path');
const args = process.argv.slice(2);
if (args[0] === 'fail') { process.stderr.write('Error: failed\\n'); process.exit(1); }
setImmediate(() => {
  const os = require('node:os');
  process.stdout.write(\`\${basename(__filename)} \${typeof module.exports} \${args.join(' ')} \${typeof os.tmpdir}\\n\`);
});
`,
);

function run(...args: string[]) {
  return spawnSync(process.execPath, [entry, ...args], { encoding: 'utf8' });
}

describe('bundled CLI entry (src/cli/bundle-loader.ts)', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the bundle as a CommonJS module with its arguments', () => {
    const r = run('lab', 'apply', '-f', 'x.yaml');
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
    assert.equal(r.stdout, 'bundle.cjs object lab apply -f x.yaml function\n');
  });

  it("writes a command's code cache after its first success and runs from it after", () => {
    assert.ok(existsSync(join(dir, 'cache', 'lab-apply.bin')));
    const again = run('lab', 'apply', '-f', 'y.yaml');
    assert.equal(again.stdout, 'bundle.cjs object lab apply -f y.yaml function\n');
    assert.equal(again.stderr, '');
  });

  it('writes no cache for a failed command and passes its exit code on', () => {
    const r = run('fail');
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'Error: failed\n');
    assert.deepEqual(readdirSync(join(dir, 'cache')).sort(), ['lab-apply.bin']);
  });

  it('writes the cache again when V8 rejects it', () => {
    writeFileSync(join(dir, 'cache', 'lab-apply.bin'), 'not a code cache');
    const r = run('lab', 'apply');
    assert.equal(r.stdout, 'bundle.cjs object lab apply function\n');
    const cache = readFileSync(join(dir, 'cache', 'lab-apply.bin'));
    assert.notEqual(cache.toString('latin1'), 'not a code cache');
    assert.ok(cache.length > 100, `a code cache, ${cache.length} bytes`);
  });
});
