import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdentityAllocator } from '../../../src/identity/index.js';
import { podIdentityLabels } from '../../../src/labels/index.js';
import {
  type EndpointPolicy,
  type MapEntry,
  type NamedPorts,
  namedPortLookup,
  PolicyEngine,
  PolicyRepository,
  parsePolicies,
  SelectorCache,
  sortedEntries,
} from '../../../src/policy/index.js';
import { policyKeyId } from '../../../src/policy/mapstate.js';

/** Every entry with its cookie and proxy port: the exact state a full computation gives. */
const full = (state: EndpointPolicy['state']): string[] =>
  sortedEntries(state).map(
    (e) =>
      `${e.key.egress ? 'E' : 'I'} ${e.key.identity} ${e.key.protocol}/${e.key.dport}/${e.key.prefixLen} ` +
      `${e.entry.deny ? 'D' : 'A'} c${e.entry.ruleCookie} p${e.entry.proxyPort}`,
  );

/** A small deterministic generator (tests must be reproducible). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const APPS = ['a', 'b', 'c', 'd'];
const NSS = ['n0', 'n1'];

function randomPolicy(r: () => number, i: number): Record<string, unknown> {
  const pick = <T>(l: readonly T[]): T => l[Math.floor(r() * l.length)]!;
  const peer = () =>
    r() < 0.15 ? {} : { matchLabels: r() < 0.5 ? { app: pick(APPS) } : { tier: pick(['x', 'y']) } };
  const ports = () => {
    const x = r();
    if (x < 0.3) return undefined;
    if (x < 0.6) return [{ ports: [{ port: pick(['80', '443', '22']), protocol: 'TCP' }] }];
    if (x < 0.8) return [{ ports: [{ port: '80', endPort: pick([90, 200]), protocol: 'TCP' }] }];
    return [{ ports: [{ port: '53', protocol: pick(['UDP', 'ANY']) }] }];
  };
  const rule = () => {
    const pr: Record<string, unknown> =
      r() < 0.2 ? { fromEntities: [pick(['world', 'cluster', 'all'])] } : { fromEndpoints: [peer()] };
    const p = ports();
    if (p !== undefined) pr.toPorts = p;
    return pr;
  };
  const egressRule = () => {
    const pr: Record<string, unknown> = { toEndpoints: [peer()] };
    const p = ports();
    if (p !== undefined) pr.toPorts = p;
    return pr;
  };
  const spec: Record<string, unknown> = {
    endpointSelector: r() < 0.2 ? {} : { matchLabels: { app: pick(APPS) } },
  };
  if (r() < 0.7) spec.ingress = [rule()];
  if (r() < 0.35) {
    const d = rule();
    if (JSON.stringify(d).includes('"all"')) d.fromEntities = ['world'];
    spec.ingressDeny = [d];
  }
  if (r() < 0.3) spec.egress = [egressRule()];
  if (r() < 0.15) spec.egressDeny = [egressRule()];
  if (spec.ingress === undefined && spec.ingressDeny === undefined && spec.egress === undefined)
    spec.ingress = [rule()];
  const clusterwide = r() < 0.25;
  return {
    apiVersion: 'cilium.io/v2',
    kind: clusterwide ? 'CiliumClusterwideNetworkPolicy' : 'CiliumNetworkPolicy',
    metadata: clusterwide ? { name: `p${i}` } : { name: `p${i}`, namespace: pick(NSS) },
    spec,
  };
}

describe('policies added to a computed state', () => {
  it('merging added rules gives exactly the full computation (entries, cookies, diffs)', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const r = rng(seed);
      const alloc = new IdentityAllocator();
      const cache = new SelectorCache();
      cache.attach(alloc);
      const repo = new PolicyRepository();
      const engine = new PolicyEngine(repo, cache);
      const inputs = new Map<number, { labels: ReturnType<typeof podIdentityLabels> }>();
      let n = 0;
      for (const ns of NSS)
        for (const app of APPS)
          for (const tier of ['x', 'y']) {
            const labels = podIdentityLabels({ namespace: ns, labels: { app, tier } });
            alloc.allocate(labels);
            if (tier === 'x') inputs.set(++n, { labels });
          }
      const mirrors = new Map<number, Map<number, MapEntry>>();
      for (const [id, input] of inputs) {
        const u = engine.upsertEndpoint(id, input);
        mirrors.set(id, new Map(u.diff.upserts.map((e) => [policyKeyId(e.key), e])));
      }
      for (let i = 0; i < 14; i++) {
        repo.upsert(parsePolicies([randomPolicy(r, i)])[0]!);
        for (const u of engine.regenerate()) {
          const m = mirrors.get(u.endpointId)!;
          for (const e of u.diff.upserts) m.set(policyKeyId(e.key), e);
          for (const k of u.diff.deletes) m.delete(policyKeyId(k));
        }
        for (const [id, input] of inputs) {
          const want = engine.compute(input);
          const have = engine.endpointPolicy(id)!;
          const where = `seed ${seed}, policy ${i}, endpoint ${id}`;
          assert.deepEqual(full(have.state), full(want.state), where);
          assert.deepEqual(full(mirrors.get(id)!), full(want.state), `${where} (diffs)`);
          assert.equal(have.ingressEnforced, want.ingressEnforced, where);
          assert.equal(have.egressEnforced, want.egressEnforced, where);
          assert.deepEqual(
            have.rules.map((x) => repo.cookieOf(x)),
            want.rules.map((x) => repo.cookieOf(x)),
            where,
          );
          assert.deepEqual(
            have.selectors.map((s) => s.key).sort(),
            want.selectors.map((s) => s.key).sort(),
            where,
          );
        }
      }
    }
  });

  it('a policy added while named ports changed: the endpoint is computed in full, not merged', () => {
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache();
    cache.attach(alloc);
    const repo = new PolicyRepository();
    let ports: NamedPorts[] = [{ web: { port: 8080, protocol: 'TCP' } }];
    const engine = new PolicyEngine(repo, cache, { egressNamedPorts: namedPortLookup(() => ports) });
    const labels = podIdentityLabels({ namespace: 'n0', labels: { app: 'a' } });
    alloc.allocate(labels);
    alloc.allocate(podIdentityLabels({ namespace: 'n0', labels: { app: 'b' } }));
    const policy = (name: string, spec: Record<string, unknown>) =>
      parsePolicies([
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumNetworkPolicy',
          metadata: { name, namespace: 'n0' },
          spec,
        },
      ])[0]!;
    repo.upsert(
      policy('named', {
        endpointSelector: { matchLabels: { app: 'a' } },
        egress: [{ toEndpoints: [{ matchLabels: { app: 'b' } }], toPorts: [{ ports: [{ port: 'web' }] }] }],
      }),
    );
    engine.upsertEndpoint(1, { labels });
    repo.upsert(
      policy('more', {
        endpointSelector: {},
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'b' } }] }],
      }),
    );
    ports = [{ web: { port: 9090, protocol: 'TCP' } }];
    engine.namedPortsChanged();
    engine.regenerate();
    const have = full(engine.endpointPolicy(1)!.state);
    assert.deepEqual(have, full(engine.compute({ labels }).state));
    assert.ok(
      have.some((l) => l.includes(' 6/9090/64 A')),
      have.join('\n'),
    );
    assert.ok(!have.some((l) => l.includes('/8080/')), have.join('\n'));
  });

  it('a policy added while identities came: the endpoint is computed in full, not merged', () => {
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache();
    cache.attach(alloc);
    const repo = new PolicyRepository();
    const engine = new PolicyEngine(repo, cache);
    const labels = podIdentityLabels({ namespace: 'n0', labels: { app: 'a' } });
    alloc.allocate(labels);
    const doc = (name: string, app: string) => ({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name, namespace: 'n0' },
      spec: {
        endpointSelector: { matchLabels: { app: 'a' } },
        ingress: [{ fromEndpoints: [{ matchLabels: { app } }] }],
      },
    });
    repo.upsert(parsePolicies([doc('from-b', 'b')])[0]!);
    engine.upsertEndpoint(1, { labels });
    repo.upsert(parsePolicies([doc('from-c', 'c')])[0]!);
    const b = alloc.allocate(podIdentityLabels({ namespace: 'n0', labels: { app: 'b' } })).identity.id;
    engine.regenerate();
    const have = full(engine.endpointPolicy(1)!.state);
    assert.deepEqual(have, full(engine.compute({ labels }).state));
    assert.ok(
      have.some((l) => l.startsWith(`I ${b} `)),
      have.join('\n'),
    );
  });
});
