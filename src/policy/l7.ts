/**
 * The L7 rule model shared by every proxy (src/proxy): what a port rule's `rules:` section says,
 * after validation, and which of those rules apply to one connection.
 *
 * A port rule with L7 rules allows its peers on its ports only through the proxy of its parser:
 * the policy engine gives those map entries that proxy's port (PolicyEngineOptions.proxyPort), so
 * the datapath redirects the connections (bpf/lib/proxy.h), and the proxy asks `l7RulesFor` what
 * the endpoint's policy allows on that connection. As upstream: the rules of one port rule are
 * ORed, the fields of one rule ANDed; if an L4-only allow also covers the peer and port, the L7
 * rules have no effect (everything is allowed, still through the proxy, which keeps visibility).
 *
 * A parser is enforced only once its proxy exists: parse.ts refuses the others (ENFORCED_L7).
 */
import type { Selector } from './selector.js';

export type L7Parser = 'http' | 'dns' | 'kafka';

/** The parsers with a proxy behind them; policies using another one are refused. */
export const ENFORCED_L7: ReadonlySet<L7Parser> = new Set<L7Parser>(['http', 'dns', 'kafka']);

export interface HttpHeaderMatch {
  readonly name: string;
  /** undefined: the header must be present (any value); else exactly this value. */
  readonly value?: string;
}

/** Full-match regular expressions (undefined = any), as upstream's RE2 safe_regex. */
export interface HttpRule {
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  readonly headers: readonly HttpHeaderMatch[];
}

export interface KafkaRule {
  readonly role?: string;
  readonly apiKey?: string;
  readonly apiVersion?: string;
  readonly clientID?: string;
  readonly topic?: string;
}

export type L7Rules =
  | { readonly parser: 'http'; readonly http: readonly HttpRule[] }
  /** canonical FQDN patterns of matchName / matchPattern (src/fqdn/match.ts selectorPattern) */
  | { readonly parser: 'dns'; readonly dns: readonly string[] }
  | { readonly parser: 'kafka'; readonly kafka: readonly KafkaRule[] };

/** One allow port rule of an endpoint's policy as the proxy needs it (EndpointPolicy.l7). */
export interface L7Item {
  readonly egress: 0 | 1;
  /** Selects every peer. */
  readonly wildcard: boolean;
  readonly selectors: readonly Selector[];
  /** [protocol, first port, last port]; protocol 0 = any. */
  readonly ranges: readonly (readonly [number, number, number])[];
  /** undefined: an L4-only allow. */
  readonly rules?: L7Rules;
}

/** What an endpoint's policy allows on one redirected connection. */
export type L7Decision =
  /** An L4-only allow covers it: every request is allowed (visibility only). */
  | { readonly kind: 'allow-all' }
  /** Allowed when any of these rule sets allows it (each an OR of rules). */
  | { readonly kind: 'rules'; readonly rules: readonly L7Rules[] }
  /** Nothing allows this peer and port (the policy changed since the redirect). */
  | { readonly kind: 'deny' };

/**
 * The L7 rules of `items` (one endpoint, one direction) for a connection with `remoteId` on
 * `protocol`/`port`. `selects(sel, id)`: does the selector select the identity (the selector
 * cache's selections).
 */
export function l7RulesFor(
  items: readonly L7Item[],
  egress: 0 | 1,
  remoteId: number,
  protocol: number,
  port: number,
  selects: (sel: Selector, id: number) => boolean,
): L7Decision {
  const rules: L7Rules[] = [];
  for (const it of items) {
    if (it.egress !== egress) continue;
    if (!it.ranges.some(([pr, s, e]) => (pr === 0 || pr === protocol) && port >= s && port <= e)) continue;
    if (!it.wildcard && !it.selectors.some((s) => selects(s, remoteId))) continue;
    if (it.rules === undefined) return { kind: 'allow-all' };
    rules.push(it.rules);
  }
  return rules.length === 0 ? { kind: 'deny' } : { kind: 'rules', rules };
}
