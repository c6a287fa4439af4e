/**
 * The agent's persisted state: one JSON file per cell under the state dir, each written
 * atomically. A cell asks for its own file by name; nothing else reads it.
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
      f = new JsonStateFile(join(this.dir, `${name}.json`));
      this.files.set(name, f);
    }
    return f as JsonStateFile<T>;
  }
}
