/** Agent configuration: where its socket, state and pins live, and the node's addressing. */
import { join } from 'node:path';
import { runRoot } from '../common/paths.js';
import type { MaglevFill } from '../service/maglev.js';

/**
 * Node flags the agent's process runs with (`lab up` starts it so): semi-spaces of at most 4 MiB
 * instead of V8's default 16 MiB, which would stay committed (~20 MiB of RSS) in a process whose
 * live heap is ~25 MiB. V8 grows them only under allocation pressure (the L7 proxy's requests):
 * at 1 MiB the proxy spent about a tenth more CPU per request, most of it copying requests in
 * flight out of a young generation that filled every few hundred requests (docs/agent.md). The
 * flag works on the command line or in NODE_OPTIONS, not through v8.setFlagsFromString.
 * `--expose-gc` lets the agent collect once it goes quiet (src/agent/memory.ts).
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--expose-gc'];

/**
 * glibc malloc settings of the agent's process (the lab sets them; the environment wins): a fixed
 * mmap threshold, so every buffer of 128 KiB or more (an ELF object read for each endpoint's
 * programs) gets its own mapping, given back when freed, instead of glibc raising the threshold
 * and carving them from heaps that then stay fragmented (~20 KiB of RSS per pod); two arenas
 * instead of one per busy thread (libuv's pool has 16).
 */
export const AGENT_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

export const ROUTING_MODES = ['vxlan', 'native'] as const;
export type RoutingMode = (typeof ROUTING_MODES)[number];

export interface AgentConfig {
  lab: string;
  node: string;
  /** Directory holding agent.sock, hubble.sock, the bpffs mount and state/. */
  runDir: string;
  stateDir: string;
  bpffsDir: string;
  socketPath: string;
  /** This node's pod CIDR (cluster-pool IPAM hands out one per node). */
  podCidrV4: string;
  podCidrV6?: string | undefined;
  /** The node's own addresses (underlay), mapped to the host identity in the ipcache. */
  nodeIPs: string[];
  /** The node's labels (what fromNodes/toNodes selectors match on the host identity). */
  nodeLabels: Record<string, string>;
  clusterName: string;
  clusterId: number;
  /** 0: an event for every packet; 1: only new connections, TCP flag changes and drops. */
  monitorAggregation: number;
  policyAuditMode: boolean;
  /** 'always': the node's own host reaches its pods whatever their ingress says (upstream's default); 'policy': as written. */
  allowLocalhost: 'always' | 'policy';
  /** Conntrack entries count every packet and byte (`bpf ct list`); off by default, as upstream. */
  conntrackAccounting: boolean;
  /** External devices: NodePort / LoadBalancer / external-IP traffic from outside arrives there. */
  devices: string[];
  /** cgroup v2 directory of this node's processes: socket-LB attaches there (none: no socket-LB). */
  cgroup?: string | undefined;
  /**
   * How packets reach other nodes' pods: vxlan (default: encapsulated by the datapath, VNI = the
   * source identity, through cilium_vxlan) or native (the node routes each other node's pod CIDR
   * via that node's address, learnt from the node registry).
   */
  routingMode: RoutingMode;
  /**
   * IPv4 BIG TCP (upstream's --enable-ipv4-big-tcp; native routing only): the node's devices and
   * pods' veths take IPv4 GSO/GRO packets of up to 192 KiB (src/datapath/big-tcp.ts).
   */
  enableIpv4BigTcp: boolean;
  /** Where cluster state lives: memory (one node) or etcd (a cluster; kvstoreEndpoints). */
  kvstore: 'memory' | 'etcd';
  kvstoreEndpoints: string[];
  /** TTL of the etcd lease this node's keys are bound to: a dead agent's keys vanish about this long after. */
  kvstoreLeaseTtlSeconds: number;
  /** Backend selection for north-south traffic: random (default) or maglev. */
  lbAlgorithm: 'random' | 'maglev';
  /** Maglev lookup table size M (a prime from upstream's list). */
  maglevTableSize: number;
  /** How Maglev tables are filled: stable (default) or upstream's permutation fill. */
  maglevFill: MaglevFill;
  /** Hubble: flow ring capacity and loopback ports (0 = pick a free one, -1 = off). */
  hubbleRingSize: number;
  hubbleListenPort: number;
  metricsPort: number;
  hubbleMetrics: string[];
  /** Seconds a DNS answer allows its IPs at least (upstream's --tofqdns-min-ttl; 0: the answer's TTL). */
  fqdnMinTtlSeconds: number;
  logLevel: string;
}

export function defaultConfig(lab: string, node: string, overrides: Partial<AgentConfig> = {}): AgentConfig {
  const runDir = overrides.runDir ?? join(runRoot, lab, node);
  return {
    lab,
    node,
    runDir,
    stateDir: join(runDir, 'state'),
    bpffsDir: join(runDir, 'bpffs'),
    socketPath: join(runDir, 'agent.sock'),
    podCidrV4: '10.200.0.0/24',
    nodeIPs: [],
    nodeLabels: { 'kubernetes.io/hostname': node, 'kubernetes.io/os': 'linux' },
    clusterName: 'default',
    clusterId: 0,
    monitorAggregation: 1,
    policyAuditMode: false,
    allowLocalhost: 'always',
    conntrackAccounting: false,
    routingMode: 'vxlan',
    enableIpv4BigTcp: false,
    kvstore: 'memory',
    kvstoreEndpoints: [],
    kvstoreLeaseTtlSeconds: 15,
    devices: [],
    lbAlgorithm: 'random',
    maglevTableSize: 16381,
    maglevFill: 'stable',
    hubbleRingSize: 4095,
    hubbleListenPort: 0,
    metricsPort: 0,
    hubbleMetrics: ['drop', 'tcp', 'flow', 'port-distribution', 'icmp', 'http', 'dns'],
    fqdnMinTtlSeconds: 0,
    logLevel: 'info',
    ...overrides,
  };
}

/** Socket path of the agent for a lab node (what the CLI and the CNI plugin talk to). */
export function agentSocketPath(lab: string, node: string): string {
  return join(runRoot, lab, node, 'agent.sock');
}
