import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { IdentityAllocator } from '../../../src/identity/index.js';
import { formatPrefix, type LabelSet, parsePrefix, podIdentityLabels } from '../../../src/labels/index.js';
import {
  CidrIdentitySync,
  type EndpointInput,
  type EndpointPolicy,
  type NamedPorts,
  namedPortLookup,
  PolicyEngine,
  PolicyRepository,
  parsePolicies,
  portRangeBlocks,
  Selector,
  SelectorCache,
  type SelectorCacheOptions,
  sortedEntries,
} from '../../../src/policy/index.js';

const docs = (y: string): unknown[] => parseAllDocuments(y).map((d) => d.toJS());

function setup(cacheOpts: SelectorCacheOptions = {}) {
  const alloc = new IdentityAllocator();
  const cache = new SelectorCache(cacheOpts);
  cache.attach(alloc);
  const repo = new PolicyRepository();
  const engine = new PolicyEngine(repo, cache);
  const pod = (ns: string, labels: Record<string, string>, nsLabels: Record<string, string> = {}) => {
    const ls = podIdentityLabels({ namespace: ns, labels, namespaceLabels: nsLabels });
    return { labels: ls, id: alloc.allocate(ls).identity.id };
  };
  const apply = (y: string) => repo.upsertAll(parsePolicies(docs(y)));
  return { alloc, cache, repo, engine, pod, apply };
}

/** Entries as compact strings: `dir id proto/port/plen A|D`. */
function dump(p: EndpointPolicy): string[] {
  return sortedEntries(p.state).map(
    (e) =>
      `${e.key.egress ? 'E' : 'I'} ${e.key.identity} ${e.key.protocol}/${e.key.dport}/${e.key.prefixLen} ${e.entry.deny ? 'D' : 'A'}`,
  );
}

const ep = (labels: LabelSet, namedPorts?: EndpointInput['namedPorts']): EndpointInput =>
  namedPorts === undefined ? { labels } : { labels, namedPorts };

describe('port ranges → LPM blocks', () => {
  it('splits into aligned power-of-two blocks', () => {
    assert.deepEqual(
      portRangeBlocks(80, 444).map((b) => `${b.port}/${48 + b.bits}`),
      ['80/60', '96/59', '128/57', '256/57', '384/59', '416/60', '432/61', '440/62', '444/64'],
    );
    assert.deepEqual(portRangeBlocks(0, 65535), [{ port: 0, bits: 0 }]);
    assert.deepEqual(portRangeBlocks(8080, 8080), [{ port: 8080, bits: 16 }]);
  });
});

