import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SVC_FLAG } from '../../../src/service/flags.js';
import {
  endpointState,
  type FrontendSpec,
  type NodeContext,
  serviceFrontends,
} from '../../../src/service/frontends.js';
import type { EndpointSlice, Service } from '../../../src/service/types.js';
import { parseEndpointSlice, parseService } from '../../../src/service/validate.js';

const NODE: NodeContext = { nodeName: 'node-1', nodeIPs: ['192.168.10.1', '172.16.0.1'] };

function service(spec: Record<string, unknown>, status?: Record<string, unknown>): Service {
  return parseService({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { clusterIP: '10.96.0.20', selector: { app: 'web' }, ...spec },
    ...(status ? { status } : {}),
  });
}

interface Ep {
  ip: string;
  node?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

function slice(
  eps: Ep[],
  ports: Record<string, unknown>[] = [{ name: '', port: 8080 }],
  name = 'web-1',
  addressType = 'IPv4',
): EndpointSlice {
  return parseEndpointSlice({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType,
    endpoints: eps.map((e) => ({
      addresses: [e.ip],
      ...(e.node ? { nodeName: e.node } : {}),
      conditions: {
        ...(e.ready !== undefined ? { ready: e.ready } : {}),
        ...(e.serving !== undefined ? { serving: e.serving } : {}),
        ...(e.terminating !== undefined ? { terminating: e.terminating } : {}),
      },
    })),
    ports,
  });
}

/** Compact view: key → [backend keys with state] and count/qcount. */
const view = (fs: FrontendSpec[]) =>
  Object.fromEntries(
    fs.map((f) => [
      f.key,
      { backends: f.backends.map((b) => `${b.key}:${b.state}`), count: f.count, qcount: f.qcount },
    ]),
  );

describe('endpoint conditions → backend state (as upstream reads slices)', () => {
  it('ready or unknown is active, terminating is terminating, not-ready is skipped unless serving+terminating', () => {
    assert.equal(endpointState({}), 'active');
    assert.equal(endpointState({ ready: true }), 'active');
    assert.equal(endpointState({ ready: true, terminating: true }), 'terminating');
    assert.equal(endpointState({ ready: false }), undefined);
    assert.equal(endpointState({ ready: false, serving: true }), undefined);
    assert.equal(endpointState({ ready: false, serving: true, terminating: true }), 'terminating');
    assert.equal(endpointState({ ready: false, serving: false, terminating: true }), undefined);
  });
});

describe('ClusterIP frontends', () => {
  it('one VIP:port frontend, non-routable, backends in slot order (state, then address as a number, then port)', () => {
    const fs = serviceFrontends(
      service({ ports: [{ port: 80, targetPort: 8080 }] }),
      [
        slice([
          { ip: '10.0.0.10', node: 'node-1' },
          { ip: '10.0.0.9', node: 'node-2', terminating: true, ready: false, serving: true },
          { ip: '10.0.0.9' },
          { ip: '10.0.0.3', ready: false },
          { ip: '10.0.0.100', node: 'node-2' },
        ]),
      ],
      NODE,
    );
    assert.equal(fs.length, 1);
    const f = fs[0]!;
    assert.equal(f.key, '10.96.0.20:80/TCP');
    assert.equal(f.type, 'ClusterIP');
    assert.equal(f.scope, 'external');
    assert.equal(f.flags, 0, 'ClusterIP: no type bit, not routable');
    // 10.0.0.9 is listed active and terminating: it keeps the usable state. 10.0.0.3 is not ready.
    assert.deepEqual(
      f.backends.map((b) => `${b.key}:${b.state}:${b.local}`),
      [
        '10.0.0.9:8080/TCP:active:false',
        '10.0.0.10:8080/TCP:active:true',
        '10.0.0.100:8080/TCP:active:false',
      ],
    );
    assert.equal(f.count, 3);
    assert.equal(f.qcount, 0);
    assert.equal(f.algorithm, 'random');
    assert.equal(f.maglev, false);
  });

  it('terminating backends get slots after the active ones and serve only when none is active (KEP-1669)', () => {
    const svc = service({ ports: [{ port: 80 }] });
    const mixed = serviceFrontends(
      svc,
      [slice([{ ip: '10.0.0.1', terminating: true }, { ip: '10.0.0.2' }], [{ name: '', port: 80 }])],
      NODE,
    );
    assert.deepEqual(view(mixed), {
      '10.96.0.20:80/TCP': {
        backends: ['10.0.0.2:80/TCP:active', '10.0.0.1:80/TCP:terminating'],
        count: 1,
        qcount: 1,
      },
    });
    const draining = serviceFrontends(
      svc,
      [
        slice(
          [
            { ip: '10.0.0.1', terminating: true },
            { ip: '10.0.0.2', ready: false, serving: true, terminating: true },
          ],
          [{ name: '', port: 80 }],
        ),
      ],
      NODE,
    );
    assert.deepEqual(draining[0]!.count, 2);
    assert.deepEqual(draining[0]!.qcount, 0);
    const none = serviceFrontends(svc, [], NODE);
    assert.equal(none[0]!.count, 0, 'a service without endpoints still has its frontend (fails fast)');
  });

  it('each service port takes the slice port of its name and protocol; slices are merged', () => {
    const svc = service({
      ports: [
        { name: 'http', port: 80, targetPort: 'web' },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    });
    const fs = serviceFrontends(
      svc,
      [
        slice(
          [{ ip: '10.0.0.1' }],
          [
            { name: 'http', port: 8080 },
            { name: 'dns', port: 5353, protocol: 'UDP' },
          ],
          'a',
        ),
        slice(
          [{ ip: '10.0.0.2' }],
          [
            { name: 'http', port: 9090 },
            { name: 'dns', port: 5353, protocol: 'TCP' },
          ],
          'b',
        ),
      ],
      NODE,
    );
    assert.deepEqual(view(fs), {
      '10.96.0.20:80/TCP': {
        backends: ['10.0.0.1:8080/TCP:active', '10.0.0.2:9090/TCP:active'],
        count: 2,
        qcount: 0,
      },
      '10.96.0.20:53/UDP': { backends: ['10.0.0.1:5353/UDP:active'], count: 1, qcount: 0 },
    });
  });

  it('internalTrafficPolicy=Local keeps node-local backends only', () => {
    const fs = serviceFrontends(
      service({ ports: [{ port: 80 }], internalTrafficPolicy: 'Local' }),
      [
        slice(
          [
            { ip: '10.0.0.1', node: 'node-1' },
            { ip: '10.0.0.2', node: 'node-2' },
          ],
          [{ name: '', port: 80 }],
        ),
      ],
      NODE,
    );
    assert.deepEqual(
      fs[0]!.backends.map((b) => b.address),
      ['10.0.0.1'],
    );
    assert.equal(fs[0]!.flags, SVC_FLAG.INT_LOCAL_SCOPE);
  });

  it('a headless service has no frontend; dual-stack services get one per family with same-family backends', () => {
    assert.deepEqual(serviceFrontends(service({ clusterIP: 'None', ports: [{ port: 80 }] }), [], NODE), []);
    const ds = service({
      clusterIP: undefined,
      clusterIPs: ['fd00:96::20', '10.96.0.20'],
      ipFamilies: ['IPv6', 'IPv4'],
      ipFamilyPolicy: 'RequireDualStack',
      ports: [{ port: 80 }],
    });
    const fs = serviceFrontends(
      ds,
      [
        slice([{ ip: '10.0.0.1' }], [{ name: '', port: 80 }], 'v4'),
        slice([{ ip: 'fd00::1' }], [{ name: '', port: 80 }], 'v6', 'IPv6'),
      ],
      NODE,
    );
    assert.deepEqual(view(fs), {
      '10.96.0.20:80/TCP': { backends: ['10.0.0.1:80/TCP:active'], count: 1, qcount: 0 },
      '[fd00:96::20]:80/TCP': { backends: ['[fd00::1]:80/TCP:active'], count: 1, qcount: 0 },
    });
  });
});

describe('NodePort, LoadBalancer and external-IP frontends', () => {
  const eps = [
    slice(
      [
        { ip: '10.0.0.1', node: 'node-1' },
        { ip: '10.0.0.2', node: 'node-2' },
      ],
      [{ name: '', port: 8080 }],
    ),
  ];

  it('NodePort: the 0.0.0.0 wildcard (non-routable) and one routable frontend per node address', () => {
    const fs = serviceFrontends(
      service({ type: 'NodePort', ports: [{ port: 80, targetPort: 8080, nodePort: 31940 }] }),
      eps,
      NODE,
    );
    assert.deepEqual(
      fs.map((f) => [f.key, f.type, f.flags]),
      [
        ['10.96.0.20:80/TCP', 'ClusterIP', 0],
        ['0.0.0.0:31940/TCP', 'NodePort', SVC_FLAG.NODEPORT],
        ['192.168.10.1:31940/TCP', 'NodePort', SVC_FLAG.NODEPORT | SVC_FLAG.ROUTABLE],
        ['172.16.0.1:31940/TCP', 'NodePort', SVC_FLAG.NODEPORT | SVC_FLAG.ROUTABLE],
      ],
    );
    assert.ok(fs.every((f) => f.count === 2));
    assert.equal(fs[1]!.servicePort, 80);
  });

  it('externalTrafficPolicy=Local: an external scope with local backends and an internal one with all (TWO_SCOPES)', () => {
    const fs = serviceFrontends(
      service({
        type: 'NodePort',
        externalTrafficPolicy: 'Local',
        ports: [{ port: 80, targetPort: 8080, nodePort: 31940 }],
      }),
      eps,
      { nodeName: 'node-1', nodeIPs: ['192.168.10.1'] },
    );
    const np = SVC_FLAG.NODEPORT | SVC_FLAG.EXT_LOCAL_SCOPE | SVC_FLAG.TWO_SCOPES;
    assert.deepEqual(
      fs.map((f) => [f.key, f.scope, f.flags, f.backends.map((b) => b.address).join(' ')]),
      [
        ['10.96.0.20:80/TCP', 'external', SVC_FLAG.EXT_LOCAL_SCOPE, '10.0.0.1 10.0.0.2'],
        ['0.0.0.0:31940/TCP', 'external', np, '10.0.0.1'],
        ['192.168.10.1:31940/TCP', 'external', np | SVC_FLAG.ROUTABLE, '10.0.0.1'],
        ['0.0.0.0:31940/TCP/i', 'internal', np, '10.0.0.1 10.0.0.2'],
        ['192.168.10.1:31940/TCP/i', 'internal', np | SVC_FLAG.ROUTABLE, '10.0.0.1 10.0.0.2'],
      ],
    );
  });

  it('both policies Local: one scope, node-local backends, no TWO_SCOPES', () => {
    const fs = serviceFrontends(
      service({
        type: 'NodePort',
        externalTrafficPolicy: 'Local',
        internalTrafficPolicy: 'Local',
        ports: [{ port: 80, targetPort: 8080, nodePort: 31940 }],
      }),
      eps,
      { nodeName: 'node-2', nodeIPs: ['192.168.10.2'] },
    );
    assert.ok(fs.every((f) => f.scope === 'external' && (f.flags & SVC_FLAG.TWO_SCOPES) === 0));
    assert.ok(fs.every((f) => f.backends.length === 1 && f.backends[0]!.address === '10.0.0.2'));
  });

  it('LoadBalancer: ingress IPs (routable, source-range checked), plus NodePort and ClusterIP frontends', () => {
    const svc = service(
      {
        type: 'LoadBalancer',
        ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }],
        loadBalancerSourceRanges: ['192.0.2.0/24', '198.51.100.7/32', '2001:db8::/32'],
      },
      { loadBalancer: { ingress: [{ ip: '172.18.255.1' }] } },
    );
    const fs = serviceFrontends(svc, eps, { nodeName: 'node-1', nodeIPs: ['192.168.10.1'] });
    const lb = fs.find((f) => f.type === 'LoadBalancer')!;
    assert.equal(lb.key, '172.18.255.1:80/TCP');
    assert.equal(lb.flags, SVC_FLAG.LOADBALANCER | SVC_FLAG.ROUTABLE | SVC_FLAG.SOURCE_RANGE);
    assert.deepEqual(lb.sourceRanges, ['192.0.2.0/24', '198.51.100.7/32']);
    const np = fs.filter((f) => f.type === 'NodePort');
    assert.deepEqual(
      np.map((f) => f.key),
      ['0.0.0.0:30080/TCP', '192.168.10.1:30080/TCP'],
    );
    assert.ok(np.every((f) => (f.flags & SVC_FLAG.SOURCE_RANGE) === 0 && f.sourceRanges.length === 0));
    // A LoadBalancer service whose IP is not assigned yet has no LoadBalancer frontend.
    const pending = service({ type: 'LoadBalancer', ports: [{ port: 80, nodePort: 30080 }] });
    assert.ok(!serviceFrontends(pending, eps, NODE).some((f) => f.type === 'LoadBalancer'));
  });

  it('external IPs: EXTERNAL_IP and routable; an IP listed twice as LB and external gives one frontend', () => {
    const svc = service(
      {
        type: 'LoadBalancer',
        ports: [{ port: 80, nodePort: 30080 }],
        externalIPs: ['203.0.113.5', '172.18.255.1'],
      },
      { loadBalancer: { ingress: [{ ip: '172.18.255.1' }] } },
    );
    const fs = serviceFrontends(svc, eps, { nodeName: 'node-1', nodeIPs: [] });
    const ext = fs.filter((f) => f.type === 'ExternalIPs');
    assert.deepEqual(
      ext.map((f) => f.key),
      ['203.0.113.5:80/TCP'],
    );
    assert.equal(ext[0]!.flags, SVC_FLAG.EXTERNAL_IP | SVC_FLAG.ROUTABLE);
    assert.equal(fs.filter((f) => f.key === '172.18.255.1:80/TCP').length, 1);
  });

  it('ClientIP affinity sets AFFINITY and the timeout on every frontend', () => {
    const fs = serviceFrontends(
      service({
        type: 'NodePort',
        ports: [{ port: 80, nodePort: 30080 }],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
      }),
      [],
      NODE,
    );
    assert.ok(fs.every((f) => (f.flags & SVC_FLAG.AFFINITY) !== 0 && f.affinityTimeout === 600));
  });

  it('Maglev: node-address, LoadBalancer and external frontends with backends; not wildcards, not ClusterIPs by default', () => {
    const svc = service(
      { type: 'LoadBalancer', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] },
      { loadBalancer: { ingress: [{ ip: '172.18.255.1' }] } },
    );
    const fs = serviceFrontends(
      svc,
      eps,
      { nodeName: 'node-1', nodeIPs: ['192.168.10.1'] },
      { algorithm: 'maglev' },
    );
    assert.deepEqual(
      fs.map((f) => [f.key, f.algorithm, f.maglev]),
      [
        ['10.96.0.20:80/TCP', 'random', false],
        ['0.0.0.0:30080/TCP', 'random', false],
        ['192.168.10.1:30080/TCP', 'maglev', true],
        ['172.18.255.1:80/TCP', 'maglev', true],
      ],
    );
    const ext = serviceFrontends(svc, eps, NODE, { algorithm: 'maglev', externalClusterIP: true });
    assert.equal(ext[0]!.maglev, true);
    assert.equal(ext[0]!.flags & SVC_FLAG.ROUTABLE, SVC_FLAG.ROUTABLE);
    const empty = serviceFrontends(svc, [], NODE, { algorithm: 'maglev' });
    assert.ok(
      empty.every((f) => !f.maglev),
      'no table without a backend',
    );
  });
});
