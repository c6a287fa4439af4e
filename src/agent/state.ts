/**
 * The agent's persisted state: one JSON file per cell under the state dir, each written
 * atomically. A cell asks for its own file by name; nothing else reads it.
 *
 * A save resolves once its file is renamed into place, which is what a restarted agent reads; the
 * fsyncs (file, directory) follow in the background, shared by the saves made meanwhile, so a CNI
 * ADD does not wait for the disk. Only a crash of the machine itself can lose the last saves, and
 * it takes the pods' namespaces and the pinned programs with it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { JsonStateFile } from '../ipam/index.js';

export class AgentStateStore {
  private readonly files = new Map<string, JsonStateFile<unknown>>();

  constructor(readonly dir: string) {}

  /** The file `<dir>/<name>.json`, created on first save. */
  file<T>(name: string): JsonStateFile<T> {
    let f = this.files.get(name);
    if (!f) {
      mkdirSync(this.dir, { recursive: true });
      f = new JsonStateFile(join(this.dir, `${name}.json`), { syncLater: true });
      this.files.set(name, f);
    }
    return f as JsonStateFile<T>;
  }

  /** Resolves once every file saved so far is on disk. */
  async syncs(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.syncs()));
  }
}
