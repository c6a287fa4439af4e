import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ServiceValidationError } from '../../../src/service/errors.js';
import { parseEndpointSlice, parseService } from '../../../src/service/validate.js';

const svc = (spec: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop' },
  spec,
  ...extra,
});

/** The issues a manifest is refused for, as `path: message`. */
function refused(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ServiceValidationError, String(e));
    assert.equal(e.code, 'invalid-argument');
    assert.equal(e.field, e.issues[0]!.path);
    return e.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('accepted');
}

describe('parseService: defaults as the API server fills them', () => {
  it('a minimal ClusterIP service gets type, protocol, targetPort, affinity and traffic policies', () => {
    const s = parseService(svc({ selector: { app: 'web' }, ports: [{ port: 80 }] }));
    assert.deepEqual(s.spec, {
      type: 'ClusterIP',
      selector: { app: 'web' },
      ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 80 }],
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Cluster',
    });
    assert.equal(s.metadata.namespace, 'shop');
    assert.equal(
      parseService({ ...svc({ ports: [{ port: 80 }] }), metadata: { name: 'a' } }).metadata.namespace,
      'default',
    );
  });

  it('NodePort and LoadBalancer services default externalTrafficPolicy; LoadBalancer allocates node ports', () => {
    const np = parseService(svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }));
    assert.equal(np.spec.externalTrafficPolicy, 'Cluster');
    assert.equal(np.spec.ports[0]!.nodePort, 30080);
    const lb = parseService(svc({ type: 'LoadBalancer', ports: [{ port: 80 }] }));
    assert.equal(lb.spec.externalTrafficPolicy, 'Cluster');
    assert.equal(lb.spec.allocateLoadBalancerNodePorts, true);
    const ext = parseService(svc({ ports: [{ port: 80 }], externalIPs: ['192.0.2.10'] }));
    assert.equal(ext.spec.externalTrafficPolicy, 'Cluster');
  });

  it('ClientIP affinity defaults to 10800 s and keeps an explicit timeout', () => {
    const a = parseService(svc({ ports: [{ port: 80 }], sessionAffinity: 'ClientIP' }));
    assert.deepEqual(a.spec.sessionAffinityConfig, { clientIP: { timeoutSeconds: 10800 } });
    const b = parseService(
      svc({
        ports: [{ port: 80 }],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
      }),
    );
    assert.equal(b.spec.sessionAffinityConfig?.clientIP.timeoutSeconds, 60);
  });

  it('reads the Star Wars demo deathstar service as written upstream (YAML)', () => {
    const doc = parseYaml(`apiVersion: v1
kind: Service
metadata:
  name: deathstar
  labels:
    app.kubernetes.io/name: deathstar
spec:
  type: ClusterIP
  ports:
  - port: 80
  selector:
    org: empire
    class: deathstar
`);
    const s = parseService(doc);
    assert.equal(s.metadata.name, 'deathstar');
    assert.deepEqual(s.spec.selector, { org: 'empire', class: 'deathstar' });
  });

  it('headless services need no ports; an allocated clusterIP becomes clusterIPs[0]', () => {
    const h = parseService(svc({ clusterIP: 'None', selector: { app: 'db' } }));
    assert.equal(h.spec.clusterIP, 'None');
    const a = parseService(svc({ ports: [{ port: 53, protocol: 'UDP' }], clusterIPs: ['10.96.0.10'] }));
    assert.equal(a.spec.clusterIP, '10.96.0.10');
  });

  it('named target ports are kept for per-pod resolution; null fields count as absent', () => {
    const s = parseService(
      svc({ ports: [{ name: 'http', port: 80, targetPort: 'web-http' }], externalIPs: null, selector: null }),
    );
    assert.equal(s.spec.ports[0]!.targetPort, 'web-http');
    assert.equal(s.spec.externalIPs, undefined);
  });
});

/** A manifest refused, with every issue it is refused for (`path: message`), in order. */
interface Refusal {
  what: string;
  manifest: unknown;
  issues: string[];
}

