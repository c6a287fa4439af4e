/**
 * Pod metadata for containers podman runs: podman 4 passes a plugin only the container's ID and
 * name (CNI_ARGS K8S_POD_NAME), not its labels, so the agent reads them from podman's own state,
 * the bolt database under podman's storage root (bucket "ctr", container ID, key "config": the
 * container's configuration as JSON, labels from `podman run --label` included).
 */
import { BoltDb } from './boltdb.js';
import { CniError } from './errors.js';

/** Plugin-specific code: the runtime's metadata for the container could not be read. */
export const CNI_ERR_RUNTIME_METADATA = 107;

/** The network configuration's "podman" field. */
export interface PodmanConf {
  /** Path of podman's state database (<storage root>/libpod/bolt_state.db). */
  db: string;
}

export interface PodmanContainer {
  name: string;
  labels: Record<string, string>;
}

/** The container's name and labels as podman recorded them; a CniError when it cannot say. */
export function podmanContainer(conf: PodmanConf, containerId: string): PodmanContainer {
  let raw: Buffer | undefined;
  try {
    raw = BoltDb.open(conf.db).get(['ctr', containerId, 'config']);
  } catch (e) {
    throw new CniError(
      CNI_ERR_RUNTIME_METADATA,
      'cannot read podman state',
      `${conf.db}: ${(e as Error).message}`,
    );
  }
  if (!raw)
    throw new CniError(
      CNI_ERR_RUNTIME_METADATA,
      'container unknown to podman',
      `${containerId} not in ${conf.db}`,
    );
  let cfg: { name?: unknown; labels?: unknown };
  try {
    cfg = JSON.parse(raw.toString('utf8')) as typeof cfg;
  } catch (e) {
    throw new CniError(CNI_ERR_RUNTIME_METADATA, 'podman container config is not JSON', (e as Error).message);
  }
  const labels: Record<string, string> = {};
  if (cfg.labels && typeof cfg.labels === 'object') {
    for (const [k, v] of Object.entries(cfg.labels as Record<string, unknown>))
      if (typeof v === 'string') labels[k] = v;
  }
  return { name: typeof cfg.name === 'string' ? cfg.name : containerId.slice(0, 12), labels };
}
