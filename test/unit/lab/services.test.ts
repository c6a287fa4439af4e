/**
 * The lab's API-server and controller logic for services, without a lab: ClusterIP / NodePort /
 * LoadBalancer allocation, EndpointSlices built from pods (named target ports, conditions, 100 per
 * slice, stable placement), Deployment pod names and scale-down order, and the DNS records.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseManifests } from '../../../src/k8s/objects.js';
import { dnsRecords } from '../../../src/lab/cluster-dns.js';
import {
  deletionOrder,
  fnv32a,
  generatedName,
  podFromTemplate,
  podTemplateHash,
  safeEncode,
} from '../../../src/lab/deployments.js';
import { endpointSlicesFor, findPort, type PodView } from '../../../src/lab/endpointslices.js';
import { allocateService, CLUSTER_DNS_IP } from '../../../src/lab/service-alloc.js';
import type { LabState } from '../../../src/lab/state.js';
import { ServiceValidationError } from '../../../src/service/errors.js';
import type { EndpointSlice, Service } from '../../../src/service/types.js';
import { parseEndpointSlice, parseService } from '../../../src/service/validate.js';

const svc = (name: string, spec: Record<string, unknown>): Service =>
  parseService({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec });

/** A sequence of "random" numbers, repeated. */
const seq = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length]!;
};

function refusedAt(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ServiceValidationError, String(e));
    return `${e.issues[0]!.path}: ${e.issues[0]!.message}`;
  }
  assert.fail('accepted');
}

