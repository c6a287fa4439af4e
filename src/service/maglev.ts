/**
 * Maglev consistent hashing: one lookup table of M backend IDs per frontend, the same on every
 * node for the same backends, each backend holding its share of the entries, and few entries
 * moving when a backend comes or goes. The datapath hashes a flow to an entry (flow-hash.ts).
 *
 *  - Every backend is named by a fixed string, `[10.0.1.7:8080/TCP,State:active]`
 *    (`[[fd00::7]:8080/TCP,State:active]` for IPv6); names, not node-local IDs, are hashed and
 *    sorted, so every node fills the same table. (h1, h2) = murmur3_x64_128(name, seed);
 *    offset = h1 % M, skip = h2 % (M − 1) + 1; the backend's preference list is offset,
 *    offset + skip, offset + 2·skip, ... (mod M), every entry once (M is prime).
 *  - Two ways to fill the table (`fill`):
 *    - `stable` (the default): the same preference lists, filled as a stable matching. Backend i
 *      gets exactly its share of the entries (⌊M·wᵢ/W⌋, the remainder one each to the largest
 *      fractions), and an entry goes to the backend whose list names it earliest among those with
 *      room. Walking the lists in lockstep does that: at step p every backend with room, in name
 *      order, takes the p-th entry of its list if it is still free. Both sides rank a pair by the
 *      same number (the position), so this greedy result is the one stable matching. When a
 *      backend leaves, its entries go to the next backends that name them and only short chains
 *      follow: with M = 16381 and 100 backends, 0.65% of the other entries move (permutation
 *      fill: 1.33%; bench/maglev), with the same balance (⌊M/N⌋ or ⌈M/N⌉ entries each).
 *    - `permutation`: upstream's construction (pkg/maglev), entry for entry. Turns go round-robin
 *      over the sorted backends; each takes the next free entry of its list until all M entries
 *      are filled. With weights (Envoy's scheme, used only when weightSum / N > 1), a backend's
 *      turn is passed on while (n + 1)·weight < its counter, and its counter grows by weightSum
 *      each time it fills an entry.
 *
 * The seed is 12 bytes in base64 (`maglev.hashSeed`): bytes 0–3 (big-endian) seed murmur3 here;
 * bytes 4–7 and 8–11 are the datapath's flow-hash seeds. Every node of a cluster must use the same
 * seed, table size and fill. Pure.
 */
import { formatIp, parseIp } from '../labels/cidr.js';
import { LbError } from './errors.js';
import { murmur3x64_128 } from './murmur3.js';

/** The table sizes upstream accepts (primes; upstream advises M > 100·N). */
export const MAGLEV_TABLE_SIZES: readonly number[] = [
  251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];
export const DEFAULT_MAGLEV_TABLE_SIZE = 16381;
/** Upstream's default seed; every node of a cluster must use the same one. */
export const DEFAULT_MAGLEV_SEED = 'JLfvgnHc2kaSUFaI';
/** How a table is filled (see the top of this file). */
export const MAGLEV_FILLS = ['stable', 'permutation'] as const;
export type MaglevFill = (typeof MAGLEV_FILLS)[number];
/** Upstream's default backend weight (pkg/loadbalancer DefaultBackendWeight). */
export const DEFAULT_BACKEND_WEIGHT = 100;

export interface MaglevOptions {
  /** M, one of MAGLEV_TABLE_SIZES (default 16381). */
  tableSize?: number;
  /** 12 bytes in base64 (default DEFAULT_MAGLEV_SEED). */
  hashSeed?: string;
  /** Default `stable`. */
  fill?: MaglevFill;
}

export interface MaglevConfig {
  readonly tableSize: number;
  readonly hashSeed: string;
  readonly fill: MaglevFill;
  /** Bytes 0–3 of the seed, big-endian: murmur3's seed. */
  readonly seedMurmur: number;
  /** Bytes 4–7 and 8–11: the datapath's flow-hash seeds (HASH_INIT4_SEED and friends). */
  readonly seedJhash0: number;
  readonly seedJhash1: number;
}

