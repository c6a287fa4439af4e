/** Typed errors of the conntrack subsystem. */
import { CiliumTsError } from '../common/errors.js';

/** A bad argument to a conntrack operation (flush filter, endpoint IPs, interval); `field` names it. */
export class ConntrackArgumentError extends CiliumTsError {
  override readonly code = 'invalid-argument';
  constructor(field: string, message: string) {
    super(`${field}: ${message}`, { field });
  }
}
