/**
 * The VXLAN overlay (--routing-mode vxlan, the default): the node's collect-metadata VXLAN device
 * (made before the datapath opens, so every object is loaded with its ifindex as ENCAP_IFINDEX),
 * bpf_overlay on it, and for every other node: its pod CIDRs in the ipcache as `world` with the
 * node's underlay address as tunnel endpoint (a pod there that no agent has published yet is
 * still reached; published pods carry their own identity, see ipsync.ts), and a route to them
 * through the device, so the node's own traffic to remote pods is encapsulated too (by
 * bpf_overlay's egress program). Native routing leaves all of this out (routerCell routes).
 */

import { run } from '../../datapath/linux/index.js';
import {
  ensureOverlayDevice,
  OVERLAY_DEVICE,
  type OverlayDevice,
  OverlayLoader,
  VXLAN_OVERHEAD,
  VXLAN_PORT,
} from '../../datapath/overlay.js';
import { ifindexOf } from '../../ebpf/index.js';
import { cell } from '../../hive/hive.js';
import { ReservedIdentity } from '../../identity/numbering.js';
import type { IpcacheInfo } from '../../ipcache/ipcache.js';
import { type Node, nodeId, nodeInternalIp } from '../../node/index.js';
import type { AgentConfig } from '../config.js';
import { nodeDatapathConfig } from '../datapath.js';
import { type AgentCellExtras, ConfigT, DatapathT, IpcacheT, LogT, NodeT } from './tokens.js';

/** The underlay MTU the lab's (and most) networks have; pods get it less the VXLAN overhead. */
export const UNDERLAY_MTU = 1500;

/** The MTU of pods and of routes into the overlay: undefined in native routing (the default 1500). */
export function overlayMtu(cfg: Pick<AgentConfig, 'routingMode'>): number | undefined {
  return cfg.routingMode === 'vxlan' ? UNDERLAY_MTU - VXLAN_OVERHEAD : undefined;
}

/** The overlay device's ifindex for the datapath objects' ENCAP_IFINDEX (0: native routing). */
export function encapIfindex(cfg: Pick<AgentConfig, 'routingMode'>): number {
  return cfg.routingMode === 'vxlan' ? ifindexOf(OVERLAY_DEVICE) : 0;
}

/** Makes or adopts the node's VXLAN device (vxlan mode; before the datapath opens). */
export async function prepareOverlayDevice(cfg: AgentConfig): Promise<OverlayDevice | undefined> {
  const mtu = overlayMtu(cfg);
  if (mtu === undefined) return undefined;
  return ensureOverlayDevice({ mtu });
}

const ownerOf = (n: Node) => `overlay:${nodeId(n)}`;

export const overlayCell = cell<undefined, AgentCellExtras>({
  name: 'overlay',
  needs: [ConfigT, LogT, DatapathT, NodeT, IpcacheT],
  build: (get) => {
    const cfg = get(ConfigT);
    const log = get(LogT).child({ subsys: 'overlay' });
    const dp = get(DatapathT);
    const { registry, routerIPs } = get(NodeT);
    const { meta } = get(IpcacheT);
    const mtu = overlayMtu(cfg);
    let loader: OverlayLoader | undefined;
    let ifindex = 0;
    const routes = new Map<string, string[]>(); // node → its pod CIDRs routed into the overlay

    /** The node's pod CIDRs: claimed in the ipcache with its tunnel endpoint, routed to the device. */
    const apply = async (n: Node, gone: boolean) => {
      const id = nodeId(n);
      const endpoint = nodeInternalIp(n, 4);
      const cidrs = gone || !endpoint ? [] : [n.ipv4PodCidr, n.ipv6PodCidr].filter((c): c is string => !!c);
      if (cidrs.length)
        meta.replaceOwner(
          ownerOf(n),
          'kvstore',
          new Map<string, IpcacheInfo>(
            cidrs.map((c) => [c, { identity: ReservedIdentity.World, tunnelEndpoint: endpoint }]),
          ),
        );
      else meta.removeOwner(ownerOf(n));
      const have = routes.get(id) ?? [];
      try {
        for (const c of have.filter((c) => !cidrs.includes(c)))
          await run(['ip', 'route', 'del', c, 'dev', OVERLAY_DEVICE]).catch(() => {});
        for (const c of cidrs) {
          const v6 = c.includes(':');
          const src = v6 ? routerIPs.ipv6 : routerIPs.ipv4;
          await run([
            'ip',
            ...(v6 ? ['-6'] : []),
            'route',
            'replace',
            c,
            'dev',
            OVERLAY_DEVICE,
            ...(src ? ['src', src] : []),
            'mtu',
            String(mtu),
          ]);
        }
        if (cidrs.length) routes.set(id, cidrs);
        else routes.delete(id);
        log.info({ node: id, tunnelEndpoint: endpoint ?? null, podCidrs: cidrs }, 'overlay tunnel');
      } catch (err) {
        log.warn({ err, node: id, podCidrs: cidrs }, 'overlay route failed');
      }
    };
    let chain: Promise<void> = Promise.resolve();
    const queue = (n: Node, isLocal: boolean, gone: boolean) => {
      if (isLocal) return;
      chain = chain.then(() => apply(n, gone));
    };
    let unsubscribe = () => {};
    return {
      start: async () => {
        if (cfg.routingMode !== 'vxlan') return;
        loader = OverlayLoader.open({ bpffs: cfg.bpffsDir, maps: dp.m, node: nodeDatapathConfig(cfg) });
        const a = loader.attach(OVERLAY_DEVICE);
        ifindex = a.ifindex;
        log.info({ device: OVERLAY_DEVICE, ifindex, replaced: a.replaced, ...a.timings }, 'overlay attached');
        unsubscribe = registry.subscribe(
          {
            onAdd: (n, isLocal) => queue(n, isLocal, false),
            onUpdate: (n, _b, isLocal) => queue(n, isLocal, false),
            onDelete: (n, isLocal) => queue(n, isLocal, true),
          },
          { replay: true },
        );
        await chain;
      },
      stop: async () => {
        unsubscribe();
        await chain;
        loader?.close();
      },
      status: () => ({
        routing:
          cfg.routingMode === 'vxlan'
            ? {
                mode: 'vxlan' as const,
                device: OVERLAY_DEVICE,
                ifindex,
                port: VXLAN_PORT,
                mtu: mtu ?? 0,
                tunnels: routes.size,
              }
            : { mode: 'native' as const },
      }),
    };
  },
});
