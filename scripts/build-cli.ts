/**
 * Bundles the compiled CLI (<out dir>/src/cli/main.js, as tsc wrote it) with esbuild into
 * <out dir>/src/cli-bundle/: cilium-ts.js and the chunks its commands load lazily. Node then reads a
 * few files at start-up instead of some hundreds of modules (commander, yaml and zod are many small
 * files each), which is most of a short command's time. The bundle is the same JavaScript the tests
 * run, only joined: the installed `cilium-ts` (scripts/install-cli.sh) runs it while it is newer
 * than the out dir's last tsc build, else main.js. Packages with native code or files of their own
 * (koffi, grpc, etcd3, pino, ...) stay outside and load from node_modules as before.
 *
 * The folder sits two levels below the out dir, as src/<module>/ does, so the paths the code finds
 * from its own location (src/common/paths.ts, the protos) are the same.
 *
 * Usage: node dist/scripts/build-cli.js
 */
import { rmSync } from 'node:fs';
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

rmSync(outDir, { recursive: true, force: true });
await build({
  entryPoints: { 'cilium-ts': join(outRoot, 'src', 'cli', 'main.js') },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: outDir,
  chunkNames: '[name]-[hash]',
  // The CommonJS packages (commander, yaml) require Node's built-ins.
  banner: {
    js: "import { createRequire as __cliRequire } from 'node:module'; const require = __cliRequire(import.meta.url);",
  },
  plugins: [externalPackages],
  logLevel: 'warning',
});
console.log(`cli bundle in ${outDir}`);
