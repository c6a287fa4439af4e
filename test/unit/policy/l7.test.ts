/**
 * L7 policy: http rules parse into the shared L7 model, fields the proxy cannot enforce are
 * refused naming them, the engine gives the entries of L7 port rules the proxy's port (and allows
 * nothing without one), and l7RulesFor picks what applies to one connection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { IdentityAllocator } from '../../../src/identity/index.js';
import { podIdentityLabels } from '../../../src/labels/index.js';
import {
  l7RulesFor,
  mergeEntries,
  PolicyEngine,
  PolicyRepository,
  parsePolicies,
  SelectorCache,
  sortedEntries,
  validatePolicies,
} from '../../../src/policy/index.js';

const docs = (y: string): unknown[] => parseAllDocuments(y).map((d) => d.toJS());
const errors = (y: string) => validatePolicies(docs(y)).map((i) => `${i.path}: ${i.message}`);
const cnp = (spec: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: ns1}
spec:
${spec}`;

const STARWARS = cnp(`  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: POST, path: /v1/request-landing}
        - {method: GET, path: "/v1/.*", host: "deathstar(\\\\..*)?", headers: ["X-Has-Force", "X-Rank captain"],
           headerMatches: [{name: X-Fleet, value: imperial}]}
  - fromEndpoints: [{matchLabels: {org: rebel}}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]`);

describe('L7 http rules', () => {
  it('parse into the L7 model (regexes kept, headers split into name and value)', () => {
    const [p] = parsePolicies(docs(STARWARS));
    const pr = p!.rules[0]!.ingress![0]!;
    assert.deepEqual(pr.ports[0]!.l7, {
      parser: 'http',
      http: [
        { method: 'POST', path: '/v1/request-landing', headers: [] },
        {
          method: 'GET',
          path: '/v1/.*',
          host: 'deathstar(\\..*)?',
          headers: [
            { name: 'X-Has-Force' },
            { name: 'X-Rank', value: 'captain' },
            { name: 'X-Fleet', value: 'imperial' },
          ],
        },
      ],
    });
    assert.equal(p!.rules[0]!.ingress![1]!.ports[0]!.l7, undefined);
  });

  it('refuse what the proxy cannot enforce, naming the field', () => {
    assert.deepEqual(
      errors(
        cnp(`  endpointSelector: {}
  ingress:
  - toPorts:
    - ports: [{port: "0", protocol: TCP}]
      rules: {http: [{}]}
    - ports: [{port: "80", endPort: 90, protocol: TCP}]
      rules: {http: [{}]}
    - ports: [{port: "80", protocol: UDP}]
      rules: {http: [{}]}
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: []}
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{path: "(", headerMatches: [{name: X, value: y, mismatch: LOG}, {name: "bad name", secret: {name: s}}]}]}`),
      ),
      [
        'spec.ingress[0].toPorts[0].ports[0].port: L7 rules need a port: port 0 (all ports) cannot be redirected to a proxy',
        'spec.ingress[0].toPorts[1].ports[0].endPort: L7 rules do not support port ranges',
        'spec.ingress[0].toPorts[2].ports[0].protocol: L7 http rules need protocol TCP or ANY, got UDP',
        'spec.ingress[0].toPorts[3].rules.http: an empty http list allows nothing; write [{}] to allow every request',
        'spec.ingress[0].toPorts[4].rules.http[0].path: invalid regular expression "("',
        'spec.ingress[0].toPorts[4].rules.http[0].headerMatches[0].mismatch: mismatch actions (LOG, ADD, DELETE, REPLACE) are not supported yet',
        'spec.ingress[0].toPorts[4].rules.http[0].headerMatches[1].secret: header values from secrets are not supported yet',
        'spec.ingress[0].toPorts[4].rules.http[0].headers[1]: invalid header name "bad name"',
      ],
    );
  });
});

function setup(proxyPort?: (parser: string, egress: 0 | 1) => number) {
  const alloc = new IdentityAllocator();
  const cache = new SelectorCache();
  cache.attach(alloc);
  const repo = new PolicyRepository();
  const engine = new PolicyEngine(repo, cache, proxyPort ? { proxyPort } : {});
  const pod = (labels: Record<string, string>) => {
    const ls = podIdentityLabels({ namespace: 'ns1', labels, namespaceLabels: {} });
    return { labels: ls, id: alloc.allocate(ls).identity.id };
  };
  repo.upsertAll(parsePolicies(docs(STARWARS)));
  return { engine, cache, pod };
}

describe('L7 entries', () => {
  it('carry the proxy port of their parser; L4-only ports do not', () => {
    const { engine, pod, cache } = setup((parser, egress) => (parser === 'http' ? 10080 + egress : 0));
    const empire = pod({ org: 'empire' });
    const rebel = pod({ org: 'rebel' });
    const ds = pod({ class: 'deathstar' });
    const pol = engine.compute({ labels: ds.labels });
    const rows = sortedEntries(pol.state).map(
      (e) => `${e.key.identity} ${e.key.protocol}/${e.key.dport} proxy ${e.entry.proxyPort}`,
    );
    assert.ok(rows.includes(`${empire.id} 6/80 proxy 10080`), rows.join('\n'));
    assert.ok(rows.includes(`${rebel.id} 6/8080 proxy 0`), rows.join('\n'));
    // the proxy's view: which rules apply to a connection
    const selects = (s: Parameters<typeof cache.selections>[0], id: number) => cache.selections(s).has(id);
    const d = l7RulesFor(pol.l7, 0, empire.id, 6, 80, selects);
    assert.equal(d.kind, 'rules');
    assert.equal(d.kind === 'rules' && d.rules[0]!.parser, 'http');
    assert.deepEqual(l7RulesFor(pol.l7, 0, rebel.id, 6, 80, selects), { kind: 'deny' });
    assert.deepEqual(l7RulesFor(pol.l7, 0, rebel.id, 6, 8080, selects), { kind: 'allow-all' });
    assert.deepEqual(l7RulesFor(pol.l7, 1, empire.id, 6, 80, selects), { kind: 'deny' });
  });

  it('without a proxy for the parser, allow nothing (never the whole port)', () => {
    const { engine, pod } = setup();
    const empire = pod({ org: 'empire' });
    const ds = pod({ class: 'deathstar' });
    const pol = engine.compute({ labels: ds.labels });
    assert.ok(sortedEntries(pol.state).every((e) => e.key.identity !== empire.id));
    assert.ok(pol.ingressEnforced);
  });

  it('an L4-only allow on the same key keeps the redirect (the proxy then allows all)', () => {
    const a = { deny: false, proxyPort: 0, ruleCookie: 3 };
    const b = { deny: false, proxyPort: 10080, ruleCookie: 5 };
    assert.deepEqual(mergeEntries(a, b), { deny: false, proxyPort: 10080, ruleCookie: 3 });
    assert.deepEqual(mergeEntries(b, a), { deny: false, proxyPort: 10080, ruleCookie: 3 });
    assert.equal(mergeEntries(b, b), b);
  });
});
