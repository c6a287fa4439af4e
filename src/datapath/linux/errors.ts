import { CiliumTsError } from '../../common/errors.js';

/** A spawned Linux command (ip, nsenter, tee, ...) failed. */
export class LinuxCommandError extends CiliumTsError {
  override readonly name = 'LinuxCommandError';
  constructor(
    /** The argv that was run (argv[0] is the program). */
    readonly command: readonly string[],
    /** Exit code, or null when killed by a signal / failed to spawn. */
    readonly exitCode: number | null,
    /** Trimmed standard error of the command. */
    readonly stderr: string,
    /** For `-batch` runs: the batch text that was fed on stdin. */
    readonly input?: string,
  ) {
    super(`${command.join(' ')}: exit ${exitCode ?? 'signal'}${stderr ? `: ${firstLines(stderr)}` : ''}`);
  }

  /** True when the failure is "the device/namespace/route does not exist". */
  get isNotFound(): boolean {
    return /Cannot find device|does not exist|No such file or directory|No such process|Cannot open network namespace/i.test(
      this.stderr,
    );
  }

  /** True when the failure is "already exists". */
  get isExists(): boolean {
    return /File exists|already exists/i.test(this.stderr);
  }
}

function firstLines(s: string): string {
  const lines = s.trim().split('\n');
  return lines.length > 4 ? `${lines.slice(0, 4).join(' | ')} | ...` : lines.join(' | ');
}
