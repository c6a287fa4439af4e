/**
 * The bundled CLI's entry (src/cli/bundle-loader.ts): it runs bundle.cjs beside it as Node runs a
 * CommonJS module, with a V8 code cache per command written after the command's first successful run.
 * Here with a small bundle of our own in a scratch folder, run as real processes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../../../src/', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'cts-bundle-loader-'));
// As in the out dir: the entry in cli-bundle/, the compiled modules it imports beside that folder.
const dir = join(root, 'cli-bundle');
mkdirSync(dir);
for (const m of ['cli', 'lab', 'common']) symlinkSync(join(src, m), join(root, m));
const entry = join(dir, 'cilium-ts.js');
copyFileSync(join(src, 'cli', 'bundle-loader.js'), entry);
// A package.json of type module, as the project's: the copied entry is an ES module.
writeFileSync(join(root, 'package.json'), '{"type": "module"}');
// Labs (whose controllers `lab apply` goes to) in a scratch run root.
const runRoot = join(root, 'run');
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
  return spawnSync(process.execPath, [entry, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CILIUM_TS_RUN_ROOT: runRoot, CILIUM_TS_LAB: 'bl' },
  });
}

describe('bundled CLI entry (src/cli/bundle-loader.ts)', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

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

  it("sends `lab apply` to the lab's controller when one listens, without running the bundle", async () => {
    mkdirSync(join(runRoot, 'bl'), { recursive: true });
    const got: string[] = [];
    // the controller's side of the protocol (src/lab/apply-protocol.ts), answering what it was sent
    const server = createServer((sock) => {
      sock.setEncoding('utf8').once('data', (d: string) => {
        got.push(d);
        const req = JSON.parse(d) as { files: { name: string; text: string }[] };
        sock.end(
          `${JSON.stringify({ out: `applied ${req.files.map((f) => f.text).join(',')}` })}\n${JSON.stringify({ exit: 3, error: 'half' })}\n`,
        );
      });
    });
    await new Promise<void>((r) => server.listen(join(runRoot, 'bl', 'controller.sock'), r));
    writeFileSync(join(root, 'm.yaml'), 'kind: Pod');
    const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const c = spawn(process.execPath, [entry, 'lab', 'apply', '-f', join(root, 'm.yaml')], {
        env: { ...process.env, CILIUM_TS_RUN_ROOT: runRoot, CILIUM_TS_LAB: 'bl' },
      });
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      c.on('close', (code) => resolve({ code, out, err }));
    });
    server.close();
    assert.deepEqual(r, { code: 3, out: 'applied kind: Pod\n', err: 'Error: half\n' });
    assert.equal(JSON.parse(got[0]!).cwd, process.cwd());
  });
});
