/** Errors of the service model and the load-balancer state. */
import { CiliumTsError, type CiliumTsErrorOptions } from '../common/errors.js';

/** One problem of a Service or EndpointSlice, at a field path such as `spec.ports[1].nodePort`. */
export interface ServiceIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * A Service or EndpointSlice the API server would refuse. The message lists every issue as
 * `<Kind> <namespace>/<name>: <path>: <message>`; `field` is the first issue's path and `details`
 * holds them all.
 */
export class ServiceValidationError extends CiliumTsError {
  override readonly code = 'invalid-argument';
  constructor(
    readonly what: string,
    readonly issues: readonly ServiceIssue[],
  ) {
    super(issues.map((i) => `${what}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`).join('\n'), {
      ...(issues[0] ? { field: issues[0].path } : {}),
      details: issues,
    });
  }
}

/** Load-balancer configuration and numbering errors (bad Maglev settings, an ID space used up). */
export class LbError extends CiliumTsError {
  constructor(message: string, options: CiliumTsErrorOptions = {}) {
    super(message, { code: 'invalid-argument', ...options });
  }
}
