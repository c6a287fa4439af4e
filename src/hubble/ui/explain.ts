/**
 * The UI's policy view, from the agent's `policy trace`: which policies select a workload, and for
 * an edge, what each direction decided and, when traffic is denied, which rule would have to change
 * (a deny rule to remove or narrow, or the allow rule to add to a policy that already selects the
 * endpoint, with a snippet in the policy's own language). Pure: the trace comes from a PolicySource.
 */
import type { DirectionTrace, PolicyRef, TraceResult } from '../../policy/index.js';
import type { MapEdge, MapNode } from './model.js';

/** A policy as the agent lists it. */
export interface PolicySummary {
  kind: string;
  namespace: string;
  name: string;
  document?: Record<string, unknown>;
}

export interface TraceSideQuery {
  labels?: string[];
  identity?: number;
}

export interface PolicyTraceQuery {
  src: TraceSideQuery;
  dst: TraceSideQuery;
  dport: number;
  protocol: string;
}

/** Where the UI reads policies from: the agent's API (`policy get`, `policy trace`). */
export interface PolicySource {
  list(): Promise<PolicySummary[]>;
  trace(q: PolicyTraceQuery): Promise<TraceResult>;
}

export interface SelectingPolicy {
  ref: string;
  kind: string;
  namespace: string;
  name: string;
  rules: number[];
  document?: Record<string, unknown>;
}

export interface DirectionExplanation {
  direction: 'egress' | 'ingress';
  /** The endpoint whose policy decides this direction (the source for egress). */
  subject: string;
  verdict: DirectionTrace['verdict'];
  enforced: boolean;
  /** `Kind/ns/name rule N section[i] peer ... l4` of the rules that decided. */
  matches: string[];
  selecting: string[];
}

export interface EdgeExplanation {
  edge: string;
  verdict: TraceResult['verdict'];
  directions: DirectionExplanation[];
  /** What would have to change for the edge's traffic to be allowed (none when it is). */
  change?: string;
  /** The rule to add, as policy YAML (default-denied directions). */
  snippet?: string;
}

export function refKey(r: PolicyRef | PolicySummary): string {
  return r.namespace === '' ? `${r.kind}/${r.name}` : `${r.kind}/${r.namespace}/${r.name}`;
}

/** Labels the agent's trace takes for a map node (the reserved ones for world, host, ...). */
export function traceSide(n: MapNode): TraceSideQuery {
  if (n.kind === 'workload' && n.labels.length > 0) return { labels: n.labels };
  if (n.kind === 'world') return { labels: ['reserved:world'] };
  if (n.kind !== 'workload' && n.kind !== 'unknown') return { labels: [`reserved:${n.kind}`] };
  if (n.identity !== undefined) return { identity: n.identity };
  return { labels: n.labels };
}

/** Policies whose rules select the workload (from a trace of the workload to itself), with their documents. */
export function selectingPolicies(trace: TraceResult, policies: readonly PolicySummary[]): SelectingPolicy[] {
  const byRef = new Map<string, SelectingPolicy>();
  for (const r of [...trace.ingress.selectingRules, ...trace.egress.selectingRules]) {
    const key = refKey(r.policy);
    let p = byRef.get(key);
    if (!p) {
      p = { ref: key, kind: r.policy.kind, namespace: r.policy.namespace, name: r.policy.name, rules: [] };
      const doc = policies.find((x) => refKey(x) === key)?.document;
      if (doc) p.document = doc;
      byRef.set(key, p);
    }
    if (!p.rules.includes(r.ruleIndex)) p.rules.push(r.ruleIndex);
  }
  return [...byRef.values()];
}

function describe(d: DirectionTrace): string[] {
  return d.matches.map(
    (m) =>
      `${refKey(m.policy)} rule ${m.ruleIndex} ${m.section}[${m.peerRuleIndex}] peer ${m.peer} ports ${m.l4}`,
  );
}

const ENTITY_KINDS = new Set(['world', 'host', 'remote-node', 'kube-apiserver', 'health', 'init', 'ingress']);

/** Labels a selector for the peer would match on: its k8s labels, without the ones the agent derives. */
function peerMatchLabels(peer: MapNode, subjectNs: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of peer.labels) {
    if (!l.startsWith('k8s:')) continue;
    const eq = l.indexOf('=');
    const key = eq >= 0 ? l.slice(4, eq) : l.slice(4);
    const value = eq >= 0 ? l.slice(eq + 1) : '';
    if (key.startsWith('io.cilium.k8s.') || key.startsWith('io.kubernetes.pod.')) continue;
    if (key === 'pod-template-hash') continue;
    out[key] = value;
  }
  if (peer.namespace && peer.namespace !== subjectNs) out['k8s:io.kubernetes.pod.namespace'] = peer.namespace;
  return out;
}

