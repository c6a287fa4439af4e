/** cilium_events (ring buffer) and cilium_events_lost: reading and decoding datapath events. */
import { type BpfMap, RingBufReader } from '../../ebpf/index.js';
import {
  DEFS,
  type DropNotify,
  dropNotify,
  eventHdr,
  type PolicyVerdictNotify,
  policyVerdictNotify,
  type TraceNotify,
  traceNotify,
} from './generated/layouts.js';

export type DatapathEvent =
  | { kind: 'drop'; event: DropNotify; packet: Uint8Array }
  | { kind: 'trace'; event: TraceNotify; packet: Uint8Array }
  | { kind: 'policy-verdict'; event: PolicyVerdictNotify; packet: Uint8Array }
  | { kind: 'unknown'; type: number; bytes: Uint8Array };

/**
 * Decodes one ring-buffer record by its first byte (message type). `packet` is the captured
 * prefix of the packet (hdr.lenCap bytes from the Ethernet header); everything is copied, so the
 * result outlives the ring-buffer view.
 */
export function decodeEvent(rec: Uint8Array): DatapathEvent {
  const type = rec[0] ?? 0;
  const cap = (data: Uint8Array): Uint8Array => data.subarray(0, eventHdr.decode(rec).lenCap);
  switch (type) {
    case DEFS.CILIUM_NOTIFY_DROP:
      if (rec.length >= dropNotify.size) {
        const event = dropNotify.decode(rec);
        return { kind: 'drop', event, packet: cap(event.data) };
      }
      break;
    case DEFS.CILIUM_NOTIFY_TRACE:
      if (rec.length >= traceNotify.size) {
        const event = traceNotify.decode(rec);
        return { kind: 'trace', event, packet: cap(event.data) };
      }
      break;
    case DEFS.CILIUM_NOTIFY_POLICY_VERDICT:
      if (rec.length >= policyVerdictNotify.size) {
        const event = policyVerdictNotify.decode(rec);
        return { kind: 'policy-verdict', event, packet: cap(event.data) };
      }
      break;
  }
  return { kind: 'unknown', type, bytes: rec.slice() };
}

export class EventsMap {
  constructor(
    readonly ring: BpfMap,
    readonly lostCounter: BpfMap,
  ) {}

  /** A reader over the ring (one consumer at a time per node: the agent's monitor). */
  reader(): RingBufReader {
    return new RingBufReader(this.ring);
  }

  /** Drains what is in the ring now, decoded. */
  drain(reader: RingBufReader, max = Number.POSITIVE_INFINITY): DatapathEvent[] {
    const out: DatapathEvent[] = [];
    reader.poll((rec) => out.push(decodeEvent(rec)), max);
    return out;
  }

  /** Events the datapath could not reserve (ring full), summed over CPUs. */
  lost(): bigint {
    const v = this.lostCounter.lookup(new Uint8Array(4));
    if (!v) return 0n;
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    let sum = 0n;
    for (let o = 0; o + 8 <= v.length; o += 8) sum += dv.getBigUint64(o, true);
    return sum;
  }
}
