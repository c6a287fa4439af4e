/**
 * The VXLAN overlay of a node: its collect-metadata VXLAN device (`cilium_vxlan`, no fixed VNI or
 * remote: every packet carries its tunnel key, set by our programs) and bpf_overlay.o on it
 * (`cil_from_overlay` on tcx ingress: decapsulated packets to the local pod's to-container program
 * with the sender's identity from the VNI; `cil_to_overlay` on tcx egress: the tunnel key of what
 * the node's stack routes there). Pods' packets to other nodes are encapsulated by bpf_lxc itself
 * (ENCAP_IFINDEX, the device's ifindex in every object's node constants).
 *
 * Links are pinned under `<bpffs>/links/overlay/<device>/{ingress,egress}` and outlive the agent;
 * attaching again swaps the programs in place. The device is adopted when it exists as a
 * collect-metadata VXLAN device on the port, otherwise made again.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { bpfObjectPath } from '../common/paths.js';
import { type ConstantValue, ifindexOf, type LinkInfo } from '../ebpf/index.js';
import { DatapathError } from './errors.js';
import { ipBatch, ipJson, LinuxCommandError } from './linux/index.js';
import { type NodeDatapathConfig, nodeConstants, openNodeObject } from './loader.js';
import type { DatapathMaps } from './maps/index.js';
import { detachPinned, type ObjectLoader, pinnedLinks } from './object-loader.js';

/** build/bpf/bpf_overlay.o of this checkout (or of CILIUM_TS_BPF_DIR). */
export const DEFAULT_OVERLAY_OBJECT = bpfObjectPath('bpf_overlay.o');

export const OVERLAY_DEVICE = 'cilium_vxlan';
/** Upstream's VXLAN port (not IANA's 4789). */
export const VXLAN_PORT = 8472;
/** Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 bytes. */
export const VXLAN_OVERHEAD = 50;
export const PROG_FROM_OVERLAY = 'cil_from_overlay';
export const PROG_TO_OVERLAY = 'cil_to_overlay';

const PINS = ['ingress', 'egress'] as const;

/** Setting up the overlay device or its programs failed. */
export class OverlayError extends DatapathError {}

interface VxlanLink {
  ifindex: number;
  mtu: number;
  flags: string[];
  linkinfo?: { info_kind?: string; info_data?: { external?: boolean; port?: number } };
}

export interface OverlayDevice {
  name: string;
  ifindex: number;
  mtu: number;
  /** True when a matching device existed already (agent restart). */
  adopted: boolean;
}

/**
 * Makes (or adopts) the node's collect-metadata VXLAN device on `port`, without ARP (the stack's
 * packets to it are addressed by the egress program, not by neighbours), MTU `mtu`, up.
 */
export async function ensureOverlayDevice(
  o: { name?: string; port?: number; mtu: number; netns?: string | undefined } = { mtu: 1450 },
): Promise<OverlayDevice> {
  const name = o.name ?? OVERLAY_DEVICE;
  const port = o.port ?? VXLAN_PORT;
  if (!Number.isInteger(o.mtu) || o.mtu < 1280 || o.mtu > 65535)
    throw new OverlayError(`mtu: expected an integer from 1280 to 65535, got ${JSON.stringify(o.mtu)}`, {
      code: 'invalid-argument',
      field: 'mtu',
    });
  const ns = { netns: o.netns };
  const existing = await showVxlan(name, o.netns);
  const fits =
    existing?.linkinfo?.info_kind === 'vxlan' &&
    existing.linkinfo.info_data?.external === true &&
    existing.linkinfo.info_data.port === port;
  const settle = ['link', 'set', 'dev', name, 'arp', 'off', 'mtu', String(o.mtu), 'up'];
  try {
    if (existing && !fits) await ipBatch([['link', 'del', 'dev', name]], ns);
    if (!fits)
      await ipBatch(
        [
          ['link', 'add', name, 'type', 'vxlan', 'external', 'dstport', String(port), 'nolearning'],
          // no IPv6 link-local address: the device sends nothing of its own (router solicitations)
          ['link', 'set', 'dev', name, 'addrgenmode', 'none'],
          settle,
        ],
        ns,
      );
    else await ipBatch([settle], ns);
  } catch (err) {
    throw new OverlayError(`${name}: setting up the VXLAN device failed: ${(err as Error).message}`, {
      code: 'failed-precondition',
      cause: err,
    });
  }
  const l = await showVxlan(name, o.netns);
  if (!l)
    throw new OverlayError(`${name}: the VXLAN device vanished while it was set up`, { code: 'internal' });
  return { name, ifindex: l.ifindex, mtu: l.mtu, adopted: fits };
}