const REFUSED_SERVICES: Refusal[] = [
  {
    what: 'nodePort out of the range',
    manifest: svc({
      type: 'NodePort',
      ports: [
        { name: 'a', port: 80, nodePort: 30001 },
        { name: 'b', port: 81, nodePort: 40000 },
      ],
    }),
    issues: ['spec.ports[1].nodePort: Invalid value: 40000: must be in the NodePort range 30000-32767'],
  },
  {
    what: 'nodePort on a ClusterIP service',
    manifest: svc({ ports: [{ port: 80, nodePort: 30080 }] }),
    issues: ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
  },
  {
    what: 'enums are case-sensitive and SCTP is refused clearly',
    manifest: svc({ type: 'nodeport', ports: [{ port: 80, protocol: 'SCTP' }] }),
    issues: [
      'spec.type: Unsupported value: "nodeport": supported values: "ClusterIP", "NodePort", "LoadBalancer"',
      'spec.ports[0].protocol: Unsupported value: "SCTP": not supported by cilium-ts: SCTP services are not implemented; use TCP or UDP',
    ],
  },
  {
    what: 'a lowercase protocol',
    manifest: svc({ ports: [{ port: 80, protocol: 'tcp' }] }),
    issues: ['spec.ports[0].protocol: Unsupported value: "tcp": supported values: "TCP", "UDP"'],
  },
  {
    what: 'unknown fields at every level',
    manifest: svc({ ports: [{ port: 80, targetport: 8080 }], selectors: {} }, { extra: 1 }),
    issues: [
      'extra: unknown field "extra"',
      'spec.selectors: unknown field "selectors"',
      'spec.ports[0].targetport: unknown field "targetport"',
    ],
  },
  {
    what: 'duplicate port names, port/protocol pairs and node ports',
    manifest: svc({
      type: 'NodePort',
      ports: [
        { name: 'http', port: 80, nodePort: 30080 },
        { name: 'http', port: 80, nodePort: 30080 },
        { name: 'dns', port: 80, protocol: 'UDP', nodePort: 30080 },
      ],
    }),
    issues: [
      'spec.ports[1].name: Duplicate value: "http"',
      'spec.ports[1]: Duplicate value: {"port":80,"protocol":"TCP"}',
      'spec.ports[1].nodePort: Duplicate value: 30080',
    ],
  },
  {
    what: 'several ports need names; names and target port names follow the API rules',
    manifest: svc({ ports: [{ port: 80 }, { name: 'Metrics', port: 9090, targetPort: 'Metrics_Port' }] }),
    issues: [
      'spec.ports[0].name: Required value: every port must be named when there is more than one',
      'spec.ports[1].name: Invalid value: "Metrics": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character',
      'spec.ports[1].targetPort: Invalid value: "Metrics_Port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
    ],
  },
  {
    what: 'ports are required unless headless',
    manifest: svc({}),
    issues: ['spec.ports: Required value'],
  },
  {
    what: 'port numbers are 1-65535',
    manifest: svc({ ports: [{ port: 0 }, { name: 'x', port: 70000 }] }),
    issues: [
      'spec.ports[0].name: Required value: every port must be named when there is more than one',
      'spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive',
      'spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive',
    ],
  },
  {
    what: 'affinity timeout above 86400 s',
    manifest: svc({
      ports: [{ port: 80 }],
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } },
    }),
    issues: [
      'spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be in 1-86400 (seconds)',
    ],
  },
  {
    what: 'affinity config without ClientIP affinity',
    manifest: svc({ ports: [{ port: 80 }], sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } } }),
    issues: ['spec.sessionAffinityConfig: Forbidden: must not be set when spec.sessionAffinity is None'],
  },
  {
    what: 'traffic policies and source ranges on a ClusterIP service',
    manifest: svc({
      ports: [{ port: 80 }],
      externalTrafficPolicy: 'Local',
      internalTrafficPolicy: 'local',
      loadBalancerSourceRanges: ['10.0.0.0/8'],
    }),
    issues: [
      'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services (NodePort, LoadBalancer, or with externalIPs)',
      'spec.internalTrafficPolicy: Unsupported value: "local": supported values: "Cluster", "Local"',
      "spec.loadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'",
    ],
  },
  {
    what: 'source ranges that are not CIDRs',
    manifest: svc({
      type: 'LoadBalancer',
      ports: [{ port: 80 }],
      loadBalancerSourceRanges: ['10.0.0.0/8', '10.1.2.3', 'x/8'],
    }),
    issues: [
      'spec.loadBalancerSourceRanges[1]: Invalid value: "10.1.2.3": must be a CIDR, e.g. 192.0.2.0/24 or 2001:db8::/32',
      'spec.loadBalancerSourceRanges[2]: Invalid value: "x/8": must be a CIDR, e.g. 192.0.2.0/24 or 2001:db8::/32',
    ],
  },
  {
    what: 'a headless NodePort service',
    manifest: svc({ type: 'NodePort', clusterIP: 'None', ports: [{ port: 80 }] }),
    issues: ['spec.clusterIP: Invalid value: "None": may not be set to \'None\' for NodePort services'],
  },
  {
    what: 'a cluster IP that is not an address',
    manifest: svc({ clusterIP: '10.96.0.300', ports: [{ port: 80 }] }),
    issues: [
      'spec.clusterIP: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    ],
  },
  {
    what: 'cluster IPs and IP families that do not agree',
    manifest: svc({
      clusterIP: '10.96.0.5',
      clusterIPs: ['10.96.0.5', '10.96.0.6'],
      ipFamilies: ['IPv6'],
      ipFamilyPolicy: 'SingleStack',
      ports: [{ port: 80 }],
    }),
    issues: [
      'spec.clusterIPs[1]: Invalid value: may specify no more than one IP for each IP family',
      'spec.ipFamilies[0]: Invalid value: "IPv6": does not match the family of spec.clusterIPs[0]',
      'spec.ipFamilyPolicy: Invalid value: "SingleStack": must be RequireDualStack or PreferDualStack when multiple IP families are specified',
    ],
  },
  {
    what: 'external IPs that are loopback, link-local, unspecified or repeated',
    manifest: svc({
      ports: [{ port: 80 }],
      externalIPs: ['127.0.0.2', '169.254.1.1', '::', '192.0.2.1', '192.0.2.1'],
    }),
    issues: [
      'spec.externalIPs[0]: Invalid value: "127.0.0.2": may not be in the loopback range (127.0.0.0/8, ::1/128)',
      'spec.externalIPs[1]: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)',
      'spec.externalIPs[2]: Invalid value: "::": may not be unspecified (::)',
      'spec.externalIPs[4]: Duplicate value: "192.0.2.1"',
    ],
  },
  {
    what: 'ExternalName services are not implemented',
    manifest: svc({ type: 'ExternalName', externalName: 'db.example.com' }),
    issues: [
      'spec.externalName: Forbidden: not supported by cilium-ts: ExternalName services are not implemented',
      'spec.type: Unsupported value: "ExternalName": not supported by cilium-ts: ExternalName services are not implemented',
    ],
  },
  {
    what: 'a hostname ingress point',
    manifest: svc(
      { type: 'LoadBalancer', ports: [{ port: 80 }] },
      { status: { loadBalancer: { ingress: [{ hostname: 'lb.example' }] } } },
    ),
    issues: [
      'status.loadBalancer.ingress[0].hostname: Forbidden: not supported by cilium-ts: only IP ingress points are programmed',
      'status.loadBalancer.ingress[0].ip: Required value',
    ],
  },
  {
    what: 'the Proxy ingress mode',
    manifest: svc(
      { type: 'LoadBalancer', ports: [{ port: 80 }] },
      { status: { loadBalancer: { ingress: [{ ip: '172.18.255.1', ipMode: 'Proxy' }] } } },
    ),
    issues: [
      'status.loadBalancer.ingress[0].ipMode: Unsupported value: "Proxy": not supported by cilium-ts: the load balancer IP is always handled on the node (VIP)',
    ],
  },
  {
    what: 'service names are DNS-1035 labels; apiVersion and kind are exact',
    manifest: {
      apiVersion: 'v1',
      kind: 'service',
      metadata: { name: '1web' },
      spec: { ports: [{ port: 80 }] },
    },
    issues: [
      'kind: Unsupported value: "service": supported values: "Service"',
      'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or \'-\', start with an alphabetic character, and end with an alphanumeric character',
    ],
  },
];

