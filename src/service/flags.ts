/**
 * Numbers the load-balancer maps share with the datapath, with upstream's values (bpf/lib/lb.h,
 * pkg/loadbalancer): service flag bits, lookup scopes, backend states, the algorithm bits of the
 * master entry, and the text `bpf lb list` prints for the flags. Pure.
 */

/**
 * Service flags as one u16, as upstream's Go `ServiceFlags`: the low byte is `lb4_service.flags`,
 * the high byte `lb4_service.flags2` (see splitFlags).
 */
export const SVC_FLAG = {
  EXTERNAL_IP: 1 << 0,
  NODEPORT: 1 << 1,
  EXT_LOCAL_SCOPE: 1 << 2,
  HOSTPORT: 1 << 3,
  AFFINITY: 1 << 4,
  LOADBALANCER: 1 << 5,
  /** Reachable from outside the cluster: not a wildcard/surrogate, not a ClusterIP (by default). */
  ROUTABLE: 1 << 6,
  SOURCE_RANGE: 1 << 7,
  // flags2
  LOCALREDIRECT: 1 << 8,
  NAT_46X64: 1 << 9,
  L7_LOADBALANCER: 1 << 10,
  LOOPBACK: 1 << 11,
  INT_LOCAL_SCOPE: 1 << 12,
  TWO_SCOPES: 1 << 13,
  /** On backend slots: the backend is quarantined. On the master entry: SOURCE_RANGE_DENY. */
  QUARANTINED: 1 << 14,
  SOURCE_RANGE_DENY: 1 << 14,
  FWD_MODE_DSR: 1 << 15,
} as const;

/** `lb4_key.scope`: the external entry holds every backend, the internal one node-local ones. */
export const LB_SCOPE = { external: 0, internal: 1 } as const;
export type LbScope = keyof typeof LB_SCOPE;

/** `lb4_backend.flags`: the backend's state. */
export const BACKEND_STATE = { active: 0, terminating: 1, quarantined: 2, maintenance: 3 } as const;
export type BackendState = keyof typeof BACKEND_STATE;

/** Upper 8 bits of the master entry's affinity-timeout word (LB_ALGORITHM_SHIFT). */
export const LB_ALGORITHM = { random: 1, maglev: 2 } as const;
export type LbAlgorithm = keyof typeof LB_ALGORITHM;
export const LB_ALGORITHM_SHIFT = 24;
export const AFFINITY_TIMEOUT_MASK = (1 << LB_ALGORITHM_SHIFT) - 1;

/** IP protocol numbers of `lb4_key.proto` and `lb4_backend.proto` (0 = the wildcard entry). */
export const IPPROTO = { ANY: 0, TCP: 6, UDP: 17 } as const;

/** The master entry's u32 union: algorithm in the upper 8 bits, affinity timeout (s) in the lower 24. */
export function masterWord(algorithm: LbAlgorithm, affinityTimeout: number): number {
  return ((LB_ALGORITHM[algorithm] << LB_ALGORITHM_SHIFT) | (affinityTimeout & AFFINITY_TIMEOUT_MASK)) >>> 0;
}

export function splitFlags(flags: number): { flags: number; flags2: number } {
  return { flags: flags & 0xff, flags2: (flags >> 8) & 0xff };
}

/**
 * The flags as `cilium-dbg bpf lb list` prints them: the type, then Local, InternalLocal,
 * two-scopes, sessionAffinity, non-routable, check source-range (+ deny), 46x64, l7-load-balancer,
 * loopback.
 */
export function formatServiceFlags(flags: number): string {
  const has = (bit: number) => (flags & bit) !== 0;
  const type = has(SVC_FLAG.EXTERNAL_IP)
    ? 'ExternalIPs'
    : has(SVC_FLAG.NODEPORT)
      ? 'NodePort'
      : has(SVC_FLAG.LOADBALANCER)
        ? 'LoadBalancer'
        : has(SVC_FLAG.HOSTPORT)
          ? 'HostPort'
          : has(SVC_FLAG.LOCALREDIRECT)
            ? 'LocalRedirect'
            : 'ClusterIP';
  const out = [type];
  if (has(SVC_FLAG.EXT_LOCAL_SCOPE)) out.push('Local');
  if (has(SVC_FLAG.INT_LOCAL_SCOPE)) out.push('InternalLocal');
  if (has(SVC_FLAG.TWO_SCOPES)) out.push('two-scopes');
  if (has(SVC_FLAG.AFFINITY)) out.push('sessionAffinity');
  if (!has(SVC_FLAG.ROUTABLE)) out.push('non-routable');
  if (has(SVC_FLAG.SOURCE_RANGE)) {
    out.push('check source-range');
    if (has(SVC_FLAG.SOURCE_RANGE_DENY)) out.push('deny');
  }
  if (has(SVC_FLAG.NAT_46X64)) out.push('46x64');
  if (has(SVC_FLAG.L7_LOADBALANCER)) out.push('l7-load-balancer');
  if (has(SVC_FLAG.LOOPBACK)) out.push('loopback');
  return out.join(', ');
}
