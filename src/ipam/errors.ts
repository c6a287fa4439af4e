import { CiliumTsError } from '../common/errors.js';

/** Base of IPAM errors. */
export class IpamError extends CiliumTsError {
  override name = 'IpamError';
}

/** A CIDR or address could not be parsed or does not fit its role. */
export class InvalidCidrError extends IpamError {
  override name = 'InvalidCidrError';
  override readonly code = 'invalid-argument';
  constructor(
    readonly value: string,
    reason: string,
  ) {
    super(`invalid CIDR/address ${JSON.stringify(value)}: ${reason}`);
  }
}

/** No free address (pod IPs) or no free node CIDR left in a pool. */
export class PoolExhaustedError extends IpamError {
  override name = 'PoolExhaustedError';
  override readonly code = 'resource-exhausted';
  constructor(
    readonly pool: string,
    readonly family: 4 | 6,
    readonly capacity: bigint,
    what: 'addresses' | 'node CIDRs' = 'addresses',
  ) {
    super(`IPv${family} pool ${pool} exhausted: all ${capacity} ${what} are allocated`);
  }
}

/** A specific address was requested but is taken or outside the pool. */
export class AddressConflictError extends IpamError {
  override name = 'AddressConflictError';
  override readonly code = 'conflict';
  constructor(
    readonly ip: string,
    reason: string,
  ) {
    super(`cannot allocate ${ip}: ${reason}`);
  }
}

/** Exported state does not match the configured pool or is malformed. */
export class IpamStateError extends IpamError {
  override name = 'IpamStateError';
  override readonly code = 'failed-precondition';
}
