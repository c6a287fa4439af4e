/** Errors of the lab: a bad request (a field, a flag) or a lab not in a state to do it. */
import { CiliumTsError, type CiliumTsErrorOptions } from '../common/errors.js';

export class LabError extends CiliumTsError {
  constructor(message: string, options: CiliumTsErrorOptions = {}) {
    super(message, { code: 'failed-precondition', ...options });
  }
}
