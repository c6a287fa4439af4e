import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { PolicyValidationError, parsePolicies, validatePolicies } from '../../../src/policy/index.js';

const docs = (y: string): unknown[] => parseAllDocuments(y).map((d) => d.toJS());

function errors(y: string): string[] {
  return validatePolicies(docs(y)).map((i) => `${i.path}: ${i.message}`);
}

const cnp = (spec: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: p
  namespace: ns1
spec:
${spec}`;

describe('validation errors name the field path', () => {
  it('port out of range', () => {
    const e = errors(
      cnp(`  endpointSelector: {}
  ingress:
  - toPorts:
    - ports:
      - port: "70000"
        protocol: TCP`),
    );
    assert.deepEqual(e, ['spec.ingress[0].toPorts[0].ports[0].port: port 70000 out of range 0-65535']);
  });
  it('bad selector operator', () => {
    const e = errors(
      cnp(`  endpointSelector: {}
  ingress:
  - fromEndpoints:
    - matchExpressions:
      - key: app
        operator: Equals
        values: [x]`),
    );
    assert.equal(e.length, 1);
    assert.match(
      e[0]!,
      /^spec\.ingress\[0\]\.fromEndpoints\[0\]\.matchExpressions\[0\]\.operator: invalid operator "Equals"/,
    );
  });
  it('CIDR typo', () => {
    const e = errors(
      cnp(`  endpointSelector: {}
  egress:
  - toCIDRSet:
    - cidr: 10.0.0/8
      except: [10.96.0.0/12]`),
    );
    assert.equal(e.length, 1);
    assert.match(e[0]!, /^spec\.egress\[0\]\.toCIDRSet\[0\]\.cidr: invalid CIDR "10\.0\.0\/8"/);
  });
  it('unknown field', () => {
    const e = errors(
      cnp(`  endpointSelector: {}
  ingress:
  - fromEndpoint:
    - {}`),
    );
    assert.deepEqual(e, ['spec.ingress[0].fromEndpoint: unknown field "fromEndpoint"']);
  });
  it('wrong kind / apiVersion', () => {
    assert.match(
      errors('apiVersion: cilium.io/v2\nkind: CiliumPolicy\nmetadata: {name: x}\nspec: {}')[0]!,
      /^kind: unsupported kind/,
    );
    assert.match(
      errors('apiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec: {}')[0]!,
      /^apiVersion: expected cilium\.io\/v2/,
    );
    assert.match(
      errors(
        'apiVersion: cilium.io/v2\nkind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: {}}',
      )[0]!,
      /^apiVersion: expected networking\.k8s\.io\/v1/,
    );
  });
  it('other value checks', () => {
    const e = errors(
      cnp(`  endpointSelector: {}
  ingress:
  - fromEntities: [wrld]
    icmps:
    - fields:
      - type: Bogus
  - toPorts:
    - ports:
      - port: "80"
        endPort: 79
      - port: "http"
        protocol: ICMP
  egress:
  - toFQDNs:
    - matchName: "bad name!"`),
    );
    assert.deepEqual(e, [
      'spec.ingress[0].fromEntities[0]: unknown entity "wrld" (expected one of all, world, world-ipv4, world-ipv6, cluster, host, remote-node, kube-apiserver, init, health, unmanaged, ingress, none)',
      'spec.ingress[0].icmps[0].fields[0].type: invalid ICMP type "Bogus" for IPv4',
      'spec.ingress[1].toPorts[0].ports[0].endPort: endPort 79 is lower than port 80',
      'spec.ingress[1].toPorts[0].ports[1].protocol: invalid protocol "ICMP" (expected TCP, UDP, SCTP, ANY, VRRP, IGMP)',
      'spec.egress[0].toFQDNs[0].matchName: invalid DNS name "bad name!"',
    ]);
  });
  it('names the document; multi-document input is all-or-nothing', () => {
    const input = docs(`${cnp('  endpointSelector: {}\n  ingress: [{}]')}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: ns2}
