/**
 * Network policy conformance, in the style of Kubernetes' e2e network policy tests: one lab with
 * namespaces x, y, z, each with pods a, b, c serving TCP and UDP on ports 80 and 81, plus the
 * outside world (the lab's world namespace, 192.168.211.254, with a second address .253). For each
 * scenario: apply the policies, probe the whole matrix (every source × every destination × tcp/80,
 * tcp/81, udp/80, udp/81) from probers running inside the pods, compare with the expectation of a
 * small model, print a truth table on mismatch, delete the policies and check that everything is
 * reachable again.
 *
 * Semantics are upstream's: Kubernetes NetworkPolicy as Cilium implements it, CiliumNetworkPolicy
 * and CiliumClusterwideNetworkPolicy as documented. Two upstream facts worth knowing when reading
 * the expectations:
 *  - a pod reaching itself goes over loopback inside its own namespace and is never subject to policy;
 *  - CIDR rules (ipBlock, fromCIDR, toCIDRSet, ...) select only peers that are not Cilium endpoints:
 *    a pod IP inside an ipBlock does not make that pod a peer (the pod has its own identity).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { cliPath } from '../../../src/common/paths.js';
import { WORLD_IP_V6, WORLD2_IP_V6 } from '../../../src/lab/lab.js';
import type { RoutingMode } from '../../../src/lab/state.js';
import { cli, cliOk, labName, manifest, ping, pods } from '../../helpers/cli.js';
import {
  type ProbeRequest,
  proberContainer,
  proberSocket,
  runProbes,
  waitForProbers,
} from '../../helpers/prober.js';

/** The lab of the suite running now (suites run one after the other). */
let LAB = '';
/** Nodes of the lab now: pods are spread over them. */
let NODES = 1;
const NAMESPACES = ['x', 'y', 'z'] as const;
const PODS = ['a', 'b', 'c'] as const;
/** Extra labels: tier on a and b only (Exists/DoesNotExist); env on x and y only. */
const POD_LABELS: Record<string, Record<string, string>> = {
  a: { tier: 'web' },
  b: { tier: 'api' },
  c: {},
};
const NS_LABELS: Record<string, Record<string, string>> = { x: { env: 'prod' }, y: { env: 'dev' }, z: {} };
const WORLD_IP = '192.168.211.254';
const WORLD2_IP = '192.168.211.253';
/** The address family the suite runs over now (a dual-stack lab's pods and world have both). */
let FAMILY: 4 | 6 = 4;
/** Prefixes of the family: the underlay with the world, a host, the pods' cluster pool, everything. */
const net = () =>
  FAMILY === 4
    ? { underlay: '192.168.211.0/24', host: 32, pods: '10.200.0.0/16', any: '0.0.0.0/0', icmp: 'IPv4' }
    : { underlay: 'fd00:192:168:211::/64', host: 128, pods: 'fd00:10:200::/104', any: '::/0', icmp: 'IPv6' };
const hostPort = (addr: string, port: number) =>
  addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
// A denied cell costs the whole first-pass timeout; a cell expected open that misses it (slow start,
// a loaded machine) is probed again with the longer one before it counts as a mismatch.
const TIMEOUT_MS = 500;
const RETRY_TIMEOUT_MS = 3000;

interface Port {
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
}
const TCP80: Port = { protocol: 'tcp', port: 80 };
const TCP81: Port = { protocol: 'tcp', port: 81 };
const UDP80: Port = { protocol: 'udp', port: 80 };
const UDP81: Port = { protocol: 'udp', port: 81 };
const ALL_PORTS = [TCP80, TCP81, UDP80, UDP81];
const portName = (p: Port) => `${p.protocol}/${p.port}`;

/** A source or destination: a pod (ns + pod) or the world (W = .254, W2 = .253). */
interface Peer {
  readonly key: string;
  readonly ns?: string;
  readonly pod?: string;
  readonly world: boolean;
  ip: string;
}

const podPeers: Peer[] = NAMESPACES.flatMap((ns) =>
  PODS.map((pod) => ({ key: `${ns}/${pod}`, ns, pod, world: false, ip: '' })),
);
const W: Peer = { key: 'W', world: true, ip: WORLD_IP };
const W2: Peer = { key: 'W2', world: true, ip: WORLD2_IP };
const SOURCES: Peer[] = [...podPeers, W];
const TARGETS: Peer[] = [...podPeers, W, W2];
const peer = (key: string) => TARGETS.find((p) => p.key === key)!;
const ip = (key: string) => peer(key).ip;

// ---- the model ---------------------------------------------------------------------------------

type PeerPred = (p: Peer) => boolean;
type Model = (from: Peer, to: Peer, port: Port) => boolean;

const pod =
  (...keys: string[]): PeerPred =>
  (p) =>
    keys.includes(p.key);
const inNs =
  (...ns: string[]): PeerPred =>
  (p) =>
    p.ns !== undefined && ns.includes(p.ns);
const podNamed =
  (...names: string[]): PeerPred =>
  (p) =>
    p.pod !== undefined && names.includes(p.pod);
const isPod: PeerPred = (p) => !p.world;
const isWorld: PeerPred = (p) => p.world;
const not =
  (f: PeerPred): PeerPred =>
  (p) =>
    !f(p);
