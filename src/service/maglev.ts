/**
 * Maglev consistent hashing as upstream builds it (pkg/maglev): one lookup table of M backend IDs
 * per frontend, the same on every node for the same backends, and few entries moving when a
 * backend comes or goes.
 *
 *  - Every backend is named by a fixed string, `[10.0.1.7:8080/TCP,State:active]`
 *    (`[[fd00::7]:8080/TCP,State:active]` for IPv6); names, not node-local IDs, are hashed and
 *    sorted, so every node fills the same table.
 *  - (h1, h2) = murmur3_x64_128(name, seed); offset = h1 % M, skip = h2 % (M − 1) + 1; the
 *    backend's preference list is offset, offset + skip, offset + 2·skip, ... (mod M).
 *  - Turns go round-robin over the sorted backends; each takes the next free entry of its list
 *    until all M entries are filled. With weights (Envoy's scheme, used only when
 *    weightSum / N > 1), a backend's turn is passed on while (n + 1)·weight < its counter, and its
 *    counter grows by weightSum each time it fills an entry.
 *
 * The seed is 12 bytes in base64 (`maglev.hashSeed`): bytes 0–3 (big-endian) seed murmur3 here;
 * bytes 4–7 and 8–11 are the datapath's flow-hash seeds. Pure.
 */
import { formatIp, parseIp } from '../labels/cidr.js';
import { LbError } from './errors.js';
import { murmur3x64_128 } from './murmur3.js';

/** The table sizes upstream accepts (primes; M > 100·N keeps reassignment ≤ 1%). */
export const MAGLEV_TABLE_SIZES: readonly number[] = [
  251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];
export const DEFAULT_MAGLEV_TABLE_SIZE = 16381;
/** Upstream's default seed; every node of a cluster must use the same one. */
export const DEFAULT_MAGLEV_SEED = 'JLfvgnHc2kaSUFaI';
/** Upstream's default backend weight (pkg/loadbalancer DefaultBackendWeight). */
export const DEFAULT_BACKEND_WEIGHT = 100;

export interface MaglevOptions {
  /** M, one of MAGLEV_TABLE_SIZES (default 16381). */
  tableSize?: number;
  /** 12 bytes in base64 (default DEFAULT_MAGLEV_SEED). */
  hashSeed?: string;
}

export interface MaglevConfig {
  readonly tableSize: number;
  readonly hashSeed: string;
  /** Bytes 0–3 of the seed, big-endian: murmur3's seed. */
  readonly seedMurmur: number;
  /** Bytes 4–7 and 8–11: the datapath's flow-hash seeds (HASH_INIT4_SEED and friends). */
  readonly seedJhash0: number;
  readonly seedJhash1: number;
}

/** Validates the Maglev options; errors name `maglev.tableSize` or `maglev.hashSeed`. */
export function maglevConfig(opts: MaglevOptions = {}): MaglevConfig {
  const tableSize = opts.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE;
  if (!MAGLEV_TABLE_SIZES.includes(tableSize))
    throw new LbError(
      `maglev.tableSize: ${tableSize} is not supported; use one of ${MAGLEV_TABLE_SIZES.join(', ')}`,
      { field: 'maglev.tableSize' },
    );
  const hashSeed = opts.hashSeed ?? DEFAULT_MAGLEV_SEED;
  const d = decodeBase64Strict(hashSeed);
  if (d === undefined)
    throw new LbError(`maglev.hashSeed: ${JSON.stringify(hashSeed)} is not base64`, {
      field: 'maglev.hashSeed',
    });
  if (d.length !== 12)
    throw new LbError(`maglev.hashSeed: decodes to ${d.length} bytes, not 12`, { field: 'maglev.hashSeed' });
  const be32 = (o: number) => ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
  return { tableSize, hashSeed, seedMurmur: be32(0), seedJhash0: be32(4), seedJhash1: be32(8) };
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
    const m = this.config.tableSize;
    const l = backends.length;
    if (l === 0) return new Uint32Array(0);
    const sorted = backends
      .map((b) => {
        const w = b.weight ?? DEFAULT_BACKEND_WEIGHT;
        if (!Number.isInteger(w) || w < 1 || w > 65535)
          throw new LbError(`maglev: backend ${b.address}:${b.port} weight ${w} is not in 1..65535`);
        return { id: b.id, weight: w, name: maglevBackendName(b) };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (let i = 1; i < l; i++)
      if (sorted[i]!.name === sorted[i - 1]!.name)
        throw new LbError(`maglev: backend ${sorted[i]!.name} is listed twice`);

    // Where each backend is in its preference list, its step, weight and ID (typed arrays: this
    // loop runs M times per table).
    const pos = new Int32Array(l);
    const skip = new Int32Array(l);
    const weight = new Int32Array(l);
    const ids = new Uint32Array(l);
    const weightCntr = new Float64Array(l);
    let weightSum = 0;
    for (let i = 0; i < l; i++) {
      const b = sorted[i]!;
      const p = this.permutation(b.name);
      pos[i] = p.offset;
      skip[i] = p.skip;
      weight[i] = b.weight;
      ids[i] = b.id;
      weightSum += b.weight;
      weightCntr[i] = b.weight / l;
    }
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
}