spec:
  podSelector: {}
  ingress:
  - ports:
    - port: 0`);
    assert.throws(
      () => parsePolicies(input),
      (e: unknown) =>
        e instanceof PolicyValidationError &&
        e.message ===
          'document 1 (NetworkPolicy ns2/np): spec.ingress[0].ports[0].port: port 0 out of range 1-65535',
    );
  });
  it('requires exactly one of endpointSelector / nodeSelector; nodeSelector only clusterwide', () => {
    assert.deepEqual(errors(cnp('  ingress: [{}]')), [
      'spec: exactly one of endpointSelector or nodeSelector is required',
    ]);
    assert.deepEqual(errors(cnp('  nodeSelector: {}\n  ingress: [{}]')), [
      'spec.nodeSelector: nodeSelector is only allowed in CiliumClusterwideNetworkPolicy',
    ]);
  });
  it('host policies (nodeSelector subject) are refused: nothing enforces them on the host yet', () => {
    const e = errors(`apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: host-fw}
spec:
  nodeSelector: {matchLabels: {role: worker}}
  ingress: [{fromEntities: [cluster]}]`);
    assert.deepEqual(e, [
      'spec.nodeSelector: host policies (nodeSelector) are not supported yet: nothing would enforce them on the host',
    ]);
  });
});

// Example policies from Cilium's documentation and examples/ tree, unchanged.
const EXAMPLES: Record<string, string> = {
  'l3.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l3-rule"
spec:
  endpointSelector:
    matchLabels:
      role: backend
  ingress:
  - fromEndpoints:
    - matchLabels:
        role: frontend
`,
  'l3_egress.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l3-egress-rule"
spec:
  endpointSelector:
    matchLabels:
      role: frontend
  egress:
  - toEndpoints:
    - matchLabels:
        role: backend
`,
  'cidr.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "cidr-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
  - toCIDR:
    - 20.1.1.1/32
  - toCIDRSet:
    - cidr: 10.0.0.0/8
      except:
      - 10.96.0.0/12
`,
  'world.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "from-world-to-role-public"
spec:
  endpointSelector:
    matchLabels:
      role: public
  ingress:
    - fromEntities:
      - world
`,
  'from_world_deny.yaml': `apiVersion: "cilium.io/v2"
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
    - "all"
`,
  'host.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "dev-to-host"
spec:
  endpointSelector:
    matchLabels:
      env: dev
  egress:
    - toEntities:
      - host
`,
  'apiserver.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "dev-to-kube-apiserver"
spec:
  endpointSelector:
    matchLabels:
      env: dev
  egress:
    - toEntities:
      - kube-apiserver
`,
  'nodes.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "to-dev-from-nodes-in-cluster"
spec:
  endpointSelector:
    matchLabels:
      env: dev
  ingress:
    - fromEntities:
      - host
      - remote-node
`,
  'and-statement.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "and-statement-policy"
spec:
  endpointSelector: {}
  ingress:
  - fromEndpoints:
    - matchExpressions:
      - key: "k8s:io.kubernetes.pod.namespace"
        operator: "in"
        values:
        - "production"
      - key: "k8s:cilium.example.com/policy"
        operator: "in"
        values:
        - "strict"
`,
  'or-statement.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "or-statement-policy"
spec:
  endpointSelector: {}
  ingress:
  - fromEndpoints:
    - matchExpressions:
      - key: "k8s.io.kubernetes.pod.namespace"
        operator: "in"
        values:
        - "production"
    - matchExpressions:
      - key: "k8s:cilium.example.com/policy"
        operator: "in"
        values:
        - "strict"
`,
  'egress-default-deny.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "deny-all-egress"
spec:
  endpointSelector:
    matchLabels:
      role: restricted
  egress:
  - {}