describe('endpoint policy computation', () => {
  it('star wars rule1: L3+L4 from empire on TCP/80; egress untouched', () => {
    const t = setup();
    const ds = t.pod('default', { org: 'empire', class: 'deathstar' });
    const tie = t.pod('default', { org: 'empire', class: 'tiefighter' });
    t.pod('default', { org: 'alliance', class: 'xwing' });
    t.pod('other', { org: 'empire' });
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1}
spec:
  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]`);
    const p = t.engine.compute(ep(ds.labels));
    assert.ok(p.ingressEnforced && !p.egressEnforced);
    // Both default-namespace empire pods (the deathstar itself too), not the one in "other".
    assert.deepEqual(dump(p), [`I ${ds.id} 6/80/64 A`, `I ${tie.id} 6/80/64 A`, 'E 0 0/0/40 A']);
    const tr = t.engine.trace({ src: ep(tie.labels), dst: ep(ds.labels), dport: 80, protocol: 'TCP' });
    assert.equal(tr.verdict, 'ALLOWED');
    assert.deepEqual(tr.ingress.matches, [
      {
        policy: { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1' },
        ruleIndex: 0,
        section: 'ingress',
        peerRuleIndex: 0,
        peer: '{any:org=empire, k8s:io.kubernetes.pod.namespace=default}',
        l4: '80/TCP',
      },
    ]);
    assert.equal(
      t.engine.trace({ src: ep(tie.labels), dst: ep(ds.labels), dport: 81, protocol: 'TCP' }).ingress.verdict,
      'default-denied',
    );
  });

  it('ingress: [{}] enforces and allows nothing; fromEndpoints [{}] = namespace; toPorts-only = any identity', () => {
    const t = setup();
    const a = t.pod('ns1', { app: 'a' });
    const b = t.pod('ns1', { app: 'b' });
    t.pod('ns2', { app: 'c' });
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: ns1}
spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress: [{}]`);
    assert.deepEqual(dump(t.engine.compute(ep(a.labels))), ['E 0 0/0/40 A']);
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: ns1}
spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress:
  - fromEndpoints: [{}]
  - toPorts: [{ports: [{port: "53", protocol: ANY}]}]`);
    assert.deepEqual(dump(t.engine.compute(ep(a.labels))), [
      'I 0 6/53/64 A',
      'I 0 17/53/64 A',
      'I 0 132/53/64 A',
      `I ${a.id} 0/0/40 A`,
      `I ${b.id} 0/0/40 A`,
      'E 0 0/0/40 A',
    ]);
  });

  it('deny covering allow across the identity wildcard', () => {
    const t = setup();
    const a = t.pod('ns1', { app: 'a' });
    const b = t.pod('ns1', { app: 'b' });
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: ns1}
spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: b}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
  - toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {app: b}}]
    toPorts: [{ports: [{port: "9000", protocol: UDP}]}]
  ingressDeny:
  - toPorts: [{ports: [{port: "0", protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {app: b}}]
    toPorts: [{ports: [{port: "9000", endPort: 9001, protocol: UDP}]}]`);
    const p = t.engine.compute(ep(a.labels));
    // TCP/any denied for identity 0 → the TCP allows (b:80 exact and 0:8080 any) become denies;
    // b's UDP/9000 allow is covered by b's deny block 9000-9001.
    assert.deepEqual(dump(p), [
      'I 0 6/0/48 D',
      'I 0 6/8080/64 D',
      `I ${b.id} 6/80/64 D`,
      `I ${b.id} 17/9000/63 D`,
      `I ${b.id} 17/9000/64 D`,
      'E 0 0/0/40 A',
    ]);
    const tr = t.engine.trace({ src: ep(b.labels), dst: ep(a.labels), dport: 80, protocol: 6 });
    assert.equal(tr.verdict, 'DENIED');
    assert.equal(tr.ingress.verdict, 'denied');
    assert.equal(tr.ingress.matches[0]!.section, 'ingressDeny');
  });

  it('deny-only rule enforces the direction; external-lockdown allows all but world', () => {
    const t = setup();
    const a = t.pod('ns1', { app: 'a' });
    t.apply(`apiVersion: "cilium.io/v2"
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: "external-lockdown"
spec:
  endpointSelector: {}
  ingressDeny:
  - fromEntities:
    - "world"
  ingress:
  - fromEntities:
    - "all"`);
    const cidr = t.alloc.allocateCidr(parsePrefix('192.0.2.0/24')).identity.id;
    const p = t.engine.compute(ep(a.labels));
    assert.deepEqual(dump(p), ['I 0 0/0/40 A', 'I 2 0/0/40 D', `I ${cidr} 0/0/40 D`, 'E 0 0/0/40 A']);
  });

  it('port range and ICMP entries', () => {
    const t = setup();
    const a = t.pod('default', { app: 'myService' });
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: r}
spec:
  endpointSelector: {matchLabels: {app: myService}}
  egress:
  - toPorts: [{ports: [{port: "80", endPort: 95, protocol: TCP}, {port: "96", endPort: 97, protocol: TCP}]}]
  - icmps: [{fields: [{type: 8, family: IPv4}, {type: EchoRequest, family: IPv6}]}]`);
    assert.deepEqual(dump(t.engine.compute(ep(a.labels))), [
      'I 0 0/0/40 A',
      'E 0 1/8/64 A',
      'E 0 6/80/60 A',
      'E 0 6/96/63 A',
      'E 0 58/128/64 A',
    ]);
  });

  it('named ports resolve against the endpoint (ingress) and the cluster (egress)', () => {
    const t = setup();
    const a = t.pod('default', { app: 'a' });
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: r}
spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress:
  - toPorts: [{ports: [{port: http}, {port: dns, protocol: TCP}]}]
  egress:
  - toPorts: [{ports: [{port: metrics}]}]`);
    const p = t.engine.compute(ep(a.labels, { http: { port: 8080 }, dns: { port: 53, protocol: 'UDP' } }));
    // dns is UDP on the pod but the rule says TCP: contradiction, nothing allowed for it.
    // metrics is unknown cluster-wide: nothing allowed.
    assert.deepEqual(dump(p), ['I 0 6/8080/64 A']);
    const e2 = new PolicyEngine(t.repo, t.cache, {
      egressNamedPorts: (n) => (n === 'metrics' ? [{ port: 9090 }] : []),
    });
    assert.deepEqual(dump(e2.compute(ep(a.labels, { http: { port: 8080 } }))), [
      'I 0 6/8080/64 A',
      'E 0 6/9090/64 A',
    ]);
  });

  it('egress named ports resolve against the known pods and follow their changes', () => {
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache();
    cache.attach(alloc);
    const repo = new PolicyRepository();
    const pods = new Map<string, NamedPorts>([
      ['web', { 'serve-81-tcp': { port: 81, protocol: 'TCP' }, dns: { port: 53, protocol: 'UDP' } }],
      ['web2', { 'serve-81-tcp': { port: 81, protocol: 'TCP' } }],
    ]);
    const lookup = namedPortLookup(() => pods.values());
    assert.deepEqual(lookup('serve-81-tcp'), [{ port: 81, protocol: 'TCP' }], 'deduplicated');
    assert.deepEqual(lookup('dns'), [{ port: 53, protocol: 'UDP' }]);
    assert.deepEqual(lookup('none'), []);
    const engine = new PolicyEngine(repo, cache, { egressNamedPorts: lookup });
    const client = podIdentityLabels({ namespace: 'x', labels: { pod: 'a' } });
    const other = podIdentityLabels({ namespace: 'x', labels: { pod: 'b' } });
    alloc.allocate(client);
    engine.upsertEndpoint(1, ep(client));
    engine.upsertEndpoint(2, ep(other));
    repo.upsertAll(
      parsePolicies(
        docs(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-egress, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - ports: [{port: serve-81-tcp}, {port: dns, protocol: UDP}]`),
      ),
    );
    const [u] = engine.regenerate();
    assert.deepEqual(
      dump(u!.policy).filter((e) => e.startsWith('E')),
      ['E 0 6/81/64 A', 'E 0 17/53/64 A'],
    );
    // A pod names another port serve-81-tcp: only endpoints with egress named ports are recomputed.
    pods.set('odd', { 'serve-81-tcp': { port: 8081, protocol: 'TCP' } });
    engine.namedPortsChanged();
    assert.deepEqual(engine.dirtyEndpoints(), [1]);
    const [u2] = engine.regenerate();
    assert.deepEqual(
      u2!.diff.upserts.map((e) => `${e.key.protocol}/${e.key.dport}`),
      ['6/8081'],
    );
  });

  it('namespaced scoping: explicit namespace label is left alone', () => {
    const t = setup();
    const leia = t.pod('ns1', { name: 'leia' });
    const luke2 = t.pod('ns2', { name: 'luke' });
    t.pod('ns1', { name: 'luke' });
    t.pod('ns2', { name: 'leia' });
    t.apply(`apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "k8s-expose-across-namespace"
  namespace: ns1
spec:
  endpointSelector:
    matchLabels:
      name: leia
  ingress:
  - fromEndpoints:
    - matchLabels:
        k8s:io.kubernetes.pod.namespace: ns2
        name: luke`);
    assert.deepEqual(dump(t.engine.compute(ep(leia.labels))), [`I ${luke2.id} 0/0/40 A`, 'E 0 0/0/40 A']);
    // The ns2 leia is not selected by a ns1 policy.
    const leia2 = t.pod('ns2', { name: 'leia' });
    assert.ok(!t.engine.compute(ep(leia2.labels)).ingressEnforced);
  });

  it('K8s NetworkPolicy: namespaceSelector+podSelector in one peer (AND) vs two peers (OR), ipBlock except', () => {
    const t = setup();
    const db = t.pod('default', { role: 'db' });
    const feProj = t.pod('proj', { role: 'frontend' }, { project: 'myproject' });
    const beProj = t.pod('proj', { role: 'backend' }, { project: 'myproject' });
    const feDefault = t.pod('default', { role: 'frontend' });
    t.apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: and, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {project: myproject}}
      podSelector: {matchLabels: {role: frontend}}`);
    assert.deepEqual(dump(t.engine.compute(ep(db.labels))), [`I ${feProj.id} 0/0/40 A`, 'E 0 0/0/40 A']);
    t.apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: and, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {project: myproject}}
    - podSelector: {matchLabels: {role: frontend}}
  egress:
  - to:
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.96.0.0/12]}
    ports: [{port: 5432}]`);
    const sync = new CidrIdentitySync(t.alloc);
    const changes = sync.sync(t.repo.cidrPrefixes());
    assert.deepEqual(
      changes.upserts.map((u) => formatPrefix(u.prefix)),
      ['10.0.0.0/10', '10.112.0.0/12', '10.128.0.0/9', '10.64.0.0/11'],
    );
    const inHole = t.alloc.allocateCidr(parsePrefix('10.96.1.0/24')).identity.id;
    const p = t.engine.compute(ep(db.labels));
    assert.ok(p.egressEnforced);
    const cidrIds = changes.upserts.map((u) => u.identity).sort((a, b) => a - b);
    assert.deepEqual(dump(p), [
      ...[feProj.id, beProj.id, feDefault.id].sort((a, b) => a - b).map((id) => `I ${id} 0/0/40 A`),
      ...cidrIds.map((id) => `E ${id} 6/5432/64 A`),
    ]);
    assert.ok(!dump(p).some((s) => s.includes(` ${inHole} `)));
  });

  it('K8s NetworkPolicy: empty from allows all; policyTypes Egress only leaves ingress open', () => {
    const t = setup();
    const db = t.pod('default', { role: 'db' });
    t.apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x, namespace: default}
spec:
  podSelector: {}
  ingress: [{}]
  egress: []
  policyTypes: [Egress]`);
    assert.deepEqual(dump(t.engine.compute(ep(db.labels))), ['I 0 0/0/40 A']);
    t.apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x, namespace: default}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 80}]}]`);
    assert.deepEqual(dump(t.engine.compute(ep(db.labels))), ['I 0 6/80/64 A', 'E 0 0/0/40 A']);
  });

  it('entities: cluster and world; toCIDR selects contained CIDR identities', () => {
    const t = setup();
    const a = t.pod('default', { app: 'a' });
    const wide = t.alloc.allocateCidr(parsePrefix('20.0.0.0/8')).identity.id;
    const inside = t.alloc.allocateCidr(parsePrefix('20.1.1.1/32')).identity.id;
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: r}
spec:
  endpointSelector: {matchLabels: {app: a}}
  egress:
  - toCIDR: [20.1.0.0/16]
  - toEntities: [cluster]`);
    const p = t.engine.compute(ep(a.labels));
    const egress = dump(p).filter((s) => s.startsWith('E'));
    assert.ok(egress.includes(`E ${inside} 0/0/40 A`));
    assert.ok(!egress.some((s) => s.startsWith(`E ${wide} `)));
    for (const id of [1, 3, 4, 5, 6, 7, 8, a.id])
      assert.ok(egress.includes(`E ${id} 0/0/40 A`), `cluster has ${id}`);
    assert.ok(!egress.some((s) => s.startsWith('E 2 ')));
  });

  it('enableDefaultDeny false does not enforce', () => {
    const t = setup();
    const a = t.pod('default', { app: 'a' });
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: r}
spec:
  endpointSelector: {}
  enableDefaultDeny: {egress: false}
  egress:
  - toPorts: [{ports: [{port: "53", protocol: UDP}]}]`);
    const p = t.engine.compute(ep(a.labels));
    assert.ok(!p.egressEnforced);
    assert.deepEqual(dump(p), ['I 0 0/0/40 A', 'E 0 0/0/40 A', 'E 0 17/53/64 A']);
  });

  it('fromRequires narrows the other rules selecting the endpoint', () => {
    const t = setup();
    const prod = t.pod('default', { env: 'prod', app: 'x' });
    const prod2 = t.pod('default', { env: 'prod', app: 'y' });
    t.pod('default', { env: 'dev', app: 'y' });
    t.apply(`apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata: {name: requires-rule}
specs:
  - endpointSelector: {matchLabels: {env: prod}}
    ingress:
    - fromRequires: [{matchLabels: {env: prod}}]
---
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata: {name: allow-y}
spec:
  endpointSelector: {matchLabels: {env: prod}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: y}}]`);
    assert.deepEqual(dump(t.engine.compute(ep(prod.labels))), [`I ${prod2.id} 0/0/40 A`, 'E 0 0/0/40 A']);
  });
});

const cnpOn = (app: string, spec: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: r-${app}}
spec:
  endpointSelector: {matchLabels: {app: ${app}}}
${spec}`;

