/**
 * Byte offsets of the datapath events (bpf/lib/defs.h: event_hdr, trace_notify, drop_notify,
 * policy_verdict_notify), taken from the layouts generated from the objects' BTF, so the parser
 * reads records with plain DataView accesses and there is no second, hand-kept copy of the structs.
 */
import type { StructLayout } from '../datapath/maps/codec.js';
import {
  DEFS,
  dropNotify,
  eventHdr,
  policyVerdictNotify,
  traceNotify,
} from '../datapath/maps/generated/layouts.js';

type Offsets<K extends string> = Readonly<Record<K | 'size', number>>;

/** The offsets of the named C members (throws at load if one is missing: the header changed). */
function offsets<K extends string>(layout: StructLayout<unknown, never>, members: readonly K[]): Offsets<K> {
  const byC = new Map(Object.values(layout.fields).map((f) => [f.cName, f.offset]));
  const out: Record<string, number> = { size: layout.size };
  for (const m of members) {
    const off = byC.get(m);
    if (off === undefined) throw new Error(`struct ${layout.name} has no member ${m}`);
    out[m] = off;
  }
  return out as Offsets<K>;
}

export const EVENT_CAPTURE_LEN: number = DEFS.EVENT_CAPTURE_LEN;
/** event_hdr.version written by this datapath. */
export const CILIUM_TS_EVENT_VERSION = 1;

export const EventHdr = offsets(eventHdr as StructLayout<unknown, never>, [
  'type',
  'subtype',
  'source',
  'hash',
  'len_orig',
  'len_cap',
  'version',
]);

const common = ['ifindex', 'ktime_ns', 'data'] as const;
export const TraceNotify = offsets(traceNotify as StructLayout<unknown, never>, [
  'src_label',
  'dst_label',
  'dst_id',
  'reason',
  'ipv6',
  ...common,
]);
export const DropNotify = offsets(dropNotify as StructLayout<unknown, never>, [
  'src_label',
  'dst_label',
  'dst_id',
  'file',
  'ipv6',
  'ext_error',
  ...common,
]);
export const PolicyVerdictNotify = offsets(policyVerdictNotify as StructLayout<unknown, never>, [
  'remote_label',
  'verdict',
  'dst_port',
  'proto',
  'dir',
  'ipv6',
  'match_type',
  'audited',
  'rule_cookie',
  'ktime_ns',
  'data',
]);

/** policy_verdict_notify.dir */
export const POLICY_INGRESS = 1;
export const POLICY_EGRESS = 2;