/** Validates the Maglev options; errors name `maglev.tableSize`, `maglev.hashSeed` or `maglev.fill`. */
export function maglevConfig(opts: MaglevOptions = {}): MaglevConfig {
  const tableSize = opts.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE;
  if (!MAGLEV_TABLE_SIZES.includes(tableSize))
    throw new LbError(
      `maglev.tableSize: ${tableSize} is not supported; use one of ${MAGLEV_TABLE_SIZES.join(', ')}`,
      { field: 'maglev.tableSize' },
    );
  const fill = opts.fill ?? 'stable';
  if (!MAGLEV_FILLS.includes(fill))
    throw new LbError(`maglev.fill: ${JSON.stringify(fill)} is not one of ${MAGLEV_FILLS.join(', ')}`, {
      field: 'maglev.fill',
    });
  const hashSeed = opts.hashSeed ?? DEFAULT_MAGLEV_SEED;
  const d = decodeBase64Strict(hashSeed);
  if (d === undefined)
    throw new LbError(`maglev.hashSeed: ${JSON.stringify(hashSeed)} is not base64`, {
      field: 'maglev.hashSeed',
    });
  if (d.length !== 12)
    throw new LbError(`maglev.hashSeed: decodes to ${d.length} bytes, not 12`, { field: 'maglev.hashSeed' });
  const be32 = (o: number) => ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
  return { tableSize, hashSeed, fill, seedMurmur: be32(0), seedJhash0: be32(4), seedJhash1: be32(8) };
}

