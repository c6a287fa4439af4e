/**
 * Per-endpoint policy computation, incremental regeneration and trace.
 *
 * Enforcement per direction (upstream's default mode): a direction is enforced when some rule
 * selecting the endpoint has an allow or deny section for it (`ingress: []` counts) and does not set
 * `enableDefaultDeny.<direction>: false`. A direction that is not enforced gets one allow-all entry
 * (identity 0, prefix 40); deny entries still apply on top of it.
 */
import { K8sLabelKey, type LabelSet } from '../labels/index.js';
import type { L7Item, L7Parser, L7Rules } from './l7.js';
import {
  addEntry,
  diffMapState,
  firstCovering,
  keyCoversL4,
  keyMatchesPacket,
  keyOfLow,
  LayeredMapState,
  l4Keys,
  type MapDiff,
  type MapEntry,
  type MapState,
  makeKey,
  mergeEntries,
  type PolicyEntry,
  type PolicyKey,
  policyKeyIdOf,
  policyKeyLow,
  policyKeyLowOf,
  resolveDenyOverAllow,
} from './mapstate.js';
import { PORT_PROTOCOLS, PREFIX_FULL, PREFIX_IDENTITY_ONLY, Proto, protoNumber } from './ports.js';
import type { PolicyRepository, RepositoryChange } from './repository.js';
import { Selector } from './selector.js';
import type { SelectionChange, SelectorCache } from './selectorcache.js';
import type { Direction, L4Port, PeerRule, PolicyRef, PolicyRule, Section } from './types.js';

export interface NamedPort {
  readonly port: number;
  /** Protocol name (TCP, UDP, SCTP); default TCP as in Kubernetes. */
  readonly protocol?: string;
}

/** Container port name → port. */
export type NamedPorts = Readonly<Record<string, NamedPort>>;

export interface EndpointInput {
  /** The endpoint's security identity labels. */
  readonly labels: LabelSet;
  /** Named ports of the endpoint itself (resolve named ports of ingress rules). */
  readonly namedPorts?: NamedPorts;
}

export interface EndpointPolicy {
  readonly revision: number;
  readonly ingressEnforced: boolean;
  readonly egressEnforced: boolean;
  readonly state: MapState;
  /** Rules selecting the endpoint. */
  readonly rules: readonly PolicyRule[];
  /** Selectors (by key) whose selections this state depends on. */
  readonly selectors: readonly Selector[];
  /** When some allow rule has L7 rules: every allow port rule, for the proxies (l7RulesFor); else []. */
  readonly l7: readonly L7Item[];
}

export interface EndpointUpdate {
  readonly endpointId: number;
  readonly policy: EndpointPolicy;
  readonly diff: MapDiff;
}

export interface PolicyEngineOptions {
  /**
   * Named ports for egress rules: the ports called `name` on any pod (upstream resolves egress
   * named ports against all known endpoints). Default: none, so egress named ports allow nothing.
   */
  egressNamedPorts?: (name: string) => readonly NamedPort[];
  /**
   * The port of the proxy enforcing a parser's rules in a direction (src/proxy), written into the
   * map entries of port rules with L7 rules. 0 or no function: those port rules allow nothing.
   */
  proxyPort?: (parser: L7Parser, egress: 0 | 1) => number;
}

/**
 * Egress named-port resolution over a set of pods (upstream resolves an egress named port against
 * the named ports of all known pods): every distinct port/protocol some pod calls `name`. Names
 * match exactly, as ingress names do against the endpoint's own ports (container port names are
 * lowercase by validation; policy names are lower-cased when parsed).
 */
export function namedPortLookup(pods: () => Iterable<NamedPorts>): (name: string) => NamedPort[] {
  return (name) => {
    const seen = new Map<string, NamedPort>();
    for (const ports of pods()) {
      for (const [n, p] of Object.entries(ports)) {
        if (n !== name) continue;
        const proto = (p.protocol ?? 'TCP').toUpperCase();
        seen.set(`${p.port}/${proto}`, { port: p.port, protocol: proto });
      }
    }
    return [...seen.values()];
  };
}

function usesEgressNamedPorts(rules: readonly PolicyRule[]): boolean {
  return rules.some((r) =>
    [...(r.egress ?? []), ...(r.egressDeny ?? [])].some((pr) =>
      pr.ports.some((pp) => pp.ports.some((p) => p.name !== undefined)),
    ),
  );
}

const SECTIONS_BY_DIR: Record<Direction, readonly [Section, Section]> = {
  ingress: ['ingress', 'ingressDeny'],
  egress: ['egress', 'egressDeny'],
};

function ruleSelects(rule: PolicyRule, labels: LabelSet): boolean {
  return rule.subject.matches(labels);
}

function directionEnforced(rules: readonly PolicyRule[], dir: Direction): boolean {
  return rules.some(
    (r) =>
      (r[SECTIONS_BY_DIR[dir][0]] !== undefined || r[SECTIONS_BY_DIR[dir][1]] !== undefined) &&
      r.enableDefaultDeny[dir] !== false,
  );
}

/** fromRequires/toRequires of all rules selecting the endpoint, as one list of requirements. */
function requirementsFor(rules: readonly PolicyRule[], dir: Direction): Selector {
  const reqs = rules.flatMap((r) =>
    SECTIONS_BY_DIR[dir].flatMap((s) =>
      (r[s] ?? []).flatMap((pr) => pr.requires.flatMap((q) => q.requirements)),
    ),
  );
  return Selector.of(reqs);
}

function effectivePeers(pr: PeerRule, requires: Selector): Selector[] {
  return pr.peers.map((p) =>
    (p.origin === 'endpoints' || p.origin === 'wildcard') && !requires.isWildcard
      ? p.selector.with(...requires.requirements)
      : p.selector,
  );
}

