/**
 * DNS names and the FQDN selectors of policies (`matchName`, `matchPattern`), with upstream's
 * semantics: names are compared lower-cased as fully qualified names (trailing dot); `*` inside a
 * label matches any run of DNS name characters but never crosses a dot; a leading `**.` matches one
 * or more labels; `*` alone matches every name (the root `.` included). A `matchName` is the pattern
 * of itself (it holds no `*`), so both kinds of selector are one canonical pattern string. Pure.
 */

/** Lower-cases a name and adds the trailing dot: `WWW.Example.com` → `www.example.com.`. */
export function toFqdn(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n : `${n}.`;
}

export interface FqdnSelectorInput {
  readonly matchName?: string | undefined;
  readonly matchPattern?: string | undefined;
}

/** The canonical pattern of a selector: `matchName` or `matchPattern` lower-cased, fully qualified. */
export function selectorPattern(s: FqdnSelectorInput): string {
  if (s.matchName !== undefined) return toFqdn(s.matchName);
  if (s.matchPattern === undefined) throw new Error('an FQDN selector needs matchName or matchPattern');
  const p = s.matchPattern.trim().toLowerCase();
  return p === '*' ? '*' : toFqdn(p);
}

const NAME_CHARS = '[-a-z0-9_]';

/** The regular expression of a canonical pattern (anchored; names are matched after toFqdn). */
export function patternRegExp(pattern: string): RegExp {
  if (pattern === '*') return new RegExp(`^(?:(?:${NAME_CHARS}+[.])+|[.])$`);
  let prefix = '';
  let rest = pattern;
  if (rest.startsWith('**.')) {
    prefix = `(?:${NAME_CHARS}+[.])+`;
    rest = rest.slice(3);
  }
  const body = rest
    .split('')
    .map((c) => (c === '*' ? `${NAME_CHARS}*` : c === '.' ? '[.]' : c.replace(/[\\^$+?()[\]{}|]/g, '\\$&')))
    .join('');
  return new RegExp(`^${prefix}${body}$`);
}

/** A compiled pattern: `matches(name)` takes any spelling of a name (case, trailing dot). */
export class FqdnMatcher {
  readonly #re: RegExp;
  constructor(readonly pattern: string) {
    this.#re = patternRegExp(pattern);
  }
  matches(name: string): boolean {
    return this.#re.test(toFqdn(name));
  }
}

/** Compiled matchers kept by pattern, so the proxy and the identity code compile each only once. */
const compiled = new Map<string, FqdnMatcher>();

export function matcherFor(pattern: string): FqdnMatcher {
  let m = compiled.get(pattern);
  if (m === undefined) {
    if (compiled.size > 10_000) compiled.clear();
    m = new FqdnMatcher(pattern);
    compiled.set(pattern, m);
  }
  return m;
}

export function nameMatches(pattern: string, name: string): boolean {
  return matcherFor(pattern).matches(name);
}
