/**
 * `lab apply` as a request to the lab's controller process (apply-server.ts), the way kubectl sends
 * a manifest to the API server: the command reads the files and sends them; the controller, already
 * running with everything loaded and compiled, applies them under the lab's lock and streams back
 * what the command prints. One JSON line each way per message, over a unix socket in the lab's
 * directory. Kept to node builtins: the installed CLI imports this before its bundle.
 */
import { join } from 'node:path';
import { labDir } from './state.js';

export interface ManifestFile {
  /** As given to -f (`-` for stdin): errors name it. */
  name: string;
  text: string;
}

export interface ApplyRequest {
  files: ManifestFile[];
  /** The command's working directory: pods' processes start there, as when the command applies itself. */
  cwd: string;
}

/** A line the command prints; then, last, how it ends (with the error's message when it failed). */
export type ApplyReply = { out: string } | { exit: number; error?: string; stack?: string };

/** The largest request the controller reads (manifests of a few MiB are already unusual). */
export const MAX_APPLY_REQUEST = 64 << 20;

export function applySocketPath(lab: string): string {
  return join(labDir(lab), 'controller.sock');
}
