/** cilium_ct4_global / cilium_ct6_global: connection tracking entries, decoded for `bpf ct list`. */
import { type BpfMap, NotSupportedError } from '../../ebpf/index.js';
import { be32Bytes, type Family, formatIp } from './addr.js';
import { fromNet } from './codec.js';
import { type CtKey, ctEntry, ctKey, DEFS } from './generated/layouts.js';

export interface CtListEntry {
  family: Family;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...). */
  protocol: number;
  /** Initiator address and port (ICMP echo: the id in sport, dport 0). */
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** At which side of an endpoint the entry was made; 'service': a service connection's entry
   * (the tuple as the client sent it, to the frontend), holding its backend. */
  side: 'egress' | 'ingress' | 'service';
  /** Seconds until expiry (negative: expired, waiting for GC or reuse). */
  expiresInS: number;
  lifetimeNs: bigint;
  txPackets: bigint;
  txBytes: bigint;
  rxPackets: bigint;
  rxBytes: bigint;
  /** Identity of the initiator. */
  srcIdentity: number;
  /** CT_F_* flags. */
  flags: number;
  tcpFlagsSeen: number;
  replyTcpFlagsSeen: number;
  proxyPort: number;
  /** The service the connection was translated for (rev-NAT index), 0 if none. */
  revNatIndex: number;
  /** 'service' entries: the backend the connection goes to. */
  backendId: number;
}

/** CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(). */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

function addr(family: Family, k: CtKey, which: 's' | 'd'): string {
  if (family === 6) return formatIp(6, which === 's' ? k.saddr6 : k.daddr6);
  const f = which === 's' ? ctKey.fields.saddr4 : ctKey.fields.daddr4;
  return formatIp(4, be32Bytes(fromNet(f, which === 's' ? k.saddr4 : k.daddr4)));
}

function ctSide(flags: number): CtListEntry['side'] {
  if (flags & DEFS.CT_KEY_F_SERVICE) return 'service';
  return flags & DEFS.CT_KEY_F_INGRESS ? 'ingress' : 'egress';
}

export class ConntrackMaps {
  constructor(
    readonly ct4: BpfMap,
    readonly ct6: BpfMap,
  ) {}

  list(opts: { family?: Family } = {}): CtListEntry[] {
    const now = monotonicNs();
    const out: CtListEntry[] = [];
    for (const [family, m] of [
      [4, this.ct4],
      [6, this.ct6],
    ] as const) {
      if (opts.family && opts.family !== family) continue;
      forEachEntry(m, (kb, ko, vb, vo) => {
        const k = ctKey.decode(kb, ko);
        const v = ctEntry.decode(vb, vo);
        out.push({
          family,
          protocol: k.nexthdr,
          src: addr(family, k, 's'),
          sport: fromNet(ctKey.fields.sport, k.sport),
          dst: addr(family, k, 'd'),
          dport: fromNet(ctKey.fields.dport, k.dport),
          side: ctSide(k.flags),
          expiresInS: Number(v.lifetimeNs - now) / 1e9,
          lifetimeNs: v.lifetimeNs,
          txPackets: v.txPackets,
          txBytes: v.txBytes,
          rxPackets: v.rxPackets,
          rxBytes: v.rxBytes,
          srcIdentity: v.srcSecId,
          flags: v.flags,
          tcpFlagsSeen: v.tcpFlagsSeen,
          replyTcpFlagsSeen: v.replyTcpFlagsSeen,
          proxyPort: v.proxyPort,
          revNatIndex: v.revNatIndex,
          backendId: v.backendId,
        });
      });
    }
    return out;
  }

  /** Deletes every entry (both families); returns how many were removed. */
  flush(): number {
    let n = 0;
    for (const m of [this.ct4, this.ct6]) n += deleteWhere(m, () => true);
    return n;
  }

  /** Deletes entries whose lifetime has passed; returns how many were removed. */
  gc(now: bigint = monotonicNs()): number {
    let n = 0;
    for (const m of [this.ct4, this.ct6])
      n += deleteWhere(m, (v, vo) => ctEntry.decode(v, vo).lifetimeNs < now);
    return n;
  }
}

/** Walks a map with batch lookups where supported, else key by key. */
export function forEachEntry(
  m: BpfMap,
  fn: (keys: Uint8Array, keyOff: number, values: Uint8Array, valueOff: number) => void,
): void {
  try {
    const { keys, values, count } = m.lookupBatch(4096);
    for (let i = 0; i < count; i++) fn(keys, i * m.keySize, values, i * m.userValueSize);
  } catch (err) {
    if (!(err instanceof NotSupportedError)) throw err;
    for (const [k, v] of m.entries()) fn(k, 0, v, 0);
  }
}

/** Deletes the entries whose value `pred` picks; returns how many were removed. */
export function deleteWhere(m: BpfMap, pred: (v: Uint8Array, vo: number) => boolean): number {
  const doomed: Uint8Array[] = [];
  forEachEntry(m, (k, ko, v, vo) => {
    if (pred(v, vo)) doomed.push(k.slice(ko, ko + m.keySize));
  });
  let n = 0;
  for (const k of doomed) if (m.delete(k)) n++;
  return n;
}
