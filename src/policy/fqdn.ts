/**
 * toFQDNs peers and DNS rules in the policy model. A toFQDNs selector becomes the label selector
 * `fqdn:<pattern>` (exists): the FQDN subsystem (src/fqdn) gives every IP that DNS answers for a
 * matching name an identity carrying that label, so the selector cache does the rest.
 */
import { selectorPattern } from '../fqdn/match.js';
import { LabelSource } from '../labels/index.js';
import { makeRequirement, Selector } from './selector.js';
import type { PolicyRule } from './types.js';

export function fqdnSelector(pattern: string): Selector {
  return Selector.of([makeRequirement(LabelSource.Fqdn, pattern, 'Exists')]);
}

export { selectorPattern };

/** The toFQDNs patterns of a set of rules (what the FQDN subsystem must give identities for). */
export function fqdnPatterns(rules: readonly PolicyRule[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules)
    for (const pr of r.egress ?? [])
      for (const p of pr.peers)
        if (p.origin === 'fqdn') for (const q of p.selector.requirements) out.add(q.key);
  return out;
}
