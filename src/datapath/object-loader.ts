/**
 * Loader of one compiled datapath object, whatever it is (bpf_lxc.o, bpf_sock.o): parsed once and checked
 * against the generated layouts; each load is a copy with its own load-time constants written into
 * .rodata, sharing the node's pinned maps; its programs are attached where the caller says and the
 * links pinned, so traffic keeps flowing while the agent is down. Attaching into links pinned by an
 * earlier load on the same hook swaps the programs in place with BPF_LINK_UPDATE: there is no moment
 * without a program. The per-endpoint loader (loader.ts) and the socket-LB loader (sock-loader.ts)
 * are its users.
 */
import { mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  AttachType,
  type BpfMap,
  BpfSyscallError,
  BtfHandle,
  Collection,
  CollectionSpec,
  type ConstantValue,
  EbpfError,
  KeyNotFoundError,
  Link,
  type LinkInfo,
  type MapSpec,
  MapType,
  type Program,
} from '../ebpf/index.js';
import { checkObjectLayouts, GENERATED_LAYOUTS } from './maps/check.js';
import type { Layouts, MapDescriptor } from './maps/codec.js';
import { openPinnedMap } from './maps/open.js';

/** A program attached with tcx on a device: a pod's host-side veth today, the overlay device next. */
export interface TcxAttachPoint {
  kind: 'tcx';
  direction: 'ingress' | 'egress';
  ifindex: number;
  /** Network namespace path of the device; default: the current one. */
  netns?: string | undefined;
}

/** A socket hook on a cgroup v2 directory (e.g. a node's cgroup): it sees the system calls of every
 * process in the cgroup and below. Which hook is the program's section (cgroup/connect4, ...). */
export interface CgroupAttachPoint {
  kind: 'cgroup';
  cgroup: string;
}

export type AttachPoint = TcxAttachPoint | CgroupAttachPoint;

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

/**
 * Opens (or creates and pins) a pinned node map of the object. Socket local storage is created
 * only with BTF for its key and value: the object's, loaded for the creation (the map keeps its own
 * reference to it).
 */
function openObjectMap(bpffs: string, spec: CollectionSpec, ms: MapSpec, d: MapDescriptor): BpfMap {
  if (
    ms.type !== MapType.SK_STORAGE ||
    !spec.kernelBtf ||
    ms.keyType === undefined ||
    ms.valueType === undefined
  )
    return openPinnedMap(bpffs, d);
  const btf = BtfHandle.load(spec.kernelBtf);
  try {
    return openPinnedMap(bpffs, d, {
      btf: { fd: btf.fd.value, keyType: ms.keyType, valueType: ms.valueType },
    });
  } finally {
    btf.close();
  }
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
          const m = openObjectMap(opts.bpffs, spec, ms, layouts.MAPS[name]!); // the check found a descriptor
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

  /**
   * load() with the programs verified concurrently on worker threads (one after the other until
   * `serialUntil` settles, when given).
   */
  loadAsync(constants: Record<string, ConstantValue>, serialUntil?: Promise<unknown>): Promise<Collection> {
    return Collection.loadAsync(this.specialise(constants), {
      ...this.#loadOpts(),
      ...(serialUntil ? { serialUntil } : {}),
    });
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
      const hook = this.#hook(a);
      const swapped = swapPinned(join(pinDir, a.pin), hook, coll.program(a.program));
      if (swapped) links[a.pin] = swapped;
      else {
        replaced = false;
        links[a.pin] = pinNew(join(pinDir, a.pin), attachNow(coll.program(a.program), hook));
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
        const hook = this.#hook(a);
        const swapped = swapPinned(join(pinDir, a.pin), hook, coll.program(a.program));
        if (swapped) {
          links[a.pin] = swapped;
          return;
        }
        replaced = false;
        links[a.pin] = pinNew(join(pinDir, a.pin), await attachLater(coll.program(a.program), hook));
      }),
    );
    return { replaced, links };
  }

  /** The kernel hook of an attachment: tcx by direction, a cgroup hook by the program's section. */
  #hook(a: ProgramAttachment): Hook {
    if (a.at.kind === 'tcx')
      return {
        at: a.at,
        attachType: a.at.direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS,
      };
    const p = this.spec.programs.get(a.program);
    const attachType = p?.expectedAttachType;
    if (!attachType || !CGROUP_ATTACH_TYPES.has(attachType))
      throw new EbpfError(
        `${this.object}: program ${a.program} is not a cgroup socket hook (section ${p?.section})`,
      );
    return { at: a.at, attachType, cgroupId: cgroupId(a.at.cgroup) };
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

type AttachTypeValue = (typeof AttachType)[keyof typeof AttachType];

/** An attach point resolved to the kernel's hook. */
interface Hook {
  at: AttachPoint;
  attachType: AttachTypeValue;
  /** cgroup hooks: the cgroup's ID (the inode of its directory), as link info reports it. */
  cgroupId?: bigint;
}

const CGROUP_ATTACH_TYPES = new Set<number>([
  AttachType.CGROUP_INET4_CONNECT,
  AttachType.CGROUP_INET6_CONNECT,
  AttachType.CGROUP_UDP4_SENDMSG,
  AttachType.CGROUP_UDP6_SENDMSG,
  AttachType.CGROUP_UDP4_RECVMSG,
  AttachType.CGROUP_UDP6_RECVMSG,
  AttachType.CGROUP_INET4_GETPEERNAME,
  AttachType.CGROUP_INET6_GETPEERNAME,
  AttachType.CGROUP_INET4_GETSOCKNAME,
  AttachType.CGROUP_INET6_GETSOCKNAME,
  AttachType.CGROUP_INET4_BIND,
  AttachType.CGROUP_INET6_BIND,
  AttachType.CGROUP_INET4_POST_BIND,
  AttachType.CGROUP_INET6_POST_BIND,
  AttachType.CGROUP_INET_SOCK_CREATE,
  AttachType.CGROUP_INET_SOCK_RELEASE,
]);

/** A cgroup v2 directory's ID: the inode number of the directory. */
export function cgroupId(dir: string): bigint {
  return statSync(dir, { bigint: true }).ino;
}

function attachNow(program: Program, h: Hook): Link {
  if (h.at.kind === 'cgroup')
    return Link.attachCgroup({ program, cgroup: h.at.cgroup, attachType: h.attachType });
  return Link.attachTcx({ program, direction: h.at.direction, interface: h.at.ifindex, netns: h.at.netns });
}

async function attachLater(program: Program, h: Hook): Promise<Link> {
  if (h.at.kind === 'cgroup') return attachNow(program, h);
  return Link.attachTcxAsync({
    program,
    direction: h.at.direction,
    interface: h.at.ifindex,
    netns: h.at.netns,
  });
}

/** Is the pinned link on exactly this hook? (A device or cgroup that is gone reports 0.) */
function sameHook(info: LinkInfo, h: Hook): boolean {
  if (info.attachType !== h.attachType) return false;
  if (h.at.kind === 'cgroup') return info.cgroupId === h.cgroupId && info.cgroupId !== 0n;
  return info.ifindex === h.at.ifindex && info.ifindex !== 0;
}

/** Swaps the program of the link pinned at `path` if it is on the same hook; undefined when there
 * is none (a stale pin, on a device that is gone or another hook, is detached and removed). */
function swapPinned(path: string, hook: Hook, program: Program): LinkInfo | undefined {
  const existing = openPinnedLink(path);
  if (!existing) return undefined;
  try {
    if (sameHook(existing.info(), hook)) {
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
