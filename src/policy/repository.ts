/**
 * Policy repository: the set of imported policies, keyed by kind/namespace/name. Every upsert or
 * delete bumps the revision; re-importing a policy replaces it. Each rule gets a rule cookie (u32,
 * never 0) that policy-map entries carry so monitor/hubble can name the rule behind a verdict.
 */
import type { Prefix } from '../labels/index.js';
import { formatPrefix } from '../labels/index.js';
import type { ParsedPolicy, PolicyRef, PolicyRule } from './types.js';
import { policyRefKey } from './types.js';

export interface RepositoryChange {
  readonly revision: number;
  readonly ref: PolicyRef;
  readonly type: 'upsert' | 'delete';
  /** Rules removed (old version) and added (new version). */
  readonly removed: readonly PolicyRule[];
  readonly added: readonly PolicyRule[];
}

export type RepositoryListener = (change: RepositoryChange) => void;

export interface StoredPolicy {
  readonly policy: ParsedPolicy;
  readonly revision: number;
}

export class PolicyRepository {
  #revision = 1;
  readonly #policies = new Map<string, StoredPolicy>();
  readonly #cookies = new Map<PolicyRule, number>();
  readonly #byCookie = new Map<number, PolicyRule>();
  readonly #cidrsOf = new WeakMap<PolicyRule, [string, Prefix][]>();
  /** Prefix text → [prefix, number of rules naming it]: kept up to date as rules come and go. */
  readonly #cidrCounts = new Map<string, [Prefix, number]>();
  /** cidrPrefixes() until the set of prefixes changes (the same array, so callers can skip a sync). */
  #cidrList: Prefix[] | undefined;
  #nextCookie = 1;
  readonly #listeners = new Set<RepositoryListener>();
  /** The keys of #policies in order (kept sorted as policies come and go). */
  readonly #sorted: string[] = [];
  /** rules() in order, rebuilt after a change (endpoint computations read it once each). */
  #rules: PolicyRule[] | undefined;
  /** A rule's place: its policy's key and its index in that policy's rules (for compareRules). */
  readonly #place = new WeakMap<PolicyRule, [string, number]>();

  get revision(): number {
    return this.#revision;
  }

  /** Adds or replaces a policy. Returns the new revision. */
  upsert(policy: ParsedPolicy): number {
    const key = policyRefKey(policy.ref);
    const old = this.#policies.get(key);
    this.#revision++;
    if (old !== undefined) this.#dropCookies(old.policy.rules);
    for (const r of policy.rules) this.#assignCookie(r);
    for (const [i, r] of policy.rules.entries()) this.#place.set(r, [key, i]);
    for (const r of policy.rules) this.#countCidrs(r, 1);
    if (old !== undefined) for (const r of old.policy.rules) this.#countCidrs(r, -1);
    if (old === undefined) this.#sorted.splice(this.#position(key), 0, key);
    this.#policies.set(key, { policy, revision: this.#revision });
    this.#emit({
      revision: this.#revision,
      ref: policy.ref,
      type: 'upsert',
      removed: old?.policy.rules ?? [],
      added: policy.rules,
    });
    return this.#revision;
  }

  /** Replaces several policies at once (one revision bump each). */
  upsertAll(policies: readonly ParsedPolicy[]): number {
    for (const p of policies) this.upsert(p);
    return this.#revision;
  }

  /** Deletes a policy; returns the new revision, or undefined if it did not exist. */
  delete(ref: PolicyRef): number | undefined {
    const key = policyRefKey(ref);
    const old = this.#policies.get(key);
    if (old === undefined) return undefined;
    this.#policies.delete(key);
    this.#sorted.splice(this.#position(key), 1);
    this.#dropCookies(old.policy.rules);
    for (const r of old.policy.rules) this.#countCidrs(r, -1);
    this.#revision++;
    this.#emit({ revision: this.#revision, ref, type: 'delete', removed: old.policy.rules, added: [] });
    return this.#revision;
  }

  get(ref: PolicyRef): StoredPolicy | undefined {
    return this.#policies.get(policyRefKey(ref));
  }

  /** Policies sorted by their policyRefKey. */
  list(): StoredPolicy[] {
    return this.#sorted.map((k) => this.#policies.get(k)!);
  }

  rules(): PolicyRule[] {
    this.#rules ??= this.#sorted.flatMap((k) => this.#policies.get(k)!.policy.rules);
    return this.#rules;
  }

  /** Whether a rule is one of rules() (rules of replaced or deleted policies are not). */
  has(rule: PolicyRule): boolean {
    return this.#cookies.has(rule);
  }

  /** Orders rules of this repository as rules() lists them, without building that list. */
  compareRules(a: PolicyRule, b: PolicyRule): number {
    const [ka, ia] = this.#place.get(a)!;
    const [kb, ib] = this.#place.get(b)!;
    return ka < kb ? -1 : ka > kb ? 1 : ia - ib;
  }

  /** Where `key` is or would go in #sorted (binary search, code-unit order as `<`). */
  #position(key: string): number {
    let lo = 0;
    let hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#sorted[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  cookieOf(rule: PolicyRule): number {
    return this.#cookies.get(rule) ?? 0;
  }

  ruleByCookie(cookie: number): PolicyRule | undefined {
    return this.#byCookie.get(cookie);
  }

  /**
   * Every CIDR prefix referenced by some rule (except-holes removed), deduplicated and sorted. The
   * agent allocates a local CIDR identity for each (IdentityAllocator.allocateCidr) and writes
   * prefix → identity into the ipcache; see CidrIdentitySync. The same array is returned until the
   * set of prefixes changes (treat it as read-only).
   */
  cidrPrefixes(): Prefix[] {
    this.#cidrList ??= [...this.#cidrCounts.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([, [p]]) => p);
    return this.#cidrList;
  }

  /** Counts a rule's prefixes in (+1) or out (-1); the listing is redone only if the set changed. */
  #countCidrs(r: PolicyRule, delta: 1 | -1): void {
    for (const [k, p] of this.#ruleCidrs(r)) {
      const c = this.#cidrCounts.get(k);
      if (c === undefined) {
        if (delta < 0) continue;
        this.#cidrCounts.set(k, [p, 1]);
        this.#cidrList = undefined;
        continue;
      }
      c[1] += delta;
      if (c[1] === 0) {
        this.#cidrCounts.delete(k);
        this.#cidrList = undefined;
      }
    }
  }

  /** A rule's CIDR prefixes by their text (rules are immutable: computed once per rule). */
  #ruleCidrs(r: PolicyRule): [string, Prefix][] {
    let out = this.#cidrsOf.get(r);
    if (out === undefined) {
      out = [];
      for (const s of [r.ingress, r.ingressDeny, r.egress, r.egressDeny])
        for (const pr of s ?? []) for (const p of pr.cidrPrefixes) out.push([formatPrefix(p), p]);
      this.#cidrsOf.set(r, out);
    }
    return out;
  }

  subscribe(listener: RepositoryListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #assignCookie(r: PolicyRule): void {
    const c = this.#nextCookie;
    this.#nextCookie = c >= 0xffffffff ? 1 : c + 1;
    this.#cookies.set(r, c);
    this.#byCookie.set(c, r);
  }

  #dropCookies(rules: readonly PolicyRule[]): void {
    for (const r of rules) {
      const c = this.#cookies.get(r);
      if (c !== undefined) this.#byCookie.delete(c);
      this.#cookies.delete(r);
    }
  }

  #emit(c: RepositoryChange): void {
    this.#rules = undefined;
    for (const l of [...this.#listeners]) l(c);
  }
}
