/** Typed errors of the Hubble subsystem. */
import { CiliumTsError } from '../common/errors.js';

export class HubbleError extends CiliumTsError {
  override name = 'HubbleError';
}

/** The event's first byte names no event type the parser knows. */
export class UnknownEventTypeError extends HubbleError {
  override readonly code = 'internal';
  override name = 'UnknownEventTypeError';
  constructor(readonly eventType: number) {
    super(`unknown datapath event type ${eventType}`);
  }
}

/** The event is shorter than its fixed layout. */
export class TruncatedEventError extends HubbleError {
  override readonly code = 'internal';
  override name = 'TruncatedEventError';
  constructor(
    readonly eventType: number,
    readonly length: number,
    readonly expected: number,
  ) {
    super(`datapath event type ${eventType}: ${length} bytes, layout needs ${expected}`);
  }
}

/** The event header carries a layout version this parser does not know. */
export class EventVersionError extends HubbleError {
  override readonly code = 'not-supported';
  override name = 'EventVersionError';
  constructor(readonly version: number) {
    super(`datapath event layout version ${version} is not supported (expected 1)`);
  }
}

/** A flow filter field has a value that cannot be compiled (bad CIDR, bad label selector...). */
export class FilterError extends HubbleError {
  override readonly code = 'invalid-argument';
  override name = 'FilterError';
  constructor(
    override readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A bad argument to the Observer API (e.g. `first` with `follow`). */
export class RequestError extends HubbleError {
  override readonly code = 'invalid-argument';
  override name = 'RequestError';
}