const or =
  (...fs: PeerPred[]): PeerPred =>
  (p) =>
    fs.some((f) => f(p));
const and =
  (...fs: PeerPred[]): PeerPred =>
  (p) =>
    fs.every((f) => f(p));
const ports =
  (...ps: Port[]) =>
  (p: Port) =>
    ps.some((x) => x.protocol === p.protocol && x.port === p.port);

/** Ingress of the pods matching `subject` admits only what `allow(from, port)` says; others unaffected. */
const ingressOnly =
  (subject: PeerPred, allow: (from: Peer, port: Port) => boolean): Model =>
  (f, t, p) =>
    !subject(t) || allow(f, p);
/** Egress of the pods matching `subject` reaches only what `allow(to, port)` says. */
const egressOnly =
  (subject: PeerPred, allow: (to: Peer, port: Port) => boolean): Model =>
  (f, t, p) =>
    !subject(f) || allow(t, p);
/** A connection needs the source's egress and the destination's ingress to allow it. */
const both =
  (...ms: Model[]): Model =>
  (f, t, p) =>
    ms.every((m) => m(f, t, p));
const allowAll: Model = () => true;

// ---- probing ------------------------------------------------------------------------------------

interface Cell {
  from: Peer;
  to: Peer;
  port: Port;
  expected: boolean;
  observed: boolean;
  message: string;
}

function cells(): { from: Peer; to: Peer; port: Port }[] {
  const out: { from: Peer; to: Peer; port: Port }[] = [];
  for (const from of SOURCES)
    for (const to of TARGETS) {
      if (from.world && to.world) continue;
      for (const port of ALL_PORTS) out.push({ from, to, port });
    }
  return out;
}

function socketOf(p: Peer): string {
  return p.world ? proberSocket(LAB, 'world', 'world') : proberSocket(LAB, p.ns!, p.pod!);
}

async function probeCells(
  list: readonly { from: Peer; to: Peer; port: Port }[],
  timeoutMs: number,
): Promise<{ observed: boolean; message: string }[]> {
  const bySource = new Map<Peer, number[]>();
  list.forEach((c, i) => {
    const a = bySource.get(c.from) ?? [];
    a.push(i);
    bySource.set(c.from, a);
  });
  const out: { observed: boolean; message: string }[] = new Array(list.length);
  await Promise.all(
    [...bySource].map(async ([from, idx]) => {
      const probes: ProbeRequest[] = idx.map((i) => ({
        target: hostPort(list[i]!.to.ip, list[i]!.port.port),
        protocol: list[i]!.port.protocol,
        timeoutMs,
      }));
      const res = await runProbes(socketOf(from), probes);
      idx.forEach((i, j) => {
        out[i] = { observed: res[j]!.connected, message: res[j]!.message };
      });
    }),
  );
  return out;
}

/** Probes the whole matrix; cells expected open but found closed are probed once more (slow start). */
async function probeMatrix(model: Model): Promise<Cell[]> {
  const list = cells().map((c) => ({
    ...c,
    // A pod reaching itself stays on its loopback: never subject to policy.
    expected: c.from.key === c.to.key ? true : model(c.from, c.to, c.port),
  }));
  const first = await probeCells(list, TIMEOUT_MS);
  const result: Cell[] = list.map((c, i) => ({ ...c, ...first[i]! }));
  const retry = result.filter((c) => c.expected && !c.observed);
  if (retry.length > 0) {
    const again = await probeCells(retry, RETRY_TIMEOUT_MS);
    retry.forEach((c, i) => {
      c.observed = again[i]!.observed;
      c.message = again[i]!.message;
    });
  }
  return result;
}

/** Kubernetes-style truth tables, one per port: rows are sources, columns destinations. */
function truthTable(result: readonly Cell[]): string {
  const lines: string[] = [];
  const w = 4;
  for (const port of ALL_PORTS) {
    const rows = result.filter((c) => c.port === port);
    if (!rows.some((c) => c.expected !== c.observed)) continue;
    lines.push(`${portName(port)}: . as expected, X mismatch (rows: from, columns: to)`);
    lines.push(`${''.padEnd(w)}${TARGETS.map((t) => t.key.padEnd(w)).join('')}`);
    for (const from of SOURCES) {
      let line = from.key.padEnd(w);
      for (const to of TARGETS) {
        const c = rows.find((r) => r.from === from && r.to === to);
        line += (c === undefined ? '-' : c.expected === c.observed ? '.' : 'X').padEnd(w);
      }
      lines.push(line);
    }
  }
  const bad = result.filter((c) => c.expected !== c.observed);
  lines.push(`${bad.length} mismatch(es):`);
  for (const c of bad.slice(0, 40))
    lines.push(
      `  ${c.from.key} -> ${c.to.key} ${portName(c.port)}: expected ${c.expected ? 'allowed' : 'denied'}, got ${c.observed ? 'connected' : 'blocked'} (${c.message})`,
    );
  return lines.join('\n');
}

async function expectMatrix(model: Model, what: string): Promise<void> {
  const result = await probeMatrix(model);
  const bad = result.filter((c) => c.expected !== c.observed);
  if (bad.length > 0) assert.fail(`${what}: reachability differs from the model\n${truthTable(result)}`);
}

