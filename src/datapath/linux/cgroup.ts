/** Where cgroup v2 is mounted: socket-LB attaches to a directory of that hierarchy. */
import { readFileSync } from 'node:fs';
import { DatapathError } from '../errors.js';

/** The cgroup2 mount point: /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid
 * one (cgroup v1 controllers beside it). */
export function cgroup2Mount(mounts = readFileSync('/proc/mounts', 'utf8')): string {
  const m = mounts
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[2] === 'cgroup2');
  if (!m?.[1])
    throw new DatapathError('cgroup2 is not mounted (socket-LB needs a cgroup v2 directory)', {
      code: 'failed-precondition',
    });
  return m[1];
}
