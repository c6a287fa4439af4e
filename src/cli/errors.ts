/**
 * The CLI's one error convention: commands throw (CliError for usage and input problems, or any
 * project error); main reports one clear line on stderr and exits non-zero.
 */
import { CiliumTsError } from '../common/errors.js';

export class CliError extends CiliumTsError {
  override readonly code = 'invalid-argument';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** The line printed for an error: `Error: <message>`. */
export function formatError(err: unknown): string {
  return `Error: ${err instanceof Error ? err.message : String(err)}`;
}

export function reportAndExit(err: unknown): never {
  process.stderr.write(`${formatError(err)}\n`);
  if (process.env.CILIUM_TS_DEBUG && err instanceof Error && err.stack)
    process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof CliError ? err.exitCode : 1);
}
