/**
 * Builds the Hubble UI's assets into <out dir>/ui/ (the out dir this script is compiled into, so
 * every engineer's own out dir works like dist/): app.js bundled by esbuild from
 * src/hubble/ui/web/main.ts (with elkjs's client), elk-worker.js copied from the elkjs package (the
 * layout runs in a web worker), index.html and app.css as written. Nothing is fetched at run time.
 *
 * Usage: node dist/scripts/build-ui.js
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../../', import.meta.url));
const outDir = fileURLToPath(new URL('../ui/', import.meta.url));
const web = join(root, 'src', 'hubble', 'ui', 'web');
const require = createRequire(join(root, 'package.json'));

mkdirSync(outDir, { recursive: true });
await build({
  entryPoints: [join(web, 'main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  outfile: join(outDir, 'app.js'),
  logLevel: 'warning',
});
copyFileSync(require.resolve('elkjs/lib/elk-worker.min.js'), join(outDir, 'elk-worker.js'));
for (const f of ['index.html', 'app.css']) copyFileSync(join(web, f), join(outDir, f));
console.log(`hubble ui assets in ${outDir}`);
