/**
 * Collection: turns a CollectionSpec into kernel objects. Maps first (pinned ones re-opened and
 * checked for compatibility, or created and pinned; replacements shared from the caller), then
 * programs. On any failure everything created so far is closed again.
 */
import { join } from 'node:path';
import { BtfHandle } from './btf/handle.js';
import type { CollectionSpec, MapSpec, ProgramSpec } from './collection-spec.js';
import { EbpfError, KeyNotFoundError } from './errors.js';
import { BpfMap } from './map.js';
import { Program, type ProgramLoadOptions } from './program.js';

export interface CollectionOptions {
  /** Directory on a bpffs where maps with `pinning: by-name` live (re-opened if present). */
  pinPath?: string;
  /** Existing maps to use instead of creating the named ones (checked for compatibility). */
  mapReplacements?: Record<string, BpfMap>;
  /** Load only these programs (default: all). */
  programs?: string[];
  program?: Omit<ProgramLoadOptions, 'btf'>;
  /**
   * loadAsync() only: verify the programs one after the other (one core) until this settles, then
   * the ones not started yet at once. Default: all at once.
   */
  serialUntil?: Promise<unknown>;
}

const noop = () => {};

export class Collection implements Disposable {
  readonly maps = new Map<string, BpfMap>();
  readonly programs = new Map<string, Program>();
  /** Maps this collection created or opened (and so closes); replacements stay the caller's. */
  private readonly owned = new Set<BpfMap>();
  private btf?: BtfHandle;

  static load(spec: CollectionSpec, opts: CollectionOptions = {}): Collection {
    const c = new Collection();
    try {
      for (const [name, p, loadOpts] of c.prepare(spec, opts))
        c.programs.set(name, Program.load(p, c.maps, loadOpts));
      return c;
    } catch (err) {
      c.close();
      throw err;
    }
  }

  /**
   * Like load(), with the programs verified concurrently on worker threads (the verifier is the
   * slow part of a load; two cores verify two programs at once).
   */
  static async loadAsync(spec: CollectionSpec, opts: CollectionOptions = {}): Promise<Collection> {
    const c = new Collection();
    try {
      const settled = (x: Promise<unknown>) => x.then(noop, noop);
      let previous: Promise<unknown> = Promise.resolve();
      const jobs = c.prepare(spec, opts).map(([name, p, loadOpts]) => {
        // serial: each waits for the one before it, or for serialUntil
        const turn = opts.serialUntil && Promise.race([settled(previous), settled(opts.serialUntil)]);
        previous = (async () => {
          if (turn) await turn;
          c.programs.set(name, await Program.loadAsync(p, c.maps, loadOpts));
        })();
        return previous;
      });
      const results = await Promise.allSettled(jobs);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return c;
    } catch (err) {
      c.close();
      throw err;
    }
  }

  /** Creates the maps and BTF; returns what each wanted program needs to load. */
  private prepare(
    spec: CollectionSpec,
    opts: CollectionOptions,
  ): [string, ProgramSpec, ProgramLoadOptions][] {
    this.loadMaps(spec, opts);
    if (spec.kernelBtf && [...spec.programs.values()].some((p) => p.funcInfo.length > 0)) {
      this.btf = BtfHandle.load(spec.kernelBtf);
    }
    const wanted = opts.programs ?? [...spec.programs.keys()];
    return wanted.map((name) => {
      const p = spec.programs.get(name);
      if (!p) throw new EbpfError(`program ${name} does not exist in the object`);
      const loadOpts: ProgramLoadOptions = { ...opts.program };
      if (this.btf) loadOpts.btf = this.btf;
      return [name, p, loadOpts];
    });
  }

  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (!m) throw new EbpfError(`map ${name} is not in the collection`);
    return m;
  }

  program(name: string): Program {
    const p = this.programs.get(name);
    if (!p) throw new EbpfError(`program ${name} is not in the collection`);
    return p;
  }

  /** Hands a map's ownership to the caller: closing the collection will not close it. */
  detachMap(name: string): BpfMap {
    const m = this.map(name);
    this.owned.delete(m);
    return m;
  }

  /** Hands a program's ownership to the caller. */
  detachProgram(name: string): Program {
    const p = this.program(name);
    this.programs.delete(name);
    return p;
  }

  close(): void {
    for (const p of this.programs.values()) p.close();
    for (const m of this.owned) m.close();
    this.btf?.close();
    this.programs.clear();
    this.maps.clear();
    this.owned.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private loadMaps(spec: CollectionSpec, opts: CollectionOptions): void {
    for (const [name, ms] of spec.maps) {
      const repl = opts.mapReplacements?.[name];
      if (repl) {
        repl.checkCompatible(ms);
        this.maps.set(name, repl);
        continue;
      }
      const m = this.openOrCreate(ms, opts.pinPath);
      this.maps.set(name, m);
    }
  }

  private openOrCreate(ms: MapSpec, pinPath: string | undefined): BpfMap {
    if (ms.pinning === 'by-name') {
      if (!pinPath) throw new EbpfError(`map ${ms.name} is pinned by name but no pinPath was given`);
      const path = join(pinPath, ms.name);
      try {
        const m = BpfMap.openPinned(path, ms);
        this.owned.add(m);
        return m;
      } catch (err) {
        if (!(err instanceof KeyNotFoundError)) throw err; // ENOENT: not pinned yet
      }
      const m = this.create(ms);
      m.pin(path);
      return m;
    }
    return this.create(ms);
  }

  private create(ms: MapSpec): BpfMap {
    let inner: BpfMap | undefined;
    if (ms.innerMap) inner = BpfMap.create(ms.innerMap);
    try {
      const m = BpfMap.create(ms, inner ? { innerMapFd: inner.fd.value } : {});
      this.owned.add(m);
      for (const { key, value } of ms.contents ?? []) m.update(key, value);
      if (ms.freeze) m.freeze();
      return m;
    } finally {
      inner?.close();
    }
  }
}
