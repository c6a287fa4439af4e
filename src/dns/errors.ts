/** Typed errors of the cluster DNS subsystem. */
import { CiliumTsError } from '../common/errors.js';

/** Bad DNS input (records, server options, resolv.conf options); `field` names the field at fault. */
export class DnsArgumentError extends CiliumTsError {
  override readonly code = 'invalid-argument';
  constructor(field: string, message: string) {
    super(`${field}: ${message}`, { field });
  }
}