describe('service allocation (the lab as API server)', () => {
  it('gives a ClusterIP from the upper part of 10.96.0.0/16, never the cluster DNS address', () => {
    const a = allocateService(svc('a', { ports: [{ port: 80 }] }), undefined, [], seq(0));
    assert.equal(a.spec.clusterIP, '10.96.1.1', 'dynamic picks start above the static band (256 addresses)');
    assert.deepEqual(a.spec.clusterIPs, ['10.96.1.1']);
    assert.deepEqual(a.spec.ipFamilies, ['IPv4']);
    assert.equal(a.spec.ipFamilyPolicy, 'SingleStack');
    const b = allocateService(svc('b', { ports: [{ port: 80 }] }), undefined, [a], seq(0));
    assert.equal(b.spec.clusterIP, '10.96.1.2', 'a taken address is skipped');
    const dns = allocateService(svc('dns', { clusterIP: CLUSTER_DNS_IP, ports: [{ port: 53 }] }), undefined, [
      a,
    ]);
    assert.equal(dns.spec.clusterIP, '10.96.0.10', 'a requested address in the static band is given');
  });

  it('refuses a taken or out-of-range ClusterIP and a changed one, naming spec.clusterIP', () => {
    const a = allocateService(svc('a', { clusterIP: '10.96.5.5', ports: [{ port: 80 }] }), undefined, []);
    assert.equal(
      refusedAt(() =>
        allocateService(svc('b', { clusterIP: '10.96.5.5', ports: [{ port: 80 }] }), undefined, [a]),
      ),
      'spec.clusterIP: Invalid value: "10.96.5.5": failed to allocate IP 10.96.5.5: provided IP is already allocated',
    );
    assert.match(
      refusedAt(() =>
        allocateService(svc('b', { clusterIP: '10.97.0.1', ports: [{ port: 80 }] }), undefined, []),
      ),
      /^spec\.clusterIP: .*not in the valid range\. The range of valid IPs is 10\.96\.0\.0\/16$/,
    );
    assert.equal(
      refusedAt(() => allocateService(svc('a', { clusterIP: '10.96.5.6', ports: [{ port: 80 }] }), a, [])),
      'spec.clusterIP: Invalid value: "10.96.5.6": field is immutable',
    );
    // Applied again without a clusterIP, the service keeps the one it holds.
    assert.equal(allocateService(svc('a', { ports: [{ port: 81 }] }), a, []).spec.clusterIP, '10.96.5.5');
  });

  it('gives a headless service no VIP and refuses IPv6', () => {
    const h = allocateService(svc('h', { clusterIP: 'None', selector: { app: 'x' } }), undefined, []);
    assert.equal(h.spec.clusterIP, 'None');
    assert.deepEqual(h.spec.clusterIPs, ['None']);
    assert.equal(
      refusedAt(() =>
        allocateService(svc('v6', { ipFamilies: ['IPv6'], ports: [{ port: 80 }] }), undefined, []),
      ),
      'spec.ipFamilies[0]: Unsupported value: "IPv6": the lab\'s Services are IPv4-only',
    );
  });

  it('allocates NodePorts in 30000-32767, keeps them on re-apply and refuses one already taken', () => {
    const np = allocateService(
      svc('np', {
        type: 'NodePort',
        ports: [
          { name: 'a', port: 80 },
          { name: 'b', port: 81, nodePort: 30080 },
        ],
      }),
      undefined,
      [],
      seq(0),
    );
    assert.equal(np.spec.ports[0]!.nodePort, 30128, 'dynamic ports start above the static band (128 ports)');
    assert.equal(np.spec.ports[1]!.nodePort, 30080, 'a requested port is given');
    const again = allocateService(
      svc('np', {
        type: 'NodePort',
        ports: [
          { name: 'a', port: 80 },
          { name: 'b', port: 81, nodePort: 30080 },
        ],
      }),
      np,
      [],
      seq(0.5),
    );
    assert.deepEqual(
      again.spec.ports.map((p) => p.nodePort),
      [30128, 30080],
      'the ports held are kept',
    );
    assert.equal(
      refusedAt(() =>
        allocateService(
          svc('other', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }),
          undefined,
          [np],
        ),
      ),
      'spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
    );
    const other = allocateService(
      svc('other', { type: 'NodePort', ports: [{ port: 80 }] }),
      undefined,
      [np],
      seq(0),
    );
    assert.equal(other.spec.ports[0]!.nodePort, 30129, 'a port another service holds is skipped');
    // Back to ClusterIP: the NodePorts are released.
    assert.equal(
      allocateService(svc('np', { ports: [{ port: 80 }] }), np, []).spec.ports[0]!.nodePort,
      undefined,
    );
  });

  it('gives a LoadBalancer the lowest free pool IP (or the requested one) in its status', () => {
    const lb = allocateService(svc('lb', { type: 'LoadBalancer', ports: [{ port: 80 }] }), undefined, []);
    assert.deepEqual(lb.status, { loadBalancer: { ingress: [{ ip: '192.168.210.1', ipMode: 'VIP' }] } });
    assert.ok(lb.spec.ports[0]!.nodePort! >= 30000, 'and NodePorts');
    const lb2 = allocateService(svc('lb2', { type: 'LoadBalancer', ports: [{ port: 80 }] }), undefined, [lb]);
    assert.equal(lb2.status?.loadBalancer?.ingress?.[0]?.ip, '192.168.210.2');
    const asked = allocateService(
      svc('lb3', {
        type: 'LoadBalancer',
        loadBalancerIP: '192.168.210.77',
        allocateLoadBalancerNodePorts: false,
        ports: [{ port: 80 }],
      }),
      undefined,
      [lb, lb2],
    );
    assert.equal(asked.status?.loadBalancer?.ingress?.[0]?.ip, '192.168.210.77');
    assert.equal(asked.spec.ports[0]!.nodePort, undefined, 'allocateLoadBalancerNodePorts: false');
    assert.equal(
      refusedAt(() =>
        allocateService(
          svc('x', { type: 'LoadBalancer', loadBalancerIP: '10.1.1.1', ports: [{ port: 80 }] }),
          undefined,
          [],
        ),
      ),
      'spec.loadBalancerIP: Invalid value: "10.1.1.1": not in the lab\'s LoadBalancer pool 192.168.210.0/24',
    );
    assert.deepEqual(allocateService(svc('c', { ports: [{ port: 80 }] }), undefined, []).status, {
      loadBalancer: {},
    });
  });
});

