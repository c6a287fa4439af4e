/**
 * The bundled CLI's entry (scripts/build-cli.ts copies this file to <out dir>/src/cli-bundle/cilium-ts.js,
 * beside bundle.cjs). It runs the bundle through V8 with a code cache, so a command does not parse and
 * compile the same JavaScript again at every start (Node 20 has no compile cache of its own). Each
 * command (its first two words) gets its own cache, written when that command first succeeds after a
 * build, atomically (a file being written is never read); a cache V8 rejects (another Node, other
 * flags) is written again. Without a writable directory the bundle runs uncached, as fast as before.
 * A `lab apply` is sent to the lab's controller first (lab-apply-client.ts), imported from the
 * compiled tree beside the bundle's folder: `../cli/` from here and from the copy alike.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { fastLabApply } from '../cli/lab-apply-client.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const bundle = join(dir, 'bundle.cjs');
const cacheDir = join(dir, 'cache');
/** Caches kept at most (one per command: mistyped commands must not fill the disk). */
const MAX_CACHES = 64;

function cacheKey(argv: readonly string[]): string {
  const words: string[] = [];
  for (const a of argv) {
    if (words.length === 2 || !/^[a-z][a-z0-9-]{0,30}$/.test(a)) break;
    words.push(a);
  }
  return words.join('-') || 'default';
}

/** Runs the bundle: the command as the full CLI runs it. */
function runBundle(): void {
  const cacheFile = join(cacheDir, `${cacheKey(process.argv.slice(2))}.bin`);
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // first run of this command
  }
  // As Node wraps a CommonJS module.
  const source = `(function (exports, require, module, __filename, __dirname) { ${readFileSync(bundle, 'utf8').replace(/^#!.*/, '')}\n});`;
  const script = new Script(source, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
    // (No import() in a script compiled here: Node 20 would want --experimental-vm-modules. The build
    // turns every import() of the bundle into a require.)
  });
  if (!cachedData || script.cachedDataRejected) {
    // At a successful exit: by then the command's functions are compiled and go into the cache too.
    process.once('exit', (code) => {
      if (code !== 0) return;
      try {
        mkdirSync(cacheDir, { recursive: true });
        if (readdirSync(cacheDir).length >= MAX_CACHES) return;
        const tmp = `${cacheFile}.${process.pid}`;
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        // a read-only install: run uncached
      }
    });
  }
  const module = { exports: {} };
  (script.runInThisContext() as (...a: unknown[]) => void).call(
    module.exports,
    module.exports,
    createRequire(bundle),
    module,
    bundle,
    dir,
  );
}

// `lab apply` goes to the lab's controller when one listens, without loading the bundle at all.
const applied = await fastLabApply(process.argv.slice(2));
if (applied === undefined) runBundle();
else process.exitCode = applied;