/** (protocol, start, end) tuples of a port, with named ports resolved; [] if unresolvable. */
function resolvePort(p: L4Port, named: (name: string) => readonly NamedPort[]): [number, number, number][] {
  const ruleProto = protoNumber(p.protocol) ?? 0;
  if (p.name !== undefined) {
    const out: [number, number, number][] = [];
    for (const np of named(p.name)) {
      const npProto = protoNumber(np.protocol ?? 'TCP') ?? Proto.TCP;
      if (ruleProto !== 0 && ruleProto !== npProto) continue; // the rule's protocol contradicts the port's
      out.push([npProto, np.port, np.port]);
    }
    return out;
  }
  const port = p.port ?? 0;
  const [start, end] = port === 0 ? [0, 65535] : [port, p.endPort ?? port];
  if (ruleProto === Proto.IGMP || ruleProto === Proto.VRRP) return [[ruleProto, 0, 65535]];
  if (ruleProto === 0) {
    if (port === 0) return [[0, 0, 65535]];
    return PORT_PROTOCOLS.map((pr) => [pr, start, end]);
  }
  return [[ruleProto, start, end]];
}

/**
 * A peer rule's port rules split by L7: the L4-only ones together, each one with L7 rules alone
 * (its entries carry its proxy's port).
 */
function splitByL7(pr: PeerRule): { pr: PeerRule; l7?: L7Rules }[] {
  if (!pr.ports.some((r) => r.l7 !== undefined)) return [{ pr }];
  const plain = pr.ports.filter((r) => r.l7 === undefined);
  const out: { pr: PeerRule; l7?: L7Rules }[] = plain.length > 0 ? [{ pr: { ...pr, ports: plain } }] : [];
  for (const r of pr.ports) if (r.l7 !== undefined) out.push({ pr: { ...pr, ports: [r] }, l7: r.l7 });
  return out;
}

/** [protocol, first, last] port ranges of a peer rule (TCP/UDP-style ports only). */
function peerRuleRanges(
  pr: PeerRule,
  named: (name: string) => readonly NamedPort[],
): [number, number, number][] {
  if (pr.icmps.length > 0) return [];
  if (pr.ports.length === 0) return [[0, 0, 65535]];
  return pr.ports.flatMap((rule) => rule.ports.flatMap((p) => resolvePort(p, named)));
}

/** L4 part of a peer rule as keys for `identity`. */
function peerRuleKeys(
  pr: PeerRule,
  identity: number,
  egress: 0 | 1,
  named: (name: string) => readonly NamedPort[],
) {
  if (pr.icmps.length > 0) {
    return pr.icmps.map((f) =>
      makeKey(identity, egress, f.family === 'IPv4' ? Proto.ICMP : Proto.ICMPv6, f.type, PREFIX_FULL),
    );
  }
  if (pr.ports.length === 0) return [makeKey(identity, egress, 0, 0, PREFIX_IDENTITY_ONLY)];
  return pr.ports.flatMap((rule) =>
    rule.ports.flatMap((p) =>
      resolvePort(p, named).flatMap(([proto, s, e]) => l4Keys(identity, egress, proto, s, e)),
    ),
  );
}

/** The L4 part of a policy key; `low` completes an identity into the key's id (policyKeyIdOf). */
interface KeyTemplate {
  readonly protocol: number;
  readonly dport: number;
  readonly prefixLen: number;
  readonly low: number;
}

function templatesOf(keys: readonly PolicyKey[]): KeyTemplate[] {
  return keys.map((k) => ({
    protocol: k.protocol,
    dport: k.dport,
    prefixLen: k.prefixLen,
    low: policyKeyLow(k.egress, k.protocol, k.dport, k.prefixLen),
  }));
}

/**
 * One peer rule as it applies to one endpoint: its entry (allow/deny, cookie), the identities it
 * selects (the wildcard and/or selectors over the selector cache) and its L4 keys. An endpoint's
 * map state is a function of its plan and the selections, so an identity coming or going only
 * touches that identity's entries.
 */
interface PlanItem {
  readonly egress: 0 | 1;
  readonly entry: PolicyEntry;
  readonly wildcard: boolean;
  readonly selectors: readonly Selector[];
  readonly templates: readonly KeyTemplate[];
}

/**
 * Entries shared between endpoints: most endpoints holding a key hold it with the same entry (same
 * rule, same cookie), so they can hold one MapEntry object (entries are immutable) instead of one
 * each. One object per key is remembered; the table is emptied when it grows past a bound (objects
 * already handed out stay valid, only later ones are no longer shared with them).
 */
class SharedEntries {
  static readonly LIMIT = 1 << 18;
  readonly #byKey = new Map<number, MapEntry>();
  readonly #entries = new Map<string, PolicyEntry>();

