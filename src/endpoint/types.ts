/** An endpoint: one pod interface on this node, with its identity and datapath handles. */
export interface EndpointRecord {
  id: number;
  containerId: string;
  ifName: string;
  netns: string;
  podNamespace: string;
  podName: string;
  /** Identity-relevant labels, canonical `source:key=value` strings. */
  labels: string[];
  identity: number;
  ipv4?: string;
  ipv6?: string;
  /** The pod-side MAC and the host-side veth (router MAC as the pod sees it). */
  mac: string;
  hostIfName: string;
  hostIfindex: number;
  hostMac: string;
  namedPorts: Record<string, { port: number; protocol: string }>;
  /** Policy repository revision the datapath enforces for this endpoint. */
  policyRevision: number;
  ingressEnforced: boolean;
  egressEnforced: boolean;
  state: 'waiting-for-interface' | 'regenerating' | 'ready' | 'disconnecting';
  createdAt: string;
}

export const MAX_ENDPOINT_ID = 4095;