// ---- manifests -----------------------------------------------------------------------------------

function labManifest(): string {
  const docs: string[] = [];
  for (const [n, ns] of NAMESPACES.entries()) {
    const labels = { ns, ...NS_LABELS[ns] };
    docs.push(`apiVersion: v1
kind: Namespace
metadata: {name: ${ns}, labels: ${JSON.stringify(labels)}}`);
    for (const [i, p] of PODS.entries()) {
      const labels = { pod: p, ...POD_LABELS[p] };
      // Over several nodes, each namespace starts on the next node: every pair of pods talks across
      // nodes in one namespace and on one node in another.
      const node = NODES > 1 ? `\n  nodeName: node${((n + i) % NODES) + 1}` : '';
      docs.push(`apiVersion: v1
kind: Pod
metadata: {name: ${p}, namespace: ${ns}, labels: ${JSON.stringify(labels)}}
spec:${node}
  containers:
  - name: server
    command: ["cilium-ts", "workload", "serve", "-q", "--tcp", "80,81", "--udp", "80,81"]
    ports:
    - {name: serve-80-tcp, containerPort: 80, protocol: TCP}
    - {name: serve-81-tcp, containerPort: 81, protocol: TCP}
    - {name: serve-80-udp, containerPort: 80, protocol: UDP}
    - {name: serve-81-udp, containerPort: 81, protocol: UDP}
${proberContainer(LAB, ns, p)}`);
    }
  }
  return docs.join('\n---\n');
}

const np = (ns: string, name: string, spec: string) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
${spec}`;
const cnp = (ns: string, name: string, spec: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
${spec}`;
const ccnp = (name: string, spec: string) => `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: ${name}}
spec:
${spec}`;
const docs = (...d: string[]) => d.join('\n---\n');

// ---- scenarios -----------------------------------------------------------------------------------

interface Scenario {
  readonly name: string;
  readonly policy: () => string;
  readonly expect: Model;
  /** Extra assertions while the policy is in place. */
  readonly check?: () => Promise<void>;
}

const xa = pod('x/a');

