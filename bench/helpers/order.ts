/**
 * Order and spread of interleaved bench rounds: a seeded PRNG (so that an order can be replayed),
 * a shuffle, and the quartiles that report how far per-round ratios spread around their median.
 */

/** mulberry32: small, seeded, good enough to order measurements. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A copy of `xs` in random order (Fisher-Yates). */
export function shuffle<T>(xs: T[], random: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The p-th percentile (nearest rank below) of a list of samples; NaN for none. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : Number.NaN;
}

/** Median and quartiles (linear interpolation) of a non-empty list. */
export function quartiles(xs: number[]): { q1: number; med: number; q3: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => {
    const i = (s.length - 1) * q;
    const lo = Math.floor(i);
    return s[lo]! + (s[Math.ceil(i)]! - s[lo]!) * (i - lo);
  };
  return { q1: at(0.25), med: at(0.5), q3: at(0.75) };
}

/** `x1.00 [0.97-1.03]`: a median ratio and the quartiles of the ratios it is the median of. */
export function ratioWithSpread(ratios: number[]): string {
  const q = quartiles(ratios);
  return `x${q.med.toFixed(2)} [${q.q1.toFixed(2)}-${q.q3.toFixed(2)}]`;
}
