/** Error classes of the datapath layer (maps, loader). Match on the class or `code`. */
import { CiliumTsError } from '../common/errors.js';

export class DatapathError extends CiliumTsError {}

/**
 * The compiled datapath object disagrees with the generated layouts (src/datapath/maps/generated):
 * a map's type/sizes/flags or a struct's fields differ. Rebuild and rerun codegen-datapath.
 */
export class LayoutMismatchError extends DatapathError {
  override readonly code = 'failed-precondition';
  constructor(
    readonly object: string,
    readonly differences: readonly string[],
  ) {
    super(
      `${object} does not match the generated layouts (run \`node dist/scripts/codegen-datapath.js\` after \`make -C bpf\`): ${differences.join('; ')}`,
    );
  }
}

/** A pinned map is missing and creation was not allowed (e.g. a read-only CLI on a node without an agent). */
export class MapNotPinnedError extends DatapathError {
  override readonly code = 'unavailable';
  constructor(readonly path: string) {
    super(`map ${path} is not pinned (is the agent running on this node?)`);
  }
}

/** Loading or attaching an endpoint's programs failed. */
export class EndpointLoadError extends DatapathError {
  constructor(
    readonly endpointId: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`endpoint ${endpointId}: ${message}`, options);
  }
}

/** A load-balancer map entry the caller asked for is invalid; `field` names what is wrong. */
export class LbMapError extends DatapathError {
  override readonly code = 'invalid-argument';
  constructor(message: string, field: string) {
    super(message, { field });
  }
}