async function showVxlan(name: string, netns: string | undefined): Promise<VxlanLink | undefined> {
  try {
    const [l] = await ipJson<VxlanLink[]>(['-d', 'link', 'show', 'dev', name], { netns });
    return l;
  } catch (e) {
    if (e instanceof LinuxCommandError && e.isNotFound) return undefined;
    throw e;
  }
}

export interface OverlayLoaderOptions {
  /** The node's bpffs directory: maps pinned by name in it, links under links/overlay. */
  bpffs: string;
  /** Compiled object (default: build/bpf/bpf_overlay.o). */
  object?: string;
  /** The node's open maps (otherwise opened or created from `bpffs`, then owned). */
  maps?: DatapathMaps;
  /** Node-wide settings (lib/config/node.h), encapIfindex included: the same the endpoints get. */
  node?: NodeDatapathConfig;
}

export interface OverlayAttachment {
  device: string;
  ifindex: number;
  /** True when both links were pinned on this device already and had their programs swapped. */
  replaced: boolean;
  ingress: LinkInfo;
  egress: LinkInfo;
  timings: { loadMs: number; attachMs: number };
}

export class OverlayLoader implements Disposable {
  readonly maps: DatapathMaps;
  readonly linksDir: string;

  private constructor(
    private readonly object: ObjectLoader,
    maps: DatapathMaps,
    private readonly ownsMaps: boolean,
    private readonly node: NodeDatapathConfig,
    bpffs: string,
  ) {
    this.maps = maps;
    this.linksDir = join(bpffs, 'links', 'overlay');
  }

  static open(opts: OverlayLoaderOptions): OverlayLoader {
    const { object, maps } = openNodeObject(opts, DEFAULT_OVERLAY_OBJECT, [
      PROG_FROM_OVERLAY,
      PROG_TO_OVERLAY,
    ]);
    return new OverlayLoader(object, maps, opts.maps === undefined, opts.node ?? {}, opts.bpffs);
  }

  /** The .rodata constants of the load (lib/config/node.h only). */
  constants(): Record<string, ConstantValue> {
    return nodeConstants(this.node, this.maps.lb.maglevTableSize);
  }

  /** Loads bpf_overlay and attaches it to the device's tcx ingress and egress (or swaps it in). */
  attach(device: string, netns?: string): OverlayAttachment {
    let ifindex: number;
    try {
      ifindex = ifindexOf(device, netns);
    } catch (err) {
      throw new OverlayError(`device: interface ${device} not found${netns ? ` in ${netns}` : ''}`, {
        code: 'not-found',
        field: 'device',
        cause: err,
      });
    }
    const t0 = performance.now();
    let coll: ReturnType<ObjectLoader['load']>;
    try {
      coll = this.object.load(this.constants());
    } catch (err) {
      throw new OverlayError(`${device}: loading bpf_overlay failed: ${(err as Error).message}`, {
        code: 'failed-precondition',
        cause: err,
      });
    }
    const t1 = performance.now();
    try {
      const r = this.object.attach(coll, join(this.linksDir, device), [
        {
          program: PROG_FROM_OVERLAY,
          pin: 'ingress',
          at: { kind: 'tcx', direction: 'ingress', ifindex, netns },
        },
        { program: PROG_TO_OVERLAY, pin: 'egress', at: { kind: 'tcx', direction: 'egress', ifindex, netns } },
      ]);
      return {
        device,
        ifindex,
        replaced: r.replaced,
        ingress: r.links.ingress!,
        egress: r.links.egress!,
        timings: { loadMs: round(t1 - t0), attachMs: round(performance.now() - t1) },
      };
    } catch (err) {
      throw new OverlayError(`${device}: attaching bpf_overlay failed: ${(err as Error).message}`, {
        code: 'failed-precondition',
        cause: err,
      });
    } finally {
      coll.close(); // the links keep the programs
    }
  }

  /** The device's pinned links (ifindex 0: the device is gone). */
  pinned(device: string): Record<string, LinkInfo> {
    return pinnedLinks(join(this.linksDir, device), PINS);
  }

  /** Detaches and unpins the device's links. False when none was pinned. */
  detach(device: string): boolean {
    return detachPinned(join(this.linksDir, device), PINS);
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
