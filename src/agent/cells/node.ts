/**
 * This node: its own IPs (node addresses and router IPs) claimed in the ipcache as the host
 * identity, and (routerCell) the router device pods route through.
 */
import { isIPv6 } from 'node:net';
import { setupNodeRouter } from '../../cni/endpoint-plumbing.js';
import { cell } from '../../hive/hive.js';
import { ReservedIdentity } from '../../identity/numbering.js';
import { type AgentCellExtras, ConfigT, IpamT, IpcacheT, NodeT } from './tokens.js';

export const NODE_OWNER = 'node:local';

export const nodeCell = cell<{ routerIPs: { ipv4?: string; ipv6?: string } }, AgentCellExtras>({
  name: 'node',
  needs: [ConfigT, IpamT, IpcacheT],
  provides: NodeT,
  build: (get) => {
    const cfg = get(ConfigT);
    const ipam = get(IpamT);
    const { meta } = get(IpcacheT);
    const node = { routerIPs: {} as { ipv4?: string; ipv6?: string } };
    return {
      provide: node,
      start: () => {
        node.routerIPs = ipam.routerIPs();
        const own = [...cfg.nodeIPs, node.routerIPs.ipv4, node.routerIPs.ipv6].filter(
          (ip): ip is string => !!ip,
        );
        meta.replaceOwner(
          NODE_OWNER,
          'node',
          new Map(own.map((ip) => [hostPrefix(ip), { identity: ReservedIdentity.Host }])),
        );
      },
    };
  },
});

export function hostPrefix(ip: string): string {
  return isIPv6(ip) ? `${ip}/128` : `${ip}/32`;
}

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
