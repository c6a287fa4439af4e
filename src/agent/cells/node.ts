/**
 * This node and the others: the node registry (the local node published through the kvstore,
 * remote nodes learnt from it), the node's own IPs (node addresses and router IPs) claimed in the
 * ipcache as the host identity, remote nodes' addresses as remote-node, and (routerCell) the
 * router device pods route through.
 */
import { isIPv6 } from 'node:net';
import { setupNodeRouter } from '../../cni/endpoint-plumbing.js';
import { cell } from '../../hive/hive.js';
import { ReservedIdentity } from '../../identity/numbering.js';
import type { IpcacheInfo } from '../../ipcache/ipcache.js';
import { type Node, NodeKvSync, NodeRegistry, nodeId } from '../../node/index.js';
import {
  type AgentCellExtras,
  ConfigT,
  IpamT,
  IpcacheT,
  KvStoreT,
  LogT,
  type NodeService,
  NodeT,
} from './tokens.js';

export const NODE_OWNER = 'node:local';

export const nodeCell = cell<NodeService, AgentCellExtras>({
  name: 'node',
  needs: [ConfigT, IpamT, IpcacheT, KvStoreT, LogT],
  provides: NodeT,
  build: (get) => {
    const cfg = get(ConfigT);
    const ipam = get(IpamT);
    const { meta } = get(IpcacheT);
    const log = get(LogT);
    const routerIPs = ipam.routerIPs();
    const local: Node = {
      name: cfg.node,
      cluster: cfg.clusterName,
      clusterId: cfg.clusterId,
      addresses: cfg.nodeIPs.map((ip) => ({ type: 'InternalIP' as const, ip })),
      ipv4PodCidr: cfg.podCidrV4,
      ...(cfg.podCidrV6 ? { ipv6PodCidr: cfg.podCidrV6 } : {}),
      labels: cfg.nodeLabels,
    };
    const registry = new NodeRegistry(local);
    const sync = new NodeKvSync({
      store: get(KvStoreT),
      registry,
      onError: (err) => log.warn({ err }, 'node discovery'),
    });
    // Every node's addresses in the ipcache: this node's as host, the others' as remote-node.
    const claim = (n: Node, isLocal: boolean) => {
      const ips = n.addresses.map((a) => a.ip);
      if (isLocal) ips.push(...[routerIPs.ipv4, routerIPs.ipv6].filter((ip): ip is string => !!ip));
      const identity = isLocal ? ReservedIdentity.Host : ReservedIdentity.RemoteNode;
      meta.replaceOwner(
        isLocal ? NODE_OWNER : `node:${nodeId(n)}`,
        isLocal ? 'node' : 'kvstore',
        new Map<string, IpcacheInfo>(ips.map((ip) => [hostPrefix(ip), { identity }])),
      );
    };
    let unsubscribe = () => {};
    return {
      provide: { registry, routerIPs },
      start: async () => {
        unsubscribe = registry.subscribe(
          {
            onAdd: claim,
            onUpdate: (n, _before, isLocal) => claim(n, isLocal),
            onDelete: (n, isLocal) => meta.removeOwner(isLocal ? NODE_OWNER : `node:${nodeId(n)}`),
          },
          { replay: true },
        );
        await sync.start();
      },
      stop: () => {
        sync.close();
        unsubscribe();
      },
      status: () => ({ nodes: registry.list().length }),
    };
  },
});

/** The node's router device and its addresses (the pods' gateway). */
export const routerCell = cell<undefined, AgentCellExtras>({
  name: 'router',
  needs: [NodeT],
  build: (get) => ({
    start: async () => {
      const { routerIPs } = get(NodeT);
      await setupNodeRouter({ ipv4Router: routerIPs.ipv4, ipv6Router: routerIPs.ipv6 });
    },
  }),
});

export function hostPrefix(ip: string): string {
  return isIPv6(ip) ? `${ip}/128` : `${ip}/32`;
}