function decodeBase64Strict(s: string): Uint8Array | undefined {
  if (!/^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return undefined;
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** A backend as Maglev sees it. */
export interface MaglevBackend {
  /** The node-local backend ID written into the table. */
  readonly id: number;
  readonly address: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
  /** 1..65535; default 100 as upstream. */
  readonly weight?: number;
}

/** The string a backend is hashed and sorted by, exactly as upstream writes it. */
export function maglevBackendName(b: Pick<MaglevBackend, 'address' | 'port' | 'protocol'>): string {
  const ip = parseIp(b.address);
  if (ip === undefined)
    throw new LbError(`maglev: backend address ${JSON.stringify(b.address)} is not an IP`);
  const addr = formatIp(ip.family, ip.addr);
  const host = ip.family === 6 ? `[${addr}]` : addr;
  return `[${host}:${b.port}/${b.protocol},State:active]`;
}

const encoder = new TextEncoder();

/** Backends ready for a fill: sorted by name, weights checked, permutations looked up. */
interface Prepared {
  readonly ids: Uint32Array;
  readonly weights: Int32Array;
  readonly weightSum: number;
  readonly offsets: Int32Array;
  readonly skips: Int32Array;
}

/**
 * Builds lookup tables for one configuration. Offsets and skips are cached per backend name (they
 * depend only on the name, the seed and M), so rebuilding a table after one backend changed
 * hashes only the new one.
 */
export class Maglev {
  readonly config: MaglevConfig;
  readonly #perm = new Map<string, { offset: number; skip: number }>();

  constructor(opts: MaglevOptions | MaglevConfig = {}) {
    this.config = 'seedMurmur' in opts ? opts : maglevConfig(opts);
  }

  get tableSize(): number {
    return this.config.tableSize;
  }

  /** offset and skip of a backend name. */
  permutation(name: string): { offset: number; skip: number } {
    let p = this.#perm.get(name);
    if (p === undefined) {
      const m = BigInt(this.config.tableSize);
      const [h1, h2] = murmur3x64_128(encoder.encode(name), this.config.seedMurmur);
      p = { offset: Number(h1 % m), skip: Number(h2 % (m - 1n)) + 1 };
      if (this.#perm.size > 100_000) this.#perm.clear();
      this.#perm.set(name, p);
    }
    return p;
  }

  /**
   * The lookup table: M backend IDs. Empty when there is no backend (upstream then writes no table).
   * The input order does not matter.
   */
  table(backends: readonly MaglevBackend[]): Uint32Array {
    if (backends.length === 0) return new Uint32Array(0);
    const p = this.#prepare(backends);
    return this.config.fill === 'stable' ? this.#stableFill(p) : this.#permutationFill(p);
  }

  #prepare(backends: readonly MaglevBackend[]): Prepared {
    const sorted = backends
      .map((b) => {
        const w = b.weight ?? DEFAULT_BACKEND_WEIGHT;
        if (!Number.isInteger(w) || w < 1 || w > 65535)
          throw new LbError(`maglev: backend ${b.address}:${b.port} weight ${w} is not in 1..65535`);
        return { id: b.id, weight: w, name: maglevBackendName(b) };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = 1; i < sorted.length; i++)
      if (sorted[i]!.name === sorted[i - 1]!.name)
        throw new LbError(`maglev: backend ${sorted[i]!.name} is listed twice`);
    const perms = sorted.map((b) => this.permutation(b.name));
    return {
      ids: Uint32Array.from(sorted, (b) => b.id),
      weights: Int32Array.from(sorted, (b) => b.weight),
      weightSum: sorted.reduce((sum, b) => sum + b.weight, 0),
      offsets: Int32Array.from(perms, (p) => p.offset),
      skips: Int32Array.from(perms, (p) => p.skip),
    };
  }

  /** Upstream's round-robin fill over the backends' permutations. */
  #permutationFill({ ids, weights: weight, weightSum, offsets, skips: skip }: Prepared): Uint32Array {
    const m = this.config.tableSize;
    const l = ids.length;
    // Where each backend is in its preference list, and its step (typed arrays: this loop runs M
    // times per table).
    const pos = offsets.slice();
    const weightCntr = Float64Array.from(weight, (w) => w / l);
    // Go: weightSum/uint64(l) > 1, an integer division. With equal weights no turn is ever passed
    // on (each backend's counter stays below (n + 1)·weight), so the same table comes without it.
    const weightsUsed = Math.floor(weightSum / l) > 1 && weight.some((w) => w !== weight[0]);

    const entry = new Uint32Array(m);
    const filled = new Uint8Array(m);
    for (let n = 0; n < m; n++) {
      let i = n % l;
      if (weightsUsed) {
        // Go compares against uint64(weightCntr[i]): the counter truncated.
        while ((n + 1) * weight[i]! < Math.trunc(weightCntr[i]!)) i = (i + 1) % l;
        weightCntr[i]! += weightSum;
      }
      const step = skip[i]!;
      let c = pos[i]!;
      while (filled[c] === 1) {
        c += step;
        if (c >= m) c -= m;
      }
      entry[c] = ids[i]!;
      filled[c] = 1;
      c += step;
      pos[i] = c >= m ? c - m : c;
    }
    return entry;
  }

  /**
   * The stable fill: the preference lists walked in lockstep, each backend taking the entry at its
   * position if it is free, until it holds its share. O(M log M) steps for any N: an entry is left
   * free only while no list has reached it yet.
   */
  #stableFill(p: Prepared): Uint32Array {
    const { ids, offsets, skips } = p;
    const m = this.config.tableSize;
    const room = this.#shares(p);
    const pos = offsets.slice();
    // Backends with room, in name order; compacted after each step.
    const active = new Int32Array(ids.length);
    let nActive = 0;
    for (let i = 0; i < ids.length; i++) if (room[i]! > 0) active[nActive++] = i;
    const holder = new Int32Array(m).fill(-1);
    let left = m;
    while (left > 0) {
      let kept = 0;
      for (let k = 0; k < nActive; k++) {
        const i = active[k]!;
        const e = pos[i]!;
        const next = e + skips[i]!;
        pos[i] = next >= m ? next - m : next;
        if (holder[e] === -1) {
          holder[e] = i;
          left--;
          if (--room[i]! === 0) continue;
        }
        active[kept++] = i;
      }
      nActive = kept;
    }
    const entry = new Uint32Array(m);
    for (let e = 0; e < m; e++) entry[e] = ids[holder[e]!]!;
    return entry;
  }

  /**
   * Each backend's number of entries: ⌊M·wᵢ/W⌋, and the M − Σ left over one each to the largest
   * remainders (ties to the lower offset, then name order), so Σ = M exactly.
   */
  #shares({ weights, weightSum: total, offsets }: Prepared): Int32Array {
    const m = this.config.tableSize;
    const l = weights.length;
    const cap = new Int32Array(l);
    const rem = new Float64Array(l);
    let left = m;
    for (let i = 0; i < l; i++) {
      cap[i] = Math.floor((m * weights[i]!) / total);
      rem[i] = m * weights[i]! - cap[i]! * total;
      left -= cap[i]!;
    }
    const order = Array.from({ length: l }, (_, i) => i).sort(
      (a, b) => rem[b]! - rem[a]! || offsets[a]! - offsets[b]! || a - b,
    );
    for (let k = 0; k < left; k++) cap[order[k]!]!++;
    return cap;
  }
}
