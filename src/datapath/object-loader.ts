/**
 * Loader of one compiled datapath object, whatever it is (bpf_lxc.o today): parsed once and checked
 * against the generated layouts; each load is a copy with its own load-time constants written into
 * .rodata, sharing the node's pinned maps; its programs are attached where the caller says and the
 * links pinned, so traffic keeps flowing while the agent is down. Attaching into links pinned by an
 * earlier load on the same hook swaps the programs in place with BPF_LINK_UPDATE: there is no moment
 * without a program. The per-endpoint loader (loader.ts) is one user.
 */
import { mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  AttachType,
  type BpfMap,
  BpfSyscallError,
  Collection,
  CollectionSpec,
  type ConstantValue,
  EbpfError,
  KeyNotFoundError,
  Link,
  type LinkInfo,
  type Program,
} from '../ebpf/index.js';
import { checkObjectLayouts, GENERATED_LAYOUTS } from './maps/check.js';
import type { Layouts } from './maps/codec.js';
import { openPinnedMap } from './maps/open.js';

/**
 * Where a program is attached. tcx on a device: a pod's host-side veth today, the overlay device
 * next (same kind). A socket-hook object adds a cgroup kind here, attached with Link.attachCgroup.
 */
export interface TcxAttachPoint {
  kind: 'tcx';
  direction: 'ingress' | 'egress';
  ifindex: number;
  /** Network namespace path of the device; default: the current one. */
  netns?: string | undefined;
}

export type AttachPoint = TcxAttachPoint;

export interface ProgramAttachment {
  /** Program name in the object. */
  program: string;
  /** File name of the link's pin inside the pin directory. */
  pin: string;
  at: AttachPoint;
}

export interface AttachResult {
  /** True when every link was pinned already on the same hook and had its program swapped. */
  replaced: boolean;
  /** Link of each attachment, by pin name. */
  links: Record<string, LinkInfo>;
}

export interface ObjectLoaderOptions {
  /** The compiled object. */
  object: string;
  /** The node's bpffs directory: maps pinned by name live directly in it. */
  bpffs: string;
  /** Node maps already open, reused by name; the object's other pinned maps are opened (or created)
   * from `bpffs` by their generated descriptors and owned by the loader. */
  maps?: Readonly<Record<string, BpfMap>>;
  /** Programs every load verifies (default: all of the object's). */
  programs?: readonly string[];
  /** The layouts to check the object against (default: the committed generated ones). */
  layouts?: Layouts;
}

export class ObjectLoader implements Disposable {
  private constructor(
    readonly object: string,
    readonly spec: CollectionSpec,
    readonly programs: readonly string[],
    private readonly maps: Record<string, BpfMap>,
    private readonly owned: BpfMap[],
  ) {}

  /** Parses and checks the object, and finds the node map behind each of its pinned maps. */
  static open(opts: ObjectLoaderOptions): ObjectLoader {
    const layouts = opts.layouts ?? GENERATED_LAYOUTS;
    const spec = CollectionSpec.fromFile(opts.object);
    checkObjectLayouts(spec, opts.object, layouts);
    const programs = opts.programs ?? [...spec.programs.keys()];
    for (const p of programs)
      if (!spec.programs.has(p)) throw new EbpfError(`${opts.object}: program ${p} is missing`);
    const maps: Record<string, BpfMap> = {};
    const owned: BpfMap[] = [];
    try {
      for (const [name, ms] of spec.maps) {
        if (name.startsWith('.') || ms.pinning !== 'by-name') continue; // the object's own data
        const shared = opts.maps?.[name];
        if (shared) maps[name] = shared;
        else {
          const m = openPinnedMap(opts.bpffs, layouts.MAPS[name]!); // the check found a descriptor
          owned.push(m);
          maps[name] = m;
        }
      }
    } catch (err) {
      for (const m of owned) m.close();
      throw err;
    }
    return new ObjectLoader(opts.object, spec, programs, maps, owned);
  }

  /** The node map this object uses under `name`. */
  map(name: string): BpfMap {
    const m = this.maps[name];
    if (!m) throw new EbpfError(`${this.object} has no pinned map ${name}`);
    return m;
  }

  /** A copy of the object with these load-time constants (names of its .rodata globals). */
  specialise(constants: Record<string, ConstantValue>): CollectionSpec {
    const spec = this.spec.copy();
    spec.rewriteConstants(constants);
    return spec;
  }

