/**
 * Generates src/datapath/maps/generated/layouts.ts from the compiled datapath objects' BTF
 * (build/bpf/abi.o for the structs, every build/bpf/<name>.o of a bpf/<name>.c for maps, programs
 * and load-time constants) and the integer #defines of the datapath headers.
 *
 *   node dist/scripts/codegen-datapath.js           write the file
 *   node dist/scripts/codegen-datapath.js --check   exit 1 if the committed file is stale
 *   --file PATH                                     compare/write PATH instead (tests)
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateLayouts, layoutInputs } from '../src/datapath/codegen/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const check = process.argv.includes('--check');
const inputs = layoutInputs(root);
const fileArg = process.argv.indexOf('--file');
const target =
  fileArg > 0 && process.argv[fileArg + 1]
    ? process.argv[fileArg + 1]!
    : join(root, 'src/datapath/maps/generated/layouts.ts');
for (const f of [inputs.abiObject, ...inputs.objects]) {
  if (!existsSync(f)) {
    process.stderr.write(`codegen-datapath: ${f} is missing; run \`make -C bpf\` first\n`);
    process.exit(2);
  }
}
const text = generateLayouts(inputs);
if (check) {
  const current = existsSync(target) ? readFileSync(target, 'utf8') : '';
  if (current !== text) {
    process.stderr.write(
      `codegen-datapath: ${target} is out of date with the compiled datapath;\n` +
        'run `node dist/scripts/codegen-datapath.js` and commit the result\n',
    );
    process.exit(1);
  }
  process.stdout.write('codegen-datapath: layouts.ts is up to date\n');
} else {
  writeFileSync(target, text);
  process.stdout.write(`codegen-datapath: wrote ${target}\n`);
}
