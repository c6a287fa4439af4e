/**
 * Byte offsets of the datapath events (bpf/lib/defs.h: event_hdr, trace_notify,
 * drop_notify, policy_verdict_notify), little-endian host order. The unit tests
 * check every offset and size against the BTF of build/bpf/abi.o, so a change
 * to defs.h that is not mirrored here fails CI instead of misparsing events.
 */

export const EVENT_CAPTURE_LEN = 128;
export const CILIUM_TS_EVENT_VERSION = 1;

export const EventHdr = {
  type: 0,
  subtype: 1,
  source: 2,
  hash: 4,
  len_orig: 8,
  len_cap: 12,
  version: 14,
  size: 16,
} as const;

export const TraceNotify = {
  src_label: 16,
  dst_label: 20,
  dst_id: 24,
  reason: 26,
  ipv6: 27,
  ifindex: 28,
  ktime_ns: 32,
  data: 40,
  size: 168,
} as const;

export const DropNotify = {
  src_label: 16,
  dst_label: 20,
  dst_id: 24,
  file: 26,
  ipv6: 27,
  ifindex: 28,
  ktime_ns: 32,
  ext_error: 40,
  pad: 44,
  data: 48,
  size: 176,
} as const;

export const PolicyVerdictNotify = {
  remote_label: 16,
  verdict: 20,
  dst_port: 24,
  proto: 26,
  dir: 27,
  ipv6: 28,
  match_type: 29,
  audited: 30,
  pad: 31,
  rule_cookie: 32,
  ktime_ns: 40,
  data: 48,
  size: 176,
} as const;

/** policy_verdict_notify.dir */
export const POLICY_INGRESS = 1;
export const POLICY_EGRESS = 2;
