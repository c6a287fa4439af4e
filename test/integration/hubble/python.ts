/**
 * Playing an upstream client: Debian's python3-grpcio + python3-grpc-tools compile the UPSTREAM
 * reference protos (shared/reference/hubble-proto, next to the repository) into Python modules.
 * Requires: apt-get install -y python3-grpcio python3-grpc-tools (uses /usr/bin/python3).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../helpers/paths.js';

export const PY = '/usr/bin/python3';

export const REFERENCE_PROTOS =
  process.env.HUBBLE_REFERENCE_PROTOS ??
  join(repoRoot, '..', 'shared', 'reference', 'hubble-proto', 'api', 'v1');

/** Compiles the reference protos (`flow/flow.proto`, ...) into `dir`, created if missing. */
export function compileUpstreamProtos(dir: string, protos: readonly string[]): void {
  assert.ok(existsSync(PY), `${PY} missing (apt-get install -y python3-grpcio python3-grpc-tools)`);
  for (const p of protos)
    assert.ok(
      existsSync(join(REFERENCE_PROTOS, p)),
      `upstream reference proto missing: ${REFERENCE_PROTOS}/${p}`,
    );
  mkdirSync(dir, { recursive: true });
  const include = execFileSync(PY, [
    '-c',
    'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))',
  ])
    .toString()
    .trim();
  execFileSync(PY, [
    '-m',
    'grpc_tools.protoc',
    `-I${REFERENCE_PROTOS}`,
    `-I${include}`,
    `--python_out=${dir}`,
    `--grpc_python_out=${dir}`,
    ...protos,
  ]);
}