/** Identities an endpoint's entries name, per direction. */
function peersOf(p: EndpointPolicy, dir: 'I' | 'E'): number[] {
  return [
    ...new Set(
      sortedEntries(p.state)
        .filter((e) => (e.key.egress ? 'E' : 'I') === dir)
        .map((e) => e.key.identity),
    ),
  ].sort((a, b) => a - b);
}

describe('node selectors, entities and named ports select exactly what they say', () => {
  it('fromNodes / toNodes select the host by its node labels, never a pod labelled like the node', () => {
    const t = setup({ nodeLabels: { 'node-role': 'worker', 'kubernetes.io/hostname': 'node1' } });
    const a = t.pod('default', { app: 'a' });
    t.pod('default', { 'node-role': 'worker' });
    t.pod('other', { 'node-role': 'worker', 'kubernetes.io/hostname': 'node1' });
    t.alloc.allocateCidr(parsePrefix('192.168.0.0/16'));
    t.apply(
      cnpOn(
        'a',
        `  ingress:
  - fromNodes: [{matchLabels: {node-role: worker}}]
  - fromNodes: [{matchLabels: {node-role: master}}]
    toPorts: [{ports: [{port: "22", protocol: TCP}]}]
  egress:
  - toNodes: [{matchLabels: {kubernetes.io/hostname: node1}}]
    toPorts: [{ports: [{port: "10250", protocol: TCP}]}]`,
      ),
    );
    assert.deepEqual(dump(t.engine.compute(ep(a.labels))), ['I 1 0/0/40 A', 'E 1 6/10250/64 A']);
  });

  it('fromNodes [{}] selects every node (host, remote-node) and no pod, world or CIDR identity', () => {
    const t = setup();
    const a = t.pod('default', { app: 'a' });
    t.pod('default', { app: 'b' });
    t.alloc.allocateCidr(parsePrefix('0.0.0.0/0'));
    t.apply(cnpOn('a', '  ingress:\n  - fromNodes: [{}]'));
    assert.deepEqual(dump(t.engine.compute(ep(a.labels))), ['I 1 0/0/40 A', 'I 6 0/0/40 A', 'E 0 0/0/40 A']);
  });

  it('node labels given or changed later re-evaluate the host identity incrementally', () => {
    const t = setup();
    const a = t.pod('default', { app: 'a' });
    t.apply(cnpOn('a', '  ingress:\n  - fromNodes: [{matchLabels: {zone: a}}]'));
    t.engine.upsertEndpoint(7, ep(a.labels));
    assert.deepEqual(peersOf(t.engine.endpointPolicy(7)!, 'I'), []);
    t.cache.setNodeLabels({ zone: 'a', host: 'x' });
    // A node label never replaces one of the identity's own (reserved:host stays).
    assert.deepEqual(t.cache.identityLabels(1)!.toStrings(), ['reserved:host', 'node:zone=a']);
    assert.deepEqual(t.engine.dirtyEndpoints(), [7]);
    const [u] = t.engine.regenerate();
    assert.deepEqual(
      u!.diff.upserts.map((e) => e.key.identity),
      [1],
    );
    assert.deepEqual(dump(t.engine.endpointPolicy(7)!), dump(t.engine.compute(ep(a.labels))));
    t.cache.setNodeLabels({ zone: 'b' });
    const [u2] = t.engine.regenerate();
    assert.deepEqual(
      u2!.diff.deletes.map((k) => k.identity),
      [1],
    );
    assert.deepEqual(peersOf(t.engine.endpointPolicy(7)!, 'I'), []);
  });

  it('world-ipv4 / world-ipv6 select only their family; world both and identity 2; remote-node identity 6', () => {
    const t = setup();
    const ids = (p: string) => t.alloc.allocateCidr(parsePrefix(p)).identity.id;
    const v4 = [ids('0.0.0.0/0'), ids('192.168.211.254/32')];
    const v6 = [ids('::/0'), ids('2001:db8::/32')];
    const pod = (app: string) => t.pod('default', { app });
    const [p4, p6, pw, prn] = [pod('v4'), pod('v6'), pod('w'), pod('rn')];
    t.apply(
      [
        cnpOn('v4', '  egress:\n  - toEntities: [world-ipv4]'),
        cnpOn('v6', '  ingress:\n  - fromEntities: [world-ipv6]'),
        cnpOn('w', '  egress:\n  - toEntities: [world]'),
        cnpOn('rn', '  ingress:\n  - fromEntities: [remote-node]'),
      ].join('\n---\n'),
    );
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    assert.deepEqual(peersOf(t.engine.compute(ep(p4.labels)), 'E'), sorted(v4));
    assert.deepEqual(peersOf(t.engine.compute(ep(p6.labels)), 'I'), sorted(v6));
    assert.deepEqual(peersOf(t.engine.compute(ep(pw.labels)), 'E'), sorted([2, ...v4, ...v6]));
    assert.deepEqual(peersOf(t.engine.compute(ep(prn.labels)), 'I'), [6]);
    // The agent puts each family's /0 in the ipcache: no address of that family resolves to identity 2.
    assert.deepEqual(t.repo.cidrPrefixes().map(formatPrefix), ['0.0.0.0/0', '::/0']);
  });

  it('toCIDR 0.0.0.0/0 selects IPv4 CIDR identities, not identity 2 (which carries IPv6 world traffic)', () => {
    const t = setup();
    const a = t.pod('default', { app: 'a' });
    const all4 = t.alloc.allocateCidr(parsePrefix('0.0.0.0/0')).identity.id;
    t.alloc.allocateCidr(parsePrefix('::/0'));
    t.apply(cnpOn('a', '  egress:\n  - toCIDR: [0.0.0.0/0]'));
    assert.deepEqual(peersOf(t.engine.compute(ep(a.labels)), 'E'), [all4]);
  });

  it('a port named HTTP resolves the same way in ingress and egress (exact names, policy names lower-cased)', () => {
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache();
    cache.attach(alloc);
    const repo = new PolicyRepository();
    // "HTTP" cannot come from a manifest (container port names are lowercase); if it came from
    // elsewhere it must be ignored in both directions alike.
    const known: NamedPorts[] = [{ http: { port: 8080, protocol: 'TCP' } }, { HTTP: { port: 9090 } }];
    const engine = new PolicyEngine(repo, cache, { egressNamedPorts: namedPortLookup(() => known) });
    const a = podIdentityLabels({ namespace: 'default', labels: { app: 'a' } });
    repo.upsertAll(
      parsePolicies(
        docs(
          cnpOn(
            'a',
            '  ingress:\n  - toPorts: [{ports: [{port: HTTP}]}]\n  egress:\n  - toPorts: [{ports: [{port: HTTP}]}]',
          ),
        ),
      ),
    );
    assert.deepEqual(dump(engine.compute(ep(a, known[0]!))), ['I 0 6/8080/64 A', 'E 0 6/8080/64 A']);
    assert.deepEqual(dump(engine.compute(ep(a, known[1]!))), ['E 0 6/8080/64 A']);
  });
});

