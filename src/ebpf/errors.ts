/**
 * Error classes of the eBPF library. Callers match on `code` or the class, never on message text.
 * Every error says what was being done, and where the kernel gave one, the errno and a hint.
 */
import { errnoName } from './sys/errno.js';

export class EbpfError extends Error {
  readonly code: string = 'EBPF';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A bpf() (or other) syscall failed. */
export class BpfSyscallError extends EbpfError {
  override readonly code = 'EBPF_SYSCALL';
  constructor(
    readonly op: string,
    readonly errno: number,
    readonly hint?: string,
  ) {
    super(`${op}: ${errnoName(errno)}${hint ? ` (${hint})` : ''}`);
  }
}

/** Lookup/delete of a key that is not in the map (ENOENT). */
export class KeyNotFoundError extends BpfSyscallError {
  override readonly code = 'EBPF_SYSCALL';
  readonly notFound = true;
}

/** Update with BPF_NOEXIST of a key that already exists (EEXIST). */
export class KeyExistsError extends BpfSyscallError {
  readonly exists = true;
}

/** The running kernel lacks a feature; tests may skip only on this error. */
export class NotSupportedError extends EbpfError {
  override readonly code = 'EBPF_NOT_SUPPORTED';
  constructor(
    readonly feature: string,
    readonly minimumVersion?: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${feature} not supported by this kernel${minimumVersion ? ` (requires >= ${minimumVersion})` : ''}`,
      options,
    );
  }
}

/** The verifier rejected a program; `log` holds the whole verifier output. */
export class VerifierError extends EbpfError {
  override readonly code = 'EBPF_VERIFIER';
  constructor(
    readonly program: string,
    readonly errno: number,
    readonly log: string,
  ) {
    super(`load program ${program}: ${errnoName(errno)}: ${summarizeVerifierLog(log)}`);
  }
  /** The last lines of the log, which usually name the failing instruction and source line. */
  tail(lines = 20): string {
    return this.log.trimEnd().split('\n').slice(-lines).join('\n');
  }
}

/** The object file is malformed or uses something this loader does not support. */
export class ElfError extends EbpfError {
  override readonly code = 'EBPF_ELF';
}

/** A pinned or replacement map does not match the map the object declares. */
export class MapIncompatibleError extends EbpfError {
  override readonly code = 'EBPF_MAP_INCOMPATIBLE';
}

/**
 * The verifier's last meaningful lines: drop the statistics footer, keep the failing line
 * and the source line comment before it (present when line info was loaded).
 */
export function summarizeVerifierLog(log: string): string {
  const lines = log
    .trimEnd()
    .split('\n')
    .filter(
      (l) =>
        l.trim() !== '' &&
        !/^(processed \d+ insns|verification time|stack depth|max_states_per_insn)/.test(l),
    );
  if (lines.length === 0) return '(no verifier log)';
  const last = lines[lines.length - 1]!;
  const source = [...lines].reverse().find((l) => l.startsWith('; '));
  return source && source !== last ? `${last} [at ${source.slice(2).trim()}]` : last;
}
