import { CiliumTsError, type ErrorCode } from '../common/errors.js';
import { CNI_VERSION, CniErrorCode, type CniErrorObject } from './types.js';

/** A CNI failure, printed by the plugin as a CNI error object. */
export class CniError extends CiliumTsError {
  override readonly name = 'CniError';
  constructor(
    /** The CNI spec's numeric error code (the `code` of the error object). */
    readonly cniCode: number,
    msg: string,
    override readonly details?: string,
  ) {
    super(msg, { code: errorCodeOfCni(cniCode) });
  }

  toObject(cniVersion: string = CNI_VERSION): CniErrorObject {
    const o: CniErrorObject = { cniVersion, code: this.cniCode, msg: this.message };
    if (this.details) o.details = this.details;
    return o;
  }
}

/** The project-wide code of a CNI error code (spec codes below 100, plugin-specific above). */
function errorCodeOfCni(c: number): ErrorCode {
  switch (c) {
    case CniErrorCode.UnknownContainer:
      return 'not-found';
    case CniErrorCode.TryAgainLater:
    case CniErrorCode.PluginNotAvailable:
    case CniErrorCode.AgentUnreachable:
      return 'unavailable';
    case CniErrorCode.AgentTimeout:
      return 'timeout';
    case CniErrorCode.IoFailure:
      return 'internal';
    default:
      return c < 100 ? 'invalid-argument' : 'internal';
  }
}
