/**
 * The FQDN cache: which IPs each endpoint learnt for each name from DNS answers the proxy let
 * through, each IP with its own expiry (the answer's TTL, raised to the minimum TTL). A later answer
 * refreshes the IPs it repeats and adds new ones; IPs it leaves out stay until they expire, so a
 * connection opened on a previous answer keeps working for that answer's TTL (as upstream). At most
 * `maxIpsPerName` IPs per endpoint and name: the ones that expire first are evicted. Times are ms
 * since the epoch, given by the caller. Pure; the agent saves `export()` and gives it back to
 * `restore()` after a restart.
 */
import { toFqdn } from './match.js';

export interface FqdnCacheOptions {
  /** Seconds: answers with a lower TTL are kept this long (default 0: the answer's TTL). */
  minTtl?: number;
  /** Per endpoint and name; older IPs are evicted (default 1000, as upstream). */
  maxIpsPerName?: number;
}

export interface CachedIp {
  readonly ip: string;
  /** TTL of the answer that last gave this IP, after the minimum, in seconds. */
  readonly ttl: number;
  /** When it expires, ms since the epoch. */
  readonly expires: number;
}

export interface CacheRow {
  readonly endpointId: number;
  readonly name: string;
  /** When an answer for this name was last seen, ms since the epoch. */
  readonly lookupTime: number;
  readonly ips: readonly CachedIp[];
}

/** Persisted form (plain JSON). */
export interface FqdnCacheState {
  version: 1;
  rows: CacheRow[];
}

/**
 * However short the TTL, an answer's IPs live this long: a TTL-0 answer must still let the pod
 * connect right after it (upstream keeps such IPs until its next garbage collection).
 */
export const MIN_LIFETIME_MS = 1000;

interface NameEntry {
  lookupTime: number;
  ips: Map<string, CachedIp>;
}

export class FqdnCache {
  readonly minTtl: number;
  readonly maxIpsPerName: number;
  /** endpoint → name → entry */
  readonly #byEndpoint = new Map<number, Map<string, NameEntry>>();

  constructor(opts: FqdnCacheOptions = {}) {
    this.minTtl = opts.minTtl ?? 0;
    this.maxIpsPerName = opts.maxIpsPerName ?? 1000;
    if (!Number.isInteger(this.minTtl) || this.minTtl < 0) throw new RangeError('minTtl: a whole number ≥ 0');
    if (!Number.isInteger(this.maxIpsPerName) || this.maxIpsPerName < 1)
      throw new RangeError('maxIpsPerName: a whole number ≥ 1');
  }

  /**
   * Records an answer an endpoint received for `name`. Returns true when the set of live IPs of
   * the name changed for that endpoint (something new to allow).
   */
  update(
    endpointId: number,
    name: string,
    answers: readonly { ip: string; ttl: number }[],
    now: number,
  ): boolean {
    const fqdn = toFqdn(name);
    let names = this.#byEndpoint.get(endpointId);
    if (names === undefined) {
      names = new Map();
      this.#byEndpoint.set(endpointId, names);
    }
    let e = names.get(fqdn);
    if (e === undefined) {
      e = { lookupTime: now, ips: new Map() };
      names.set(fqdn, e);
    }
    e.lookupTime = now;
    let changed = false;
    for (const [ip, c] of e.ips) {
      if (c.expires > now) continue;
      e.ips.delete(ip);
      changed = true;
    }
    for (const a of answers) {
      const ttl = Math.max(this.minTtl, Math.max(0, Math.floor(a.ttl)));
      const expires = now + Math.max(ttl * 1000, MIN_LIFETIME_MS);
      const prev = e.ips.get(a.ip);
      if (prev === undefined) changed = true;
      if (prev === undefined || prev.expires < expires) e.ips.set(a.ip, { ip: a.ip, ttl, expires });
    }
    if (e.ips.size > this.maxIpsPerName) {
      const oldest = [...e.ips.values()].sort((a, b) => a.expires - b.expires || (a.ip < b.ip ? -1 : 1));
      for (const c of oldest.slice(0, e.ips.size - this.maxIpsPerName)) e.ips.delete(c.ip);
      changed = true;
    }
    if (e.ips.size === 0) names.delete(fqdn);
    if (names.size === 0) this.#byEndpoint.delete(endpointId);
    return changed;
  }

