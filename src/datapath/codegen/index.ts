/** Layout code generation from the datapath objects' BTF (see scripts/codegen-datapath.ts). */
import { join } from 'node:path';
import type { GenerateInputs } from './emit.js';

export * from './btf-layout.js';
export { type GenerateInputs, generateLayouts, parseDefines } from './emit.js';

const HEADERS = ['bpf/lib/defs.h', 'bpf/lib/common.h', 'bpf/lib/policy.h', 'bpf/lib/config.h'];

/** The generator's inputs inside a repository checkout. */
export function layoutInputs(root: string): GenerateInputs {
  return {
    abiObject: join(root, 'build/bpf/abi.o'),
    lxcObject: join(root, 'build/bpf/bpf_lxc.o'),
    headers: HEADERS.map((h) => join(root, h)),
    displayNames: { abiObject: 'build/bpf/abi.o', lxcObject: 'build/bpf/bpf_lxc.o', headers: HEADERS },
  };
}
