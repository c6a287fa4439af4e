/**
 * cilium_metrics and cilium_metrics_fwd: per-CPU packet/byte counters by (reason, direction,
 * endpoint), summed over CPUs. Forwarded packets of endpoints below METRICS_FWD_MAP_SIZE / 2 are
 * in the array (index endpoint * 2 + egress, the datapath's per-packet case), the rest in the hash
 * (bpf/lib/metrics.h); list() shows them as one.
 */
import type { BpfMap } from '../../ebpf/index.js';
import { forEachEntry } from './conntrack.js';
import { DEFS, metricsKey, metricsValue } from './generated/layouts.js';

export interface MetricsEntry {
  /** 0 = forwarded, else the drop reason code. */
  reason: number;
  direction: 'ingress' | 'egress';
  endpointId: number;
  packets: bigint;
  bytes: bigint;
}

export class MetricsMap {
  constructor(
    readonly map: BpfMap,
    readonly forwarded: BpfMap,
  ) {}

  list(): MetricsEntry[] {
    const out = new Map<string, MetricsEntry>();
    const add = (reason: number, egress: boolean, endpointId: number, packets: bigint, bytes: bigint) => {
      const direction = egress ? 'egress' : 'ingress';
      const id = `${reason}/${direction}/${endpointId}`;
      const e = out.get(id);
      if (e) {
        e.packets += packets;
        e.bytes += bytes;
      } else out.set(id, { reason, direction, endpointId, packets, bytes });
    };
    const sum = (m: BpfMap, vb: Uint8Array, vo: number): [bigint, bigint] => {
      const slot = (metricsValue.size + 7) & ~7;
      let packets = 0n;
      let bytes = 0n;
      for (let c = 0; c < m.userValueSize / slot; c++) {
        const v = metricsValue.decode(vb, vo + c * slot);
        packets += v.packets;
        bytes += v.bytes;
      }
      return [packets, bytes];
    };
    forEachEntry(this.forwarded, (kb, ko, vb, vo) => {
      const [packets, bytes] = sum(this.forwarded, vb, vo);
      if (packets === 0n) return;
      const idx = new DataView(kb.buffer, kb.byteOffset + ko, 4).getUint32(0, true);
      add(0, (idx & 1) === 1, idx >> 1, packets, bytes);
    });
    forEachEntry(this.map, (kb, ko, vb, vo) => {
      const k = metricsKey.decode(kb, ko);
      add(k.reason, k.dir === DEFS.METRIC_EGRESS, k.lxcId, ...sum(this.map, vb, vo));
    });
    return [...out.values()];
  }
}
