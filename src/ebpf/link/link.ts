/**
 * Links attach programs to hooks (tcx ingress/egress, XDP, cgroup socket hooks) with BPF_LINK_CREATE.
 * A pinned link keeps its program attached after the process exits; re-open it with `openPinned`.
 */
import { closeSync, openSync, unlinkSync } from 'node:fs';
import { EbpfError, NotSupportedError } from '../errors.js';
import { Fd } from '../fd.js';
import type { Program } from '../program.js';
import { Attr, AttrLayout, call, getFdById, nextIds, objGet, objInfo, objPin } from '../sys/bpf.js';
import { AttachType, type AttachTypeValue, Cmd, LinkType, MprogFlag, XdpFlag } from '../sys/constants.js';
import { Errno } from '../sys/errno.js';
import { bpfAsync } from '../sys/libc.js';
import { ifindexOf, withNetns } from './netns.js';

export interface LinkInfo {
  type: number;
  id: number;
  progId: number;
  /** tcx / xdp: the interface index (in the link's network namespace). */
  ifindex?: number;
  attachType?: number;
  cgroupId?: bigint;
}

/** Where to place a tcx program relative to others already attached. */
export type TcxAnchor =
  | { head: true }
  | { tail: true }
  | { before: Program | Link }
  | { after: Program | Link }
  | { beforeId: number }
  | { afterId: number };

export interface TcxAttachOptions {
  program: Program;
  direction: 'ingress' | 'egress';
  /** Interface by name (resolved inside `netns`) or index. */
  interface: string | number;
  /** Path of the network namespace holding the interface (e.g. /run/netns/x); default: current. */
  netns?: string;
  anchor?: TcxAnchor;
  /** Fail with EBUSY-like error unless the hook's revision is still this (optimistic concurrency). */
  expectedRevision?: bigint;
}

export interface XdpAttachOptions {
  program: Program;
  interface: string | number;
  netns?: string;
  mode?: 'generic' | 'driver';
}

export interface CgroupAttachOptions {
  program: Program;
  /** cgroup v2 directory, e.g. /sys/fs/cgroup/my.slice */
  cgroup: string;
  attachType: AttachTypeValue;
}

const LINK_INFO_SIZE = 64;

export class Link implements Disposable {
  pinnedPath?: string;
  private constructor(readonly fd: Fd) {}

  static attachTcx(opts: TcxAttachOptions): Link {
    const L = AttrLayout.linkCreate;
    const attachType = opts.direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS;
    return withNetns(opts.netns, () => {
      const ifindex = typeof opts.interface === 'number' ? opts.interface : ifindexOf(opts.interface);
      const a = new Attr(L.size)
        .u32(L.prog_fd, opts.program.fd.value)
        .u32(L.target_ifindex, ifindex)
        .u32(L.attach_type, attachType);
      const { flags, relative } = anchorFlags(opts.anchor);
      a.u32(L.flags, flags).u32(L.tcx_relative_fd, relative);
      if (opts.expectedRevision !== undefined) a.u64(L.tcx_expected_revision, opts.expectedRevision);
      const what = `attach ${opts.program.name} to tcx/${opts.direction} of ${opts.interface}`;
      try {
        return new Link(new Fd(call(Cmd.LINK_CREATE, a, what, { hint: tcxHint })));
      } catch (err) {
        if (
          err instanceof EbpfError &&
          'errno' in err &&
          (err as { errno: number }).errno === Errno.EINVAL &&
          !haveTcx()
        ) {
          throw new NotSupportedError('tcx links', '6.6', { cause: err });
        }
        throw err;
      }
    });
  }

  /**
   * attachTcx on a worker thread: creating a tcx link waits for an RCU grace period in the kernel,
   * so attaching ingress and egress concurrently halves the wait. Needs the interface's index in
   * the process's own network namespace (worker threads cannot enter another one); otherwise, and
   * to report a failure precisely, it falls back to attachTcx.
   */
  static async attachTcxAsync(opts: TcxAttachOptions): Promise<Link> {
    if (opts.netns || typeof opts.interface !== 'number') return Link.attachTcx(opts);
    const L = AttrLayout.linkCreate;
    const { flags, relative } = anchorFlags(opts.anchor);
    const a = new Attr(L.size)
      .u32(L.prog_fd, opts.program.fd.value)
      .u32(L.target_ifindex, opts.interface)
      .u32(L.attach_type, opts.direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS)
      .u32(L.flags, flags)
      .u32(L.tcx_relative_fd, relative);
    if (opts.expectedRevision !== undefined) a.u64(L.tcx_expected_revision, opts.expectedRevision);
    const fd = await bpfAsync(Cmd.LINK_CREATE, a.buf, a.buf.length);
    return fd >= 0 ? new Link(new Fd(fd)) : Link.attachTcx(opts);
  }

  static attachXdp(opts: XdpAttachOptions): Link {
    const L = AttrLayout.linkCreate;
    return withNetns(opts.netns, () => {
      const ifindex = typeof opts.interface === 'number' ? opts.interface : ifindexOf(opts.interface);
      const flags =
        opts.mode === 'generic' ? XdpFlag.SKB_MODE : opts.mode === 'driver' ? XdpFlag.DRV_MODE : 0;
      const a = new Attr(L.size)
        .u32(L.prog_fd, opts.program.fd.value)
        .u32(L.target_ifindex, ifindex)
        .u32(L.attach_type, AttachType.XDP)
        .u32(L.flags, flags);
      return new Link(
        new Fd(call(Cmd.LINK_CREATE, a, `attach ${opts.program.name} to xdp of ${opts.interface}`)),
      );
    });
  }