const pod = (
  name: string,
  over: Partial<PodView> = {},
  ports: { name: string; port: number; protocol?: 'UDP' }[] = [],
): PodView => ({
  namespace: 'default',
  name,
  uid: `uid-${name}`,
  labels: { app: 'web' },
  spec: {
    containers: [
      {
        name: 'c',
        ports: ports.map((p) => ({
          name: p.name,
          containerPort: p.port,
          ...(p.protocol ? { protocol: p.protocol } : {}),
        })),
      },
    ],
  },
  nodeName: 'node1',
  ip: `10.200.0.${name.length + 10}`,
  ready: true,
  terminating: false,
  terminal: false,
  ...over,
});

let counter = 0;
const opt = { now: '2024-01-01T00:00:00.000Z', newName: (s: string) => `${s}-n${counter++}` };

describe('endpoint controller (EndpointSlices from pods)', () => {
  const web = {
    ...svc('web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] }),
    metadata: { name: 'web', namespace: 'default', uid: 'svc-uid' },
  };

  it('resolves a named targetPort per pod; a pod without it gets a slice with no ports, as Kubernetes does', () => {
    assert.equal(findPort(pod('a', {}, [{ name: 'http', port: 8080 }]), 'http', 'TCP'), 8080);
    assert.equal(
      findPort(pod('a', {}, [{ name: 'http', port: 8080, protocol: 'UDP' }]), 'http', 'TCP'),
      undefined,
    );
    assert.equal(findPort(pod('a'), 9000, 'TCP'), 9000);
    const slices = endpointSlicesFor(
      web,
      [
        pod('a', {}, [{ name: 'http', port: 8080 }]),
        pod('bb', {}, [{ name: 'http', port: 9090 }]),
        pod('ccc', {}, [{ name: 'metrics', port: 9100 }]),
        pod('dddd', { labels: { app: 'other' } }, [{ name: 'http', port: 8080 }]),
        pod('eeeee', { namespace: 'x' }, [{ name: 'http', port: 8080 }]),
      ],
      [],
      opt,
    );
    const view = slices.map((s) => ({
      ports: s.ports.map((p) => p.port),
      pods: s.endpoints.map((e) => e.targetRef?.name),
    }));
    assert.deepEqual(view, [
      { ports: [8080], pods: ['a'] },
      { ports: [9090], pods: ['bb'] },
      { ports: [], pods: ['ccc'] },
    ]);
    const s = slices[0]!;
    assert.equal(s.addressType, 'IPv4');
    assert.deepEqual(s.ports, [{ name: 'http', protocol: 'TCP', port: 8080 }]);
    assert.equal(s.metadata.labels!['kubernetes.io/service-name'], 'web');
    assert.equal(
      s.metadata.labels!['endpointslice.kubernetes.io/managed-by'],
      'endpointslice-controller.k8s.io',
    );
    assert.deepEqual(s.metadata.ownerReferences?.[0], {
      apiVersion: 'v1',
      kind: 'Service',
      name: 'web',
      uid: 'svc-uid',
      controller: true,
      blockOwnerDeletion: true,
    });
    assert.deepEqual(s.endpoints[0], {
      addresses: ['10.200.0.11'],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: 'node1',
      targetRef: { kind: 'Pod', namespace: 'default', name: 'a', uid: 'uid-a' },
    });
  });

  it('marks a deleted pod terminating (not ready, still serving) and leaves out ended pods', () => {
    const p = [{ name: 'http', port: 8080 }];
    const [s] = endpointSlicesFor(
      web,
      [
        pod('a', { terminating: true }, p),
        pod('b', { terminating: true, ready: false, terminal: true }, p),
        pod('c', { ready: false, terminal: true }, p),
        pod('d', { ip: undefined as unknown as string }, p),
      ],
      [],
      opt,
    );
    assert.deepEqual(
      s!.endpoints.map((e) => [e.targetRef?.name, e.conditions]),
      [['a', { ready: false, serving: true, terminating: true }]],
    );
    const pnr = { ...web, spec: { ...web.spec, publishNotReadyAddresses: true } };
    assert.deepEqual(
      endpointSlicesFor(pnr, [pod('a', { terminating: true }, p)], [], opt)[0]!.endpoints[0]!.conditions,
      {
        ready: true,
        serving: true,
        terminating: true,
      },
    );
  });

  it('puts at most 100 endpoints in a slice and keeps endpoints where they were', () => {
    const p = [{ name: 'http', port: 8080 }];
    const pods = Array.from({ length: 150 }, (_, i) =>
      pod(`p${String(i).padStart(3, '0')}`, { ip: `10.200.1.${i}` }, p),
    );
    const first = endpointSlicesFor(web, pods, [], opt);
    assert.deepEqual(
      first.map((s) => s.endpoints.length),
      [100, 50],
    );
    // p000 goes, q000 comes: the first slice takes the newcomer, the second is untouched.
    const next = endpointSlicesFor(web, [...pods.slice(1), pod('q000', { ip: '10.200.2.1' }, p)], first, opt);
    assert.deepEqual(
      next.map((s) => s.metadata.name),
      first.map((s) => s.metadata.name),
    );
    assert.equal(next[0]!.endpoints.at(-1)!.targetRef?.name, 'q000');
    assert.equal(next[0]!.metadata.generation, 2, 'the changed slice has a new generation');
    assert.deepEqual(next[1], first[1], 'the other slice is the same object content');
  });

  it('writes objects the agents accept (the API server validation of src/service)', () => {
    const stored = allocateService(
      svc('lb', {
        type: 'LoadBalancer',
        selector: { app: 'web' },
        ports: [{ name: 'http', port: 80, targetPort: 'http' }],
      }),
      undefined,
      [],
    );
    stored.metadata = { ...stored.metadata, uid: 'u', creationTimestamp: opt.now };
    assert.deepEqual(parseService(structuredClone(stored)), stored);
    const p = [{ name: 'http', port: 8080 }];
    const slices = [
      ...endpointSlicesFor(stored, [pod('a', {}, p), pod('b', { terminating: true }, p), pod('c')], [], opt),
      ...endpointSlicesFor(stored, [], [], opt),
    ];
    for (const s of slices) assert.deepEqual(parseEndpointSlice(structuredClone(s)), s);
  });

  it('keeps one empty slice for a service that selects nothing; none without a selector', () => {
    const empty = endpointSlicesFor(web, [], [], opt);
    assert.equal(empty.length, 1);
    assert.deepEqual([empty[0]!.endpoints, empty[0]!.ports], [[], []]);
    assert.deepEqual(endpointSlicesFor(web, [], empty, opt)[0]!.metadata.name, empty[0]!.metadata.name);
    const noSelector = svc('ext', { ports: [{ port: 80 }] });
    assert.deepEqual(endpointSlicesFor(noSelector, [pod('a')], [], opt), []);
  });

  it('gives a pod whose subdomain names a headless service its hostname', () => {
    const h = svc('db', { clusterIP: 'None', selector: { app: 'web' } });
    const [s] = endpointSlicesFor(
      h,
      [pod('a', { spec: { containers: [{ name: 'c' }], hostname: 'db-0', subdomain: 'db' } })],
      [],
      opt,
    );
    assert.equal(s!.endpoints[0]!.hostname, 'db-0');
    assert.deepEqual(s!.ports, [], 'a headless service without ports');
  });
});

describe('deployments', () => {
  const [d] = parseManifests(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, command: [sleep, infinity]}]}
`).deployments;

  it('hashes the template as the controller does (FNV-32a, decimal, vowel-free alphabet)', () => {
    assert.equal(fnv32a(''), 0x811c9dc5);
    assert.equal(fnv32a('a'), 0xe40c292c);
    // Decimal digits map to 4-9 and b, c, d, f: hashes such as "5d4dd5d866".
    assert.equal(safeEncode('0123456789'), '456789bcdf');
    assert.match(podTemplateHash(d!.spec.template), /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
    const other = { ...d!.spec.template, metadata: { labels: { app: 'web', v: '2' } } };
    assert.notEqual(podTemplateHash(other), podTemplateHash(d!.spec.template));
    assert.equal(generatedName('x'.repeat(70), 'abcde').length, 63);
  });

  it('makes pods with the template labels, the hash label and the ReplicaSet as owner', () => {
    const h = podTemplateHash(d!.spec.template);
    const p = podFromTemplate(d!, 'default', `web-${h}-abcde`, h);
    assert.deepEqual(p.metadata.labels, { app: 'web', 'pod-template-hash': h });
    assert.equal((p.metadata.ownerReferences as { name: string }[])[0]!.name, `web-${h}`);
    assert.deepEqual(p.spec.containers[0]!.command, ['sleep', 'infinity']);
  });

  it('scales down not-ready pods first, then doubled-up nodes, then the newest', () => {
    const at = (s: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, s)).toISOString();
    const order = deletionOrder([
      { name: 'a', node: 'node1', ready: true, createdAt: at(1) },
      { name: 'b', node: 'node2', ready: true, createdAt: at(2) },
      { name: 'c', node: 'node1', ready: true, createdAt: at(3) },
      { name: 'd', node: 'node2', ready: false, createdAt: at(0) },
      { name: 'e', node: 'node1', ready: true, createdAt: at(4) },
    ]).map((p) => p.name);
    assert.deepEqual(order, ['d', 'e', 'c', 'a', 'b']);
  });

  it('refuses a selector that does not match the template, naming the field', () => {
    assert.throws(
      () =>
        parseManifests(
          `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, command: [sleep, infinity]}]}