`,
  'ingress-allow-all.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "allow-all-to-victim"
spec:
  endpointSelector:
    matchLabels:
      role: victim
  ingress:
  - fromEndpoints:
    - {}
`,
  'egress-deny.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "deny-egress-example"
spec:
  endpointSelector:
    matchLabels:
      role: frontend
  egress:
  - toEntities:
    - all
  egressDeny:
  - toEndpoints:
    - matchLabels:
        role: backend
`,
  'requires.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
description: "For endpoints with env=prod, only allow if source also has label env=prod"
metadata:
  name: "requires-rule"
specs:
  - endpointSelector:
      matchLabels:
        env: prod
    ingress:
    - fromRequires:
      - matchLabels:
          env: prod
`,
  'service.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "service-rule"
spec:
  endpointSelector:
    matchLabels:
      id: app2
  egress:
  - toServices:
    - k8sService:
        serviceName: myservice
        namespace: default
`,
  'fqdn.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "to-fqdn"
spec:
  endpointSelector:
    matchLabels:
      app: test-app
  egress:
    - toEndpoints:
      - matchLabels:
          "k8s:io.kubernetes.pod.namespace": kube-system
          "k8s:k8s-app": kube-dns
    - toFQDNs:
        - matchName: "my-remote-service.com"
`,
  'l4.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l4-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
    - toPorts:
      - ports:
        - port: "80"
          protocol: TCP
`,
  'cidr_l4_combined.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "cidr-l4-rule"
spec:
  endpointSelector:
    matchLabels:
      role: crawler
  egress:
  - toCIDR:
    - 192.0.2.0/24
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`,
  'icmp.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "icmp-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
  - icmps:
    - fields:
      - type: 8
        family: IPv4
      - type: EchoRequest
        family: IPv6
`,
  'l4_port_range.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l4-port-range-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
    - toPorts:
      - ports:
        - port: "80"
          endPort: 444
          protocol: TCP
`,
  'multi_rule.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l4-rules"
spec:
  endpointSelector:
    matchLabels:
      role: backend
  ingress:
  - fromEndpoints:
    - matchLabels:
        role: frontend
  - toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`,
  'init.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: init
specs:
  - endpointSelector:
      matchLabels:
        "reserved.init": ""
    ingress:
    - fromEntities:
      - host
    egress:
    - toEntities:
      - all
      toPorts:
      - ports:
        - port: "53"
          protocol: UDP
`,
  'from_init.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "from-init"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  ingress:
    - fromEntities:
      - init
    - toPorts:
      - ports:
        - port: "53"
          protocol: UDP
`,
  'l4_sni.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l4-sni-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  egress:
  - toPorts:
    - ports:
      - port: "443"
        protocol: TCP
      serverNames:
      - one.one.one.one
`,
  'sw_l3_l4_policy.yaml (rule1)': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
description: "L3-L4 policy to restrict deathstar access to empire ships only"
metadata:
  name: "rule1"
spec:
  endpointSelector:
    matchLabels:
      org: empire
      class: deathstar
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`,
  'sw_l3_l4_l7_policy.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "rule1"
spec:
  description: "L7 policy to restrict access to specific HTTP call"
  endpointSelector:
    matchLabels:
      org: empire
      class: deathstar
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: "POST"
          path: "/v1/request-landing"
`,
  'namespace-policy.yaml': `apiVersion: "cilium.io/v2"
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
        name: luke
`,
  'isolate-namespaces.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "isolate-ns1"
  namespace: ns1
spec:
  endpointSelector:
    matchLabels:
      {}
  ingress:
  - fromEndpoints:
    - matchLabels:
        {}
---
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "isolate-ns1"
  namespace: ns2
spec:
  endpointSelector:
    matchLabels:
      {}
  ingress:
  - fromEndpoints:
    - matchLabels:
        {}
`,
  'kubedns-policy.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "allow-to-kubedns"
spec:
  endpointSelector:
    {}
  egress:
  - toEndpoints:
    - matchLabels:
        k8s:io.kubernetes.pod.namespace: kube-system
        k8s-app: kube-dns
    toPorts:
    - ports:
      - port: '53'
        protocol: UDP
`,
  'namespace-labels-policy.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "alliance-only"
