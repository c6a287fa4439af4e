/** A request to the Hubble UI's backend that cannot be served: bad input (naming the field) or no source. */
import type { ErrorCode } from '../../common/errors.js';
import { HubbleError } from '../errors.js';

export class UiError extends HubbleError {
  override name = 'UiError';
  constructor(message: string, field?: string, code: ErrorCode = 'invalid-argument') {
    super(message, { code, ...(field ? { field } : {}) });
  }
}
