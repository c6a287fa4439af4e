/**
 * MurmurHash3 x64 128 (Austin Appleby's SMHasher), the hash upstream's Maglev permutation is built
 * on. Written from the algorithm's definition: 16-byte blocks read as two little-endian 64-bit words,
 * the tail folded into k1/k2, then the length mix and fmix64 finalizer. Both halves are returned as
 * unsigned 64-bit bigints (h1, h2), as Go's `Hash128(data, seed)` returns them. Pure.
 */

const MASK64 = (1n << 64n) - 1n;
const C1 = 0x87c37b91114253d5n;
const C2 = 0x4cf5ad432745937fn;

function mul64(a: bigint, b: bigint): bigint {
  return (a * b) & MASK64;
}

function rotl64(x: bigint, r: bigint): bigint {
  return ((x << r) | (x >> (64n - r))) & MASK64;
}

function fmix64(k: bigint): bigint {
  k ^= k >> 33n;
  k = mul64(k, 0xff51afd7ed558ccdn);
  k ^= k >> 33n;
  k = mul64(k, 0xc4ceb9fe1a85ec53n);
  k ^= k >> 33n;
  return k;
}

/** Little-endian word of up to 8 bytes starting at `o` (fewer when the data ends first). */
function wordLE(data: Uint8Array, o: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[o + i]!);
  return v;
}

/** MurmurHash3_x64_128 of `data` with a 32-bit seed: [h1, h2]. */
export function murmur3x64_128(data: Uint8Array, seed: number): [bigint, bigint] {
  const s = BigInt(seed >>> 0);
  let h1 = s;
  let h2 = s;
  const nblocks = Math.floor(data.length / 16);
  for (let i = 0; i < nblocks; i++) {
    let k1 = wordLE(data, i * 16, 8);
    let k2 = wordLE(data, i * 16 + 8, 8);
    k1 = mul64(rotl64(mul64(k1, C1), 31n), C2);
    h1 ^= k1;
    h1 = (mul64(rotl64(h1, 27n) + h2, 5n) + 0x52dce729n) & MASK64;
    k2 = mul64(rotl64(mul64(k2, C2), 33n), C1);
    h2 ^= k2;
    h2 = (mul64(rotl64(h2, 31n) + h1, 5n) + 0x38495ab5n) & MASK64;
  }
  const tail = nblocks * 16;
  const rest = data.length - tail;
  if (rest > 8) {
    const k2 = wordLE(data, tail + 8, rest - 8);
    h2 ^= mul64(rotl64(mul64(k2, C2), 33n), C1);
  }
  if (rest > 0) {
    const k1 = wordLE(data, tail, Math.min(rest, 8));
    h1 ^= mul64(rotl64(mul64(k1, C1), 31n), C2);
  }
  const len = BigInt(data.length);
  h1 ^= len;
  h2 ^= len;
  h1 = (h1 + h2) & MASK64;
  h2 = (h2 + h1) & MASK64;
  h1 = fmix64(h1);
  h2 = fmix64(h2);
  h1 = (h1 + h2) & MASK64;
  h2 = (h2 + h1) & MASK64;
  return [h1, h2];
}
