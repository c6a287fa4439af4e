import type { Node } from '../../../../src/node/index.js';

/** Node `name` with addresses and pod CIDRs numbered `i`. */
export function makeNode(name: string, i: number, extra: Partial<Node> = {}): Node {
  return {
    name,
    cluster: 'default',
    addresses: [
      { type: 'InternalIP', ip: `192.168.0.${i}` },
      { type: 'InternalIP', ip: `fd00::${i}` },
    ],
    ipv4PodCidr: `10.200.${i}.0/24`,
    ipv6PodCidr: `fd10:0:0:${i}::/64`,
    labels: { 'kubernetes.io/hostname': name },
    ...extra,
  };
}
