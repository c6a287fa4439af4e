/**
 * Errors on the REST API's wire: the project's error codes map to HTTP statuses (as google.rpc.Code
 * maps to HTTP), and an error body `{error, code, field?, details?}` maps back to a code, so a
 * client sees the same code the agent threw.
 */
import { CiliumTsError, type CiliumTsErrorOptions, type ErrorCode, isErrorCode } from '../common/errors.js';
import { EbpfError } from '../ebpf/errors.js';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  'invalid-argument': 400,
  'failed-precondition': 400,
  'not-found': 404,
  'already-exists': 409,
  conflict: 409,
  'too-large': 413,
  'resource-exhausted': 429,
  internal: 500,
  'not-supported': 501,
  unavailable: 503,
  timeout: 504,
};

/** The eBPF library's codes (it imports nothing of the project, so it has its own base class). */
const EBPF_CODES: Readonly<Record<string, ErrorCode>> = {
  EBPF_NOT_SUPPORTED: 'not-supported',
  EBPF_MAP_INCOMPATIBLE: 'failed-precondition',
};

/** The project-wide code of any thrown value (unknown errors are internal). */
export function errorCodeOf(err: unknown): ErrorCode {
  if (err instanceof CiliumTsError) return err.code;
  if (err instanceof EbpfError) return EBPF_CODES[err.code] ?? 'internal';
  return 'internal';
}

/** The code an HTTP status stands for, when the body carries none (e.g. a proxy's answer). */
export function errorCodeOfStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
    case 422:
      return 'invalid-argument';
    case 404:
      return 'not-found';
    case 409:
      return 'conflict';
    case 412:
      return 'failed-precondition';
    case 413:
      return 'too-large';
    case 429:
      return 'resource-exhausted';
    case 501:
      return 'not-supported';
    case 502:
    case 503:
      return 'unavailable';
    case 504:
      return 'timeout';
    default:
      return status >= 400 && status < 500 ? 'invalid-argument' : 'internal';
  }
}

/** JSON body of every non-2xx answer of the agent's REST API. */
export interface ApiErrorBody {
  error: string;
  code: ErrorCode;
  field?: string;
  details?: unknown;
}

export function errorBody(err: unknown): ApiErrorBody {
  const body: ApiErrorBody = {
    error: err instanceof Error ? err.message : String(err),
    code: errorCodeOf(err),
  };
  if (err instanceof CiliumTsError) {
    if (err.field !== undefined) body.field = err.field;
    if (err.details !== undefined) body.details = err.details;
  }
  return body;
}

/** A failure the agent's API answered with (status >= 400): its code, field and details as sent. */
export class AgentApiError extends CiliumTsError {
  constructor(
    readonly status: number,
    message: string,
    details?: unknown,
    options: CiliumTsErrorOptions = {},
  ) {
    super(message, {
      code: errorCodeOfStatus(status),
      ...options,
      ...(details === undefined ? {} : { details }),
    });
  }

  /** From a response: the body's code when it carries one, else the status's. */
  static fromResponse(status: number, body: unknown): AgentApiError {
    const b = (body ?? {}) as Partial<ApiErrorBody>;
    const opts: CiliumTsErrorOptions = {};
    if (isErrorCode(b.code)) opts.code = b.code;
    if (typeof b.field === 'string') opts.field = b.field;
    return new AgentApiError(status, b.error ?? `HTTP ${status}`, b.details, opts);
  }
}

/** The agent's socket cannot be reached or did not answer in time. */
export class AgentUnreachableError extends CiliumTsError {
  constructor(message: string, code: 'unavailable' | 'timeout' = 'unavailable') {
    super(message, { code });
  }
}