spec:
  endpointSelector:
    matchLabels:
      name: rebel-base
  ingress:
  - fromEndpoints:
    - matchLabels:
        io.cilium.k8s.namespace.labels.faction: "alliance"
  egress:
  - toEndpoints:
    - matchLabels:
        io.cilium.k8s.namespace.labels.faction: "alliance"
`,
  'serviceaccount-policy.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "k8s-svc-account"
spec:
  endpointSelector:
    matchLabels:
      io.cilium.k8s.policy.serviceaccount: leia
  ingress:
  - fromEndpoints:
    - matchLabels:
        io.cilium.k8s.policy.serviceaccount: luke
`,
  'clusterscope-policy.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: "clusterwide-policy-example"
spec:
  description: "Policy for selective ingress allow to a pod from only a pod with given label"
  endpointSelector:
    matchLabels:
      name: leia
  ingress:
  - fromEndpoints:
    - matchLabels:
        name: luke
`,
  'wildcard-from-endpoints.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumClusterwideNetworkPolicy
description: "Policy for ingress allow to kube-dns from all Cilium managed endpoints in the cluster"
metadata:
  name: "wildcard-from-endpoints"
spec:
  endpointSelector:
    matchLabels:
      k8s:io.kubernetes.pod.namespace: kube-system
      k8s-app: kube-dns
  ingress:
  - fromEndpoints:
    - {}
    toPorts:
    - ports:
      - port: "53"
        protocol: UDP
`,
  'health.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: "cilium-health-checks"
spec:
  endpointSelector:
    matchLabels:
      'reserved:health': ''
  ingress:
    - fromEntities:
      - remote-node
  egress:
    - toEntities:
      - remote-node
`,
  'cross-cluster-policy.yaml': `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "allow-cross-cluster"
  description: "Allow x-wing in cluster1 to contact rebel-base in cluster2"
spec:
  endpointSelector:
    matchLabels:
      name: x-wing
      io.cilium.k8s.policy.cluster: cluster1
  egress:
  - toEndpoints:
    - matchLabels:
        name: rebel-base
        io.cilium.k8s.policy.cluster: cluster2
`,
  'intercept-all-dns (enableDefaultDeny)': `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: intercept-all-dns
spec:
  endpointSelector:
    matchExpressions:
      - key: "io.kubernetes.pod.namespace"
        operator: "NotIn"
        values:
        - "kube-system"
      - key: "k8s-app"
        operator: "NotIn"
        values:
        - kube-dns
  enableDefaultDeny:
    egress: false
    ingress: false
  egress:
    - toEndpoints:
        - matchLabels:
            io.kubernetes.pod.namespace: kube-system
            k8s-app: kube-dns
      toPorts:
        - ports:
          - port: "53"
            protocol: TCP
          - port: "53"
            protocol: UDP
          rules:
            dns:
              - matchPattern: "*"
`,
  'k8s default-deny': `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
  namespace: default
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
`,
  'k8s test-network-policy': `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
`,
  'k8s multi-port-egress': `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: multi-port-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Egress
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 32000
      endPort: 32768
