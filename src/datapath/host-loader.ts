/**
 * The node's external device: bpf_host.o's `cil_from_netdev` attached with tcx ingress to the
 * interface traffic from outside the node arrives on (in a lab: the node namespace's underlay
 * interface), making it the north-south load balancer for NodePort, LoadBalancer and external-IP
 * services (bpf/lib/nodeport.h). One load per device, with the device's constants: the node's
 * IPv4 address on it (NodePort address, SNAT source), whether local backends are SNATed too, and
 * the host endpoint's ID.
 *
 * Links are pinned under `<bpffs>/links/netdev/<device>/ingress` and outlive the agent; attaching
 * the same device again (agent restart, new object) swaps the program in place with
 * BPF_LINK_UPDATE; a link pinned on a device that was replaced (same name, new ifindex) is
 * detached and a new one made.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { bpfObjectPath } from '../common/paths.js';
import { type ConstantValue, ifindexOf, type LinkInfo } from '../ebpf/index.js';
import { DatapathError } from './errors.js';
import { type NodeDatapathConfig, nodeConstants, openNodeObject } from './loader.js';
import { AddressError, parseIp } from './maps/addr.js';
import type { DatapathMaps } from './maps/index.js';
import { detachPinned, type ObjectLoader, pinDirs, pinnedLinks } from './object-loader.js';

/** build/bpf/bpf_host.o of this checkout (or of CILIUM_TS_BPF_DIR). */
export const DEFAULT_HOST_OBJECT = bpfObjectPath('bpf_host.o');

export const PROG_FROM_NETDEV = 'cil_from_netdev';

const PINS = ['ingress'] as const;

export interface HostDeviceLoaderOptions {
  /** The node's bpffs directory: maps pinned by name in it, links under links/netdev. */
  bpffs: string;
  /** Compiled object (default: build/bpf/bpf_host.o). */
  object?: string;
  /** The node's open maps (otherwise opened or created from `bpffs`, then owned). */
  maps?: DatapathMaps;
  /** Node-wide settings (lib/config/node.h): the same as the endpoints' loader gets. */
  node?: NodeDatapathConfig;
}

export interface HostDeviceConfig {
  /** The external device's name (≤ 15 characters). */
  device: string;
  /** Network namespace path of the device (the node's); default: the current one. */
  netns?: string | undefined;
  /**
   * The node's IPv4 address on the device (NODE_IPV4): a NodePort address, and the source that
   * connections to a backend on another node are SNATed to. Without it those connections are
   * dropped (DROP_NAT_NO_MAPPING); the ones to local backends still work.
   */
  nodeIpv4?: string | undefined;
  /**
   * NODEPORT_SNAT_LOCAL: SNAT connections to local backends too, as kube-proxy does (the backend
   * sees the node's address instead of the client's). Default false, upstream Cilium's way: a
   * local backend sees the client; its replies come back through this node anyway. Never for
   * externalTrafficPolicy: Local. SNATed connections share 4536 ports per backend address and port.
   */
  snatLocalBackends?: boolean | undefined;
  /** The node's host endpoint ID (HOST_EP_ID): events and metrics of the device's own decisions.
   * Default 0. */
  hostEndpointId?: number | undefined;
}

export interface HostDeviceAttachment {
  device: string;
  ifindex: number;
  /** True when the link was pinned on this device already and had its program swapped. */
  replaced: boolean;
  ingress: LinkInfo;
  timings: { loadMs: number; attachMs: number };
}

/** Attaching the external-device program failed, or its configuration is invalid (`field`). */
export class HostDeviceError extends DatapathError {}

const DEVICE_NAME = /^[^\s/:]{1,15}$/;

export class HostDeviceLoader implements Disposable {
  readonly maps: DatapathMaps;
  /** Where the links are pinned, one directory per device. */
  readonly linksDir: string;

  private constructor(
    private readonly object: ObjectLoader,
    maps: DatapathMaps,
    private readonly ownsMaps: boolean,
    private readonly node: NodeDatapathConfig,
    bpffs: string,
  ) {
    this.maps = maps;
    this.linksDir = join(bpffs, 'links', 'netdev');
  }

  /** Parses and checks the object, opens (or creates) the node's maps. */
  static open(opts: HostDeviceLoaderOptions): HostDeviceLoader {
    const { object, maps } = openNodeObject(opts, DEFAULT_HOST_OBJECT, [PROG_FROM_NETDEV]);
    return new HostDeviceLoader(object, maps, opts.maps === undefined, opts.node ?? {}, opts.bpffs);
  }