describe('selector cache and incremental regeneration', () => {
  it('identities coming and going: the incremental state equals a full computation', () => {
    const t = setup();
    const web = t.pod('x', { app: 'web' });
    const db = t.pod('x', { app: 'db', tier: 'data' });
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db, namespace: x}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
    toPorts: [{ports: [{port: "5432", protocol: TCP}, {port: "9000", endPort: 9100, protocol: ANY}]}]
  - fromEntities: [cluster]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
  - fromEndpoints: [{matchExpressions: [{key: tier, operator: DoesNotExist}]}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {app: bad}}]
  - toPorts: [{ports: [{port: "9050", protocol: TCP}]}]
  egress:
  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]
    toPorts: [{ports: [{port: "53", protocol: UDP}]}]
  egressDeny:
  - toEndpoints: [{matchLabels: {app: bad, k8s:io.kubernetes.pod.namespace: y}}]
    toPorts: [{ports: [{port: "53", protocol: ANY}]}]`);
    t.engine.upsertEndpoint(1, ep(db.labels));
    t.engine.upsertEndpoint(2, ep(web.labels));
    const same = () =>
      assert.deepEqual(dump(t.engine.endpointPolicy(1)!), dump(t.engine.compute(ep(db.labels))));
    const events: number[] = [];
    const apply = () => {
      for (const u of t.engine.regenerate()) events.push(u.diff.upserts.length + u.diff.deletes.length);
    };
    const web2 = t.pod('x', { app: 'web', v: '2' });
    const bad = t.pod('x', { app: 'bad' });
    const badY = t.pod('y', { app: 'bad' });
    const dnsY = t.pod('y', { app: 'dns', tier: 'infra' });
    assert.deepEqual(t.engine.dirtyEndpoints(), [1]);
    apply();
    same();
    assert.ok(dump(t.engine.endpointPolicy(1)!).includes(`I ${bad.id} 0/0/40 D`), 'deny of x/bad applied');
    assert.ok(
      dump(t.engine.endpointPolicy(1)!).includes(`E ${badY.id} 17/53/64 D`),
      'egress deny beats allow',
    );
    t.alloc.release(web2.id);
    t.alloc.release(dnsY.id);
    apply();
    same();
    t.alloc.release(bad.id);
    t.alloc.release(badY.id);
    apply();
    same();
    assert.ok(events.every((n) => n > 0));
  });

  it('updates selections incrementally and notifies', () => {
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache();
    cache.attach(alloc);
    const sel = Selector.fromK8s({ matchLabels: { app: 'web' } });
    const got: string[] = [];
    cache.subscribe((cs) => {
      for (const c of cs) got.push(`${c.selector.key} +${c.added.join(',')} -${c.removed.join(',')}`);
    });
    const pre = alloc.allocate(podIdentityLabels({ namespace: 'd', labels: { app: 'web', v: '1' } })).identity
      .id;
    const sels = cache.add(sel);
    assert.deepEqual([...sels], [pre]);
    const id = alloc.allocate(podIdentityLabels({ namespace: 'd', labels: { app: 'web' } })).identity.id;
    alloc.allocate(podIdentityLabels({ namespace: 'd', labels: { app: 'db' } }));
    assert.deepEqual([...cache.selections(sel)].sort(), [pre, id].sort());
    alloc.release(id);
    assert.deepEqual([...cache.selections(sel)], [pre]);
    assert.deepEqual(got, [`{any:app=web} +${id} -`, `{any:app=web} + -${id}`]);
    cache.remove(sel);
    assert.equal(cache.size, 0);
  });

  it('recomputes only affected endpoints and returns map diffs', () => {
    const t = setup();
    const web = t.pod('default', { app: 'web' });
    const db = t.pod('default', { app: 'db' });
    t.engine.upsertEndpoint(1, ep(web.labels));
    t.engine.upsertEndpoint(2, ep(db.labels));
    t.apply(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
    toPorts: [{ports: [{port: "5432", protocol: TCP}]}]`);
    assert.deepEqual(t.engine.dirtyEndpoints(), [2]);
    const r1 = t.engine.regenerate();
    assert.equal(r1.length, 1);
    assert.deepEqual(
      r1[0]!.diff.upserts.map((e) => `${e.key.identity}/${e.key.dport}`),
      [`${web.id}/5432`],
    );
    assert.deepEqual(
      r1[0]!.diff.deletes.map((k) => `${k.identity}/${k.egress}/${k.prefixLen}`),
      ['0/0/40'],
    );
    // A new web identity appears: only endpoint 2 (whose selector matches) is dirty.
    const web2 = t.pod('default', { app: 'web', version: '2' });
    assert.deepEqual(t.engine.dirtyEndpoints(), [2]);
    const r2 = t.engine.regenerate();
    assert.deepEqual(
      r2[0]!.diff.upserts.map((e) => e.key.identity),
      [web2.id],
    );
    assert.deepEqual(r2[0]!.diff.deletes, []);
    // Unrelated identity: nothing to do.
    t.pod('default', { app: 'cache' });
    assert.deepEqual(t.engine.dirtyEndpoints(), []);
    // Policy deleted: back to allow-all.
    t.repo.delete({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'db' });
    const r3 = t.engine.regenerate();
    assert.equal(r3[0]!.endpointId, 2);
    assert.deepEqual(dump(r3[0]!.policy), ['I 0 0/0/40 A', 'E 0 0/0/40 A']);
    assert.equal(t.engine.removeEndpoint(2).deletes.length, 2);
  });

  it('repository revisions bump on every change and re-import replaces', () => {
    const repo = new PolicyRepository();
    const r0 = repo.revision;
    const p = parsePolicies(
      docs(
        'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\nspec: {endpointSelector: {}, ingress: [{}]}',
      ),
    );
    repo.upsertAll(p);
    repo.upsertAll(p);
    assert.equal(repo.revision, r0 + 2);
    assert.equal(repo.list().length, 1);
    const cookie = repo.cookieOf(repo.rules()[0]!);
    assert.ok(cookie > 0 && repo.ruleByCookie(cookie) === repo.rules()[0]);
    repo.delete(p[0]!.ref);
    assert.equal(repo.revision, r0 + 3);
    assert.equal(repo.delete(p[0]!.ref), undefined);
  });
});
