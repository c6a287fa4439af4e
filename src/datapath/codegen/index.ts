/** Layout code generation from the datapath objects' BTF (see scripts/codegen-datapath.ts). */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { GenerateInputs } from './emit.js';

export * from './btf-layout.js';
export {
  buildLayoutModel,
  emitLayouts,
  type GenerateInputs,
  generateLayouts,
  type LayoutModel,
  layoutsOf,
  objectKey,
  parseDefines,
} from './emit.js';

const HEADERS = [
  'bpf/lib/defs.h',
  'bpf/lib/common.h',
  'bpf/lib/policy.h',
  'bpf/lib/config/node.h',
  'bpf/lib/config/sizes.h',
];

/** The datapath objects of a checkout: one per bpf/*.c but the ABI object (bpf/test/ is not datapath). */
export function datapathObjects(root: string): string[] {
  return readdirSync(join(root, 'bpf'))
    .filter((f) => f.endsWith('.c') && f !== 'abi.c')
    .sort()
    .map((f) => `build/bpf/${f.replace(/\.c$/, '.o')}`);
}

/** The generator's inputs inside a repository checkout. */
export function layoutInputs(root: string): GenerateInputs {
  const objects = datapathObjects(root);
  return {
    abiObject: join(root, 'build/bpf/abi.o'),
    objects: objects.map((o) => join(root, o)),
    headers: HEADERS.map((h) => join(root, h)),
    displayNames: { abiObject: 'build/bpf/abi.o', objects, headers: HEADERS },
  };
}