  static attachCgroup(opts: CgroupAttachOptions): Link {
    const L = AttrLayout.linkCreate;
    const cg = openSync(opts.cgroup, 'r');
    try {
      const a = new Attr(L.size)
        .u32(L.prog_fd, opts.program.fd.value)
        .u32(L.target_fd, cg)
        .u32(L.attach_type, opts.attachType);
      return new Link(
        new Fd(call(Cmd.LINK_CREATE, a, `attach ${opts.program.name} to cgroup ${opts.cgroup}`)),
      );
    } finally {
      closeSync(cg);
    }
  }

  static openPinned(path: string): Link {
    const l = new Link(new Fd(objGet(path)));
    l.pinnedPath = path;
    return l;
  }

  static fromId(id: number): Link {
    return new Link(new Fd(getFdById(Cmd.LINK_GET_FD_BY_ID, id, 'link')));
  }

  info(): LinkInfo {
    const b = objInfo(this.fd.value, LINK_INFO_SIZE);
    const info: LinkInfo = { type: b.readUInt32LE(0), id: b.readUInt32LE(4), progId: b.readUInt32LE(8) };
    if (info.type === LinkType.TCX || info.type === LinkType.XDP) info.ifindex = b.readUInt32LE(16);
    if (info.type === LinkType.TCX) info.attachType = b.readUInt32LE(20);
    if (info.type === LinkType.CGROUP) {
      info.cgroupId = b.readBigUInt64LE(16);
      info.attachType = b.readUInt32LE(24);
    }
    return info;
  }

  pin(path: string): void {
    objPin(this.fd.value, path);
    this.pinnedPath = path;
  }

  /** Removes the pin (the link stays alive while this fd is open). */
  unpin(): void {
    if (!this.pinnedPath) return;
    unlinkSync(this.pinnedPath);
    delete this.pinnedPath;
  }

  /** Replaces the attached program atomically (no moment without a program). */
  update(program: Program): void {
    const a = new Attr(16).u32(0, this.fd.value).u32(4, program.fd.value);
    call(Cmd.LINK_UPDATE, a, `update link to ${program.name}`);
  }

  /** Detaches the program from its hook even if other fds or pins reference the link. */
  detach(): void {
    const L = AttrLayout.linkDetach;
    call(Cmd.LINK_DETACH, new Attr(L.size).u32(L.link_fd, this.fd.value), 'detach link');
  }

  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function anchorFlags(anchor: TcxAnchor | undefined): { flags: number; relative: number } {
  if (!anchor) return { flags: 0, relative: 0 };
  if ('head' in anchor) return { flags: MprogFlag.BEFORE, relative: 0 };
  if ('tail' in anchor) return { flags: MprogFlag.AFTER, relative: 0 };
  if ('beforeId' in anchor) return { flags: MprogFlag.BEFORE | MprogFlag.ID, relative: anchor.beforeId };
  if ('afterId' in anchor) return { flags: MprogFlag.AFTER | MprogFlag.ID, relative: anchor.afterId };
  const target = 'before' in anchor ? anchor.before : anchor.after;
  const dir = 'before' in anchor ? MprogFlag.BEFORE : MprogFlag.AFTER;
  return { flags: dir | (target instanceof Link ? MprogFlag.LINK : 0), relative: target.fd.value };
}

function tcxHint(errno: number): string | undefined {
  if (errno === Errno.ENODEV) return 'no such interface';
  if (errno === Errno.EEXIST) return 'program already attached at this hook';
  if (errno === Errno.ERANGE || errno === Errno.ENOENT) return 'relative program/link is not attached here';
  if (errno === Errno.ESRCH) return 'expected revision does not match';
  return undefined;
}

let tcxProbe: boolean | undefined;
/** Probes once whether BPF_PROG_QUERY knows tcx on loopback (kernel >= 6.6). */
export function haveTcx(): boolean {
  if (tcxProbe === undefined) {
    try {
      queryTcx(1, 'ingress');
      tcxProbe = true;
    } catch {
      tcxProbe = false;
    }
  }
  return tcxProbe;
}

export interface TcxAttachments {
  revision: bigint;
  programIds: number[];
  linkIds: number[];
}

/** Lists the programs (and links) attached at a tcx hook, in execution order. */
export function queryTcx(
  iface: string | number,
  direction: 'ingress' | 'egress',
  netns?: string,
): TcxAttachments {
  const L = AttrLayout.progQuery;
  return withNetns(netns, () => {
    const ifindex = typeof iface === 'number' ? iface : ifindexOf(iface);
    const max = 64;
    const progIds = Buffer.alloc(max * 4);
    const linkIds = Buffer.alloc(max * 4);
    const a = new Attr(L.size)
      .u32(L.target_ifindex, ifindex)
      .u32(L.attach_type, direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS)
      .ptr(L.prog_ids, progIds)
      .ptr(L.link_ids, linkIds)
      .u32(L.prog_cnt, max);
    call(Cmd.PROG_QUERY, a, `query tcx/${direction} of ${iface}`);
    const n = a.getU32(L.prog_cnt);
    return {
      revision: a.getU64(L.revision),
      programIds: Array.from({ length: n }, (_, i) => progIds.readUInt32LE(i * 4)),
      linkIds: Array.from({ length: n }, (_, i) => linkIds.readUInt32LE(i * 4)),
    };
  });
}

/** All links in the system (ids), for inventory and cleanup tools. */
export function listLinkIds(): number[] {
  return [...nextIds(Cmd.LINK_GET_NEXT_ID)];
}
