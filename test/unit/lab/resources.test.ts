/** The lab's kubectl views: resource names, object shapes, tables, ages and apply results. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyResult,
  formatTable,
  humanDuration,
  type Observed,
  POLICIES,
  podObject,
  policyObject,
  qualifiedName,
  ResourceError,
  resolveType,
  table,
} from '../../../src/lab/resources.js';
import type { LabPod, LabState } from '../../../src/lab/state.js';

describe('lab resources (kubectl views)', () => {
  it('resolves plural, singular, short, kind and group-qualified names', () => {
    for (const n of ['pods', 'pod', 'po', 'Pod', 'PODS', 'pods.v1']) assert.equal(resolveType(n).kind, 'Pod');
    for (const n of ['nodes', 'node', 'no']) assert.equal(resolveType(n).kind, 'Node');
    for (const n of ['namespaces', 'namespace', 'ns']) assert.equal(resolveType(n).kind, 'Namespace');
    for (const n of [
      'ciliumnetworkpolicies',
      'ciliumnetworkpolicy',
      'cnp',
      'ciliumnetworkpolicies.cilium.io',
    ])
      assert.equal(resolveType(n).kind, 'CiliumNetworkPolicy');
    for (const n of ['ciliumclusterwidenetworkpolicies', 'ccnp'])
      assert.equal(resolveType(n).kind, 'CiliumClusterwideNetworkPolicy');
    for (const n of ['networkpolicies', 'networkpolicy', 'netpol', 'networkpolicies.networking.k8s.io'])
      assert.equal(resolveType(n).kind, 'NetworkPolicy');
    for (const n of ['ciliumendpoints', 'cep']) assert.equal(resolveType(n).kind, 'CiliumEndpoint');
    assert.equal(resolveType('policies'), POLICIES);
    assert.equal(resolveType('policy'), POLICIES);
    assert.equal(resolveType('ns').namespaced, false);
    assert.equal(resolveType('po').namespaced, true);
  });

  it('resolves services, endpointslices and deployments with their groups', () => {
    for (const n of ['services', 'service', 'svc', 'Service']) assert.equal(resolveType(n).kind, 'Service');
    for (const n of ['endpointslices', 'endpointslice', 'endpointslices.discovery.k8s.io'])
      assert.equal(resolveType(n).kind, 'EndpointSlice');
    for (const n of ['deployments', 'deployment', 'deploy', 'deployments.apps'])
      assert.equal(resolveType(n).kind, 'Deployment');
    assert.equal(qualifiedName('Deployment', 'web'), 'deployment.apps/web');
    assert.equal(qualifiedName('EndpointSlice', 'web-abcde'), 'endpointslice.discovery.k8s.io/web-abcde');
    assert.equal(qualifiedName('Service', 'web'), 'service/web');
  });

  it('names what the lab does not have and rejects unknown types', () => {
    for (const n of ['endpoints', 'ep'])
      assert.throws(
        () => resolveType(n),
        (e: Error) => e instanceof ResourceError && /no endpoints .*lab get endpointslices/.test(e.message),
      );
    assert.throws(() => resolveType('podz'), /doesn't have a resource type "podz" \(pods, nodes, namespaces/);
  });

  it('qualifies names as kubectl prints them', () => {
    assert.equal(qualifiedName('Pod', 'a'), 'pod/a');
    assert.equal(qualifiedName('Namespace', 'x'), 'namespace/x');
    assert.equal(qualifiedName('CiliumNetworkPolicy', 'p'), 'ciliumnetworkpolicy.cilium.io/p');
    assert.equal(
      qualifiedName('CiliumClusterwideNetworkPolicy', 'p'),
      'ciliumclusterwidenetworkpolicy.cilium.io/p',
    );
    assert.equal(qualifiedName('NetworkPolicy', 'p'), 'networkpolicy.networking.k8s.io/p');
  });

  it('formats ages like kubectl', () => {
    const s = 1000;
    const m = 60 * s;
    const h = 60 * m;
    const d = 24 * h;
    const cases: [number, string][] = [
      [0, '0s'],
      [59 * s, '59s'],
      [119 * s, '119s'],
      [2 * m, '2m'],
      [3 * m + 5 * s, '3m5s'],
      [10 * m + 30 * s, '10m'],
      [179 * m, '179m'],
      [3 * h, '3h'],
      [3 * h + 20 * m, '3h20m'],
      [8 * h + 20 * m, '8h'],
      [47 * h, '47h'],
      [2 * d + 5 * h, '2d5h'],
      [8 * d + 5 * h, '8d'],
      [800 * d, '2y70d'],
      [9 * 365 * d, '9y'],
    ];
    for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, `${ms} ms`);
  });

  it('tells created, configured and unchanged apart regardless of key order', () => {
    assert.equal(applyResult(undefined, { a: 1 }), 'created');
    assert.equal(
      applyResult({ a: 1, b: { c: [1, 2], d: 'x' } }, { b: { d: 'x', c: [1, 2] }, a: 1 }),
      'unchanged',
    );
    assert.equal(applyResult({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [2, 1] } }), 'configured');
    assert.equal(applyResult({ labels: { app: 'a' } }, { labels: { app: 'b' } }), 'configured');
  });

  const state: LabState = {
    name: 't',
    createdAt: '2024-01-01T00:00:00.000Z',
    world: { netns: 'cts-t-world', ip: '192.168.211.254' },
    nodes: [{ name: 'node1', netns: 'cts-t-node1', underlayIp: '192.168.211.1', podCidrV4: '10.200.0.0/24' }],
    namespaces: {},
    pods: {},
    policies: [],
    nextNode: 0,
    deployments: {},
    services: {},
    endpointSlices: {},
  };
  const pod = (name: string, ns: string, ip: string): LabPod => ({
    namespace: ns,
    name,
    node: 'node1',
    netns: `cts-t-p${name}`,
    containerId: 'c'.repeat(64),
    ipv4: ip,
    labels: { app: name },
    manifest: {
      metadata: { name, namespace: ns, labels: { app: name } },
      spec: { containers: [{ name: 's' }] },
    },
    containers: [
      { name: 's', pid: 10, log: '' },
      { name: 't', pid: 11, log: '' },
    ],
    createdAt: '2024-01-01T00:00:00.000Z',
  });
  const observed = (running: boolean[]): Observed => ({
    running: () => running,
    nodeReady: () => true,
    addresses: () => ({}),
  });

  it('shapes a pod as the Kubernetes API does, with what is observed now', () => {
    const o = podObject(state, pod('a', 'x', '10.200.0.7'), observed([true, false]));
    assert.equal(o.apiVersion, 'v1');
    assert.equal(o.kind, 'Pod');
    assert.deepEqual(o.metadata, {
      name: 'a',
      namespace: 'x',
      labels: { app: 'a' },
      creationTimestamp: '2024-01-01T00:00:00.000Z',
    });
    assert.equal((o.spec as { nodeName: string }).nodeName, 'node1');
    const st = o.status as Record<string, unknown>;
    assert.equal(st.phase, 'Failed', 'a container is gone');
    assert.equal(st.podIP, '10.200.0.7');
    assert.equal(st.hostIP, '192.168.211.1');
    assert.deepEqual(
      (st.containerStatuses as { name: string; ready: boolean }[]).map((c) => [c.name, c.ready]),
      [
        ['s', true],
        ['t', false],
      ],
    );
  });

  it('prints kubectl tables: NAMESPACE only for all namespaces, more columns with wide, labels on request', () => {
    const now = Date.parse('2024-01-01T00:03:05.000Z');
    const objs = [
      podObject(state, pod('a', 'x', '10.200.0.7'), observed([true, true])),
      podObject(state, pod('bb', 'y', '10.200.0.8'), observed([true, false])),
    ];
    const type = resolveType('pods');
    assert.equal(
      formatTable(table(type, objs, { wide: false, withNamespace: false, showLabels: false, now })),
      'NAME   READY   STATUS       RESTARTS   AGE\n' +
        'a      2/2     Running      0          3m5s\n' +
        'bb     1/2     Terminated   0          3m5s\n',
    );
    assert.equal(
      formatTable(table(type, objs, { wide: true, withNamespace: true, showLabels: true, now })),
      'NAMESPACE   NAME   READY   STATUS       RESTARTS   AGE    IP           NODE    LABELS\n' +
        'x           a      2/2     Running      0          3m5s   10.200.0.7   node1   app=a\n' +
        'y           bb     1/2     Terminated   0          3m5s   10.200.0.8   node1   app=bb\n',
    );
  });

  it('returns a policy as it was applied, with its namespace and creation time', () => {
    const doc = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'p' },
      spec: { endpointSelector: {} },
    };
    const o = policyObject({
      kind: 'CiliumNetworkPolicy',
      namespace: 'default',
      name: 'p',
      createdAt: '2024-01-01T00:00:00.000Z',
      doc,
    });
    assert.deepEqual(o, {
      ...doc,
      metadata: { name: 'p', namespace: 'default', creationTimestamp: '2024-01-01T00:00:00.000Z' },
    });
    const ccnp = policyObject({ kind: 'CiliumClusterwideNetworkPolicy', namespace: '', name: 'c' });
    assert.deepEqual(ccnp.metadata, { name: 'c' }, 'cluster-wide: no namespace');
  });
});
