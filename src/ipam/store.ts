/**
 * A JSON state file written atomically: temp file + fsync + rename + fsync of the directory. With
 * `syncLater`, a save resolves once the new content is renamed into place (what a restarted process
 * reads: the page cache outlives it) and the fsyncs follow in the background, one for any number of
 * saves made meanwhile (group commit); syncs() waits for them.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { IpamStateError } from './errors.js';

export class JsonStateFile<T> {
  private chain: Promise<void> = Promise.resolve();
  /** syncLater: the background fsync under way (or queued), if any. */
  private pendingSync: Promise<void> | undefined;
  private dirty = false;

  constructor(
    readonly path: string,
    private readonly opts: { syncLater?: boolean } = {},
  ) {}

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
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.tmp`);
    if (this.opts.syncLater && typeof content === 'string' && content.length <= SMALL_FILE) {
      // Into the page cache at once: cheaper than five trips through libuv's threads on a busy node.
      mkdirSync(dir, { recursive: true });
      try {
        writeFileSync(tmp, content, { mode: 0o600 });
        renameSync(tmp, this.path);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
      }
      this.dirty = true;
      void this.syncs().catch(() => {}); // retried by the next save or syncs()
      return;
    }
    await mkdir(dir, { recursive: true });
    const fh = await open(tmp, 'w', 0o600);
    try {
      if (typeof content === 'string') await fh.writeFile(content);
      else for (let i = 0; i < content.length; i += 1024) await fh.writev(content.slice(i, i + 1024));
      if (!this.opts.syncLater) await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    if (this.opts.syncLater) {
      this.dirty = true;
      void this.syncs().catch(() => {}); // retried by the next save or syncs()
      return;
    }
    await syncPath(dir);
  }

  /** syncLater: resolves once everything saved so far is on disk (file and directory fsynced). */
  syncs(): Promise<void> {
    // one under way: then again if a save came after it started
    if (this.pendingSync) return this.pendingSync.then(() => this.syncs());
    if (!this.dirty) return Promise.resolve();
    const run = async () => {
      this.dirty = false;
      try {
        await syncPath(this.path);
        await syncPath(dirname(this.path));
      } catch (e) {
        this.dirty = true;
        throw e;
      }
    };
    // One fsync at a time in the process: they would otherwise hold the threads of libuv's pool
    // that the next saves (open, write, rename) wait for.
    const p = syncQueue.then(run);
    syncQueue = p.catch(() => {});
    this.pendingSync = p.finally(() => {
      this.pendingSync = undefined;
    });
    return this.pendingSync;
  }
}

/** syncLater: content up to this size is written synchronously (small state: IPAM, endpoints). */
const SMALL_FILE = 256 * 1024;

/** The fsyncs of every syncLater file, in turn. */
let syncQueue: Promise<void> = Promise.resolve();

/** fsync of a file or directory. */
async function syncPath(path: string): Promise<void> {
  const d = await open(path, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