const SCENARIOS: Scenario[] = [
  {
    name: 'NetworkPolicy default deny ingress (empty podSelector: the whole namespace)',
    policy: () => np('x', 'deny-ingress', '  podSelector: {}\n  policyTypes: [Ingress]'),
    expect: ingressOnly(inNs('x'), () => false),
  },
  {
    name: 'NetworkPolicy default deny egress',
    policy: () => np('x', 'deny-egress', '  podSelector: {}\n  policyTypes: [Egress]'),
    expect: egressOnly(inNs('x'), () => false),
  },
  {
    name: 'NetworkPolicy allow ingress from the same namespace only',
    policy: () => np('x', 'same-ns', '  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}'),
    expect: ingressOnly(inNs('x'), (f) => inNs('x')(f)),
  },
  {
    name: 'NetworkPolicy namespaceSelector: x/a admits pods of namespace y',
    policy: () =>
      np(
        'x',
        'from-y',
        '  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}',
      ),
    expect: ingressOnly(xa, (f) => inNs('y')(f)),
  },
  {
    name: 'NetworkPolicy podSelector AND namespaceSelector in one peer: only y/b',
    policy: () =>
      np(
        'x',
        'and',
        `  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: y}}
      podSelector: {matchLabels: {pod: b}}`,
      ),
    expect: ingressOnly(xa, (f) => pod('y/b')(f)),
    check: async () => {
      const allowed = await cliOk(
        ['policy', 'trace', '--src-pod', 'y/b', '--dst-pod', 'x/a', '--dport', '80', '--protocol', 'TCP'],
        { lab: LAB },
      );
      assert.match(allowed, /Final verdict: ALLOWED/);
      assert.match(allowed, /NetworkPolicy x\/and/, 'the deciding rule is named');
      const denied = await cliOk(
        ['policy', 'trace', '--src-pod', 'y/a', '--dst-pod', 'x/a', '--dport', '80', '--protocol', 'TCP'],
        { lab: LAB },
      );
      assert.match(denied, /Final verdict: DENIED/);
      assert.match(denied, /Ingress verdict: default-denied/);
      const j = JSON.parse(
        await cliOk(
          ['policy', 'trace', '--src-pod', 'y/b', '--dst-pod', 'x/a', '--dport', '80', '-o', 'json'],
          { lab: LAB },
        ),
      ) as { verdict: string; ingress: { matches: { policy: { name: string } }[] } };
      assert.equal(j.verdict, 'ALLOWED');
      assert.equal(j.ingress.matches[0]?.policy.name, 'and');
    },
  },
  {
    name: 'NetworkPolicy podSelector OR namespaceSelector (two peers): y/* or x/b',
    policy: () =>
      np(
        'x',
        'or',
        `  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: y}}
    - podSelector: {matchLabels: {pod: b}}`,
      ),
    expect: ingressOnly(xa, (f) => or(inNs('y'), pod('x/b'))(f)),
  },
  {
    name: 'NetworkPolicy namespaceSelector with matchExpressions (NotIn, Exists)',
    policy: () =>
      np(
        'x',
        'ns-expr',
        `  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions:
        - {key: ns, operator: NotIn, values: [x]}
        - {key: env, operator: Exists}`,
      ),
    expect: ingressOnly(xa, (f) => inNs('y')(f)),
  },
  {
    name: 'NetworkPolicy ports only (no from): x/a admits anyone on TCP 80',
    policy: () =>
      np('x', 'ports-only', '  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports: [{port: 80}]'),
    expect: ingressOnly(xa, (_f, p) => ports(TCP80)(p)),
  },
  {
    name: 'NetworkPolicy with protocol UDP: namespace peers on UDP 81 only',
    policy: () =>
      np(
        'x',
        'udp',
        `  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {}}]
    ports: [{port: 81, protocol: UDP}]`,
      ),
    expect: ingressOnly(xa, (f, p) => inNs('x')(f) && ports(UDP81)(p)),
  },
  {
    name: 'NetworkPolicy named ports on ingress (TCP and UDP names)',
    policy: () =>
      np(
        'x',
        'named',
        `  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports:
    - {port: serve-81-tcp}
    - {port: serve-80-udp, protocol: UDP}`,
      ),
    expect: ingressOnly(xa, (_f, p) => ports(TCP81, UDP80)(p)),
  },
  {
    name: 'NetworkPolicy named port on egress resolves against the destination pods',
    policy: () =>
      np(
        'x',
        'named-egress',
        `  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {}}]
    ports: [{port: serve-81-tcp}]`,
      ),
    expect: egressOnly(xa, (t, p) => isPod(t) && ports(TCP81)(p)),
  },
  {
    name: 'NetworkPolicy endPort range 80-81 on TCP',
    policy: () =>
      np(
        'x',
        'range',
        `  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: z}}}]
    ports: [{port: 80, endPort: 81, protocol: TCP}]`,
      ),
    expect: ingressOnly(xa, (f, p) => inNs('z')(f) && ports(TCP80, TCP81)(p)),
  },
  {
    name: 'CiliumNetworkPolicy endPort range 81-90 with protocol ANY',
    policy: () =>
      cnp(
        'x',
        'range-any',
        `  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - toPorts: [{ports: [{port: "81", endPort: 90, protocol: ANY}]}]`,
      ),
    expect: ingressOnly(xa, (_f, p) => ports(TCP81, UDP81)(p)),
  },
  {
    name: 'several policies on one pod combine as a union',
    policy: () =>
      docs(
        np(
          'x',
          'u1',
          `  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
    ports: [{port: 80}]`,
        ),
        np(
          'x',
          'u2',
          `  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: 81, protocol: UDP}]`,
        ),
      ),
    expect: ingressOnly(
      xa,
      (f, p) => (inNs('y')(f) && ports(TCP80)(p)) || (pod('x/b')(f) && ports(UDP81)(p)),
    ),
  },
  {
    name: 'deny-all plus allow-all in one namespace: the allow wins (policies only add)',
    policy: () =>
      docs(
        np('y', 'deny-all', '  podSelector: {}\n  policyTypes: [Ingress, Egress]'),
        np(
          'y',
          'allow-all',
          '  podSelector: {}\n  policyTypes: [Ingress, Egress]\n  ingress: [{}]\n  egress: [{}]',
        ),
      ),
    expect: allowAll,
  },
  {
    name: 'policy on one pod only: x/b and x/c keep default allow',
    policy: () =>
      np(
        'x',
        'only-a',
        '  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {pod: c}}}]',
      ),
    expect: ingressOnly(xa, (f) => pod('x/c')(f)),
  },
  {
    name: 'egress to a specific pod: x/a may only reach x/b',
    policy: () =>
      np(
        'x',
        'to-b',
        `  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {pod: b}}}]`,
      ),
    expect: egressOnly(xa, (t) => pod('x/b')(t)),
  },
  {
    name: 'NetworkPolicy with both policyTypes: ingress from y, egress to z',
    policy: () =>
      np(
        'x',
        'both',
        `  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
  egress:
  - to: [{namespaceSelector: {matchLabels: {ns: z}}}]`,
      ),
    expect: both(
      ingressOnly(xa, (f) => inNs('y')(f)),
      egressOnly(xa, (t) => inNs('z')(t)),
    ),
  },
  {
    name: 'NetworkPolicy with an egress section and no policyTypes implies Ingress too (default deny)',
    policy: () =>
      np('x', 'implied', '  podSelector: {matchLabels: {pod: a}}\n  egress:\n  - to: [{podSelector: {}}]'),
    expect: both(
      ingressOnly(xa, () => false),
      egressOnly(xa, (t) => inNs('x')(t)),
    ),
  },
  {
    name: 'NetworkPolicy ipBlock with except: world .253 allowed, .254 excepted, pod IPs select no pods',
    policy: () =>
      np(
        'x',
        'ipblock',
        `  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: ${net().underlay}, except: [${W.ip}/${net().host}]}
    - ipBlock: {cidr: ${net().pods}, except: [${ip('x/c')}/${net().host}]}`,
      ),
    expect: egressOnly(xa, (t) => pod('W2')(t)),
  },
  {
    name: 'NetworkPolicy ipBlock admits the world on ingress (0.0.0.0/0 except the pod CIDR)',
    policy: () =>
      np(
        'x',
        'from-world',
        `  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - ipBlock: {cidr: ${net().any}, except: [${net().pods}]}
    ports: [{port: 81}]`,
      ),
    expect: ingressOnly(xa, (f, p) => isWorld(f) && ports(TCP81)(p)),
  },
  {
    name: 'CiliumNetworkPolicy fromCIDRSet with except and toCIDRSet',
    policy: () =>
      docs(
        cnp(
          'y',
          'cidrset-in',
          `  endpointSelector: {matchLabels: {pod: b}}
  ingress:
  - fromCIDRSet: [{cidr: ${net().underlay}, except: [${W.ip}/${net().host}]}]`,
        ),
        cnp(
          'y',
          'cidrset-out',
          `  endpointSelector: {matchLabels: {pod: c}}
  egress:
  - toCIDRSet: [{cidr: ${W.ip}/${net().host}}]
    toPorts: [{ports: [{port: "80", protocol: UDP}]}]`,
        ),
      ),
    expect: both(
      ingressOnly(pod('y/b'), () => false),
      egressOnly(pod('y/c'), (t, p) => pod('W')(t) && ports(UDP80)(p)),
    ),
  },
  {
    name: 'CiliumNetworkPolicy fromCIDR admits the world on TCP 81 only',
    policy: () =>
      cnp(
        'z',
        'from-cidr',
        `  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - fromCIDR: [${W.ip}/${net().host}]
    toPorts: [{ports: [{port: "81", protocol: TCP}]}]`,
      ),
    expect: ingressOnly(pod('z/a'), (f, p) => isWorld(f) && ports(TCP81)(p)),
  },
  {
    name: 'CiliumNetworkPolicy ingressDeny beats an allow-all (from y on TCP 80)',
    policy: () =>
      cnp(
        'x',
        'deny-y',
        `  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - fromEntities: [all]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]`,
      ),
    expect: ingressOnly(xa, (f, p) => !(inNs('y')(f) && ports(TCP80)(p))),
    check: async () => {
      const out = await cliOk(
        ['policy', 'trace', '--src-pod', 'y/c', '--dst-pod', 'x/a', '--dport', '80', '--protocol', 'TCP'],
        { lab: LAB },
      );
      assert.match(out, /Final verdict: DENIED/);
      assert.match(out, /Ingress verdict: denied/);
      assert.match(out, /ingressDeny\[0\]/);
    },
  },
  {
    name: 'CiliumNetworkPolicy egressDeny beats an allow from a NetworkPolicy (y/* -> z/c)',
    policy: () =>
      docs(
        np('y', 'allow-egress', '  podSelector: {}\n  policyTypes: [Egress]\n  egress: [{}]'),
        cnp(
          'y',
          'deny-zc',
          `  endpointSelector: {}
  egressDeny:
  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: z, pod: c}}]`,
        ),
      ),
    expect: egressOnly(inNs('y'), (t) => !pod('z/c')(t)),
  },
  {
    name: 'entities: fromEntities cluster admits every pod but not the world',
    policy: () =>
      cnp(
        'x',
        'cluster',
        '  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n  - fromEntities: [cluster]',
      ),
    expect: ingressOnly(xa, (f) => isPod(f)),
  },
  {
    name: 'entities: toEntities world only',
    policy: () =>
      cnp('z', 'to-world', '  endpointSelector: {matchLabels: {pod: b}}\n  egress:\n  - toEntities: [world]'),
    expect: egressOnly(pod('z/b'), (t) => isWorld(t)),
  },
  {
    name: 'entities: all, with ingressDeny from world (upstream "external lockdown")',
    policy: () =>
      cnp(
        'x',
        'lockdown',
        '  endpointSelector: {}\n  ingress:\n  - fromEntities: [all]\n  ingressDeny:\n  - fromEntities: [world]',
      ),
    expect: ingressOnly(inNs('x'), (f) => !isWorld(f)),
  },
  {
    name: 'CiliumNetworkPolicy matchExpressions In (peers scoped to the namespace)',
    policy: () =>
      cnp(
        'x',
        'expr-in',
        `  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - fromEndpoints: [{matchExpressions: [{key: pod, operator: In, values: [b, c]}]}]`,
      ),
    expect: ingressOnly(xa, (f) => pod('x/b', 'x/c')(f)),
  },
  {
    name: 'CiliumNetworkPolicy matchExpressions NotIn',
    policy: () =>
      cnp(
        'y',
        'expr-notin',
        `  endpointSelector: {}
  ingress:
  - fromEndpoints: [{matchExpressions: [{key: pod, operator: NotIn, values: [a]}]}]`,
      ),
    expect: ingressOnly(inNs('y'), (f) => and(inNs('y'), not(podNamed('a')))(f)),
  },
  {
    name: 'CiliumNetworkPolicy matchExpressions Exists / DoesNotExist',
    policy: () =>
      cnp(
        'x',
        'expr-exists',
        `  endpointSelector: {matchExpressions: [{key: tier, operator: Exists}]}
  ingress:
  - fromEndpoints: [{matchExpressions: [{key: tier, operator: DoesNotExist}]}]`,
      ),
    expect: ingressOnly(pod('x/a', 'x/b'), (f) => pod('x/c')(f)),
  },
  {
    name: 'CiliumNetworkPolicy fromEndpoints naming another namespace',
    policy: () =>
      cnp(
        'x',
        'from-z-b',
        `  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: z, pod: b}}]
    toPorts: [{ports: [{port: "80"}]}]`,
      ),
    expect: ingressOnly(xa, (f, p) => pod('z/b')(f) && ports(TCP80, UDP80)(p)),
  },
  {
    name: 'CiliumClusterwideNetworkPolicy selects pods a of every namespace, peers b of any namespace',
    policy: () =>
      ccnp(
        'a-from-b',
        `  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - fromEndpoints: [{matchLabels: {pod: b}}]`,
      ),
    expect: ingressOnly(podNamed('a'), (f) => podNamed('b')(f)),
  },
  {
    name: 'CiliumClusterwideNetworkPolicy with a namespace label peer and egress',
    policy: () =>
      ccnp(
        'z-egress',
        `  endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: z}}
  egress:
  - toEndpoints: [{matchLabels: {k8s:io.cilium.k8s.namespace.labels.env: prod}}]
    toPorts: [{ports: [{port: "81", protocol: TCP}]}]`,
      ),
    expect: egressOnly(inNs('z'), (t, p) => inNs('x')(t) && ports(TCP81)(p)),
  },
  {
    name: 'enableDefaultDeny false: the allow adds nothing, the deny still applies',
    policy: () =>
      cnp(
        'x',
        'no-default-deny',
        `  endpointSelector: {matchLabels: {pod: a}}
  enableDefaultDeny: {ingress: false, egress: false}
  ingress:
  - fromEndpoints: [{matchLabels: {pod: b}}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: z}}]
  egress:
  - toEndpoints: [{matchLabels: {pod: b}}]`,
      ),
    expect: ingressOnly(xa, (f) => !inNs('z')(f)),
    check: async () => {
      const ep = JSON.parse(await cliOk(['endpoint', 'get', 'x/a', '-o', 'json'], { lab: LAB })) as {
        policyEnabled: { ingress: boolean; egress: boolean };
      };
      assert.deepEqual(ep.policyEnabled, { ingress: false, egress: false }, 'no direction default-denies');
    },
  },
  {
    name: 'NetworkPolicy and CiliumNetworkPolicy on one pod combine',
    policy: () =>
      docs(
        np(
          'z',
          'np-part',
          '  podSelector: {matchLabels: {pod: c}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {ns: x}}}]\n    ports: [{port: 80}]',
        ),
        cnp(
          'z',
          'cnp-part',
          '  endpointSelector: {matchLabels: {pod: c}}\n  ingress:\n  - fromEntities: [world]\n    toPorts: [{ports: [{port: "81", protocol: UDP}]}]',
        ),
      ),
    expect: ingressOnly(
      pod('z/c'),
      (f, p) => (inNs('x')(f) && ports(TCP80)(p)) || (isWorld(f) && ports(UDP81)(p)),
    ),
  },
  {
    name: 'fromNodes selects nodes only: pods labelled like the node selector (pod=b) are not admitted',
    policy: () =>
      cnp(
        'x',
        'from-nodes-b',
        '  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n  - fromNodes: [{matchLabels: {pod: b}}]',
      ),
    expect: ingressOnly(xa, () => false),
  },
  {
    name: 'fromNodes / toNodes {} select every node and no pod or world; the node reaches x/a',
    policy: () =>
      cnp(
        'x',
        'nodes-all',
        '  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n  - fromNodes: [{}]\n  egress:\n  - toNodes: [{}]',
      ),
    expect: both(
      ingressOnly(xa, () => false),
      egressOnly(xa, () => false),
    ),
    check: async () => {
      assert.equal(await connectFromNode(hostPort(ip('x/a'), 80)), true, 'the host (node1) is a node');
    },
  },
  {
    name: "entities world-ipv4 / world-ipv6 select only their family (the world speaks the suite's)",
    policy: () =>
      docs(
        cnp(
          'x',
          'to-world-v4',
          '  endpointSelector: {matchLabels: {pod: c}}\n  egress:\n  - toEntities: [world-ipv4]',
        ),
        cnp(
          'z',
          'to-world-v6',
          '  endpointSelector: {matchLabels: {pod: b}}\n  egress:\n  - toEntities: [world-ipv6]',
        ),
        cnp(
          'y',
          'from-world-v6',
          '  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n  - fromEntities: [world-ipv6]',
        ),
      ),
    expect: both(
      egressOnly(pod('x/c'), (t) => isWorld(t) && FAMILY === 4),
      egressOnly(pod('z/b'), (t) => isWorld(t) && FAMILY === 6),
      ingressOnly(pod('y/a'), (f) => isWorld(f) && FAMILY === 6),
    ),
  },
];