describe('parseService: refusals name the field', () => {
  for (const c of REFUSED_SERVICES)
    it(c.what, () =>
      assert.deepEqual(
        refused(() => parseService(c.manifest)),
        c.issues,
      ),
    );

  it('the message says which object and lists every issue', () => {
    try {
      parseService(svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 1 }] }));
      assert.fail('accepted');
    } catch (e) {
      assert.ok(e instanceof ServiceValidationError);
      assert.equal(
        e.message,
        'Service shop/web: spec.ports[0].nodePort: Invalid value: 1: must be in the NodePort range 30000-32767',
      );
      assert.equal(e.field, 'spec.ports[0].nodePort');
    }
  });
});

describe('parseService: what the refusals above let through', () => {
  it('a custom NodePort range is honoured', () => {
    const s = parseService(svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 20000 }] }), {
      nodePortRange: { min: 20000, max: 20100 },
    });
    assert.equal(s.spec.ports[0]!.nodePort, 20000);
  });

  it('a LoadBalancer with a traffic policy and source ranges', () => {
    const ok = parseService(
      svc({
        type: 'LoadBalancer',
        ports: [{ port: 80 }],
        externalTrafficPolicy: 'Local',
        loadBalancerSourceRanges: ['192.0.2.0/24'],
      }),
    );
    assert.deepEqual(ok.spec.loadBalancerSourceRanges, ['192.0.2.0/24']);
    assert.equal(ok.spec.externalTrafficPolicy, 'Local');
  });

  it('dual-stack cluster IPs', () => {
    const ds = parseService(
      svc({
        clusterIPs: ['10.96.0.5', 'fd00:96::5'],
        ipFamilies: ['IPv4', 'IPv6'],
        ipFamilyPolicy: 'RequireDualStack',
        ports: [{ port: 80 }],
      }),
    );
    assert.deepEqual(ds.spec.clusterIPs, ['10.96.0.5', 'fd00:96::5']);
  });

  it('LoadBalancer ingress IPs are kept', () => {
    const s = parseService(
      svc(
        { type: 'LoadBalancer', ports: [{ port: 80 }] },
        { status: { loadBalancer: { ingress: [{ ip: '172.18.255.1' }] } } },
      ),
    );
    assert.deepEqual(s.status, { loadBalancer: { ingress: [{ ip: '172.18.255.1' }] } });
  });
});