  /** Drops expired IPs (and names left without any); returns true if anything went. */
  gc(now: number): boolean {
    let changed = false;
    for (const [ep, names] of this.#byEndpoint) {
      for (const [name, e] of names) {
        for (const [ip, c] of e.ips)
          if (c.expires <= now) {
            e.ips.delete(ip);
            changed = true;
          }
        if (e.ips.size === 0) names.delete(name);
      }
      if (names.size === 0) this.#byEndpoint.delete(ep);
    }
    return changed;
  }

  /** Forgets what an endpoint learnt (the endpoint is gone); true if it had anything. */
  removeEndpoint(endpointId: number): boolean {
    return this.#byEndpoint.delete(endpointId);
  }

  /** Live IPs of every name, over all endpoints: name → IPs. */
  namesToIps(now: number): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const names of this.#byEndpoint.values())
      for (const [name, e] of names)
        for (const c of e.ips.values()) {
          if (c.expires <= now) continue;
          let s = out.get(name);
          if (s === undefined) {
            s = new Set();
            out.set(name, s);
          }
          s.add(c.ip);
        }
    return out;
  }

  /** Live IPs of one name (any spelling), over all endpoints, sorted. */
  lookup(name: string, now: number): string[] {
    return [...(this.namesToIps(now).get(toFqdn(name)) ?? [])].sort();
  }

  /** Every row (expired IPs included until the next gc), by endpoint then name. */
  rows(): CacheRow[] {
    const out: CacheRow[] = [];
    for (const [endpointId, names] of [...this.#byEndpoint].sort((a, b) => a[0] - b[0]))
      for (const [name, e] of [...names].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
        out.push({
          endpointId,
          name,
          lookupTime: e.lookupTime,
          ips: [...e.ips.values()].sort((a, b) => (a.ip < b.ip ? -1 : 1)),
        });
    return out;
  }

  /** The soonest expiry of any IP (ms since the epoch), for scheduling gc; undefined when empty. */
  nextExpiry(): number | undefined {
    let min: number | undefined;
    for (const names of this.#byEndpoint.values())
      for (const e of names.values())
        for (const c of e.ips.values()) if (min === undefined || c.expires < min) min = c.expires;
    return min;
  }

  export(): FqdnCacheState {
    return { version: 1, rows: this.rows() };
  }

  /** Replaces the content with a saved state; rows that do not fit are refused as a whole. */
  restore(state: FqdnCacheState): void {
    if (state?.version !== 1 || !Array.isArray(state.rows))
      throw new Error(`unsupported fqdn cache state version ${String(state?.version)}`);
    const next = new Map<number, Map<string, NameEntry>>();
    for (const r of state.rows) {
      if (!Number.isInteger(r.endpointId) || typeof r.name !== 'string' || !Array.isArray(r.ips))
        throw new Error('fqdn cache state: malformed row');
      let names = next.get(r.endpointId);
      if (names === undefined) {
        names = new Map();
        next.set(r.endpointId, names);
      }
      const ips = new Map<string, CachedIp>();
      for (const c of r.ips) {
        if (typeof c.ip !== 'string' || typeof c.expires !== 'number' || typeof c.ttl !== 'number')
          throw new Error(`fqdn cache state: malformed IP of ${r.name}`);
        ips.set(c.ip, { ip: c.ip, ttl: c.ttl, expires: c.expires });
      }
      names.set(toFqdn(r.name), { lookupTime: r.lookupTime, ips });
    }
    this.#byEndpoint.clear();
    for (const [k, v] of next) this.#byEndpoint.set(k, v);
  }
}
