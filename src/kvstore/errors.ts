import { CiliumTsError } from '../common/errors.js';

/** Base of kvstore errors. */
export class KvStoreError extends CiliumTsError {}

/** A key, prefix, value or option argument is unusable; `field` names it. */
export class KvArgumentError extends KvStoreError {
  override readonly code = 'invalid-argument';
  constructor(field: string, value: unknown, reason: string) {
    super(`${field} ${JSON.stringify(value)}: ${reason}`, { field });
  }
}

/** The client (or its store) was closed. */
export class KvClosedError extends KvStoreError {
  override readonly code = 'unavailable';
  constructor(what = 'kvstore client') {
    super(`${what} is closed`);
  }
}

/** A watch asked for history the store no longer keeps: list again and watch after that revision. */
export class KvCompactedError extends KvStoreError {
  override readonly code = 'failed-precondition';
  constructor(
    readonly requested: number,
    readonly compactedUpTo: number,
  ) {
    super(`revision ${requested} is compacted (history starts after revision ${compactedUpTo})`);
  }
}

/** A lock could not be taken before its caller gave up. */
export class KvLockError extends KvStoreError {
  override readonly code = 'timeout';
}
