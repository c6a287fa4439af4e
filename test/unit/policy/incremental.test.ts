import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdentityAllocator } from '../../../src/identity/index.js';
import { podIdentityLabels } from '../../../src/labels/index.js';
import {
  CidrIdentitySync,
  type EndpointPolicy,
  LayeredMapState,
  type MapEntry,
  type NamedPorts,
  namedPortLookup,
  PolicyEngine,
  type PolicyRef,
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

type Input = { labels: ReturnType<typeof podIdentityLabels> };

/** A parsed CiliumNetworkPolicy in `ns`, or a cluster-wide one without. */
const doc = (name: string, spec: Record<string, unknown>, ns?: string) =>
  parsePolicies([
    {
      apiVersion: 'cilium.io/v2',
      kind: ns === undefined ? 'CiliumClusterwideNetworkPolicy' : 'CiliumNetworkPolicy',
      metadata: ns === undefined ? { name } : { name, namespace: ns },
      spec,
    },
  ])[0]!;

function newEngine() {
  const alloc = new IdentityAllocator();
  const cache = new SelectorCache();
  cache.attach(alloc);
  const repo = new PolicyRepository();
  return { alloc, cache, repo, engine: new PolicyEngine(repo, cache) };
}

/** What each endpoint's map holds when fed the diffs, and the check against a full computation. */
class Mirrors {
  readonly #maps = new Map<number, Map<number, MapEntry>>();

  constructor(
    readonly engine: PolicyEngine,
    readonly inputs: ReadonlyMap<number, Input>,
  ) {
    for (const [id, input] of inputs) {
      const u = engine.upsertEndpoint(id, input);
      this.#maps.set(id, new Map(u.diff.upserts.map((e) => [policyKeyId(e.key), e])));
    }
  }

  regenerate(): void {
    for (const u of this.engine.regenerate()) {
      const m = this.#maps.get(u.endpointId)!;
      for (const e of u.diff.upserts) m.set(policyKeyId(e.key), e);
      for (const k of u.diff.deletes) m.delete(policyKeyId(k));
    }
  }

  /** Asserts every endpoint's state, diffs, enforcement, rules and selectors; returns the policies. */
  check(where: string): EndpointPolicy[] {
    const { engine } = this;
    const out: EndpointPolicy[] = [];
    for (const [id, input] of this.inputs) {
      const want = engine.compute(input);
      const have = engine.endpointPolicy(id)!;
      const at = `${where}, endpoint ${id}`;
      assert.deepEqual(full(have.state), full(want.state), at);
      assert.equal(have.state.size, want.state.size, at);
      assert.deepEqual(full(this.#maps.get(id)!), full(want.state), `${at} (diffs)`);
      assert.equal(have.ingressEnforced, want.ingressEnforced, at);
      assert.equal(have.egressEnforced, want.egressEnforced, at);
      const cookies = (p: EndpointPolicy) => p.rules.map((x) => engine.repo.cookieOf(x));
      assert.deepEqual(cookies(have), cookies(want), at);
      const selectors = (p: EndpointPolicy) => p.selectors.map((x) => x.key).sort();
      assert.deepEqual(selectors(have), selectors(want), at);
      out.push(have);
    }
    return out;
  }
}

describe('policies added to a computed state', () => {
  it('merging added rules gives exactly the full computation (entries, cookies, diffs)', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const r = rng(seed);
      const { alloc, repo, engine } = newEngine();
      const inputs = new Map<number, Input>();
      let n = 0;
      for (const ns of NSS)
        for (const app of APPS)
          for (const tier of ['x', 'y']) {
            const labels = podIdentityLabels({ namespace: ns, labels: { app, tier } });
            alloc.allocate(labels);
            if (tier === 'x') inputs.set(++n, { labels });
          }
      const mirrors = new Mirrors(engine, inputs);
      for (let i = 0; i < 14; i++) {
        repo.upsert(parsePolicies([randomPolicy(r, i)])[0]!);
        mirrors.regenerate();
        mirrors.check(`seed ${seed}, policy ${i}`);
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

/** One more rule kind for the mixed test: CIDR peers (their identities are world-selected). */
function cidrPolicy(r: () => number, i: number): Record<string, unknown> {
  const net = Math.floor(r() * 4);
  const deny = r() < 0.4;
  const pr = {
    toCIDRSet: [{ cidr: `10.${net}.0.0/16`, except: [`10.${net}.${Math.floor(r() * 4)}.0/24`] }],
    ...(r() < 0.5 ? { toPorts: [{ ports: [{ port: r() < 0.5 ? '443' : '22', protocol: 'TCP' }] }] } : {}),
  };
  return {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: `c${i}`, namespace: NSS[Math.floor(r() * NSS.length)] },
    spec: {
      endpointSelector: r() < 0.4 ? {} : { matchLabels: { app: APPS[Math.floor(r() * APPS.length)] } },
      ...(deny ? { egressDeny: [pr] } : { egress: [pr] }),
    },
  };
}

describe('policies, identities and CIDR identities changing in any order', () => {
  it('every regeneration gives exactly the full computation, and the diffs reach the same maps', () => {
    let layered = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const r = rng(seed * 7919);
      const { alloc, repo, engine } = newEngine();
      const cidr = new CidrIdentitySync(alloc);
      const inputs = new Map<number, Input>();
      for (const ns of NSS)
        for (const app of APPS) {
          const labels = podIdentityLabels({ namespace: ns, labels: { app, tier: 'x' } });
          alloc.allocate(labels);
          inputs.set(inputs.size + 1, { labels });
        }
      const mirrors = new Mirrors(engine, inputs);
      const applied: PolicyRef[] = [];
      const extra: number[] = [];
      for (let i = 0; i < 30; i++) {
        const x = r();
        if (x < 0.55 || applied.length === 0) {
          const policy = parsePolicies([r() < 0.35 ? cidrPolicy(r, i) : randomPolicy(r, i)])[0]!;
          repo.upsert(policy);
          applied.push(policy.ref);
        } else if (x < 0.7) {
          repo.delete(applied.splice(Math.floor(r() * applied.length), 1)[0]!);
        } else if (x < 0.9) {
          const labels = podIdentityLabels({
            namespace: NSS[Math.floor(r() * NSS.length)]!,
            labels: { app: APPS[Math.floor(r() * APPS.length)]!, tier: 'y', v: String(i) },
          });
          extra.push(alloc.allocate(labels).identity.id);
        } else if (extra.length > 0) {
          alloc.release(extra.splice(Math.floor(r() * extra.length), 1)[0]!);
        }
        cidr.sync(repo.cidrPrefixes());
        mirrors.regenerate();
        for (const p of mirrors.check(`seed ${seed}, step ${i}`))
          if (p.state instanceof LayeredMapState && p.state.layerCount > 0) layered++;
      }
    }
    assert.ok(layered > 0, 'some added policies went in as shared layers');
  });

  it('allows added under an identity-0 deny of the same or a broader port are turned into denies', () => {
    const { alloc, repo, engine } = newEngine();
    const labels = (app: string) => podIdentityLabels({ namespace: 'n0', labels: { app } });
    for (const app of ['a', 'b', 'c']) alloc.allocate(labels(app));
    const inputs = new Map<number, Input>([[1, { labels: labels('a') }]]);
    repo.upsert(
      doc('deny-any-ssh', {
        endpointSelector: {},
        ingressDeny: [{ fromEntities: ['all'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
        egressDeny: [{ toEntities: ['all'], toPorts: [{ ports: [{ port: '0', protocol: 'UDP' }] }] }],
      }),
    );
    const mirrors = new Mirrors(engine, inputs);
    // Allows from app b on TCP 22 (ingress) and to app c on UDP 53 (egress), in n0.
    const allow = (name: string, dir: 'ingress' | 'egress', app: string, port: string, protocol: string) =>
      doc(
        name,
        {
          endpointSelector: {},
          [dir]: [
            {
              [dir === 'ingress' ? 'fromEndpoints' : 'toEndpoints']: [{ matchLabels: { app } }],
              toPorts: [{ ports: [{ port, protocol }] }],
            },
          ],
        },
        'n0',
      );
    const added = [
      allow('allow-b-ssh', 'ingress', 'b', '22', 'TCP'),
      allow('allow-c-dns', 'egress', 'c', '53', 'UDP'),
    ];
    for (const [i, p] of added.entries()) {
      repo.upsert(p);
      mirrors.regenerate();
      const [have] = mirrors.check(`policy ${i}`);
      const allows = [...have!.state.values()].filter((e) => !e.entry.deny && e.key.identity !== 0);
      assert.deepEqual(allows, [], 'no allow survives under the deny');
      assert.ok([...have!.state.values()].some((e) => e.key.identity !== 0 && e.entry.deny));
    }
  });

  it('an allow-all next to a deny of identities: the denies are one shared layer, the wildcard merged', () => {
    const { alloc, repo, engine } = newEngine();
    const bad = Array.from(
      { length: 12 },
      (_, i) =>
        alloc.allocate(podIdentityLabels({ namespace: 'n1', labels: { app: `x${i}`, role: 'bad' } })).identity
          .id,
    );
    const inputs = APPS.map((app) => ({ labels: podIdentityLabels({ namespace: 'n0', labels: { app } }) }));
    for (const input of inputs) alloc.allocate(input.labels);
    for (const [i, input] of inputs.entries()) engine.upsertEndpoint(i + 1, input);
    // Endpoint 1 already allows one of the bad identities on a port: that allow becomes a deny.
    repo.upsert(
      doc(
        'a-from-x0',
        {
          endpointSelector: { matchLabels: { app: 'a' } },
          ingress: [
            {
              fromEndpoints: [{ matchLabels: { app: 'x0', 'k8s:io.kubernetes.pod.namespace': 'n1' } }],
              toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
            },
          ],
        },
        'n0',
      ),
    );
    engine.regenerate();
    repo.upsert(
      doc('deny-bad', {
        endpointSelector: {},
        ingress: [{ fromEntities: ['all'] }],
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { role: 'bad' } }] }],
      }),
    );
    const ups = engine.regenerate();
    assert.equal(ups.length, inputs.length);
    for (const u of ups) {
      const have = engine.endpointPolicy(u.endpointId)!;
      assert.ok(have.state instanceof LayeredMapState);
      assert.equal(have.state.layerCount, 1, `endpoint ${u.endpointId}: one layer`);
      const layer = [...have.state.layers[0]!.values()];
      assert.deepEqual(layer.map((e) => e.key.identity).sort(), [...bad].sort());
      assert.ok(layer.every((e) => e.entry.deny && e.key.prefixLen === 40));
      assert.equal(
        have.state.layers[0],
        (engine.endpointPolicy(ups[0]!.endpointId)!.state as LayeredMapState).layers[0],
        'shared',
      );
      assert.deepEqual(full(have.state), full(engine.compute(inputs[u.endpointId - 1]!).state));
    }
  });

  it('a cluster-wide deny over many CIDR identities: one shared layer and one upsert list for all', () => {
    const { alloc, repo, engine } = newEngine();
    const cidr = new CidrIdentitySync(alloc);
    repo.upsert(
      doc(
        'cidrs',
        {
          endpointSelector: {},
          egress: [
            {
              toCIDRSet: Array.from({ length: 40 }, (_, i) => ({ cidr: `10.${i}.0.0/16` })),
              toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }],
            },
          ],
          ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a' } }] }],
        },
        'n0',
      ),
    );
    cidr.sync(repo.cidrPrefixes());
    const inputs = APPS.map((app) => ({ labels: podIdentityLabels({ namespace: 'n0', labels: { app } }) }));
    for (const input of inputs) alloc.allocate(input.labels);
    for (const [i, input] of inputs.entries()) engine.upsertEndpoint(i + 1, input);
    repo.upsert(
      doc('deny-world-ssh', {
        endpointSelector: {},
        ingress: [{ fromEntities: ['all'] }],
        ingressDeny: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
      }),
    );
    const ups = engine.regenerate();
    assert.equal(ups.length, inputs.length);
    const worldDenies = ups[0]!.diff.upserts.filter((e) => e.entry.deny && e.key.dport === 22);
    assert.ok(worldDenies.length > 40, `denies for world and every CIDR identity (${worldDenies.length})`);
    for (const u of ups) {
      assert.equal(u.diff.upserts, ups[0]!.diff.upserts, 'the same list: encoded once for the maps');
      const have = engine.endpointPolicy(u.endpointId)!;
      assert.ok(have.state instanceof LayeredMapState && have.state.layerCount === 1);
      assert.deepEqual(full(have.state), full(engine.compute(inputs[u.endpointId - 1]!).state));
    }
  });
});
