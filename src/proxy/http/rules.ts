/**
 * HTTP rule matching as upstream's Envoy filter does it: `method`, `path` and `host` are regular
 * expressions matched against the WHOLE value (`/public` does not match `/public/x`; the path
 * includes the query string), `headers` require presence or an exact value. Fields of one rule
 * are ANDed, the rules of a port rule ORed, and several port rules (several selectors matching
 * the peer) ORed too. gRPC calls are HTTP/2 POSTs to `/package.Service/Method`.
 */
import type { HttpRule, L7Decision, L7Rules } from '../../policy/l7.js';

/** What a rule needs to know of a request (HTTP/1.1 or HTTP/2 alike). */
export interface HttpRequestView {
  readonly method: string;
  /** Path with the query string (`:path`). */
  readonly path: string;
  /** Host header / `:authority`. */
  readonly host: string;
  /** Lower-cased header name → values. */
  header(name: string): string | readonly string[] | undefined;
}

interface CompiledRule {
  readonly method?: RegExp;
  readonly path?: RegExp;
  readonly host?: RegExp;
  readonly headers: readonly { name: string; value?: string }[];
}

const compiled = new WeakMap<HttpRule, CompiledRule>();

function full(re: string | undefined): RegExp | undefined {
  return re === undefined ? undefined : new RegExp(`^(?:${re})$`, 's');
}

function compile(r: HttpRule): CompiledRule {
  let c = compiled.get(r);
  if (c === undefined) {
    c = {
      ...(r.method !== undefined ? { method: full(r.method)! } : {}),
      ...(r.path !== undefined ? { path: full(r.path)! } : {}),
      ...(r.host !== undefined ? { host: full(r.host)! } : {}),
      headers: r.headers.map((h) => ({
        name: h.name.toLowerCase(),
        ...(h.value !== undefined ? { value: h.value } : {}),
      })),
    };
    compiled.set(r, c);
  }
  return c;
}

export function httpRuleMatches(rule: HttpRule, req: HttpRequestView): boolean {
  const c = compile(rule);
  if (c.method && !c.method.test(req.method)) return false;
  if (c.path && !c.path.test(req.path)) return false;
  if (c.host && !c.host.test(req.host)) return false;
  for (const h of c.headers) {
    const v = req.header(h.name);
    if (v === undefined) return false;
    if (h.value === undefined) continue;
    const values = typeof v === 'string' ? [v] : v;
    if (!values.includes(h.value)) return false;
  }
  return true;
}

/** Does the endpoint's policy (as l7RulesFor decided it for this connection) allow the request? */
export function httpAllowed(decision: L7Decision, req: HttpRequestView): boolean {
  if (decision.kind === 'allow-all') return true;
  if (decision.kind === 'deny') return false;
  return decision.rules.some(
    (r: L7Rules) => r.parser === 'http' && r.http.some((rule) => httpRuleMatches(rule, req)),
  );
}
