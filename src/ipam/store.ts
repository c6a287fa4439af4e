/** A JSON state file written atomically: temp file + fsync + rename + fsync of the directory. */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { IpamStateError } from './errors.js';

export class JsonStateFile<T> {
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  /** The saved value, or undefined when the file does not exist. Throws IpamStateError on corrupt JSON. */
  async load(): Promise<T | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new IpamStateError(`${this.path}: corrupt state file: ${(e as Error).message}`);
    }
  }

  /** Write atomically. Concurrent calls are serialized in call order. */
  save(value: T): Promise<void> {
    return this.enqueue(`${JSON.stringify(value, null, 2)}\n`);
  }

  /**
   * As save(), for a value its owner serialized already: the JSON of a T in pieces, written as they
   * are (a large state kept serialized per object is not joined into one string first).
   */
  saveChunks(chunks: readonly Uint8Array[]): Promise<void> {
    return this.enqueue(chunks);
  }

  private enqueue(content: string | readonly Uint8Array[]): Promise<void> {
    const p = this.chain.then(() => this.write(content));
    this.chain = p.catch(() => {});
    return p;
  }

  private async write(content: string | readonly Uint8Array[]): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      if (typeof content === 'string') await fh.writeFile(content);
      else for (let i = 0; i < content.length; i += 1024) await fh.writev(content.slice(i, i + 1024));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