/** Every pod's IPv6 address by `namespace/name` (`lab get pods -A`: status.podIPs). */
async function podIPv6s(lab: string): Promise<Map<string, { ip: string }>> {
  const list = JSON.parse(await cliOk(['lab', 'get', 'pods', '-A', '-o', 'json'], { lab })) as {
    items: { metadata: { namespace: string; name: string }; status: { podIPs?: { ip: string }[] } }[];
  };
  return new Map(
    list.items.map((p) => [
      `${p.metadata.namespace}/${p.metadata.name}`,
      { ip: p.status.podIPs?.find((a) => a.ip.includes(':'))?.ip ?? '' },
    ]),
  );
}

/** Connects from the node's own namespace (the host identity), as a kubelet probe would. */
async function connectFromNode(target: string): Promise<boolean> {
  const r = await new Promise<number | null>((resolve) => {
    const c = spawn(
      'nsenter',
      [
        `--net=/run/netns/cts-${LAB}-node1`,
        process.execPath,
        cliPath,
        'workload',
        'connect',
        target,
        '--timeout',
        '1s',
      ],
      { stdio: 'ignore' },
    );
    c.on('exit', (code) => resolve(code));
  });
  return r === 0;
}

// ---- the suite ---------------------------------------------------------------------------------

export interface ConformanceLab {
  /** Nodes the pods are spread over (1: one node, no routing between nodes). */
  nodes: number;
  /** How nodes reach each other's pods (more than one node). */
  routingMode?: RoutingMode;
  /** Run over IPv6 (labs are dual-stack by default): pods, world and CIDR rules of IPv6. */
  ipv6?: boolean;
}

