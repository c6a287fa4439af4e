/**
 * Per-endpoint policy computation, incremental regeneration and trace.
 *
 * Enforcement per direction (upstream's default mode): a direction is enforced when some rule
 * selecting the endpoint has an allow or deny section for it (`ingress: []` counts) and does not set
 * `enableDefaultDeny.<direction>: false`. A direction that is not enforced gets one allow-all entry
 * (identity 0, prefix 40); deny entries still apply on top of it.
 */
import type { LabelSet } from '../labels/index.js';
import {
  addEntry,
  diffMapState,
  keyMatchesPacket,
  l4Keys,
  type MapDiff,
  type MapEntry,
  type MapState,
  makeKey,
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
}

/**
 * Egress named-port resolution over a set of pods (upstream resolves an egress named port against
 * the named ports of all known pods): every distinct port/protocol some pod calls `name`.
 */
export function namedPortLookup(pods: () => Iterable<NamedPorts>): (name: string) => NamedPort[] {
  return (name) => {
    const seen = new Map<string, NamedPort>();
    for (const ports of pods()) {
      for (const [n, p] of Object.entries(ports)) {
        if (n.toLowerCase() !== name) continue;
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
  if (rule.subjectKind === 'node') return labels.has('host', 'reserved') && rule.subject.matches(labels);
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

export class PolicyEngine {
  readonly #endpoints = new Map<number, { input: EndpointInput; policy: EndpointPolicy }>();
  readonly #dirty = new Set<number>();
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
    const rules = this.repo.rules().filter((r) => ruleSelects(r, input.labels));
    const state: MapState = new Map();
    const selectors = new Map<string, Selector>();
    const result = { ingressEnforced: false, egressEnforced: false };
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
            const ids = new Set<number>();
            for (const sel of effectivePeers(pr, deny ? Selector.wildcard : requires)) {
              if (sel.isWildcard) {
                ids.add(0);
                continue;
              }
              selectors.set(sel.key, sel);
              for (const id of this.cache.selections(sel)) ids.add(id);
            }
            for (const id of ids) {
              for (const key of peerRuleKeys(pr, id, egress, named)) {
                addEntry(state, key, { deny, proxyPort: 0, ruleCookie: cookie });
              }
            }
          }
        }
      }
      if (!enforced)
        addEntry(state, makeKey(0, egress, 0, 0, PREFIX_IDENTITY_ONLY), {
          deny: false,
          proxyPort: 0,
          ruleCookie: 0,
        });
    }
    resolveDenyOverAllow(state);
    return { revision: this.repo.revision, ...result, state, rules, selectors: [...selectors.values()] };
  }

  /** Registers (or updates) an endpoint and returns its new state and the diff from the previous one. */
  upsertEndpoint(endpointId: number, input: EndpointInput): EndpointUpdate {
    this.#dirty.delete(endpointId);
    const prev = this.#endpoints.get(endpointId);
    const policy = this.compute(input);
    for (const s of policy.selectors) this.cache.add(s);
    if (prev !== undefined) for (const s of prev.policy.selectors) this.cache.remove(s);
    this.#endpoints.set(endpointId, { input, policy });
    return { endpointId, policy, diff: diffMapState(prev?.policy.state ?? new Map(), policy.state) };
  }

  /** Forgets an endpoint; returns the deletes that empty its map. */
  removeEndpoint(endpointId: number): MapDiff {
    const prev = this.#endpoints.get(endpointId);
    this.#dirty.delete(endpointId);
    if (prev === undefined) return { upserts: [], deletes: [] };
    for (const s of prev.policy.selectors) this.cache.remove(s);
    this.#endpoints.delete(endpointId);
    return diffMapState(prev.policy.state, new Map());
  }

  endpointPolicy(endpointId: number): EndpointPolicy | undefined {
    return this.#endpoints.get(endpointId)?.policy;
  }

  /** Endpoints whose policy may have changed since they were last computed. */
  dirtyEndpoints(): number[] {
    return [...this.#dirty].sort((a, b) => a - b);
  }

  /** Recomputes the dirty endpoints only; returns their updates (diffs may be empty). */
  regenerate(): EndpointUpdate[] {
    const out: EndpointUpdate[] = [];
    for (const id of this.dirtyEndpoints()) {
      const ep = this.#endpoints.get(id);
      if (ep !== undefined) out.push(this.upsertEndpoint(id, ep.input));
    }
    this.#dirty.clear();
    return out;
  }

  /**
   * The named ports known for pods changed (a pod came, went or changed its ports): endpoints with
   * egress rules naming ports must be recomputed.
   */
  namedPortsChanged(): void {
    for (const [id, ep] of this.#endpoints) if (usesEgressNamedPorts(ep.policy.rules)) this.#dirty.add(id);
  }

  #onRepoChange(c: RepositoryChange): void {
    const rules = [...c.removed, ...c.added];
    for (const [id, ep] of this.#endpoints) {
      if (rules.some((r) => ruleSelects(r, ep.input.labels))) this.#dirty.add(id);
    }
  }

  #onSelectionChange(changes: readonly SelectionChange[]): void {
    const keys = new Set(changes.map((c) => c.selector.key));
    for (const [id, ep] of this.#endpoints) {
      if (ep.policy.selectors.some((s) => keys.has(s.key))) this.#dirty.add(id);
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
    const rules = this.repo.rules().filter((r) => ruleSelects(r, local.labels));
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