`,
          'd.yaml',
        ),
      /d\.yaml: document 1 \(Deployment web\): spec\.template\.metadata\.labels: `selector` does not match template `labels`/,
    );
  });
});

describe('cluster DNS records', () => {
  it('lists services with their VIP or, headless, their ready endpoints, and the pods', () => {
    const web = allocateService(
      svc('web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] }),
      undefined,
      [],
      seq(0),
    );
    const db = allocateService(svc('db', { clusterIP: 'None', selector: { app: 'db' } }), undefined, []);
    const slice = (name: string, service: string, ip: string, ready: boolean): EndpointSlice => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [ip], conditions: { ready } }],
      ports: [],
    });
    const s = {
      namespaces: { default: { labels: {}, createdAt: '' } },
      services: { 'default/web': { manifest: {}, object: web }, 'default/db': { manifest: {}, object: db } },
      endpointSlices: {
        'default/web-a': slice('web-a', 'web', '10.200.0.5', true),
        'default/db-a': slice('db-a', 'db', '10.200.0.6', false),
      },
      pods: { 'default/p': { name: 'p', namespace: 'default', ipv4: '10.200.0.5' } },
    } as unknown as LabState;
    assert.deepEqual(dnsRecords(s), {
      services: [
        {
          name: 'web',
          namespace: 'default',
          headless: false,
          clusterIPs: ['10.96.1.1'],
          ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
          endpoints: [{ addresses: ['10.200.0.5'], ready: true }],
        },
        {
          name: 'db',
          namespace: 'default',
          headless: true,
          clusterIPs: [],
          ports: [],
          endpoints: [{ addresses: ['10.200.0.6'], ready: false }],
        },
      ],
      pods: [{ name: 'p', namespace: 'default', ips: ['10.200.0.5'] }],
      namespaces: ['default'],
    });
  });
});
