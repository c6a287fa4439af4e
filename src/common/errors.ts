/**
 * The project's base error. Every error class of cilium-ts extends CiliumTsError and carries a stable
 * `code` from a small closed set, so callers (and the REST API, which maps it to an HTTP status)
 * decide on the code or the class, never on message text. src/ebpf is a standalone library with its
 * own base class (EbpfError); the API maps its codes (src/api/errors.ts).
 */

/**
 * What kind of failure it is, in the spirit of google.rpc.Code:
 * - invalid-argument: the input is wrong (a field, a flag, a manifest); `field` names it when known
 * - failed-precondition: the input is fine but the system is not in a state to accept it
 * - not-found / already-exists: the named thing is missing / is there already
 * - conflict: a concurrent or contradictory change (e.g. an address held by someone else)
 * - resource-exhausted: a pool, map or identity space is full
 * - too-large: a request body or file over its limit
 * - not-supported: a feature this build or kernel does not have
 * - unavailable: a dependency (agent, socket, pinned map) cannot be reached; retrying may help
 * - timeout: no answer within the deadline
 * - internal: a bug or an unexpected failure of the system underneath
 */
export const ERROR_CODES = [
  'invalid-argument',
  'failed-precondition',
  'not-found',
  'already-exists',
  'conflict',
  'resource-exhausted',
  'too-large',
  'not-supported',
  'unavailable',
  'timeout',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === 'string' && (ERROR_CODES as readonly string[]).includes(v);
}

export interface CiliumTsErrorOptions {
  /** Overrides the class's default code. */
  code?: ErrorCode;
  /** The input field at fault, as a path (`spec.ingress[0].toPorts`, `--node`, `labels.app`). */
  field?: string;
  /** Structured data for callers (e.g. every validation issue); sent as `details` by the API. */
  details?: unknown;
  cause?: unknown;
}

export class CiliumTsError extends Error {
  /** Subclasses set their default with `override readonly code = '...'`. */
  readonly code: ErrorCode;
  readonly field?: string;
  readonly details?: unknown;

  constructor(message: string, options: CiliumTsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'internal';
    if (options.field !== undefined) this.field = options.field;
    if (options.details !== undefined) this.details = options.details;
  }
}