`,
};

/**
 * Examples using what cannot be enforced here: the schema accepts them (no other issue), and the
 * one thing that is refused is named. The and/or-statement examples write the operator "in", which
 * the CRD's enum (In, NotIn, Exists, DoesNotExist) refuses too.
 */
const REFUSED: Record<string, string[]> = {
  'apiserver.yaml': [
    'spec.egress[0].toEntities[0]: entity "kube-apiserver" is not supported yet: there is no kube-apiserver, so nothing carries the kube-apiserver identity',
  ],
  'and-statement.yaml': [
    'spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator: invalid operator "in" (expected In, NotIn, Exists or DoesNotExist)',
    'spec.ingress[0].fromEndpoints[0].matchExpressions[1].operator: invalid operator "in" (expected In, NotIn, Exists or DoesNotExist)',
  ],
  'or-statement.yaml': [
    'spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator: invalid operator "in" (expected In, NotIn, Exists or DoesNotExist)',
    'spec.ingress[0].fromEndpoints[1].matchExpressions[0].operator: invalid operator "in" (expected In, NotIn, Exists or DoesNotExist)',
  ],
  'service.yaml': ['spec.egress[0].toServices: toServices is not supported yet'],
  'from_init.yaml': [
    'spec.ingress[0].fromEntities[0]: entity "init" is not supported yet: endpoints get their labels when they are created, so none carries the init identity',
  ],
  'l4_sni.yaml': [
    'spec.egress[0].toPorts[0].serverNames: TLS SNI matching (serverNames) is not enforced yet',
  ],
};

describe('upstream example policies', () => {
  for (const [name, y] of Object.entries(EXAMPLES)) {
    const refused = REFUSED[name];
    if (refused === undefined) {
      it(`${name} loads unchanged`, () => {
        const ps = parsePolicies(docs(y));
        assert.ok(ps.length >= 1);
        assert.ok(ps.every((p) => p.rules.length >= 1));
      });
    } else {
      it(`${name} is refused naming only what is not supported`, () => {
        assert.deepEqual(errors(y), refused);
        assert.throws(() => parsePolicies(docs(y)), PolicyValidationError);
      });
    }
  }
});

const notEnforced = (kind: string) =>
  `L7 rules of type ${kind} are not enforced yet: the policy is refused rather than opening the whole port`;

describe('fields that cannot be enforced are refused, naming the field', () => {
  it('an L7 parser without a proxy (l7proto): refused, and nothing of the input is kept', () => {
    const l7 = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: default}
specs:
- endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {l7proto: envoy.filters.network.r2d2, l7: [{cmd: READ}]}`;
    const valid = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: default}
