/** Typed errors of the conntrack subsystem. */

/** A bad argument to a conntrack operation (flush filter, endpoint IPs); `field` names it. */
export class ConntrackArgumentError extends Error {
  override readonly name = 'ConntrackArgumentError';
  readonly code = 'invalid-argument';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}