  /** The .rodata constants of one device's load (lib/config/node.h and lib/config/host.h). */
  constants(cfg: HostDeviceConfig): Record<string, ConstantValue> {
    let node: Uint8Array = new Uint8Array(4);
    if (cfg.nodeIpv4 !== undefined) {
      try {
        const ip = parseIp(cfg.nodeIpv4);
        if (ip.family !== 4) throw new AddressError(`${cfg.nodeIpv4} is not an IPv4 address`);
        node = ip.bytes;
      } catch (err) {
        if (!(err instanceof AddressError)) throw err;
        throw invalid('nodeIpv4', `nodeIpv4: ${err.message}`);
      }
    }
    const id = cfg.hostEndpointId ?? 0;
    if (!Number.isInteger(id) || id < 0 || id > 0xffff)
      throw invalid(
        'hostEndpointId',
        `hostEndpointId: expected an integer in 0..65535, got ${JSON.stringify(id)}`,
      );
    const snatLocal = cfg.snatLocalBackends ?? false;
    if (typeof snatLocal !== 'boolean')
      throw invalid(
        'snatLocalBackends',
        `snatLocalBackends: expected a boolean, got ${JSON.stringify(snatLocal)}`,
      );
    return {
      ...nodeConstants(this.node, this.maps.lb.maglevTableSize),
      NODE_IPV4: node,
      HOST_EP_ID: id,
      NODEPORT_SNAT_LOCAL: snatLocal ? 1 : 0,
    };
  }

  /**
   * Loads the program with the device's constants and attaches it to the device's tcx ingress, or
   * swaps it into the link pinned there by an earlier attach.
   */
  attach(cfg: HostDeviceConfig): HostDeviceAttachment {
    if (typeof cfg.device !== 'string' || !DEVICE_NAME.test(cfg.device))
      throw invalid('device', `device: expected an interface name, got ${JSON.stringify(cfg.device)}`);
    const constants = this.constants(cfg);
    let ifindex: number;
    try {
      ifindex = ifindexOf(cfg.device, cfg.netns);
    } catch (err) {
      throw new HostDeviceError(
        `device: interface ${cfg.device} not found${cfg.netns ? ` in ${cfg.netns}` : ''}`,
        { code: 'not-found', field: 'device', cause: err },
      );
    }
    const t0 = performance.now();
    let coll: ReturnType<ObjectLoader['load']>;
    try {
      coll = this.object.load(constants);
    } catch (err) {
      throw new HostDeviceError(
        `${cfg.device}: loading ${PROG_FROM_NETDEV} failed: ${(err as Error).message}`,
        {
          code: 'failed-precondition',
          cause: err,
        },
      );
    }
    const t1 = performance.now();
    try {
      const r = this.object.attach(coll, this.#pinDir(cfg.device), [
        {
          program: PROG_FROM_NETDEV,
          pin: 'ingress',
          at: { kind: 'tcx', direction: 'ingress', ifindex, netns: cfg.netns },
        },
      ]);
      return {
        device: cfg.device,
        ifindex,
        replaced: r.replaced,
        ingress: r.links.ingress!,
        timings: { loadMs: round(t1 - t0), attachMs: round(performance.now() - t1) },
      };
    } catch (err) {
      throw new HostDeviceError(
        `${cfg.device}: attaching ${PROG_FROM_NETDEV} failed: ${(err as Error).message}`,
        {
          code: 'failed-precondition',
          cause: err,
        },
      );
    } finally {
      coll.close(); // the link keeps the program
    }
  }

  /** Devices with a pinned link, by name (ifindex 0: the device is gone). */
  pinned(): Record<string, { ingress?: LinkInfo }> {
    const out: Record<string, { ingress?: LinkInfo }> = {};
    for (const d of pinDirs(this.linksDir)) {
      const links = pinnedLinks(this.#pinDir(d), PINS);
      if (links.ingress) out[d] = links;
    }
    return out;
  }

  /** Detaches and unpins the device's link. False when none was pinned. */
  detach(device: string): boolean {
    if (typeof device !== 'string' || !DEVICE_NAME.test(device))
      throw invalid('device', `device: expected an interface name, got ${JSON.stringify(device)}`);
    return detachPinned(this.#pinDir(device), PINS);
  }

  #pinDir(device: string): string {
    return join(this.linksDir, device);
  }

  close(): void {
    this.object.close();
    if (this.ownsMaps) this.maps.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function invalid(field: string, message: string): HostDeviceError {
  return new HostDeviceError(message, { code: 'invalid-argument', field });
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