  /** The one PolicyEntry object for these fields. */
  entry(cookie: number, deny: boolean, proxyPort: number): PolicyEntry {
    const k = `${cookie}/${deny}/${proxyPort}`;
    let e = this.#entries.get(k);
    if (e === undefined) {
      if (this.#entries.size >= SharedEntries.LIMIT) this.#entries.clear();
      e = { deny, proxyPort, ruleCookie: cookie };
      this.#entries.set(k, e);
    }
    return e;
  }

  /** A MapEntry for key id `ks` (identity `id`, template `t`) holding `entry`. */
  get(ks: number, id: number, egress: 0 | 1, t: KeyTemplate, entry: PolicyEntry): MapEntry {
    const e = this.#byKey.get(ks);
    if (e !== undefined && e.entry === entry) return e;
    const key: PolicyKey =
      e !== undefined
        ? e.key
        : { identity: id, egress, protocol: t.protocol, dport: t.dport, prefixLen: t.prefixLen };
    const n: MapEntry = { key, entry };
    if (this.#byKey.size >= SharedEntries.LIMIT) this.#byKey.clear();
    this.#byKey.set(ks, n);
    return n;
  }
}

/** Adds identity `id`'s entry for a template (same merge rules as addEntry); returns its key id. */
function addTemplated(
  state: MapState,
  id: number,
  egress: 0 | 1,
  t: KeyTemplate,
  entry: PolicyEntry,
  shared: SharedEntries,
): number {
  const ks = policyKeyIdOf(id, t.low);
  const prev = state.get(ks);
  if (prev === undefined) {
    state.set(ks, shared.get(ks, id, egress, t, entry));
  } else if (entry.deny && !prev.entry.deny) {
    state.set(ks, shared.get(ks, id, egress, t, entry));
  } else if (prev.entry.deny === entry.deny) {
    const merged = mergeEntries(prev.entry, entry);
    if (merged !== prev.entry) state.set(ks, { key: prev.key, entry: merged });
  }
  return ks;
}

/** Human form of a peer rule's L4 part, for trace output. */
export function describeL4(pr: PeerRule): string {
  if (pr.icmps.length > 0)
    return pr.icmps.map((f) => `${f.family === 'IPv4' ? 'ICMP' : 'ICMPv6'} type ${f.type}`).join(', ');
  const ports = pr.ports.flatMap((r) =>
    r.ports.map((p) => {
      const port = p.name ?? (p.port === 0 || p.port === undefined ? 'any' : String(p.port));
      return `${port}${p.endPort !== undefined ? `-${p.endPort}` : ''}/${p.protocol}`;
    }),
  );
  return ports.length === 0 ? 'any' : ports.join(', ');
}

export interface TraceMatch {
  readonly policy: PolicyRef;
  readonly ruleIndex: number;
  readonly section: Section;
  readonly peerRuleIndex: number;
  /** The peer selector that matched the remote side (canonical form; `{}` = any peer). */
  readonly peer: string;
  /** The L4 part of the rule: `any`, ports such as `80/TCP`, `80-81/ANY`, `serve-80-tcp/TCP`, or ICMP types. */
  readonly l4: string;
}

export type DirectionVerdict = 'allowed' | 'denied' | 'default-allowed' | 'default-denied';

export interface DirectionTrace {
  readonly verdict: DirectionVerdict;
  readonly enforced: boolean;
  /** Rules that decide the verdict: the matching deny rules, else the matching allow rules. */
  readonly matches: readonly TraceMatch[];
  readonly selectingRules: readonly { policy: PolicyRef; ruleIndex: number }[];
}

export interface TraceResult {
  readonly verdict: 'ALLOWED' | 'DENIED';
  readonly egress: DirectionTrace;
  readonly ingress: DirectionTrace;
}

export interface TraceQuery {
  readonly src: EndpointInput;
  readonly dst: EndpointInput;
  readonly dport: number;
  /** Protocol number or name (TCP, UDP, SCTP, ICMP, ICMPv6). For ICMP, dport is the ICMP type. */
  readonly protocol: number | string;
}

interface RuleIndex {
  readonly rules: readonly PolicyRule[];
  readonly byLabel: Map<string, number[]>;
  readonly scan: number[];
}

/** The `key=value` a rule's subject requires, its index key (rules are immutable: worked out once). */
const indexKeys = new WeakMap<PolicyRule, string | null>();

function indexKeyOf(r: PolicyRule): string | null {
  let k = indexKeys.get(r);
  if (k === undefined) {
    const reqs = r.subject.requirements.filter((q) => q.op === 'In' && q.values.length === 1);
    const q = reqs.find((x) => x.key === K8sLabelKey.PodNamespace) ?? reqs[0];
    k = q === undefined ? null : `${q.key}=${q.values[0]}`;
    indexKeys.set(r, k);
  }
  return k;
}

function indexRules(rules: readonly PolicyRule[]): RuleIndex {
  const byLabel = new Map<string, number[]>();
  const scan: number[] = [];
  for (const [i, r] of rules.entries()) {
    const k = indexKeyOf(r);
    if (k === null) {
      scan.push(i);
      continue;
    }
    const l = byLabel.get(k);
    if (l === undefined) byLabel.set(k, [i]);
    else l.push(i);
  }
  return { rules, byLabel, scan };
}

interface EndpointRecord {
  input: EndpointInput;
  policy: EndpointPolicy;
  plan: readonly PlanItem[];
  /** Keys of allows turned into denies by a covering deny (resolveDenyOverAllow): not denies of their own. */
  converted: Set<number>;
  /** The lows of the plan's templates (#addRules), worked out when first needed. */
  lows?: PlanLows;
}

/** Lows (policyKeyLow) of a plan: all of them, its deny items', its identity-0 deny items'. */
interface PlanLows {
  readonly all: Set<number>;
  readonly deny: Set<number>;
  readonly zeroDeny: Set<number>;
}

function addPlanLows(lows: PlanLows, plan: readonly PlanItem[]): PlanLows {
  for (const item of plan)
    for (const t of item.templates) {
      lows.all.add(t.low);
      if (item.entry.deny) lows.deny.add(t.low);
      if (item.entry.deny && item.wildcard) lows.zeroDeny.add(t.low);
    }
  return lows;
}

/** The raw entries and plan of some rules alone (#build with `only`). */
interface RawPart {
  readonly part: EndpointPolicy;
  readonly plan: readonly PlanItem[];
  /** part.state as parallel arrays (key ids, entries): the loop every endpoint runs over it. */
  readonly ids: readonly number[];
  /** Also the upserts of every endpoint the part merges into without changing (the same array: encoded once). */
  readonly entries: readonly MapEntry[];
  /** Lows (policyKeyLow) of the part's deny keys. */
  readonly denyLows: ReadonlySet<number>;
  /** Indices into ids/entries by the keys' low. */
  readonly byLow: ReadonlyMap<number, readonly number[]>;
  /** Lows where the part holds an allow; lows where it holds an identity-0 key. */
  readonly allowLows: ReadonlySet<number>;
  readonly zeroLows: ReadonlySet<number>;
  /** The part's entries without the keys at some lows (by those lows, sorted): layers shared by endpoints. */
  readonly layers: Map<string, ReadonlyMap<number, MapEntry>>;
}

function rawPart(part: EndpointPolicy, plan: readonly PlanItem[]): RawPart {
  const denyLows = new Set<number>();
  for (const item of plan) if (item.entry.deny) for (const t of item.templates) denyLows.add(t.low);
  const ids = [...part.state.keys()];
  const entries = Object.freeze([...part.state.values()]);
  const byLow = new Map<number, number[]>();
  const allowLows = new Set<number>();
  const zeroLows = new Set<number>();
  for (const [i, ks] of ids.entries()) {
    const low = policyKeyLowOf(ks);
    const l = byLow.get(low);
    if (l === undefined) byLow.set(low, [i]);
    else l.push(i);
    const e = entries[i]!;
    if (!e.entry.deny) allowLows.add(low);
    if (e.key.identity === 0) zeroLows.add(low);
  }
  return { part, plan, ids, entries, denyLows, byLow, allowLows, zeroLows, layers: new Map() };
}

/** What the added-rules fast path needs to know of a rule (rules are immutable: worked out once). */
interface RuleTraits {
  readonly namedPorts: boolean;
  readonly l7: boolean;
  readonly requires: boolean;
}

const traitsOf = new WeakMap<PolicyRule, RuleTraits>();

function ruleTraits(r: PolicyRule): RuleTraits {
  let t = traitsOf.get(r);
  if (t === undefined) {
    const prs = [r.ingress, r.ingressDeny, r.egress, r.egressDeny].flatMap((s) => s ?? []);
    t = {
      namedPorts: prs.some((pr) => pr.ports.some((pp) => pp.ports.some((p) => p.name !== undefined))),
      l7: prs.some((pr) => pr.ports.some((p) => p.l7 !== undefined)),
      requires: prs.some((pr) => pr.requires.length > 0),
    };
    traitsOf.set(r, t);
  }
  return t;
}

const anyRule = (rules: readonly PolicyRule[], trait: keyof RuleTraits): boolean =>
  rules.some((r) => ruleTraits(r)[trait]);

/** Per list of an endpoint's rules: whether L7 rules or fromRequires/toRequires rule out merging. */
const mergeBlocked = new WeakMap<readonly PolicyRule[], boolean>();

function blocksMerge(rules: readonly PolicyRule[]): boolean {
  let b = mergeBlocked.get(rules);
  if (b === undefined) {
    b = anyRule(rules, 'l7') || anyRule(rules, 'requires');
    mergeBlocked.set(rules, b);
  }
  return b;
}

function sameEntry(a: PolicyEntry, b: PolicyEntry): boolean {
  return a.deny === b.deny && a.ruleCookie === b.ruleCookie && a.proxyPort === b.proxyPort;
}

/** Raised inside the added-rules fast path when only a full computation gives the exact result. */
class NeedsFullBuild extends Error {}

export class PolicyEngine {
  readonly #endpoints = new Map<number, EndpointRecord>();
  /** Endpoints to recompute from their rules. */
  readonly #dirty = new Set<number>();
  /** Endpoints whose selectors gained or lost these identities (and nothing else changed). */
  readonly #pending = new Map<number, Set<number>>();
  /**
   * Dirty endpoints whose only change is rules added (a new policy selecting them): their entries
   * can be merged into the current state instead of recomputing everything (#addRules).
   */
  readonly #added = new Map<number, PolicyRule[]>();
  readonly #shared = new SharedEntries();
  /** Selector key → endpoints whose policy depends on it. */
  readonly #bySelector = new Map<string, Set<number>>();
  #ruleIndex: RuleIndex | undefined;
  readonly #unsubs: (() => void)[] = [];

  constructor(
    readonly repo: PolicyRepository,
    readonly cache: SelectorCache,
    readonly opts: PolicyEngineOptions = {},
  ) {
    this.#unsubs.push(repo.subscribe((c) => this.#onRepoChange(c)));
    this.#unsubs.push(cache.subscribe((c) => this.#onSelectionChange(c)));
  }

  close(): void {
    for (const u of this.#unsubs) u();
  }

  /** Computes the desired state of an endpoint without registering it. */
  compute(input: EndpointInput): EndpointPolicy {
    return this.#build(input).policy;
  }

  /**
   * An endpoint's plan and state from its selecting rules. With `only`, from those rules alone and
   * raw: their entries as merged among themselves, without the unenforced wildcard and before deny
   * over allow (what #addRules merges into a computed state).
   */
  #build(
    input: EndpointInput,
    only?: readonly PolicyRule[],
  ): { policy: EndpointPolicy; plan: PlanItem[]; converted: Set<number> } {
    const rules = only ?? this.#selectingRules(input.labels);
    // An endpoint's state can take the entries of policies added later as shared layers (#addRules).
    const state: MapState = only === undefined ? new LayeredMapState() : new Map();
    const selectors = new Map<string, Selector>();
    const plan: PlanItem[] = [];
    const result = { ingressEnforced: false, egressEnforced: false };
    const entryFor = (cookie: number, deny: boolean, proxyPort = 0): PolicyEntry =>
      this.#shared.entry(cookie, deny, proxyPort);
    const l7: L7Item[] = [];
    let hasL7 = false;
    for (const dir of ['ingress', 'egress'] as const) {
      const egress: 0 | 1 = dir === 'egress' ? 1 : 0;
      const enforced = directionEnforced(rules, dir);
      result[dir === 'ingress' ? 'ingressEnforced' : 'egressEnforced'] = enforced;
      const requires = requirementsFor(rules, dir);
      const named =
        dir === 'ingress'
          ? (name: string): NamedPort[] => {
              const p = input.namedPorts?.[name];
              return p === undefined ? [] : [p];
            }
          : (name: string) => this.opts.egressNamedPorts?.(name) ?? [];
      for (const rule of rules) {
        const cookie = this.repo.cookieOf(rule);
        for (const section of SECTIONS_BY_DIR[dir]) {
          const deny = section.endsWith('Deny');
          for (const pr of rule[section] ?? []) {
            let wildcard = false;
            const sels: Selector[] = [];
            for (const sel of effectivePeers(pr, deny ? Selector.wildcard : requires)) {
              if (sel.isWildcard) wildcard = true;
              else {
                sels.push(sel);
                selectors.set(sel.key, sel);
              }
            }
            if (!wildcard && sels.length === 0) continue;
            for (const part of splitByL7(pr)) {
              const templates = templatesOf(peerRuleKeys(part.pr, 0, egress, named));
              if (templates.length === 0) continue;
              let proxyPort = 0;
              if (part.l7 !== undefined) {
                hasL7 = true;
                proxyPort = this.opts.proxyPort?.(part.l7.parser, egress) ?? 0;
                if (proxyPort === 0) continue; // no proxy to enforce it: allow nothing
              }
              if (!deny)
                l7.push({
                  egress,
                  wildcard,
                  selectors: sels,
                  ranges: peerRuleRanges(part.pr, named),
                  ...(part.l7 !== undefined ? { rules: part.l7 } : {}),
                });
              const item: PlanItem = {
                egress,
                entry: entryFor(cookie, deny, proxyPort),
                wildcard,
                selectors: sels,
                templates,
              };
              plan.push(item);
              // An identity selected twice adds the same entries twice: a no-op, so no dedup needed.
              if (wildcard)
                for (const t of templates) addTemplated(state, 0, egress, t, item.entry, this.#shared);
              for (const sel of sels)
                for (const id of this.cache.selections(sel))
                  for (const t of templates) addTemplated(state, id, egress, t, item.entry, this.#shared);
            }
          }
        }
      }
      if (!enforced && only === undefined)
        addEntry(state, makeKey(0, egress, 0, 0, PREFIX_IDENTITY_ONLY), {
          deny: false,
          proxyPort: 0,
          ruleCookie: 0,
        });
    }
    const converted = only === undefined ? resolveDenyOverAllow(state) : new Set<number>();
    return {
      converted,
      policy: {
        revision: this.repo.revision,
        ...result,
        state,
        rules,
        selectors: [...selectors.values()],
        l7: hasL7 ? l7 : [],
      },
      plan,
    };
  }

  /**
   * Rules selecting an endpoint, in repository order. Rules are indexed by one `key=value` their
   * subject requires (the namespace when it has one), so an endpoint only tests the rules indexed
   * under one of its labels plus those without such a requirement.
   */
  #selectingRules(labels: LabelSet): PolicyRule[] {
    const all = this.repo.rules();
    if (this.#ruleIndex?.rules !== all) this.#ruleIndex = indexRules(all);
    const ix = this.#ruleIndex;
    const candidates = [...ix.scan];
    for (const l of labels) {
      const hit = ix.byLabel.get(`${l.key}=${l.value}`);
      if (hit !== undefined) candidates.push(...hit);
    }
    candidates.sort((a, b) => a - b);
    const out: PolicyRule[] = [];
    for (const i of candidates) if (ruleSelects(all[i]!, labels)) out.push(all[i]!);
    return out;
  }

  /** Registers (or updates) an endpoint and returns its new state and the diff from the previous one. */
  upsertEndpoint(endpointId: number, input: EndpointInput): EndpointUpdate {
    this.#dirty.delete(endpointId);
    this.#pending.delete(endpointId);
    this.#added.delete(endpointId);
    const prev = this.#endpoints.get(endpointId);
    const { policy, plan, converted } = this.#build(input);
    for (const s of policy.selectors) this.cache.add(s);
    if (prev !== undefined) {
      for (const s of prev.policy.selectors) this.cache.remove(s);
      this.#unindex(endpointId, prev.policy);
    }
    this.#endpoints.set(endpointId, { input, policy, plan, converted });
    this.#index(endpointId, policy.selectors);
    return { endpointId, policy, diff: diffMapState(prev?.policy.state ?? new Map(), policy.state) };
  }

  /** Forgets an endpoint; returns the deletes that empty its map. */
  removeEndpoint(endpointId: number): MapDiff {
    const prev = this.#endpoints.get(endpointId);
    this.#dirty.delete(endpointId);
    this.#pending.delete(endpointId);
    this.#added.delete(endpointId);
    if (prev === undefined) return { upserts: [], deletes: [] };
    for (const s of prev.policy.selectors) this.cache.remove(s);
    this.#unindex(endpointId, prev.policy);
    this.#endpoints.delete(endpointId);
    return diffMapState(prev.policy.state, new Map());
  }

  #index(endpointId: number, selectors: readonly Selector[]): void {
    for (const s of selectors) {
      let set = this.#bySelector.get(s.key);
      if (set === undefined) {
        set = new Set();
        this.#bySelector.set(s.key, set);
      }
      set.add(endpointId);
    }
  }

  #unindex(endpointId: number, policy: EndpointPolicy): void {
    for (const s of policy.selectors) {
      const set = this.#bySelector.get(s.key);
      if (set === undefined) continue;
      set.delete(endpointId);
      if (set.size === 0) this.#bySelector.delete(s.key);
    }
  }

  endpointPolicy(endpointId: number): EndpointPolicy | undefined {
    return this.#endpoints.get(endpointId)?.policy;
  }

  /** Endpoints whose policy may have changed since they were last computed. */
  dirtyEndpoints(): number[] {
    return [...new Set([...this.#dirty, ...this.#pending.keys()])].sort((a, b) => a - b);
  }

  /**
   * Brings the dirty endpoints up to date; returns their updates (diffs may be empty). Endpoints
   * whose rules changed are recomputed; endpoints that only saw identities come or go through their
   * selectors get just those identities' entries redone.
   */
  regenerate(): EndpointUpdate[] {
    const out: EndpointUpdate[] = [];
    const parts = new Map<string, RawPart>();
    for (const id of this.dirtyEndpoints()) {
      const ep = this.#endpoints.get(id);
      if (ep === undefined) continue;
      const added = this.#added.get(id);
      if (this.#dirty.has(id) && added !== undefined && !this.#pending.has(id)) {
        const u = this.#addRules(id, ep, added, parts);
        out.push(u ?? this.upsertEndpoint(id, ep.input));
      } else if (this.#dirty.has(id)) out.push(this.upsertEndpoint(id, ep.input));
      else out.push(this.#refreshIdentities(id, ep, this.#pending.get(id)!));
    }
    this.#dirty.clear();
    this.#pending.clear();
    this.#added.clear();
    return out;
  }

  /**
   * Merges the entries of rules newly selecting an endpoint into its state, touching only the keys
   * they contribute and the allows their denies may cover. Undefined when only a full computation
   * is exact: fromRequires/toRequires or L7 rules around, a deny changing an existing deny's cookie,
   * an identity-0 deny, or an allow covered by denies of different rules (which one names it then
   * depends on the order of all rules). The state is left as it was in that case.
   *
   * The cost is proportional to the entries the new rules contribute: their raw entries are built
   * once for every endpoint they select (without named ports they are the same), and an endpoint
   * none of whose keys they collide with or cover gets that very list as its upserts.
   */
  #addRules(
    endpointId: number,
    ep: EndpointRecord,
    added: readonly PolicyRule[],
    parts: Map<string, RawPart>,
  ): EndpointUpdate | undefined {
    const prev = ep.policy;
    if (prev.l7.length > 0 || blocksMerge(prev.rules)) return undefined;
    if (anyRule(added, 'l7') || anyRule(added, 'requires')) return undefined;
    if (prev.rules.some((r) => !this.repo.has(r)) || added.some((r) => !this.repo.has(r))) return undefined;
    // Without named ports the rules' raw entries are the same for every endpoint: built once and
    // shared (entries are immutable), which is most of the work for a policy selecting many.
    const shared = !anyRule(added, 'namedPorts');
    const sig = shared ? added.map((r) => this.repo.cookieOf(r)).join(',') : '';
    let raw = shared ? parts.get(sig) : undefined;
    if (raw === undefined) {
      const b = this.#build(ep.input, added);
      raw = rawPart(b.policy, b.plan);
      if (shared) parts.set(sig, raw);
    }
    const { part, plan } = raw;
    const state = prev.state;
    const converted = ep.converted;
    // Undo log and diff: keys absent before (`fresh`), and keys present before with their old entry.
    const fresh: number[] = [];
    const prior = new Map<number, [MapEntry | undefined, boolean]>();
    let freshSet: Set<number> | undefined;
    // Whether some key now holds something else than the part's entry for it (or a key outside the
    // part changed): then the diff is built key by key instead of being the part's list.
    let diverged = false;
    const touch = (ks: number) => {
      if (prior.has(ks)) return;
      if (fresh.length > 0) {
        freshSet ??= new Set(fresh);
        if (freshSet.has(ks)) return;
      }
      prior.set(ks, [state.get(ks), converted.has(ks)]);
    };
    // Lows (policyKeyLow) the endpoint holds keys at: its plan's and the unenforced wildcards'.
    // Raw denies only sit at the lows of deny items. The endpoint's identity-0 denies cover allows
    // of every identity, at their own low too.
    ep.lows ??= addPlanLows(
      {
        all: new Set([0, 1].map((egress) => policyKeyLow(egress as 0 | 1, 0, 0, PREFIX_IDENTITY_ONLY))),
        deny: new Set(),
        zeroDeny: new Set(),
      },
      ep.plan,
    );
    const { all: epLows, zeroDeny: zeroDenyLows } = ep.lows;
    const denyLows = raw.denyLows.size === 0 ? ep.lows.deny : new Set([...ep.lows.deny, ...raw.denyLows]);
    const covers = (d: number, low: number) => d !== low && keyCoversL4(keyOfLow(d), keyOfLow(low));
    // The part's lows merged key by key: where the endpoint holds one of the same keys, where a
    // deny may cover the part's allows (of the same identity at another low, or of identity 0). Of
    // the other lows, the identity-0 keys are merged too (`zeroKeyed`). The rest is new to the
    // endpoint and final as it is: one layer shared by every such endpoint.
    const keyed: number[] = [];
    const zeroKeyed: number[] = [];
    for (const [low, at] of raw.byLow) {
      const zero = raw.zeroLows.has(low);
      let merge = false;
      if (raw.allowLows.has(low)) {
        const k = keyOfLow(low);
        merge =
          [...denyLows].some((d) => covers(d, low)) ||
          [...zeroDenyLows].some((d) => keyCoversL4(keyOfLow(d), k));
      }
      if (!merge && epLows.has(low))
        merge = at.some((i) => (!zero || raw.entries[i]!.key.identity !== 0) && state.has(raw.ids[i]!));
      if (merge) keyed.push(low);
      else if (zero) zeroKeyed.push(low);
    }
    const skipLows = new Set(keyed);
    const zeroSkip = new Set(zeroKeyed);
    const merged = (i: number) =>
      skipLows.has(policyKeyLowOf(raw.ids[i]!)) ||
      (raw.entries[i]!.key.identity === 0 && zeroSkip.has(policyKeyLowOf(raw.ids[i]!)));
    let mergedCount = 0;
    for (const low of keyed) mergedCount += raw.byLow.get(low)!.length;
    for (const low of zeroKeyed)
      for (const i of raw.byLow.get(low)!) if (raw.entries[i]!.key.identity === 0) mergedCount++;
    let layer: ReadonlyMap<number, MapEntry> | undefined;
    if (state instanceof LayeredMapState && mergedCount < raw.ids.length) {
      if (keyed.length === 0 && zeroKeyed.length === 0) layer = part.state;
      else {
        const sig = `${keyed.sort((a, b) => a - b).join(',')}|${zeroKeyed.sort((a, b) => a - b).join(',')}`;
        layer = raw.layers.get(sig);
        if (layer === undefined) {
          const m = new Map<number, MapEntry>();
          for (const [i, ks] of raw.ids.entries()) if (!merged(i)) m.set(ks, raw.entries[i]!);
          layer = m;
          raw.layers.set(sig, layer);
        }
      }
    }
    // An allow a new deny may cover sits at a low that one of the new deny lows covers (other than
    // that low itself: the same key, merged below).
    const coveredLows: number[] = [];
    if (raw.denyLows.size > 0)
      for (const low of new Set([...epLows, ...raw.byLow.keys()]))
        for (const d of raw.denyLows)
          if (covers(d, low)) {
            coveredLows.push(low);
            break;
          }
    const denyIds = coveredLows.length > 0 ? new Set<number>() : undefined;
    let zeroDeny = false;
    const check: number[] = [];
    try {
      // A direction these rules start enforcing loses the unenforced wildcard allow (cookie 0).
      const enforcement = [
        [0, prev.ingressEnforced, part.ingressEnforced],
        [1, prev.egressEnforced, part.egressEnforced],
      ] as const;
      for (const [egress, was, now] of enforcement) {
        if (was || !now) continue;
        const ks = policyKeyIdOf(0, policyKeyLow(egress, 0, 0, PREFIX_IDENTITY_ONLY));
        const e = state.get(ks);
        if (e !== undefined && !e.entry.deny && e.entry.ruleCookie === 0 && e.entry.proxyPort === 0) {
          touch(ks);
          state.delete(ks);
        }
      }
      if (layer !== undefined) {
        (state as LayeredMapState).addLayer(layer);
        if (denyIds !== undefined)
          for (const e of layer.values()) if (e.entry.deny) denyIds.add(e.key.identity);
      }
      // Raw merge of the other keys, as addTemplated does: deny over allow, same kinds merged.
      const { ids, entries } = raw;
      const indices =
        layer === undefined
          ? ids.keys()
          : [
              ...keyed.flatMap((low) => raw.byLow.get(low)!),
              ...zeroKeyed.flatMap((low) =>
                raw.byLow.get(low)!.filter((i) => entries[i]!.key.identity === 0),
              ),
            ];
      for (const i of indices) {
        const ks = ids[i]!;
        const n = entries[i]!;
        const e = state.get(ks);
        if (e === undefined) {
          if (prior.size === 0 || !prior.has(ks)) fresh.push(ks);
          state.set(ks, n);
          if (n.entry.deny) {
            if (n.key.identity === 0) zeroDeny = true;
            denyIds?.add(n.key.identity);
          } else check.push(ks);
        } else if (converted.has(ks) || !e.entry.deny) {
          if (n.entry.deny) {
            touch(ks);
            state.set(ks, { key: e.key, entry: n.entry });
            converted.delete(ks);
            if (e.key.identity === 0) zeroDeny = true;
            denyIds?.add(e.key.identity);
          } else if (!converted.has(ks)) {
            const m = mergeEntries(e.entry, n.entry);
            if (m !== e.entry) {
              touch(ks);
              state.set(ks, { key: e.key, entry: m });
            }
            if (!sameEntry(m, n.entry)) diverged = true;
            check.push(ks);
          } else diverged = true; // an allow under a deny that already covers it
        } else if (n.entry.deny && mergeEntries(e.entry, n.entry) !== e.entry) throw new NeedsFullBuild();
        else if (!sameEntry(e.entry, n.entry)) diverged = true;
      }
      if (zeroDeny) throw new NeedsFullBuild();
      if (denyLows.size > 0) {
        // Deny over allow for the allows that are new or may be covered by a new deny.
        const denies = (id: number): MapEntry[] => {
          const out: MapEntry[] = [];
          for (const low of denyLows) {
            const ks = policyKeyIdOf(id, low);
            const e = state.get(ks);
            if (e?.entry.deny && !converted.has(ks)) out.push(e);
          }
          return out;
        };
        for (const id of denyIds ?? [])
          for (const low of coveredLows) {
            const ks = policyKeyIdOf(id, low);
            const e = state.get(ks);
            if (e !== undefined && (!e.entry.deny || converted.has(ks))) check.push(ks);
          }
        const zero = denies(0);
        const own = new Map<number, MapEntry[]>();
        for (const ks of check) {
          const e = state.get(ks)!;
          const id = e.key.identity;
          let mine = own.get(id);
          if (mine === undefined) {
            mine = denies(id);
            own.set(id, mine);
          }
          if (mine.length === 0 && (id === 0 || zero.length === 0)) continue;
          let cookie = -1;
          for (const list of id === 0 ? [mine] : [mine, zero])
            for (const d of list) {
              if (!keyCoversL4(d.key, e.key)) continue;
              if (cookie === -1) cookie = d.entry.ruleCookie;
              else if (cookie !== d.entry.ruleCookie) throw new NeedsFullBuild();
            }
          if (cookie === -1) continue;
          touch(ks);
          state.set(ks, { key: e.key, entry: { deny: true, proxyPort: 0, ruleCookie: cookie } });
          converted.add(ks);
          diverged = true;
        }
      }
    } catch (err) {
      if (!(err instanceof NeedsFullBuild)) throw err;
      if (layer !== undefined) (state as LayeredMapState).removeLayer(layer);
      for (const ks of fresh) {
        state.delete(ks);
        converted.delete(ks);
      }
      for (const [ks, [o, wasConverted]] of prior) {
        if (o === undefined) state.delete(ks);
        else state.set(ks, o);
        if (wasConverted) converted.add(ks);
        else converted.delete(ks);
      }
      return undefined;
    }
    const deletes: PolicyKey[] = [];
    for (const [ks, [o]] of prior) {
      const n = state.get(ks);
      if (n === undefined) {
        if (o !== undefined) deletes.push(o.key);
      } else if (!part.state.has(ks) && (o === undefined || !sameEntry(o.entry, n.entry))) diverged = true;
    }
    // Every key of the part holds the part's entry: its own list is the diff (writing an entry a
    // key already held is harmless), the same array for every such endpoint, so encoded once.
    let upserts: readonly MapEntry[] = raw.entries;
    if (diverged) {
      const list: MapEntry[] = [];
      for (const ks of fresh) list.push(state.get(ks)!);
      if (layer !== undefined) for (const e of layer.values()) list.push(e);
      for (const [ks, [o]] of prior) {
        const n = state.get(ks);
        if (n !== undefined && (o === undefined || !sameEntry(o.entry, n.entry))) list.push(n);
      }
      upserts = list;
    }
    const newSelectors = part.selectors.filter((x) => !this.#bySelector.get(x.key)?.has(endpointId));
    for (const x of newSelectors) this.cache.add(x);
    const rules = [...prev.rules, ...added].sort((a, b) => this.repo.compareRules(a, b));
    mergeBlocked.set(rules, false);
    ep.policy = {
      revision: this.repo.revision,
      ingressEnforced: prev.ingressEnforced || part.ingressEnforced,
      egressEnforced: prev.egressEnforced || part.egressEnforced,
      state,
      rules,
      selectors: [...prev.selectors, ...newSelectors],
      l7: [],
    };
    ep.plan = [...ep.plan, ...plan];
    addPlanLows(ep.lows, plan);
    this.#index(endpointId, newSelectors);
    return { endpointId, policy: ep.policy, diff: { upserts, deletes } };
  }

  /** Redoes the entries of `ids` in an endpoint's state from its plan; the diff covers only them. */
  #refreshIdentities(endpointId: number, ep: EndpointRecord, ids: ReadonlySet<number>): EndpointUpdate {
    const { state } = ep.policy;
    const upserts: MapEntry[] = [];
    const deletes: PolicyKey[] = [];
    // Identity-0 denies (wildcard deny rules) also turn allows of any identity into denies.
    const zero: [number, MapEntry][] = [];
    for (const item of ep.plan) {
      if (!item.entry.deny || !item.wildcard) continue;
      for (const t of item.templates) {
        const e = state.get(policyKeyIdOf(0, t.low));
        if (e?.entry.deny) zero.push([zero.length, e]);
      }
    }
    for (const id of ids) {
      if (id === 0) continue;
      const old = new Map<number, MapEntry>();
      for (const item of ep.plan)
        for (const t of item.templates) {
          const ks = policyKeyIdOf(id, t.low);
          const e = state.get(ks);
          if (e !== undefined) old.set(ks, e);
        }
      for (const ks of old.keys()) {
        state.delete(ks);
        ep.converted.delete(ks);
      }
      const added = new Set<number>();
      for (const item of ep.plan) {
        if (!item.selectors.some((s) => this.cache.selections(s).has(id))) continue;
        for (const t of item.templates)
          added.add(addTemplated(state, id, item.egress, t, item.entry, this.#shared));
      }
      const own: [number, MapEntry][] = [];
      let i = zero.length;
      for (const ks of added) {
        const e = state.get(ks)!;
        if (e.entry.deny) own.push([i++, e]);
      }
      for (const ks of added) {
        const e = state.get(ks)!;
        if (e.entry.deny) continue;
        // Own denies were added in the same order as a full computation would; zero denies first.
        const d = firstCovering(e.key, zero, own);
        if (d !== undefined) {
          state.set(ks, { key: e.key, entry: { deny: true, proxyPort: 0, ruleCookie: d.entry.ruleCookie } });
          ep.converted.add(ks);
        }
      }
      for (const ks of added) {
        const n = state.get(ks)!;
        const o = old.get(ks);
        if (
          o === undefined ||
          o.entry.deny !== n.entry.deny ||
          o.entry.ruleCookie !== n.entry.ruleCookie ||
          o.entry.proxyPort !== n.entry.proxyPort
        )
          upserts.push(n);
      }
      for (const [ks, o] of old) if (!state.has(ks)) deletes.push(o.key);
    }
    return { endpointId, policy: ep.policy, diff: { upserts, deletes } };
  }

  /**
   * The named ports known for pods changed (a pod came, went or changed its ports): endpoints with
   * egress rules naming ports must be recomputed.
   */
  namedPortsChanged(): void {
    for (const [id, ep] of this.#endpoints) {
      if (!usesEgressNamedPorts(ep.policy.rules)) continue;
      this.#dirty.add(id);
      this.#added.delete(id); // its current entries are stale too: computed in full
    }
  }

  #onRepoChange(c: RepositoryChange): void {
    const removed = c.removed.length > 0;
    for (const [id, ep] of this.#endpoints) {
      const wasDirty = this.#dirty.has(id);
      const hits = c.added.filter((r) => ruleSelects(r, ep.input.labels));
      if (removed && c.removed.some((r) => ruleSelects(r, ep.input.labels))) {
        this.#dirty.add(id);
        this.#added.delete(id);
        continue;
      }
      if (hits.length === 0) continue;
      // Only added rules: mergeable unless the endpoint already needed a full computation.
      const prior = this.#added.get(id);
      if (!wasDirty) this.#added.set(id, hits);
      else if (prior !== undefined) prior.push(...hits);
      this.#dirty.add(id);
    }
  }

  #onSelectionChange(changes: readonly SelectionChange[]): void {
    for (const c of changes) {
      for (const epId of this.#bySelector.get(c.selector.key) ?? []) {
        if (this.#dirty.has(epId)) {
          this.#added.delete(epId); // the state to merge into misses these identities: computed in full
          continue;
        }
        let ids = this.#pending.get(epId);
        if (ids === undefined) {
          ids = new Set();
          this.#pending.set(epId, ids);
        }
        for (const id of c.added) ids.add(id);
        for (const id of c.removed) ids.add(id);
      }
    }
  }

  /**
   * Policy verdict for a connection from `src` to `dst` (as `cilium policy trace`): the egress
   * policy of src and the ingress policy of dst, evaluated on labels, each with the rules deciding it.
   */
  trace(q: TraceQuery): TraceResult {
    const proto = typeof q.protocol === 'number' ? q.protocol : (protoNumber(q.protocol) ?? -1);
    const egress = this.#traceDirection(q.src, q.dst, 'egress', proto, q.dport, q.dst.namedPorts);
    const ingress = this.#traceDirection(q.dst, q.src, 'ingress', proto, q.dport, q.dst.namedPorts);
    const ok = (v: DirectionVerdict) => v === 'allowed' || v === 'default-allowed';
    return { verdict: ok(egress.verdict) && ok(ingress.verdict) ? 'ALLOWED' : 'DENIED', egress, ingress };
  }

  #traceDirection(
    local: EndpointInput,
    remote: EndpointInput,
    dir: Direction,
    proto: number,
    dport: number,
    dstNamed: NamedPorts | undefined,
  ): DirectionTrace {
    const rules = this.#selectingRules(local.labels);
    const enforced = directionEnforced(rules, dir);
    const requires = requirementsFor(rules, dir);
    const egress: 0 | 1 = dir === 'egress' ? 1 : 0;
    const named = (name: string): NamedPort[] => {
      const p = dstNamed?.[name];
      return p === undefined ? [] : [p];
    };
    const allows: TraceMatch[] = [];
    const denies: TraceMatch[] = [];
    for (const rule of rules) {
      for (const section of SECTIONS_BY_DIR[dir]) {
        const deny = section.endsWith('Deny');
        for (const pr of rule[section] ?? []) {
          const peer = effectivePeers(pr, deny ? Selector.wildcard : requires).find((s) =>
            s.matches(remote.labels),
          );
          if (peer === undefined) continue;
          const l4Ok = peerRuleKeys(pr, 0, egress, named).some((k) =>
            keyMatchesPacket(k, egress, proto, dport),
          );
          if (!l4Ok) continue;
          const m: TraceMatch = {
            policy: rule.policy,
            ruleIndex: rule.ruleIndex,
            section,
            peerRuleIndex: pr.index,
            peer: peer.key,
            l4: describeL4(pr),
          };
          (deny ? denies : allows).push(m);
        }
      }
    }
    const selectingRules = rules.map((r) => ({ policy: r.policy, ruleIndex: r.ruleIndex }));
    if (denies.length > 0) return { verdict: 'denied', enforced, matches: denies, selectingRules };
    if (allows.length > 0) return { verdict: 'allowed', enforced, matches: allows, selectingRules };
    return {
      verdict: enforced ? 'default-denied' : 'default-allowed',
      enforced,
      matches: [],
      selectingRules,
    };
  }
}

export type { MapEntry };
