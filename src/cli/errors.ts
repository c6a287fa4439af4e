/** CLI error handling: one clear line on stderr and a non-zero exit. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function reportAndExit(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`Error: ${msg}\n`);
  if (process.env.CILIUM_TS_DEBUG && err instanceof Error && err.stack)
    process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof CliError ? err.exitCode : 1);
}
