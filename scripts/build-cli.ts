/**
 * Bundles the compiled CLI (<out dir>/src/cli/main.js, as tsc wrote it) with esbuild into
 * <out dir>/src/cli-bundle/: bundle.cjs, and cilium-ts.js (src/cli/bundle-loader.ts) that runs it with
 * a V8 code cache per command. Node then reads one file at start-up instead of some hundreds of
 * modules (commander, yaml and zod are many small files each) and compiles little of it, which was
 * most of a short command's time. The bundle is the same JavaScript the tests run, only joined: the
 * installed `cilium-ts` (scripts/install-cli.sh) runs it while it is newer than the out dir's last
 * tsc build, else main.js. Packages with native code or files of their own (koffi, grpc, etcd3,
 * pino, ...) stay outside and load from node_modules as before.
 *
 * Usage: node dist/scripts/build-cli.js
 */
import { chmodSync, copyFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const outRoot = fileURLToPath(new URL('../', import.meta.url));
const outDir = join(outRoot, 'src', 'cli-bundle');

/** Pure-JavaScript packages every command, or `lab apply`, loads at start-up. */
const BUNDLED = new Set(['commander', 'yaml', 'zod']);

const externalPackages: Plugin = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => {
      if (a.path.startsWith('node:')) return { path: a.path, external: true };
      const name = a.path.startsWith('@') ? a.path.split('/').slice(0, 2).join('/') : a.path.split('/')[0]!;
      return BUNDLED.has(name) ? undefined : { path: a.path, external: true };
    });
  },
};

/**
 * zod's `z` is a namespace of the whole library (all 60 locales, every schema kind): bundled as is it
 * costs a quarter of `lab apply`'s module loading. The project's modules only call a few of its
 * functions as `z.<name>(...)`, so each `import { z } from 'zod'` gets a `z` of those functions
 * alone, imported by name from zod itself (the same functions, English messages included): esbuild
 * then leaves the rest out. A module importing zod any other way gets zod as it is.
 */
const ZOD_IMPORT = "import { z } from 'zod';";
const zodUsed: Plugin = {
  name: 'zod-used',
  setup(b) {
    b.onResolve({ filter: /^zod$/ }, (a) => {
      if (a.namespace === 'zod-used' || !readFileSync(a.importer, 'utf8').includes(ZOD_IMPORT))
        return undefined;
      return { path: a.importer, namespace: 'zod-used' };
    });
    b.onLoad({ filter: /.*/, namespace: 'zod-used' }, (a) => {
      const source = readFileSync(a.path, 'utf8');
      const names = [
        ...new Set([...source.matchAll(/(?<![\w$.])z\s*\.\s*([A-Za-z_$][\w$]*)/g)].map((m) => m[1]!)),
      ];
      // (Aliased: some names, such as enum, are reserved words.)
      return {
        contents: `import { ${names.map((n) => `${n} as z_${n}`).join(', ')} } from 'zod';\nexport const z = { ${names.map((n) => `${n}: z_${n}`).join(', ')} };\n`,
        resolveDir: outRoot,
      };
    });
  },
};

rmSync(outDir, { recursive: true, force: true });
await build({
  entryPoints: [join(outRoot, 'src', 'cli', 'main.js')],
  bundle: true,
  // One CommonJS file: src/cli/bundle-loader.ts runs it with a V8 code cache, which Node 20 offers for
  // scripts only. Modules the CLI imports lazily stay lazy (esbuild initialises them on import()).
  format: 'cjs',
  // import() becomes a require: a script run through node:vm cannot import() (src/cli/bundle-loader.ts).
  supported: { 'dynamic-import': false },
  platform: 'node',
  target: 'node20',
  outfile: join(outDir, 'bundle.cjs'),
  // Less source to read and parse at every start; names are kept (error classes report theirs).
  minifyWhitespace: true,
  minifySyntax: true,
  // The modules find files from their own location (src/common/paths.ts, the protos): the bundle
  // sits two levels below the out dir, as src/<module>/ does.
  define: { 'import.meta.url': '__bundleUrl' },
  // Strict, as the ES modules it is made of are.
  banner: { js: "'use strict';var __bundleUrl=require('node:url').pathToFileURL(__filename).href;" },
  plugins: [zodUsed, externalPackages],
  logLevel: 'warning',
});
copyFileSync(join(outRoot, 'src', 'cli', 'bundle-loader.js'), join(outDir, 'cilium-ts.js'));
chmodSync(join(outDir, 'cilium-ts.js'), 0o755);
console.log(`cli bundle in ${outDir}`);
