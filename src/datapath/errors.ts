/** Error classes of the datapath layer (maps, loader). Match on the class or `code`. */

export class DatapathError extends Error {
  readonly code: string = 'DATAPATH';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The compiled datapath object disagrees with the generated layouts (src/datapath/maps/generated):
 * a map's type/sizes/flags or a struct's fields differ. Rebuild and rerun codegen-datapath.
 */
export class LayoutMismatchError extends DatapathError {
  override readonly code = 'DATAPATH_LAYOUT';
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
  override readonly code = 'DATAPATH_MAP_NOT_PINNED';
  constructor(readonly path: string) {
    super(`map ${path} is not pinned (is the agent running on this node?)`);
  }
}

/** Loading or attaching an endpoint's programs failed. */
export class EndpointLoadError extends DatapathError {
  override readonly code = 'DATAPATH_ENDPOINT_LOAD';
  constructor(
    readonly endpointId: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`endpoint ${endpointId}: ${message}`, options);
  }
}
