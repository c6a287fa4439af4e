/**
 * One pass over a conntrack map: read every entry (batched), pick the doomed ones by key and
 * value bytes, delete them (batched). Works on the map's generic API, so the datapath's typed
 * wrapper stays a thin decoder. Reads are a snapshot: an entry the datapath refreshes between the
 * read and the delete is deleted anyway (as upstream's GC would); the next packet of that
 * connection is then looked up as new and checked against policy again.
 */
import { forEachEntry, layouts } from '../datapath/index.js';
import { type BpfMap, EbpfError } from '../ebpf/index.js';

const { ctEntry, ctKey } = layouts;

export interface SweepResult {
  /** Entries read. */
  scanned: number;
  /** Entries deleted by this pass (absent by the time of the delete: not counted). */
  deleted: number;
  /** Entries read and kept. */
  alive: number;
}

/** Decides from the raw key and value bytes (at their offsets) whether an entry goes. */
export type Doom = (keys: Uint8Array, keyOff: number, values: Uint8Array, valueOff: number) => boolean;

/** Deletes the entries `doom` picks; returns the counts. */
export function sweep(m: BpfMap, doom: Doom): SweepResult {
  const ks = m.keySize;
  let doomed = new Uint8Array(ks * 1024);
  let n = 0;
  let scanned = 0;
  forEachEntry(m, (k, ko, v, vo) => {
    scanned++;
    if (!doom(k, ko, v, vo)) return;
    if ((n + 1) * ks > doomed.length) {
      const grown = new Uint8Array(doomed.length * 2);
      grown.set(doomed);
      doomed = grown;
    }
    doomed.set(k.subarray(ko, ko + ks), n * ks);
    n++;
  });
  const deleted = deleteKeys(m, doomed, n);
  return { scanned, deleted, alive: scanned - n };
}

/**
 * Deletes `n` keys laid end to end in `keys`: in batches where the kernel has them, skipping keys
 * already gone (the LRU or the datapath may have removed them meanwhile), else one by one.
 */
export function deleteKeys(m: BpfMap, keys: Uint8Array, n: number): number {
  const ks = m.keySize;
  let done = 0;
  let i = 0;
  try {
    while (i < n) {
      const c = m.deleteBatch(keys.subarray(i * ks), n - i);
      done += c;
      i += c + 1; // the kernel stops at an absent key: skip it and carry on
    }
    return done;
  } catch (err) {
    if (!(err instanceof EbpfError)) throw err;
  }
  for (; i < n; i++) if (m.delete(keys.subarray(i * ks, (i + 1) * ks))) done++;
  return done;
}

const LIFETIME = ctEntry.fields.lifetimeNs!.offset;

/**
 * True when the entry's deadline has passed. The datapath writes `lifetime_ns` as
 * bpf_ktime_get_ns() + lifetime, and treats an entry as live while lifetime_ns > now; `now` must
 * be on the same clock (CLOCK_MONOTONIC).
 */
export function expiredAt(now: bigint): Doom {
  const nowHi = Number(now >> 32n);
  const nowLo = Number(now & 0xffffffffn);
  // one view per buffer (a batch read hands every entry in the same buffer)
  let buf: Uint8Array | undefined;
  let d: DataView = new DataView(new ArrayBuffer(0));
  return (_k, _ko, v, vo) => {
    if (v !== buf) {
      buf = v;
      d = new DataView(v.buffer, v.byteOffset, v.byteLength);
    }
    const hi = d.getUint32(vo + LIFETIME + 4, true);
    return hi < nowHi || (hi === nowHi && d.getUint32(vo + LIFETIME, true) <= nowLo);
  };
}

const SADDR = ctKey.fields.saddr6!.offset;
const DADDR = ctKey.fields.daddr6!.offset;

/** True when the entry's source or destination is one of `addrs` (4 or 16 wire-order bytes each). */
export function touchesAddress(addrs: readonly Uint8Array[]): Doom {
  const same = (k: Uint8Array, o: number, a: Uint8Array): boolean => {
    for (let i = 0; i < a.length; i++) if (k[o + i] !== a[i]) return false;
    return true;
  };
  return (k, ko) => addrs.some((a) => same(k, ko + SADDR, a) || same(k, ko + DADDR, a));
}
