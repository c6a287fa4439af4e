import { CNI_VERSION, type CniErrorObject } from './types.js';

/** A CNI failure, printed by the plugin as a CNI error object. */
export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
  ) {
    super(msg);
  }

  toObject(cniVersion: string = CNI_VERSION): CniErrorObject {
    const o: CniErrorObject = { cniVersion, code: this.code, msg: this.message };
    if (this.details) o.details = this.details;
    return o;
  }
}