/** The whole suite against a lab of its own. */
export function netpolConformance(opts: ConformanceLab): void {
  const lab = labName(`np${opts.ipv6 ? '6' : ''}${opts.routingMode?.slice(0, 1) ?? ''}`);
  const where =
    (opts.nodes > 1 ? `; over ${opts.nodes} nodes, ${opts.routingMode ?? 'default'} routing` : '') +
    (opts.ipv6 ? '; over IPv6' : '');
  describe(`privileged: network policy conformance (namespaces x, y, z; pods a, b, c; TCP/UDP 80, 81${where})`, () => {
    const worldProcs: ChildProcess[] = [];

    before(async () => {
      LAB = lab;
      NODES = opts.nodes;
      FAMILY = opts.ipv6 ? 6 : 4;
      W.ip = opts.ipv6 ? WORLD_IP_V6 : WORLD_IP;
      W2.ip = opts.ipv6 ? WORLD2_IP_V6 : WORLD2_IP;
      const cluster = opts.nodes > 1 ? ['--nodes', String(opts.nodes)] : [];
      if (opts.routingMode) cluster.push('--routing-mode', opts.routingMode);
      await cliOk(['lab', 'up', '--name', LAB, ...cluster, '-f', manifest(labManifest())]);
      if (opts.nodes > 1) {
        const placed = JSON.parse(await cliOk(['lab', 'get', 'pods', '-A', '-o', 'json'], { lab: LAB })) as {
          items: { spec: { nodeName: string } }[];
        };
        assert.equal(
          new Set(placed.items.map((p) => p.spec.nodeName)).size,
          opts.nodes,
          'pods on every node',
        );
      }
      const rows = opts.ipv6 ? await podIPv6s(LAB) : await pods(LAB);
      for (const p of podPeers) {
        const r = rows.get(p.key);
        assert.ok(r?.ip, `pod ${p.key} has an IP`);
        p.ip = r.ip;
      }
      // The world: a second address, a server and a prober in the lab's world namespace.
      const worldNs = `/run/netns/cts-${LAB}-world`;
      // (a dual-stack lab's world has its second IPv6 address already)
      if (!opts.ipv6)
        await new Promise<void>((resolve, reject) => {
          const c = spawn('ip', ['-n', `cts-${LAB}-world`, 'addr', 'add', `${WORLD2_IP}/24`, 'dev', 'br0']);
          c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ip addr add: exit ${code}`))));
        });
      for (const argv of [
        // One server per address: a UDP reply must come from the address the probe was sent to.
        ['workload', 'serve', '-q', '--host', W.ip, '--tcp', '80,81', '--udp', '80,81'],
        ['workload', 'serve', '-q', '--host', W2.ip, '--tcp', '80,81', '--udp', '80,81'],
        ['workload', 'prober', '-q', '--socket', proberSocket(LAB, 'world', 'world')],
      ]) {
        const child = spawn('nsenter', [`--net=${worldNs}`, process.execPath, cliPath, ...argv], {
          stdio: 'ignore',
          detached: true,
        });
        child.unref();
        worldProcs.push(child);
      }
      await waitForProbers(SOURCES.map(socketOf));
      // Servers come up with the probers; wait until the default-allow matrix is complete.
      const deadline = Date.now() + 20_000;
      for (;;) {
        const r = await probeMatrix(allowAll);
        if (r.every((c) => c.observed)) break;
        if (Date.now() > deadline) assert.fail(`lab not fully reachable\n${truthTable(r)}`);
        await new Promise((res) => setTimeout(res, 300));
      }
    });

    after(async () => {
      for (const c of worldProcs) {
        try {
          if (c.pid) process.kill(c.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await cli(['lab', 'down', '--name', lab]);
    });

    it(`has at least 25 scenarios (${SCENARIOS.length})`, () => {
      assert.ok(SCENARIOS.length >= 25);
    });

    it('default allow: the full matrix is reachable with no policy', async () => {
      await expectMatrix(allowAll, 'no policy');
    });

    for (const s of SCENARIOS) {
      it(s.name, async () => {
        const file = manifest(s.policy());
        try {
          await cliOk(['lab', 'apply', '-f', file], { lab: LAB });
          await expectMatrix(s.expect, s.name);
          await s.check?.();
        } finally {
          await cliOk(['lab', 'delete', '-f', file], { lab: LAB });
        }
        const left = JSON.parse(await cliOk(['policy', 'get', '-o', 'json'], { lab: LAB })) as {
          policies: unknown[];
        };
        assert.equal(left.policies.length, 0, 'policies deleted');
        await expectMatrix(allowAll, `${s.name}: after deleting the policies`);
      });
    }

    it('policy revision: policy get shows it, every endpoint enforces the latest one', async () => {
      const file = manifest(
        np('x', 'rev', '  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress]'),
      );
      try {
        await cliOk(['lab', 'apply', '-f', file], { lab: LAB });
        const table = await cliOk(['policy', 'get'], { lab: LAB });
        const rev = Number(/Revision: (\d+)/.exec(table)?.[1]);
        assert.ok(rev > 1, table);
        for (const key of ['x/a', 'y/c']) {
          const ep = JSON.parse(await cliOk(['endpoint', 'get', key, '-o', 'json'], { lab: LAB })) as {
            policyRevision: number;
          };
          assert.equal(ep.policyRevision, rev, `${key} enforces revision ${rev}`);
        }
        const text = await cliOk(['endpoint', 'get', 'x/a'], { lab: LAB });
        assert.match(text, new RegExp(`Policy revision:\\s+${rev}`));
      } finally {
        await cliOk(['lab', 'delete', '-f', file], { lab: LAB });
      }
    });

    it('a policy with L7 rules no proxy enforces (generic l7proto) is refused naming the field, and nothing of its file is applied', async () => {
      const file = manifest(
        docs(
          np('x', 'deny-all', '  podSelector: {}\n  policyTypes: [Ingress]'),
          cnp(
            'x',
            'rule1',
            `  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - fromEndpoints: [{matchLabels: {pod: b}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        l7proto: envoy.filters.network.example
        l7:
        - {action: land}`,
          ),
        ),
      );
      const field =
        /spec\.ingress\[0\]\.toPorts\[0\]\.rules\.l7proto: L7 rules of type l7proto are not enforced yet/;
      for (const args of [
        ['lab', 'apply', '-f', file],
        ['policy', 'import', file],
        ['policy', 'validate', file],
      ]) {
        const r = await cli(args, { lab: LAB });
        assert.notEqual(r.code, 0, `${args.join(' ')} must fail`);
        assert.match(`${r.stdout}${r.stderr}`, field, args.join(' '));
      }
      const left = JSON.parse(await cliOk(['policy', 'get', '-o', 'json'], { lab: LAB })) as {
        policies: unknown[];
      };
      assert.equal(left.policies.length, 0, 'nothing applied');
      await expectMatrix(allowAll, 'after the refused L7 policy');
    });

    it('a container port named HTTP is refused at lab apply, naming the field', async () => {
      const file = manifest(`apiVersion: v1
kind: Pod
metadata: {name: upper, namespace: x}
spec:
  containers:
  - name: server
    command: ["cilium-ts", "workload", "serve", "-q", "--tcp", "80"]
    ports: [{name: HTTP, containerPort: 80}]`);
      const r = await cli(['lab', 'apply', '-f', file], { lab: LAB });
      assert.notEqual(r.code, 0);
      assert.match(
        `${r.stdout}${r.stderr}`,
        /spec\.containers\[0\]\.ports\[0\]\.name: "HTTP": must contain only/,
      );
      assert.equal((await pods(LAB)).has('x/upper'), false, 'no pod created');
    });

    it('ICMP: an icmps rule admits echo requests and nothing else', async () => {
      const file = manifest(
        cnp(
          'x',
          'icmp',
          `  endpointSelector: {matchLabels: {pod: a}}
  ingress:
  - fromEndpoints: [{matchLabels: {pod: b}}]
    icmps: [{fields: [{type: EchoRequest, family: ${net().icmp}}]}]`,
        ),
      );
      try {
        await cliOk(['lab', 'apply', '-f', file], { lab: LAB });
        assert.equal(await ping(LAB, 'b', ip('x/a'), 'x'), true, 'x/b pings x/a');
        assert.equal(await ping(LAB, 'c', ip('x/a'), 'x'), false, 'x/c is not in the rule');
        const r = await runProbes(proberSocket(LAB, 'x', 'b'), [
          { target: hostPort(ip('x/a'), 80), protocol: 'tcp', timeoutMs: TIMEOUT_MS },
        ]);
        assert.equal(r[0]!.connected, false, 'ICMP rule allows no TCP');
        assert.equal(await ping(LAB, 'a', ip('x/c'), 'x'), true, "x/a's egress is not enforced");
      } finally {
        await cliOk(['lab', 'delete', '-f', file], { lab: LAB });
      }
      assert.equal(await ping(LAB, 'c', ip('x/a'), 'x'), true, 'reset');
    });
  });
}
