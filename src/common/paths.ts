/** Where the installed project's files are, from the compiled location dist/src/common/. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The compiled tree this file runs from (dist/ normally; another out dir works the same). */
export const distRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A compiled BPF object under build/bpf/ (e.g. "bpf_lxc.o", "test/port_filter.o").
 * CILIUM_TS_BPF_DIR points at another object folder (`make -C bpf OUT=...`), so a datapath change can be
 * built and tried beside the installed objects.
 */
export function bpfObjectPath(name: string): string {
  return join(process.env.CILIUM_TS_BPF_DIR || join(projectRoot, 'build', 'bpf'), name);
}

/** The CLI entry point, for spawning agents and workloads. */
export const cliPath = join(distRoot, 'src', 'cli', 'main.js');

/** Root of runtime state for labs and agents: /run/cilium-ts/<lab>/<node>/ */
export const runRoot = process.env.CILIUM_TS_RUN_ROOT ?? '/run/cilium-ts';
