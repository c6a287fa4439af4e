/**
 * Which compiled CLI the installed `cilium-ts` runs (scripts/install-cli.sh makes the same choice in
 * shell): the bundle (scripts/build-cli.ts) while it is newer than the out dir's last tsc build, else
 * main.js. Benches that time the command as users start it spawn this.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, distRoot } from '../common/paths.js';

export const cliBundlePath = join(distRoot, 'src', 'cli-bundle', 'cilium-ts.js');

export function installedCliEntry(): string {
  try {
    if (statSync(cliBundlePath).mtimeMs > statSync(join(distRoot, '.tsbuildinfo')).mtimeMs)
      return cliBundlePath;
  } catch {
    // no bundle (or no tsc build info): main.js
  }
  return cliPath;
}
