/**
 * Identities for the IPs DNS answers gave: every IP whose name matches a `toFQDNs` selector of some
 * policy gets a node-local identity labelled `cidr:<ip>/32`, `reserved:world` and one
 * `fqdn:<pattern>` per matching selector (upstream's CIDR/FQDN identities). A toFQDNs peer is the
 * selector `fqdn:<pattern>` (exists), so the selector cache hands these identities to exactly the
 * policies that name them; the `cidr:` label keeps toCIDR rules covering the IP working. IPs no
 * selector wants get no identity. Pure: the caller claims `ipcacheEntries()` in the ipcache.
 */
import type { IdentityAllocator } from '../identity/index.js';
import { cidrIdentityLabels, LabelSet, LabelSource, makeLabel, parsePrefix } from '../labels/index.js';
import { nameMatches } from './match.js';

/** The label a toFQDNs selector selects: `fqdn:<canonical pattern>`. */
export function fqdnLabelKey(pattern: string): string {
  return pattern;
}

export interface FqdnIdentityChange {
  /** IPs whose identity changed, appeared or went. */
  readonly changed: number;
}

export class FqdnIdentities {
  /** ip → identity held, and its patterns */
  readonly #held = new Map<string, { identity: number; key: string; patterns: string[] }>();

  constructor(readonly allocator: IdentityAllocator) {}

  /**
   * Makes the held identities match `namesToIps` under the selectors `patterns`. New identities are
   * allocated before old ones are released, so an IP never goes without one in between.
   */
  sync(
    patterns: ReadonlySet<string>,
    namesToIps: ReadonlyMap<string, ReadonlySet<string>>,
  ): FqdnIdentityChange {
    const want = new Map<string, Set<string>>();
    for (const [name, ips] of namesToIps) {
      const matching = [...patterns].filter((p) => nameMatches(p, name));
      if (matching.length === 0) continue;
      for (const ip of ips) {
        let s = want.get(ip);
        if (s === undefined) {
          s = new Set();
          want.set(ip, s);
        }
        for (const p of matching) s.add(p);
      }
    }
    let changed = 0;
    const release: number[] = [];
    for (const [ip, ps] of want) {
      const sorted = [...ps].sort();
      const key = sorted.join(' ');
      const prev = this.#held.get(ip);
      if (prev?.key === key) continue;
      const prefix = parsePrefix(ip);
      const labels = LabelSet.of([
        ...cidrIdentityLabels(prefix),
        ...sorted.map((p) => makeLabel(LabelSource.Fqdn, fqdnLabelKey(p))),
      ]);
      const { identity } = this.allocator.allocate(labels);
      this.#held.set(ip, { identity: identity.id, key, patterns: sorted });
      if (prev !== undefined) release.push(prev.identity);
      changed++;
    }
    for (const [ip, h] of this.#held) {
      if (want.has(ip)) continue;
      this.#held.delete(ip);
      release.push(h.identity);
      changed++;
    }
    for (const id of release) this.allocator.release(id);
    return { changed };
  }

  /** IP → identity, for the ipcache. */
  ipcacheEntries(): Map<string, { identity: number }> {
    return new Map([...this.#held].map(([ip, h]) => [ip, { identity: h.identity }]));
  }

  /** IP → identity and the selectors it carries, for display. */
  entries(): { ip: string; identity: number; patterns: readonly string[] }[] {
    return [...this.#held].map(([ip, h]) => ({ ip, identity: h.identity, patterns: h.patterns }));
  }

  /** Releases every identity (the agent stops or the feature is turned off). */
  clear(): void {
    for (const h of this.#held.values()) this.allocator.release(h.identity);
    this.#held.clear();
  }
}
