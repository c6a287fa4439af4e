/**
 * This node and the others: the node registry (the local node published through the kvstore,
 * remote nodes learnt from it), the node's own IPs (node addresses and router IPs) claimed in the
 * ipcache as the host identity, remote nodes' addresses as remote-node, and (routerCell) the
 * router device pods route through.
 */
import { routes } from '../../api/types.js';
import { setupNodeRouter } from '../../cni/endpoint-plumbing.js';
import { run } from '../../datapath/linux/index.js';
import { cell } from '../../hive/hive.js';
import { ReservedIdentity } from '../../identity/numbering.js';
import type { IpcacheInfo } from '../../ipcache/ipcache.js';
import { type Node, NodeKvSync, NodeRegistry, nodeId, nodeInternalIp } from '../../node/index.js';
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
        // A bare address is its host prefix (/32, /128) to the ipcache.
        new Map<string, IpcacheInfo>(ips.map((ip) => [ip, { identity }])),
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
      routes: (r) => {
        r.route(routes.nodeList, () =>
          registry.list().map((n) => ({
            name: n.name,
            cluster: n.cluster,
            local: registry.isLocal(n),
            addresses: n.addresses.map((a) => ({ type: a.type, ip: a.ip })),
            ...(n.ipv4PodCidr ? { ipv4PodCidr: n.ipv4PodCidr } : {}),
            ...(n.ipv6PodCidr ? { ipv6PodCidr: n.ipv6PodCidr } : {}),
            labels: { ...n.labels },
          })),
        );
      },
    };
  },
});

/**
 * The node's router device and its addresses (the pods' gateway), and native routing
 * (--routing-mode native): a route to every other node's pod CIDR via that node's address, kept as
 * nodes come and go. The VXLAN overlay routes them itself (overlay.ts).
 */
export const routerCell = cell<undefined, AgentCellExtras>({
  name: 'router',
  needs: [NodeT, LogT, ConfigT],
  build: (get) => {
    const { routerIPs, registry } = get(NodeT);
    const native = get(ConfigT).routingMode === 'native';
    const log = get(LogT).child({ subsys: 'routing' });
    const routes = new Map<string, string[]>(); // node → ["cidr via ip"] (IPv4, and IPv6 when both have it)
    const apply = async (n: Node, gone: boolean) => {
      const id = nodeId(n);
      // An IPv6 pod CIDR needs the node's IPv6 address as gateway (the kernel takes no IPv4 one).
      const want = gone
        ? []
        : ([4, 6] as const).flatMap((f) => {
            const cidr = f === 4 ? n.ipv4PodCidr : n.ipv6PodCidr;
            const via = nodeInternalIp(n, f);
            return cidr && via ? [`${cidr} via ${via}`] : [];
          });
      const have = routes.get(id) ?? [];
      if (have.join() === want.join()) return;
      try {
        for (const r of have.filter((r) => !want.includes(r)))
          await run(['ip', 'route', 'del', ...r.split(' ')]).catch(() => {});
        for (const r of want) await run(['ip', 'route', 'replace', ...r.split(' ')]);
        if (want.length) routes.set(id, want);
        else routes.delete(id);
        log.info({ node: id, routes: want, removed: have.filter((r) => !want.includes(r)) }, 'node route');
      } catch (err) {
        log.warn({ err, node: id, routes: want }, 'node route failed');
      }
    };
    let chain: Promise<void> = Promise.resolve();
    const queue = (n: Node, isLocal: boolean, gone: boolean) => {
      if (isLocal || !native) return;
      chain = chain.then(() => apply(n, gone));
    };
    let unsubscribe = () => {};
    return {
      start: async () => {
        await setupNodeRouter({ ipv4Router: routerIPs.ipv4, ipv6Router: routerIPs.ipv6 });
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
      },
    };
  },
});
