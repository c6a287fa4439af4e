/** cilium_metrics: per-CPU packet/byte counters by (reason, direction, endpoint), summed over CPUs. */
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
  constructor(readonly map: BpfMap) {}

  list(): MetricsEntry[] {
    const slot = (metricsValue.size + 7) & ~7;
    const cpus = this.map.userValueSize / slot;
    const out: MetricsEntry[] = [];
    forEachEntry(this.map, (kb, ko, vb, vo) => {
      const k = metricsKey.decode(kb, ko);
      let packets = 0n;
      let bytes = 0n;
      for (let c = 0; c < cpus; c++) {
        const v = metricsValue.decode(vb, vo + c * slot);
        packets += v.packets;
        bytes += v.bytes;
      }
      out.push({
        reason: k.reason,
        direction: k.dir === DEFS.METRIC_EGRESS ? 'egress' : 'ingress',
        endpointId: k.lxcId,
        packets,
        bytes,
      });
    });
    return out;
  }
}
