import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { FqdnIdentities } from '../../../src/fqdn/identities.js';
import { IdentityAllocator } from '../../../src/identity/index.js';
import { podIdentityLabels } from '../../../src/labels/index.js';
import {
  fqdnPatterns,
  PolicyEngine,
  PolicyRepository,
  parsePolicies,
  SelectorCache,
  sortedEntries,
  validatePolicies,
} from '../../../src/policy/index.js';

const docs = (y: string): unknown[] => parseAllDocuments(y).map((d) => d.toJS());
const cnp = (egress: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: ns1}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
${egress}`;
const errors = (y: string) => validatePolicies(docs(y)).map((i) => `${i.path}: ${i.message}`);

describe('toFQDNs in policies', () => {
  it('parses into fqdn peers with canonical patterns', () => {
    const [p] = parsePolicies(
      docs(
        cnp(`  - toFQDNs: [{matchName: API.example.com}, {matchPattern: "*.cdn.example.com"}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]`),
      ),
    );
    const pr = p!.rules[0]!.egress![0]!;
    assert.deepEqual(
      pr.peers.map((x) => [x.origin, x.selector.key]),
      [
        ['fqdn', '{fqdn:api.example.com.}'],
        ['fqdn', '{fqdn:*.cdn.example.com.}'],
      ],
    );
    assert.deepEqual([...fqdnPatterns(p!.rules)].sort(), ['*.cdn.example.com.', 'api.example.com.']);
  });

  it('refuses bad selectors and toFQDNs combined with another L3 selector, naming the field', () => {
    assert.deepEqual(errors(cnp('  - toFQDNs: [{matchName: "a b"}]')), [
      'spec.egress[0].toFQDNs[0].matchName: invalid DNS name "a b"',
    ]);
    assert.deepEqual(errors(cnp('  - toFQDNs: [{matchName: a.com, matchPattern: "*.a.com"}]')), [
      'spec.egress[0].toFQDNs[0]: exactly one of matchName or matchPattern is required',
    ]);
    assert.deepEqual(errors(cnp('  - {toFQDNs: [{matchName: a.com}], toCIDR: [192.0.2.0/24]}')), [
      'spec.egress[0].toFQDNs: combining toFQDNs with other L3 selectors is not supported',
    ]);
    assert.ok(errors(cnp('  - {toFQDNs: [{matchName: a.com}]}')).length === 0);
  });

  it('selects exactly the IPs DNS gave for matching names, and follows a changing answer', () => {
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache();
    cache.attach(alloc);
    const repo = new PolicyRepository();
    const engine = new PolicyEngine(repo, cache);
    repo.upsertAll(
      parsePolicies(
        docs(
          cnp(`  - toFQDNs: [{matchPattern: "*.example.com"}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]`),
        ),
      ),
    );
    const labels = podIdentityLabels({ namespace: 'ns1', labels: { app: 'client' }, namespaceLabels: {} });
    const fq = new FqdnIdentities(alloc);
    const egressIds = () =>
      sortedEntries(engine.endpointPolicy(1)!.state)
        .filter((e) => e.key.egress === 1)
        .map((e) => `${e.key.identity} ${e.key.protocol}/${e.key.dport} ${e.entry.deny ? 'D' : 'A'}`);
    engine.upsertEndpoint(1, { labels });
    assert.deepEqual(egressIds(), [], 'no answer yet: nothing allowed');
    const patterns = fqdnPatterns(repo.rules());
    fq.sync(
      patterns,
      new Map([
        ['www.example.com.', new Set(['192.0.2.1'])],
        ['evil.org.', new Set(['192.0.2.66'])],
      ]),
    );
    engine.regenerate();
    const id1 = fq.ipcacheEntries().get('192.0.2.1')!.identity;
    assert.deepEqual(egressIds(), [`${id1} 6/443 A`]);
    assert.equal(fq.ipcacheEntries().has('192.0.2.66'), false);
    fq.sync(patterns, new Map([['www.example.com.', new Set(['192.0.2.2'])]]));
    engine.regenerate();
    const id2 = fq.ipcacheEntries().get('192.0.2.2')!.identity;
    assert.deepEqual(egressIds(), [`${id2} 6/443 A`]);
  });
});

describe('DNS rules in policies', () => {
  const dnsPolicy = (section: string, ports: string, dns: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p, namespace: ns1}
spec:
  endpointSelector: {}
  ${section}:
  - toPorts:
    - ports: ${ports}
      rules:
        dns: ${dns}`;

  it('an egress DNS rule on port 53 becomes canonical patterns whose entries go to the DNS proxy', () => {
    const [p] = parsePolicies(
      docs(
        dnsPolicy(
          'egress',
          '[{port: "53", protocol: ANY}]',
          '[{matchName: Cilium.IO}, {matchPattern: "*.cilium.io"}]',
        ),
      ),
    );
    const r = p!.rules[0]!.egress![0]!.ports[0]!;
    assert.deepEqual(r.l7, { parser: 'dns', dns: ['cilium.io.', '*.cilium.io.'] });
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache();
    cache.attach(alloc);
    const repo = new PolicyRepository();
    const engine = new PolicyEngine(repo, cache, { proxyPort: (parser) => (parser === 'dns' ? 10053 : 0) });
    repo.upsertAll([p!]);
    const labels = podIdentityLabels({ namespace: 'ns1', labels: {}, namespaceLabels: {} });
    const pol = engine.upsertEndpoint(1, { labels }).policy;
    const egress = sortedEntries(pol.state).filter((e) => e.key.egress === 1);
    // ANY: TCP and UDP (and SCTP) port 53, every entry redirecting to the DNS proxy's port.
    assert.ok(egress.some((e) => e.key.protocol === 17 && e.key.dport === 53));
    assert.ok(egress.some((e) => e.key.protocol === 6 && e.key.dport === 53));
    assert.ok(egress.length > 0 && egress.every((e) => e.entry.proxyPort === 10053 && !e.entry.deny));
  });

  it('refuses what the DNS proxy cannot enforce, naming the field', () => {
    assert.deepEqual(errors(dnsPolicy('ingress', '[{port: "53", protocol: UDP}]', '[{matchName: a.com}]')), [
      'spec.ingress[0].toPorts[0].rules.dns: DNS rules apply to egress only',
    ]);
    assert.deepEqual(
      errors(dnsPolicy('egress', '[{port: "53", protocol: UDP}]', '[{matchPattern: "a b"}]')),
      ['spec.egress[0].toPorts[0].rules.dns[0].matchPattern: invalid DNS pattern "a b"'],
    );
    assert.ok(errors(dnsPolicy('egress', '[{port: "0", protocol: UDP}]', '[{matchName: a.com}]')).length > 0);
    assert.ok(errors(dnsPolicy('egress', '[{port: "53", protocol: UDP}]', '[]')).length > 0);
  });
});
