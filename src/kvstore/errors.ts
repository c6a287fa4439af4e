/** Base of kvstore errors; `code` is stable for callers and the API. */
export class KvStoreError extends Error {
  override name = 'KvStoreError';
  readonly code: string = 'KVSTORE';
}

/** A key, prefix or value argument is unusable. */
export class KvArgumentError extends KvStoreError {
  override name = 'KvArgumentError';
  override readonly code = 'KVSTORE_INVALID_ARGUMENT';
  constructor(
    readonly field: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`${field} ${JSON.stringify(value)}: ${reason}`);
  }
}

/** The client (or its store) was closed. */
export class KvClosedError extends KvStoreError {
  override name = 'KvClosedError';
  override readonly code = 'KVSTORE_CLOSED';
  constructor(what = 'kvstore client') {
    super(`${what} is closed`);
  }
}

/** A watch asked for history the store no longer keeps: list again and watch after that revision. */
export class KvCompactedError extends KvStoreError {
  override name = 'KvCompactedError';
  override readonly code = 'KVSTORE_COMPACTED';
  constructor(
    readonly requested: number,
    readonly compactedUpTo: number,
  ) {
    super(`revision ${requested} is compacted (history starts after revision ${compactedUpTo})`);
  }
}

/** A lock could not be taken before its deadline or abort. */
export class KvLockError extends KvStoreError {
  override name = 'KvLockError';
  override readonly code = 'KVSTORE_LOCK';
}
