export {
  ClusterPool,
  type ClusterPoolConfig,
  type ClusterPoolState,
  DEFAULT_IPV4_CLUSTER_CIDR,
  DEFAULT_IPV4_NODE_MASK,
  DEFAULT_IPV6_CLUSTER_CIDR,
  DEFAULT_IPV6_NODE_MASK,
  type NodeCidrs,
} from './cluster-pool.js';
export {
  AddressConflictError,
  InvalidCidrError,
  IpamError,
  IpamStateError,
  PoolExhaustedError,
} from './errors.js';
export { canonicalIP, formatIP, parseCidr, parseIP } from './ip.js';
export {
  type AddressAllocation,
  type IpamOwner,
  NodeIpam,
  type NodeIpamConfig,
  type NodeIpamState,
  ownerKey,
  type PodAllocation,
} from './node-ipam.js';
export { JsonStateFile } from './store.js';