function quote(s: string): string {
  return /^[A-Za-z0-9_.\-/]+$/.test(s) && !/^\d+$/.test(s) ? s : JSON.stringify(s);
}

/** The allow rule that would let `peer` through `direction` of the subject, as policy YAML. */
export function ruleSnippet(
  direction: 'ingress' | 'egress',
  peer: MapNode,
  subject: MapNode,
  edge: Pick<MapEdge, 'port' | 'protocol'>,
): string {
  const from = direction === 'ingress' ? 'from' : 'to';
  const lines = [`${direction}:`];
  if (ENTITY_KINDS.has(peer.kind)) lines.push(`  - ${from}Entities: [${peer.kind}]`);
  else {
    const labels = Object.entries(peerMatchLabels(peer, subject.namespace));
    lines.push(`  - ${from}Endpoints:`, '      - matchLabels:');
    for (const [k, v] of labels) lines.push(`          ${quote(k)}: ${quote(v)}`);
  }
  const proto = edge.protocol === 'ICMPv4' || edge.protocol === 'ICMPv6' ? undefined : edge.protocol;
  if (proto) {
    lines.push(
      '    toPorts:',
      '      - ports:',
      `          - port: "${edge.port}"`,
      `            protocol: ${proto}`,
    );
  } else {
    const family = edge.protocol === 'ICMPv6' ? 'IPv6' : 'IPv4';
    lines.push(
      '    icmps:',
      '      - fields:',
      `          - type: ${edge.port}`,
      `            family: ${family}`,
    );
  }
  return lines.join('\n');
}

/** The http rules that would let these requests (`METHOD /path`) through, as policy YAML. */
export function httpSnippet(requests: readonly string[]): string {
  const lines = ['rules:', '  http:'];
  for (const r of requests) {
    const sp = r.indexOf(' ');
    const path = r.slice(sp + 1).split('?')[0]!;
    lines.push(`    - method: ${JSON.stringify(r.slice(0, sp))}`, `      path: ${JSON.stringify(path)}`);
  }
  return lines.join('\n');
}

/** What the trace of an edge says, and what would have to change for its traffic to pass. */
export function explainEdge(edge: MapEdge, src: MapNode, dst: MapNode, trace: TraceResult): EdgeExplanation {
  const name = (n: MapNode) => (n.namespace ? `${n.namespace}/${n.name}` : n.name);
  const dirs: DirectionExplanation[] = (['egress', 'ingress'] as const).map((direction) => {
    const d = trace[direction];
    return {
      direction,
      subject: name(direction === 'egress' ? src : dst),
      verdict: d.verdict,
      enforced: d.enforced,
      matches: describe(d),
      selecting: [...new Set(d.selectingRules.map((r) => `${refKey(r.policy)} rule ${r.ruleIndex}`))],
    };
  });
  const out: EdgeExplanation = { edge: edge.id, verdict: trace.verdict, directions: dirs };
  if (trace.verdict === 'ALLOWED') {
    const denied = Object.keys(edge.httpDropped).filter((k) => k !== '(other)');
    const rules = dirs.flatMap((d) => d.matches);
    if (denied.length > 0) {
      out.change = `The L3/L4 rules allow ${edge.protocol}/${edge.port} from ${name(src)} to ${name(dst)}, and the HTTP rules of ${rules.join('; ')} deny ${denied.join(', ')}: add these requests to that rule's http rules.`;
      out.snippet = httpSnippet(denied);
    } else if (edge.dropped > 0)
      out.change = `The policy in force allows ${edge.protocol}/${edge.port} from ${name(src)} to ${name(dst)}; the drops seen came before a policy change or have another reason (${Object.keys(edge.dropReasons).join(', ')}).`;
    return out;
  }
  const changes: string[] = [];
  const snippets: string[] = [];
  for (const d of dirs) {
    const subject = d.direction === 'egress' ? src : dst;
    const peer = d.direction === 'egress' ? dst : src;
    if (d.verdict === 'denied') {
      changes.push(
        `${d.direction} of ${d.subject}: a deny rule matches (${d.matches.join('; ')}): remove or narrow that rule; a deny wins over any allow.`,
      );
    } else if (d.verdict === 'default-denied') {
      const where = d.selecting.length > 0 ? d.selecting.join(', ') : 'the policies selecting it';
      changes.push(
        `${d.direction} of ${d.subject} is enforced by ${where}, and no rule allows ${name(peer)} on ${edge.protocol}/${edge.port}: add an ${d.direction} rule allowing it to one of these policies.`,
      );
      snippets.push(ruleSnippet(d.direction, peer, subject, edge));
    }
  }
  if (changes.length > 0) out.change = changes.join('\n');
  if (snippets.length > 0) out.snippet = snippets.join('\n');
  return out;
}