  /** Verifies and loads the programs of one copy, sharing the node's maps. */
  load(constants: Record<string, ConstantValue>): Collection {
    return Collection.load(this.specialise(constants), this.#loadOpts());
  }

  /** load() with the programs verified concurrently on worker threads. */
  loadAsync(constants: Record<string, ConstantValue>): Promise<Collection> {
    return Collection.loadAsync(this.specialise(constants), this.#loadOpts());
  }

  #loadOpts() {
    return { mapReplacements: this.maps, programs: [...this.programs] };
  }

  /** Attaches the collection's programs and pins the links under `pinDir` (or swaps pinned ones). */
  attach(coll: Collection, pinDir: string, attachments: readonly ProgramAttachment[]): AttachResult {
    mkdirSync(pinDir, { recursive: true });
    const links: Record<string, LinkInfo> = {};
    let replaced = true;
    for (const a of attachments) {
      const swapped = swapPinned(join(pinDir, a.pin), a.at, coll.program(a.program));
      if (swapped) links[a.pin] = swapped;
      else {
        replaced = false;
        links[a.pin] = pinNew(join(pinDir, a.pin), attachNow(coll.program(a.program), a.at));
      }
    }
    return { replaced, links };
  }

  /** attach() with the new links created concurrently on worker threads (tcx waits out an RCU
   * grace period per link). */
  async attachAsync(
    coll: Collection,
    pinDir: string,
    attachments: readonly ProgramAttachment[],
  ): Promise<AttachResult> {
    mkdirSync(pinDir, { recursive: true });
    const links: Record<string, LinkInfo> = {};
    let replaced = true;
    await Promise.all(
      attachments.map(async (a) => {
        const swapped = swapPinned(join(pinDir, a.pin), a.at, coll.program(a.program));
        if (swapped) {
          links[a.pin] = swapped;
          return;
        }
        replaced = false;
        links[a.pin] = pinNew(join(pinDir, a.pin), await attachLater(coll.program(a.program), a.at));
      }),
    );
    return { replaced, links };
  }

  /** Closes the maps this loader opened itself; shared ones stay their owner's. */
  close(): void {
    for (const m of this.owned) m.close();
    this.owned.length = 0;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Detaches and unpins the links pinned under `pinDir` (named `pins`), then removes the directory
 * if empty. False when none was pinned. */
export function detachPinned(pinDir: string, pins: readonly string[]): boolean {
  let found = false;
  for (const pin of pins) {
    const path = join(pinDir, pin);
    const l = openPinnedLink(path);
    if (!l) continue;
    found = true;
    tryDetach(l);
    l.close();
    unlinkSync(path);
  }
  try {
    rmdirSync(pinDir);
  } catch {
    // not there or not empty
  }
  return found;
}

/** The links pinned under `pinDir` among `pins`, by pin name (ifindex 0: the device is gone). */
export function pinnedLinks(pinDir: string, pins: readonly string[]): Record<string, LinkInfo> {
  const out: Record<string, LinkInfo> = {};
  for (const pin of pins) {
    const l = openPinnedLink(join(pinDir, pin));
    if (!l) continue;
    try {
      out[pin] = l.info();
    } finally {
      l.close();
    }
  }
  return out;
}

/** Subdirectories of `dir` (none when it does not exist). */
export function pinDirs(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function tcxAttachType(at: TcxAttachPoint): number {
  return at.direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS;
}

function attachNow(program: Program, at: AttachPoint): Link {
  return Link.attachTcx({ program, direction: at.direction, interface: at.ifindex, netns: at.netns });
}

function attachLater(program: Program, at: AttachPoint): Promise<Link> {
  return Link.attachTcxAsync({ program, direction: at.direction, interface: at.ifindex, netns: at.netns });
}

/** Is the pinned link on exactly this hook? */
function sameHook(info: LinkInfo, at: AttachPoint): boolean {
  return info.ifindex === at.ifindex && info.ifindex !== 0 && info.attachType === tcxAttachType(at);
}

/** Swaps the program of the link pinned at `path` if it is on the same hook; undefined when there
 * is none (a stale pin, on a device that is gone or another hook, is detached and removed). */
function swapPinned(path: string, at: AttachPoint, program: Program): LinkInfo | undefined {
  const existing = openPinnedLink(path);
  if (!existing) return undefined;
  try {
    if (sameHook(existing.info(), at)) {
      existing.update(program);
      return existing.info();
    }
    tryDetach(existing);
    unlinkSync(path);
    return undefined;
  } finally {
    existing.close();
  }
}

function pinNew(path: string, link: Link): LinkInfo {
  try {
    link.pin(path);
    return link.info();
  } catch (err) {
    tryDetach(link);
    throw err;
  } finally {
    link.close();
  }
}

function openPinnedLink(path: string): Link | undefined {
  try {
    return Link.openPinned(path);
  } catch (err) {
    if (err instanceof KeyNotFoundError) return undefined;
    throw err;
  }
}

function tryDetach(l: Link): void {
  try {
    l.detach();
  } catch (err) {
    // A link whose device is gone is already detached.
    if (!(err instanceof BpfSyscallError)) throw err;
  }
}
