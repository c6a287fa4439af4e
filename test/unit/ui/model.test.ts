/** The Hubble UI's flow → service map aggregation, its table filters and its policy view. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import {
  explainEdge,
  type PolicySource,
  selectingPolicies,
  traceSide,
} from '../../../src/hubble/ui/explain.js';
import { nodeOf, ServiceMap, workloadName } from '../../../src/hubble/ui/model.js';
import { compileQuery, flowRow, parseQuery, queryFilters } from '../../../src/hubble/ui/query.js';
import { IdentityAllocator } from '../../../src/identity/index.js';
import { LabelSet } from '../../../src/labels/index.js';
import { PolicyEngine, PolicyRepository, parsePolicies, SelectorCache } from '../../../src/policy/index.js';
import { flow, HOST, pod, REMOTE_NODE, STARWARS_L7_POLICY, starwars, WORLD } from './helpers/flows.js';

const { deathstar, tiefighter, xwing } = starwars;

describe('hubble ui: map nodes', () => {
  it('names a workload from app, name (app.kubernetes.io/name), k8s-app, else the pod', () => {
    assert.equal(workloadName(pod('a', 'web-1', { app: 'web', name: 'other' })), 'web');
    assert.equal(workloadName(pod('a', 'p', { 'app.kubernetes.io/name': 'shop' })), 'shop');
    assert.equal(workloadName(pod('kube-system', 'coredns-x', { 'k8s-app': 'kube-dns' })), 'kube-dns');
    // a Deployment's pod without a name label: its ReplicaSet suffix goes
    assert.equal(workloadName(pod('a', 'api-5d9c7f8b6-x2x9z', { 'pod-template-hash': '5d9c7f8b6' })), 'api');
    assert.equal(workloadName(pod('a', 'lonely', { role: 'db' })), 'lonely');
    assert.equal(workloadName({ identity: 4242 }), 'identity-4242');
  });

  it('world is split into sender and receiver, named after the DNS name when the flow has one', () => {
    const out = flow({ src: tiefighter(), dst: WORLD, port: 443, destinationNames: ['api.example.com'] });
    assert.deepEqual(nodeOf(out, 'destination'), {
      id: 'api.example.com-receiver',
      name: 'api.example.com',
      kind: 'world',
      dnsName: 'api.example.com',
    });
    const inbound = flow({ src: WORLD, dst: deathstar() });
    assert.equal(nodeOf(inbound, 'source').id, 'world-sender');
    assert.equal(nodeOf(flow({ src: HOST, dst: deathstar() }), 'source').id, 'host');
    assert.equal(nodeOf(flow({ src: REMOTE_NODE, dst: deathstar() }), 'source').id, 'remote-node');
    // by identity alone (labels not resolved)
    assert.equal(nodeOf(flow({ src: { identity: 6 }, dst: deathstar() }), 'source').kind, 'remote-node');
    // no identity, no pod: the address
    assert.equal(
      nodeOf(flow({ src: {}, dst: deathstar(), srcIp: '192.0.2.9' }), 'source').id,
      'ip:192.0.2.9',
    );
  });
});

describe('hubble ui: world named from DNS answers', () => {
  it('an address a DNS answer gave is drawn with the name asked for', () => {
    const m = new ServiceMap();
    const answer = flow({
      src: pod('kube-system', 'coredns-0', { 'k8s-app': 'kube-dns' }),
      dst: tiefighter(),
      port: 53,
      proto: 'UDP',
      reply: true,
    });
    answer.Type = 'L7';
    answer.l7 = { type: 'RESPONSE', dns: { query: 'rebels.example.', ips: ['192.0.2.10'], rcode: 0 } };
    m.add(answer);
    const place = m.add(flow({ src: tiefighter(), dst: WORLD, port: 443, dstIp: '192.0.2.10' }));
    assert.equal(place.destination.id, 'rebels.example-receiver');
    assert.equal(m.node('rebels.example-receiver')!.dnsName, 'rebels.example');
    // another address stays plain world
    assert.equal(
      m.add(flow({ src: tiefighter(), dst: WORLD, port: 443, dstIp: '198.51.100.1' })).destination.id,
      'world-receiver',
    );
  });
});

describe('hubble ui: map edges', () => {
  it('one edge per source, destination, port and protocol, with counts and verdict colours', () => {
    const m = new ServiceMap();
    for (let i = 0; i < 3; i++) m.add(flow({ src: tiefighter(), dst: deathstar(i) }));
    m.add(flow({ src: xwing(), dst: deathstar(0), verdict: 'DROPPED' }));
    m.add(flow({ src: xwing(), dst: deathstar(1), verdict: 'DROPPED' }));
    m.add(flow({ src: tiefighter(), dst: deathstar(), port: 443 }));
    m.add(flow({ src: tiefighter(), dst: deathstar(), port: 53, proto: 'UDP', verdict: 'DROPPED' }));
    m.add(flow({ src: tiefighter(), dst: deathstar(), port: 53, proto: 'UDP' }));
    const v = m.view('default');
    assert.deepEqual(v.nodes.map((n) => n.id).sort(), [
      'default/deathstar',
      'default/tiefighter',
      'default/xwing',
    ]);
    // both deathstar pods are one node
    assert.deepEqual(m.node('default/deathstar')!.pods.length, 2);
    const byId = new Map(v.edges.map((e) => [e.id, e]));
    assert.deepEqual([...byId.keys()].sort(), [
      'default/tiefighter TCP default/deathstar:443',
      'default/tiefighter TCP default/deathstar:80',
      'default/tiefighter UDP default/deathstar:53',
      'default/xwing TCP default/deathstar:80',
    ]);
    const ok = byId.get('default/tiefighter TCP default/deathstar:80')!;
    assert.equal(ok.verdict, 'forwarded');
    assert.equal(ok.flows, 3);
    const denied = byId.get('default/xwing TCP default/deathstar:80')!;
    assert.equal(denied.verdict, 'dropped');
    assert.deepEqual(denied.dropReasons, { POLICY_DENIED: 2 });
    const mixed = byId.get('default/tiefighter UDP default/deathstar:53')!;
    assert.equal(mixed.verdict, 'mixed');
    assert.equal(mixed.forwarded, 1);
    assert.equal(mixed.dropped, 1);
  });

  it("a flow leaving the source's node is no delivery: dropped at the destination's node, the edge is red", () => {
    const m = new ServiceMap();
    const transit = (src = xwing(), dst = deathstar()) => {
      const f = flow({ src, dst });
      f.trace_observation_point = 'TO_OVERLAY';
      return m.add(f);
    };
    transit();
    m.add(flow({ src: xwing(), dst: deathstar(), verdict: 'DROPPED' }));
    const x = m.edge('default/xwing TCP default/deathstar:80')!;
    assert.deepEqual([x.verdict, x.forwarded, x.transit, x.dropped], ['dropped', 0, 1, 1]);
    // seen leaving only (the destination's node not observed): forwarded
    transit(tiefighter());
    assert.equal(m.edge('default/tiefighter TCP default/deathstar:80')!.verdict, 'forwarded');
    // delivered to the pod
    const f = flow({ src: xwing(), dst: deathstar() });
    f.trace_observation_point = 'TO_ENDPOINT';
    m.add(f);
    assert.equal(m.edge('default/xwing TCP default/deathstar:80')!.verdict, 'mixed');
    // towards the world, leaving the node is all there is to see
    const w = flow({ src: xwing(), dst: WORLD, port: 443 });
    w.trace_observation_point = 'TO_STACK';
    m.add(w);
    assert.deepEqual(m.edge('default/xwing TCP world-receiver:443')!.forwarded, 1);
  });

  it('replies count for the nodes but draw no reversed edge', () => {
    const m = new ServiceMap();
    m.add(flow({ src: tiefighter(), dst: deathstar() }));
    const place = m.add(flow({ src: deathstar(), dst: tiefighter(), port: 41000, reply: true }));
    assert.equal(place.edge, undefined);
    assert.equal(m.size.edges, 1);
    assert.equal(m.node('default/deathstar')!.flows, 2);
  });

  it('sums HTTP requests on the edge, and the response codes of its replies', () => {
    const m = new ServiceMap();
    const req = (method: string, url: string, verdict: 'FORWARDED' | 'DROPPED' = 'FORWARDED') =>
      m.add(flow({ src: tiefighter(), dst: deathstar(), sport: 41000, http: { method, url }, verdict }));
    const res = (code: number, verdict: 'FORWARDED' | 'DROPPED' = 'FORWARDED') =>
      m.add(
        flow({
          src: deathstar(),
          dst: tiefighter(),
          sport: 80,
          port: 41000,
          reply: true,
          http: { code, method: 'POST', url: '/v1/request-landing' },
          verdict,
        }),
      );
    req('POST', 'http://deathstar/v1/request-landing');
    assert.equal(res(200).replyTo, 'default/tiefighter TCP default/deathstar:80');
    req('POST', 'http://deathstar/v1/request-landing');
    res(200);
    req('PUT', '/v1/exhaust-port', 'DROPPED');
    res(403, 'DROPPED');
    const e = m.edge('default/tiefighter TCP default/deathstar:80')!;
    assert.deepEqual(e.http, { 'POST /v1/request-landing': 2, 'PUT /v1/exhaust-port': 1 });
    assert.deepEqual(e.httpCodes, { '200': 2, '403': 1 });
    assert.equal(e.verdict, 'mixed');
    // the responses drew no edge of their own
    assert.equal(m.size.edges, 1);
  });

  it('a namespace view holds its workloads, their peers in other namespaces and world; deltas hold only changes', () => {
    const m = new ServiceMap();
    const api = pod('shop', 'api', { app: 'api' }, 2001);
    const dns = pod('kube-system', 'coredns', { 'k8s-app': 'kube-dns' }, 2002);
    m.add(flow({ src: api, dst: dns, port: 53, proto: 'UDP' }));
    m.add(flow({ src: api, dst: WORLD, port: 443 }));
    m.add(flow({ src: tiefighter(), dst: deathstar() }));
    const shop = m.view('shop');
    assert.deepEqual(shop.nodes.map((n) => n.id).sort(), [
      'kube-system/kube-dns',
      'shop/api',
      'world-receiver',
    ]);
    assert.equal(shop.edges.length, 2);
    assert.deepEqual(m.namespaces(), ['default', 'kube-system', 'shop']);
    assert.equal(m.view('').edges.length, 3);
    const v0 = m.version;
    m.add(flow({ src: tiefighter(), dst: deathstar() }));
    const delta = m.view('default', v0);
    assert.deepEqual(
      delta.edges.map((e) => e.flows),
      [2],
    );
    assert.deepEqual(m.view('shop', v0).edges, []);
  });

  it('stays within its limits: flows needing more nodes or edges are counted, not mapped', () => {
    const m = new ServiceMap({ nodes: 3, edges: 2 });
    m.add(flow({ src: tiefighter(), dst: deathstar() }));
    m.add(flow({ src: xwing(), dst: deathstar() }));
    // a fourth node: left out
    m.add(flow({ src: {}, dst: deathstar(), srcIp: '192.0.2.1' }));
    // a third edge between known nodes: left out; known edges still count
    m.add(flow({ src: xwing(), dst: deathstar(), port: 443 }));
    m.add(flow({ src: xwing(), dst: deathstar() }));
    assert.deepEqual(m.size, { nodes: 3, edges: 2 });
    assert.equal(m.overflow, 2);
    assert.equal(m.edge('default/xwing TCP default/deathstar:80')!.flows, 2);
  });

  it('aggregates 100 workloads and 100,000 flows in bounded state', () => {
    const m = new ServiceMap();
    const pods = Array.from({ length: 100 }, (_, i) =>
      pod(`ns${i % 5}`, `w${i}-0`, { app: `w${i}` }, 3000 + i),
    );
    for (let i = 0; i < 100_000; i++) {
      m.add(
        flow({
          src: pods[i % 100]!,
          dst: pods[(i * 7 + 3) % 100]!,
          port: 80 + (i % 3),
          verdict: i % 11 ? 'FORWARDED' : 'DROPPED',
        }),
      );
    }
    assert.equal(m.size.nodes, 100);
    assert.ok(m.size.edges <= 300, `edges ${m.size.edges}`);
    assert.equal(m.namespaces().length, 5);
  });
});

describe('hubble ui: table filters', () => {
  const flows = [
    flow({ src: tiefighter(), dst: deathstar() }),
    flow({ src: xwing(), dst: deathstar(), verdict: 'DROPPED' }),
    flow({
      src: pod('other', 'x', { app: 'x' }),
      dst: pod('other', 'y', { app: 'y' }),
      port: 53,
      proto: 'UDP',
    }),
  ];
  const m = new ServiceMap();
  const rows = flows.map((f, i) => flowRow(i, f, m.add(f)));
  const run = (qs: string) => {
    const match = compileQuery(parseQuery(new URLSearchParams(qs)));
    return flows.flatMap((f, i) => (match(f, rows[i]!) ? [i] : []));
  };

  it('namespace, pod, verdict, protocol and label as hubble observe filters', () => {
    assert.deepEqual(run('namespace=default'), [0, 1]);
    assert.deepEqual(run('namespace=default&verdict=dropped'), [1]);
    assert.deepEqual(run('verdict=FORWARDED'), [0, 2]);
    assert.deepEqual(run('protocol=UDP'), [2]);
    assert.deepEqual(run('pod=xwing'), [1]);
    assert.deepEqual(run('pod=other/'), [2]);
    assert.deepEqual(run('label=k8s:org=empire'), [0, 1]);
    assert.deepEqual(run('label=k8s:org=alliance'), [1]);
    assert.deepEqual(queryFilters({ namespace: 'default', verdict: ['DROPPED'] }), [
      { source_pod: ['default/'], verdict: ['DROPPED'] },
      { destination_pod: ['default/'], verdict: ['DROPPED'] },
    ]);
  });

  it('map node, map edge and free text', () => {
    assert.deepEqual(run(`edge=${encodeURIComponent('default/xwing TCP default/deathstar:80')}`), [1]);
    assert.deepEqual(run('node=default/deathstar'), [0, 1]);
    assert.deepEqual(run('q=POLICY_denied'), [1]);
    assert.deepEqual(run('q=tiefighter'), [0]);
  });

  it('bad values fail naming the parameter', () => {
    assert.throws(
      () => parseQuery(new URLSearchParams('verdict=MAYBE')),
      (e: Error & { field?: string }) => e.field === 'verdict',
    );
    assert.throws(
      () => parseQuery(new URLSearchParams('protocol=gopher')),
      (e: Error & { field?: string }) => e.field === 'protocol',
    );
    assert.throws(
      () => compileQuery({ label: 'k8s:a in (' }),
      (e: Error & { field?: string }) => e.field === 'label',
    );
  });
});

describe('hubble ui: policy view from the policy engine trace', () => {
  const docs = (y: string) => parseAllDocuments(y).map((d) => d.toJS());
  const RULE1 = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: default}
spec:
  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]`;

  /** The trace of the agent's route (labels as given, `k8s` the default source) over these policies. */
  function tracer(yaml: string): PolicySource['trace'] {
    const cache = new SelectorCache();
    cache.attach(new IdentityAllocator());
    const repo = new PolicyRepository();
    repo.upsertAll(parsePolicies(docs(yaml)));
    const engine = new PolicyEngine(repo, cache);
    return async (q) =>
      engine.trace({
        src: { labels: LabelSet.parse(q.src.labels ?? [], 'k8s') },
        dst: { labels: LabelSet.parse(q.dst.labels ?? [], 'k8s') },
        dport: q.dport,
        protocol: q.protocol,
      });
  }

  /** The policy view of a map edge, as the backend builds it. */
  async function explain(m: ServiceMap, id: string, trace: PolicySource['trace']) {
    const edge = m.edge(id)!;
    const src = m.node(edge.source)!;
    const dst = m.node(edge.target)!;
    const t = await trace({
      src: traceSide(src),
      dst: traceSide(dst),
      dport: edge.port,
      protocol: edge.protocol,
    });
    return explainEdge(edge, src, dst, t);
  }

  function starwarsMap(): ServiceMap {
    const m = new ServiceMap();
    m.add(flow({ src: tiefighter(), dst: deathstar() }));
    m.add(flow({ src: xwing(), dst: deathstar(), verdict: 'DROPPED' }));
    m.add(flow({ src: WORLD, dst: deathstar(), verdict: 'DROPPED' }));
    return m;
  }

  it('lists the policies selecting a workload', async () => {
    const m = starwarsMap();
    const trace = tracer(RULE1);
    const self = async (id: string) => {
      const side = traceSide(m.node(id)!);
      return trace({ src: side, dst: side, dport: 0, protocol: 'TCP' });
    };
    const list = [
      { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', document: { spec: {} } },
    ];
    const sel = selectingPolicies(await self('default/deathstar'), list);
    assert.deepEqual(
      sel.map((p) => [p.ref, p.rules]),
      [['CiliumNetworkPolicy/default/rule1', [0]]],
    );
    assert.deepEqual(sel[0]!.document, { spec: {} });
    assert.deepEqual(selectingPolicies(await self('default/tiefighter'), list), []);
  });

  it('says which rule would have to change for a dropped edge', async () => {
    const m = starwarsMap();
    const ex = await explain(m, 'default/xwing TCP default/deathstar:80', tracer(RULE1));
    assert.equal(ex.verdict, 'DENIED');
    assert.deepEqual(
      ex.directions.map((d) => d.verdict),
      ['default-allowed', 'default-denied'],
    );
    assert.match(
      ex.change!,
      /ingress of default\/deathstar is enforced by CiliumNetworkPolicy\/default\/rule1 rule 0/,
    );
    assert.equal(
      ex.snippet,
      [
        'ingress:',
        '  - fromEndpoints:',
        '      - matchLabels:',
        '          app.kubernetes.io/name: xwing',
        '          class: xwing',
        '          org: alliance',
        '    toPorts:',
        '      - ports:',
        '          - port: "80"',
        '            protocol: TCP',
      ].join('\n'),
    );
    // the snippet, added to rule1, really allows the xwing
    const fixed = `${RULE1}\n  - fromEndpoints: [{matchLabels: {org: alliance, class: xwing}}]\n    toPorts: [{ports: [{port: "80", protocol: TCP}]}]`;
    assert.equal(
      (await explain(m, 'default/xwing TCP default/deathstar:80', tracer(fixed))).verdict,
      'ALLOWED',
    );
    // the allowed edge has nothing to change
    const ok = await explain(m, 'default/tiefighter TCP default/deathstar:80', tracer(RULE1));
    assert.equal(ok.verdict, 'ALLOWED');
    assert.equal(ok.change, undefined);
    assert.match(ok.directions[1]!.matches[0]!, /rule1 rule 0 ingress\[0\]/);
  });

  it('an edge whose HTTP requests the L7 rules deny: the http rules to add', async () => {
    const m = new ServiceMap();
    const http = (method: string, path: string) => ({ method, url: `http://10.200.0.4${path}` });
    m.add(flow({ src: tiefighter(), dst: deathstar(), http: http('POST', '/v1/request-landing') }));
    const denied = flow({
      src: tiefighter(),
      dst: deathstar(),
      verdict: 'DROPPED',
      http: http('PUT', '/v1/exhaust-port'),
    });
    delete denied.drop_reason;
    delete denied.drop_reason_desc;
    assert.equal(flowRow(0, denied, m.add(denied)).dropReason, 'L7_POLICY_DENIED');
    const id = 'default/tiefighter TCP default/deathstar:80';
    assert.deepEqual(m.edge(id)!.httpDropped, { 'PUT /v1/exhaust-port': 1 });
    const ex = await explain(m, id, tracer(STARWARS_L7_POLICY));
    assert.equal(ex.verdict, 'ALLOWED');
    assert.match(
      ex.change!,
      /HTTP rules of CiliumNetworkPolicy\/default\/rule1 rule 0 ingress\[0\].* deny PUT \/v1\/exhaust-port/,
    );
    assert.equal(
      ex.snippet,
      ['rules:', '  http:', '    - method: "PUT"', '      path: "/v1/exhaust-port"'].join('\n'),
    );
  });

  it('world gets fromEntities', async () => {
    const ex = await explain(starwarsMap(), 'world-sender TCP default/deathstar:80', tracer(RULE1));
    assert.equal(ex.verdict, 'DENIED');
    assert.match(ex.snippet!, /fromEntities: \[world\]/);
  });
});
