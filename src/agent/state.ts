/**
 * The agent's persisted state: one JSON file per subsystem under the state dir, each written
 * atomically, so a restart restores endpoints, identities, IPAM, resources and policies exactly.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { JsonStateFile } from '../ipam/index.js';

export class AgentState<T extends Record<string, unknown>> {
  private readonly files = new Map<keyof T, JsonStateFile<unknown>>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private file<K extends keyof T>(key: K): JsonStateFile<T[K]> {
    let f = this.files.get(key);
    if (!f) {
      f = new JsonStateFile(join(this.dir, `${String(key)}.json`));
      this.files.set(key, f);
    }
    return f as JsonStateFile<T[K]>;
  }

  load<K extends keyof T>(key: K): Promise<T[K] | undefined> {
    return this.file(key).load();
  }

  save<K extends keyof T>(key: K, value: T[K]): Promise<void> {
    return this.file(key).save(value);
  }
}
