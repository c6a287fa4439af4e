/**
 * How long the conntrack GC waits before its next run, by upstream Cilium's rule
 * (pkg/maps/ctmap/gc: getIntervalWithConfig / calculateIntervalWithConfig): the interval follows the
 * share of a map's capacity the last run deleted. Many deletions (> 25 % of max entries) mean
 * connections churn and expire faster than the GC looks: shorten by that share (at most 10x), not
 * below the minimum. Few (< 5 %) mean the GC looks too often: grow by 1.5x up to the LRU maximum.
 * In between, or nothing deleted, keep the interval. A run that came early (before its interval was
 * up) scales the ratio up by how early it was. Pure.
 */

export interface GcIntervalConfig {
  /** A fixed interval (upstream `--conntrack-gc-interval`); 0 = adaptive. */
  fixedMs: number;
  /** Upper bound of the adaptive interval (upstream `--conntrack-gc-max-interval`); 0 = none. */
  maxMs: number;
  /** Lower bound when shortening (upstream ConntrackGCMinInterval, 10 s). */
  minMs: number;
  /** Interval assumed before the first run (upstream ConntrackGCStartingInterval, 5 min). */
  startMs: number;
  /** Ceiling when growing, for LRU maps (upstream ConntrackGCMaxLRUInterval, 12 h). */
  maxLruMs: number;
  /** Intervals are rounded to this (upstream: 1 s). */
  roundingMs: number;
}

export const DEFAULT_GC_INTERVAL: Readonly<GcIntervalConfig> = {
  fixedMs: 0,
  maxMs: 0,
  minMs: 10_000,
  startMs: 5 * 60_000,
  maxLruMs: 12 * 3_600_000,
  roundingMs: 1_000,
};

const round = (ms: number, to: number): number => Math.round(ms / to) * to;

/** The interval after one with `prevMs`, given the highest deleted/maxEntries ratio over the maps. */
export function calculateInterval(prevMs: number, deleteRatio: number, cfg: GcIntervalConfig): number {
  if (deleteRatio === 0) return prevMs;
  if (deleteRatio > 0.25) {
    const r = Math.min(deleteRatio, 0.9);
    return Math.max(round(prevMs * (1 - r), cfg.roundingMs), cfg.minMs);
  }
  if (deleteRatio < 0.05) return Math.min(round(prevMs * 1.5, cfg.roundingMs), cfg.maxLruMs);
  return prevMs;
}

/**
 * The next interval. `expectedPrevMs` is the interval computed last time (0 before the first run:
 * the starting interval is used), `actualPrevMs` the time that really passed since the previous run
 * started (0 for the first run).
 */
export function nextGcInterval(
  actualPrevMs: number,
  expectedPrevMs: number,
  maxDeleteRatio: number,
  cfg: GcIntervalConfig = DEFAULT_GC_INTERVAL,
): number {
  if (cfg.fixedMs > 0) return cfg.fixedMs;
  let expected = expectedPrevMs;
  let ratio = maxDeleteRatio;
  if (expected === 0) expected = cfg.startMs;
  else if (actualPrevMs > 0 && actualPrevMs < expected) ratio *= expected / actualPrevMs;
  const next = calculateInterval(expected, ratio, cfg);
  return cfg.maxMs > 0 && next > cfg.maxMs ? cfg.maxMs : next;
}
