/**
 * Socket-LB on a node: bpf_sock.o's cgroup socket hooks (connect, sendmsg, recvmsg, getpeername, for
 * IPv4 and IPv6, and sock_release) attached to the node's cgroup v2 directory, so that every process in it (the node's
 * and its pods') connects to services straight at a backend. The caller owns the cgroup: it creates
 * it and puts the processes in; this loader only attaches to it.
 *
 * Links are pinned under `<bpffs>/links/sock/<hook>` and outlive the agent; attaching again to the
 * same cgroup (agent restart, new object) swaps the programs in place with BPF_LINK_UPDATE, while
 * links pinned on another cgroup, or on one that was removed, are detached and replaced.
 */
import { join } from 'node:path';
import { bpfObjectPath } from '../common/paths.js';
import type { LinkInfo } from '../ebpf/index.js';
import { DatapathError } from './errors.js';
import { type NodeDatapathConfig, nodeConstants, openNodeObject } from './loader.js';
import type { DatapathMaps } from './maps/index.js';
import {
  cgroupId,
  detachPinned,
  type ObjectLoader,
  type ProgramAttachment,
  pinnedLinks,
} from './object-loader.js';

/** build/bpf/bpf_sock.o of this checkout (or of CILIUM_TS_BPF_DIR). */
export const DEFAULT_SOCK_OBJECT = bpfObjectPath('bpf_sock.o');

/** Pin name (the hook) → program of bpf_sock.o. */
export const SOCK_HOOKS = {
  connect4: 'cil_sock4_connect',
  sendmsg4: 'cil_sock4_sendmsg',
  recvmsg4: 'cil_sock4_recvmsg',
  getpeername4: 'cil_sock4_getpeername',
  connect6: 'cil_sock6_connect',
  sendmsg6: 'cil_sock6_sendmsg',
  recvmsg6: 'cil_sock6_recvmsg',
  getpeername6: 'cil_sock6_getpeername',
  /** close(): frees the socket's TCP slot (cilium_lb_sock_slots) */
  release: 'cil_sock_release',
} as const;
export type SockHook = keyof typeof SOCK_HOOKS;
const PINS = Object.keys(SOCK_HOOKS) as SockHook[];

export interface SocketLbOptions {
  /** The node's bpffs directory: maps pinned by name in it, links under links/sock. */
  bpffs: string;
  /** Compiled object (default: build/bpf/bpf_sock.o). */
  object?: string;
  /** The node's open maps (otherwise opened or created from `bpffs`, then owned). */
  maps?: DatapathMaps;
  /** Node-wide settings (lib/config/node.h). */
  node?: NodeDatapathConfig;
}

export interface SocketLbAttachment {
  /** The cgroup the hooks are on. */
  cgroup: string;
  cgroupId: bigint;
  /** True when every hook was pinned on this cgroup already and had its program swapped. */
  replaced: boolean;
  links: Record<SockHook, LinkInfo>;
  timings: { loadMs: number; attachMs: number };
}

/** Attaching socket-LB to a cgroup failed. */
export class SocketLbError extends DatapathError {
  override readonly code = 'failed-precondition';
}

export class SocketLbLoader implements Disposable {
  readonly maps: DatapathMaps;
  /** Where the links are pinned. */
  readonly pinDir: string;

  private constructor(
    private readonly object: ObjectLoader,
    maps: DatapathMaps,
    private readonly ownsMaps: boolean,
    private readonly node: NodeDatapathConfig,
    bpffs: string,
  ) {
    this.maps = maps;
    this.pinDir = join(bpffs, 'links', 'sock');
  }

  /** Parses and checks the object, opens (or creates) the node's maps. */
  static open(opts: SocketLbOptions): SocketLbLoader {
    const { object, maps } = openNodeObject(opts, DEFAULT_SOCK_OBJECT, Object.values(SOCK_HOOKS));
    return new SocketLbLoader(object, maps, opts.maps === undefined, opts.node ?? {}, opts.bpffs);
  }

  /**
   * Loads the hooks and attaches them to `cgroup` (a cgroup v2 directory), or swaps them into the
   * links pinned on it by an earlier attach. Hooks pinned on another cgroup are moved here.
   */
  attach(cgroup: string): SocketLbAttachment {
    let id: bigint;
    try {
      id = cgroupId(cgroup);
    } catch (err) {
      throw new SocketLbError(`socket-LB: cgroup ${cgroup} not found`, { cause: err });
    }
    const t0 = performance.now();
    const coll = this.object.load(nodeConstants(this.node, this.maps.lb.maglevTableSize));
    const t1 = performance.now();
    try {
      const attachments: ProgramAttachment[] = PINS.map((pin) => ({
        program: SOCK_HOOKS[pin],
        pin,
        at: { kind: 'cgroup', cgroup },
      }));
      const r = this.object.attach(coll, this.pinDir, attachments);
      return {
        cgroup,
        cgroupId: id,
        replaced: r.replaced,
        links: r.links as Record<SockHook, LinkInfo>,
        timings: { loadMs: round(t1 - t0), attachMs: round(performance.now() - t1) },
      };
    } catch (err) {
      throw new SocketLbError(`socket-LB: attaching to ${cgroup} failed: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      coll.close(); // the links keep the programs
    }
  }

  /** The hooks pinned now, by hook (cgroupId 0: their cgroup was removed). */
  pinned(): Partial<Record<SockHook, LinkInfo>> {
    return pinnedLinks(this.pinDir, PINS);
  }

  /** Detaches and unpins every hook. False when none was pinned. */
  detach(): boolean {
    return detachPinned(this.pinDir, PINS);
  }

  close(): void {
    this.object.close();
    if (this.ownsMaps) this.maps.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
