import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root, from the compiled location dist/test/helpers/. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** A compiled BPF object under build/bpf/. */
export function bpfObject(name: string): string {
  return join(repoRoot, 'build', 'bpf', name);
}
