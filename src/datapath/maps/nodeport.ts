/**
 * cilium_nodeport_nat4 (bpf/lib/nodeport.h): the NAT of connections from outside the node to a
 * service, written by the datapath. Listing for `bpf nat list`-style views and tests; gc() removes
 * expired entries (the map is an LRU, so this only frees room early); flush() empties it.
 */
import type { BpfMap } from '../../ebpf/index.js';
import { be32Bytes, formatIp } from './addr.js';
import { fromNet } from './codec.js';
import { deleteWhere, forEachEntry, monotonicNs } from './conntrack.js';
import { type CtKey, ctKey, DEFS, nodeportNatEntry } from './generated/layouts.js';

/** One NAT entry, in host values. */
export interface NodePortNatEntry {
  /**
   * 'forward': `tuple` is the connection as the client sent it (client → frontend); `to` is the
   * source the node gives it (SNAT address and port). 'reverse': `tuple` is what the backend sees
   * (SNAT address or client → backend); its replies go to `to` (the client) from `service` (the
   * frontend), out of `ifindex`.
   */
  direction: 'forward' | 'reverse';
  protocol: number;
  tuple: { src: string; sport: number; dst: string; dport: number };
  to: { address: string; port: number };
  service: { address: string; port: number };
  revNatIndex: number;
  /** reverse: the device the connection came in on (0 on a port being claimed). */
  ifindex: number;
  /** Seconds until expiry (negative: expired). */
  expiresInS: number;
}

function keyAddr(k: CtKey, which: 's' | 'd'): string {
  const f = which === 's' ? ctKey.fields.saddr4 : ctKey.fields.daddr4;
  return formatIp(4, be32Bytes(fromNet(f, which === 's' ? k.saddr4 : k.daddr4)));
}

export class NodePortNatMap {
  constructor(readonly map: BpfMap) {}

  list(): NodePortNatEntry[] {
    const now = monotonicNs();
    const out: NodePortNatEntry[] = [];
    forEachEntry(this.map, (kb, ko, vb, vo) => {
      const k = ctKey.decode(kb, ko);
      const v = nodeportNatEntry.decode(vb, vo);
      out.push({
        direction: k.flags === DEFS.NAT_KEY_F_REV ? 'reverse' : 'forward',
        protocol: k.nexthdr,
        tuple: {
          src: keyAddr(k, 's'),
          sport: fromNet(ctKey.fields.sport, k.sport),
          dst: keyAddr(k, 'd'),
          dport: fromNet(ctKey.fields.dport, k.dport),
        },
        to: { address: formatIp(4, be32Bytes(v.toAddr4)), port: v.toPort },
        service: { address: formatIp(4, be32Bytes(v.svcAddr4)), port: v.svcPort },
        revNatIndex: v.revNatIndex,
        ifindex: v.ifindex,
        expiresInS: Number(v.lifetimeNs - now) / 1e9,
      });
    });
    return out;
  }

  /** Deletes entries whose lifetime has passed; returns how many were removed. */
  gc(now: bigint = monotonicNs()): number {
    return deleteWhere(this.map, (v, vo) => nodeportNatEntry.decode(v, vo).lifetimeNs < now);
  }

  /** Deletes every entry; returns how many were removed. */
  flush(): number {
    return deleteWhere(this.map, () => true);
  }
}