const slice = (extra: Record<string, unknown>) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'web-abc12', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  ...extra,
});

const REFUSED_SLICES: Refusal[] = [
  {
    what: 'refuses a slice with no service label, FQDN, missing addresses, unknown and unsupported fields',
    manifest: {
      ...slice({
        addressType: 'FQDN',
        endpoints: [{ addresses: [] }, { addresses: ['fd00::1'], hints: { forZones: [] }, zone2: 'a' }],
        ports: [{ port: 80, protocol: 'SCTP' }],
      }),
      metadata: { name: 'web-abc12' },
    },
    issues: [
      'metadata.labels[kubernetes.io/service-name]: Required value: names the Service this slice belongs to',
      'addressType: Unsupported value: "FQDN": not supported by cilium-ts: FQDN endpoints cannot be load-balanced in eBPF',
      'endpoints[0].addresses: Required value: must have at least 1 item',
      'endpoints[1].zone2: unknown field "zone2"',
      'endpoints[1].hints: Forbidden: not supported by cilium-ts: topology-aware routing is not implemented',
      'ports[0].protocol: Unsupported value: "SCTP": not supported by cilium-ts: SCTP services are not implemented; use TCP or UDP',
    ],
  },
  {
    what: 'refuses wrong-family addresses, non-boolean conditions, duplicate port names and port 0',
    manifest: slice({
      endpoints: [{ addresses: ['fd00::1'], conditions: { ready: 'yes' } }],
      ports: [
        { name: 'http', port: 80 },
        { name: 'http', port: 0 },
      ],
    }),
    issues: [
      'endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address',
      'endpoints[0].conditions.ready: Invalid value: "yes": must be a boolean',
      'ports[1].name: Duplicate value: "http"',
      'ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive',
    ],
  },
];

describe('parseEndpointSlice', () => {
  it('accepts a slice as the endpoint controller writes it', () => {
    const s = parseEndpointSlice(
      slice({
        endpoints: [
          {
            addresses: ['10.0.1.5'],
            conditions: { ready: true, serving: true, terminating: false },
            nodeName: 'node-1',
            targetRef: { kind: 'Pod', namespace: 'shop', name: 'web-0', uid: 'u1' },
          },
          { addresses: ['10.0.2.7'] },
        ],
        ports: [
          { name: 'http', port: 8080, protocol: 'TCP' },
          { name: 'dns', port: 53, protocol: 'UDP' },
        ],
      }),
    );
    assert.equal(s.endpoints.length, 2);
    assert.deepEqual(s.endpoints[1]!.conditions, {});
    assert.deepEqual(s.ports[0], { name: 'http', protocol: 'TCP', port: 8080 });
    assert.equal(s.endpoints[0]!.targetRef?.name, 'web-0');
  });

  for (const c of REFUSED_SLICES)
    it(c.what, () =>
      assert.deepEqual(
        refused(() => parseEndpointSlice(c.manifest)),
        c.issues,
      ),
    );
});