spec: {podSelector: {}, policyTypes: [Ingress]}`;
    assert.deepEqual(errors(l7), [`specs[0].ingress[0].toPorts[0].rules.l7proto: ${notEnforced('l7proto')}`]);
    assert.throws(
      () => parsePolicies(docs(`${valid}\n---\n${l7}`)),
      (e: unknown) =>
        e instanceof PolicyValidationError &&
        e.message ===
          `document 1 (CiliumNetworkPolicy default/rule1): specs[0].ingress[0].toPorts[0].rules.l7proto: ${notEnforced('l7proto')}`,
    );
  });

  it('every L7 kind, TLS, SNI, listeners and authentication', () => {
    const e = errors(
      cnp(`  endpointSelector: {}
  ingress:
  - toPorts:
    - ports: [{port: "9092", protocol: TCP}]
      rules: {kafka: [{role: produce, topic: deathstar-plans}]}
    - ports: [{port: "4444", protocol: TCP}]
      rules: {l7proto: envoy.filters.network.r2d2, l7: [{cmd: READ}]}
    - ports: [{port: "443", protocol: TCP}]
      terminatingTLS: {secret: {name: tls}}
      originatingTLS: {secret: {name: ca}}
    - ports: [{port: "8080", protocol: TCP}]
      rules: {}
    authentication: {mode: required}
  - fromEntities: [cluster]
    authentication: {mode: disabled}
  egress:
  - toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules: {dns: [{matchPattern: "*"}]}
    - ports: [{port: "443", protocol: TCP}]
      serverNames: [example.com]
      listener: {envoyConfig: {name: cec}, name: l1}`),
    );
    assert.deepEqual(e, [
      `spec.ingress[0].authentication.mode: mutual authentication (mode required) is not enforced yet`,
      `spec.ingress[0].toPorts[1].rules.l7proto: ${notEnforced('l7proto')}`,
      'spec.ingress[0].toPorts[2].terminatingTLS: TLS termination (terminatingTLS) is not supported yet',
      'spec.ingress[0].toPorts[2].originatingTLS: TLS origination (originatingTLS) is not supported yet',
      'spec.ingress[0].toPorts[3].rules: exactly one of http, kafka, dns or l7proto is required',
      'spec.egress[0].toPorts[1].serverNames: TLS SNI matching (serverNames) is not enforced yet',
      'spec.egress[0].toPorts[1].listener: Envoy listeners (listener) are not supported yet',
    ]);
  });

  it('peers nothing here can resolve: services, cloud groups, CIDR groups', () => {
    const e = errors(
      cnp(`  endpointSelector: {}
  ingress:
  - fromGroups: [{aws: {securityGroupsIds: [sg-1]}}]
  - fromCIDRSet: [{cidrGroupRef: office}]
  egress:
  - toServices: [{k8sService: {serviceName: db, namespace: ns1}}]
  - toFQDNs: [{matchName: cilium.io}]
  - toGroups: [{aws: {region: eu-west-1}}]
  - toCIDRSet: [{cidrGroupSelector: {matchLabels: {team: a}}}]`),
    );
    assert.deepEqual(e, [
      'spec.ingress[0].fromGroups: cloud provider groups (fromGroups) are not supported',
      'spec.ingress[1].fromCIDRSet[0].cidrGroupRef: CiliumCIDRGroup references are not supported yet',
      'spec.egress[0].toServices: toServices is not supported yet',
      'spec.egress[2].toGroups: cloud provider groups (toGroups) are not supported',
      'spec.egress[3].toCIDRSet[0].cidrGroupSelector: CiliumCIDRGroup references are not supported yet',
    ]);
  });

  it('entities whose identity nothing carries are refused; the others are accepted', () => {
    for (const entity of ['kube-apiserver', 'init', 'health', 'unmanaged', 'ingress']) {
      const e = errors(cnp(`  endpointSelector: {}\n  egress:\n  - toEntities: [${entity}]`));
      assert.equal(e.length, 1, entity);
      assert.match(
        e[0]!,
        new RegExp(`^spec\\.egress\\[0\\]\\.toEntities\\[0\\]: entity "${entity}" is not supported yet: `),
      );
    }
    for (const entity of [
      'all',
      'world',
      'world-ipv4',
      'world-ipv6',
      'cluster',
      'host',
      'remote-node',
      'none',
    ])
      assert.deepEqual(
        errors(cnp(`  endpointSelector: {}\n  egress:\n  - toEntities: [${entity}]`)),
        [],
        entity,
      );
    // Entity names are case-sensitive, as the CRD's enum.
    assert.match(
      errors(cnp('  endpointSelector: {}\n  egress:\n  - toEntities: [World]'))[0]!,
      /unknown entity "World"/,
    );
  });

  it("world-ipv4 / world-ipv6 need their family's /0 in the ipcache; a /0 CIDR does not select identity 2", () => {
    const [p] = parsePolicies(
      docs(
        cnp(`  endpointSelector: {}
  egress:
  - toEntities: [world-ipv4]
  - toEntities: [world-ipv6]
  - toCIDR: [0.0.0.0/0]
  - toEntities: [world]`),
      ),
    );
    const eg = p!.rules[0]!.egress!;
    assert.deepEqual(
      eg.map((r) => r.peers.map((x) => x.selector.key)),
      [['{cidr:0.0.0.0/0}'], ['{cidr:--/0}'], ['{cidr:0.0.0.0/0}'], ['{reserved:world=}']],
    );
    assert.deepEqual(
      eg.map((r) => r.cidrPrefixes.map((x) => `${x.family}/${x.len}`)),
      [['4/0'], ['6/0'], ['4/0'], []],
    );
  });
});

describe('validation as the CRD schemas and the API server do it', () => {
  it('operators are case-sensitive', () => {
    const sel = (op: string) =>
      errors(
        cnp(`  endpointSelector: {matchExpressions: [{key: app, operator: ${op}, values: [a]}]}
  ingress: [{}]`),
      );
    assert.deepEqual(sel('In'), []);
    assert.deepEqual(sel('in'), [
      'spec.endpointSelector.matchExpressions[0].operator: invalid operator "in" (expected In, NotIn, Exists or DoesNotExist)',
    ]);
  });

  it('matchLabels values are label values; NetworkPolicy keys and expression values too', () => {
    assert.deepEqual(errors(cnp('  endpointSelector: {matchLabels: {app: "web server"}}\n  ingress: [{}]')), [
      "spec.endpointSelector.matchLabels.app: invalid label value \"web server\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ]);
    // Cilium keys may carry a source (k8s:, reserved:); NetworkPolicy keys are Kubernetes keys.
    assert.deepEqual(
      errors(cnp("  endpointSelector: {matchLabels: {'reserved:health': ''}}\n  ingress: [{}]")),
      [],
    );
    const e = errors(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: ns1}
spec:
  podSelector: {matchLabels: {"bad key!": x}}
  ingress:
  - from:
    - podSelector: {matchExpressions: [{key: tier, operator: In, values: ["-web"]}]}`);
    assert.deepEqual(e, [
      "spec.podSelector.matchLabels: invalid label key \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
      "spec.ingress[0].from[0].podSelector.matchExpressions[0].values[0]: invalid label value \"-web\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ]);
  });

  it('object names: metadata.name a DNS subdomain, metadata.namespace a DNS label', () => {
    assert.deepEqual(
      errors(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: Rule_1, namespace: Prod}
spec: {endpointSelector: {}, ingress: [{}]}`),
      [
        "metadata.name: invalid name \"Rule_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        'metadata.namespace: invalid namespace "Prod": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character',
      ],
    );
  });

  it('a rule needs at least one section', () => {
    assert.deepEqual(errors(cnp('  endpointSelector: {}')), [
      'spec: at least one of ingress, ingressDeny, egress or egressDeny is required',
    ]);
  });

  it('named ports: NetworkPolicy names are IANA service names; CiliumNetworkPolicy names are lower-cased', () => {
    const np = (port: string) =>
      errors(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: ns1}
spec:
  podSelector: {}
  ingress: [{ports: [{port: ${port}}]}]`);
    assert.deepEqual(np('http'), []);
    assert.deepEqual(np('HTTP'), [
      'spec.ingress[0].ports[0].port: invalid port name "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-); must contain at least one letter (a-z)',
    ]);
    assert.deepEqual(np('web--80'), [
      'spec.ingress[0].ports[0].port: invalid port name "web--80": must not contain consecutive hyphens',
    ]);
    const [p] = parsePolicies(
      docs(cnp('  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: HTTP}]}]}]')),
    );
    assert.deepEqual(p!.rules[0]!.ingress![0]!.ports[0]!.ports, [{ name: 'http', protocol: 'ANY' }]);
  });

  it('node selectors match node labels: a key from another source is refused', () => {
    assert.deepEqual(
      errors(cnp('  endpointSelector: {}\n  ingress: [{fromNodes: [{matchLabels: {"k8s:role": worker}}]}]')),
      [
        'spec.ingress[0].fromNodes[0].matchLabels: node selectors match node labels: key "k8s:role" must have no source or node:',
      ],
    );
    const [p] = parsePolicies(
      docs(
        cnp('  endpointSelector: {}\n  ingress: [{fromNodes: [{matchLabels: {"node:role": worker}}, {}]}]'),
      ),
    );
    assert.deepEqual(
      p!.rules[0]!.ingress![0]!.peers.map((x) => x.selector.key),
      [
        '{node:role=worker, reserved:host}',
        '{node:role=worker, reserved:remote-node}',
        '{reserved:host}',
        '{reserved:remote-node}',
      ],
    );
  });
});
