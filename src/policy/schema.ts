/**
 * Structural schemas (zod, strict objects: unknown fields are rejected) for the policy kinds.
 * Value checks that need context (ports, CIDRs, operators, ICMP names, regexes) happen during
 * translation in parse.ts so that every error can name its field path.
 */
import { z } from 'zod';

const str = z.string();
const strList = z.array(str);

export const labelSelectorSchema = z.strictObject({
  matchLabels: z.record(z.string(), z.string({ error: 'label value must be a string' })).optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: str,
        operator: str,
        values: strList.optional(),
      }),
    )
    .optional(),
});
export type LabelSelectorInput = z.infer<typeof labelSelectorSchema>;

const portValue = z.union([z.string(), z.number()], { error: 'port must be a string or a number' });

const portProtocolSchema = z.strictObject({
  port: portValue.optional(),
  endPort: z.number({ error: 'endPort must be a number' }).optional(),
  protocol: str.optional(),
});

const secretRef = z.strictObject({ name: str, namespace: str.optional() });
const tlsContext = z.strictObject({
  secret: secretRef,
  trustedCA: str.optional(),
  certificate: str.optional(),
  privateKey: str.optional(),
});

const fqdnSelectorSchema = z.strictObject({ matchName: str.optional(), matchPattern: str.optional() });

const l7RulesSchema = z.strictObject({
  http: z
    .array(
      z.strictObject({
        method: str.optional(),
        path: str.optional(),
        host: str.optional(),
        headers: strList.optional(),
        headerMatches: z
          .array(
            z.strictObject({
              name: str,
              value: str.optional(),
              mismatch: z.enum(['LOG', 'ADD', 'DELETE', 'REPLACE']).optional(),
              secret: secretRef.optional(),
            }),
          )
          .optional(),
      }),
    )
    .optional(),
  kafka: z
    .array(
      z.strictObject({
        role: str.optional(), // produce | consume, case-insensitive (checked in parse.ts)
        apiKey: str.optional(),
        apiVersion: str.optional(),
        clientID: str.optional(),
        topic: str.max(255).optional(),
      }),
    )
    .optional(),
  dns: z.array(fqdnSelectorSchema).optional(),
  l7proto: str.optional(),
  l7: z.array(z.record(z.string(), z.string())).optional(),
});

const portRuleSchema = z.strictObject({
  ports: z.array(portProtocolSchema).max(40).optional(),
  rules: l7RulesSchema.optional(),
  serverNames: strList.optional(),
  terminatingTLS: tlsContext.optional(),
  originatingTLS: tlsContext.optional(),
  listener: z
    .strictObject({
      envoyConfig: z.strictObject({
        kind: z.enum(['CiliumEnvoyConfig', 'CiliumClusterwideEnvoyConfig']).optional(),
        name: str,
      }),
      name: str,
      priority: z.number().int().min(1).max(100).optional(),
    })
    .optional(),
});
const portDenyRuleSchema = z.strictObject({ ports: z.array(portProtocolSchema).max(40).optional() });

const icmpRuleSchema = z.strictObject({
  fields: z
    .array(
      z.strictObject({
        family: z.enum(['IPv4', 'IPv6'], { error: 'family must be IPv4 or IPv6' }).optional(),
        type: z.union([z.number(), z.string()], { error: 'type must be a number or an ICMP type name' }),
      }),
    )
    .max(40)
    .optional(),
});

const cidrRuleSchema = z.strictObject({
  cidr: str.optional(),
  cidrGroupRef: str.optional(),
  cidrGroupSelector: labelSelectorSchema.optional(),
  except: strList.optional(),
});

const groupsSchema = z.strictObject({
  aws: z
    .strictObject({
      labels: z.record(z.string(), z.string()).optional(),
      region: str.optional(),
      securityGroupsIds: strList.optional(),
      securityGroupsNames: strList.optional(),
    })
    .optional(),
});

const authenticationSchema = z.strictObject({ mode: z.enum(['disabled', 'required', 'test-always-fail']) });

const servicesSchema = z.strictObject({
  k8sService: z.strictObject({ serviceName: str.optional(), namespace: str.optional() }).optional(),
  k8sServiceSelector: z.strictObject({ selector: labelSelectorSchema, namespace: str.optional() }).optional(),
});

const selectorList = z.array(labelSelectorSchema);

const ingressCommon = {
  fromEndpoints: selectorList.optional(),
  fromRequires: selectorList.optional(),
  fromCIDR: strList.optional(),
  fromCIDRSet: z.array(cidrRuleSchema).optional(),
  fromEntities: strList.optional(),
  fromGroups: z.array(groupsSchema).optional(),
  fromNodes: selectorList.optional(),
  icmps: z.array(icmpRuleSchema).optional(),
};
const egressCommon = {
  toEndpoints: selectorList.optional(),
  toRequires: selectorList.optional(),
  toCIDR: strList.optional(),
  toCIDRSet: z.array(cidrRuleSchema).optional(),
  toEntities: strList.optional(),
  toServices: z.array(servicesSchema).optional(),
  toGroups: z.array(groupsSchema).optional(),
  toNodes: selectorList.optional(),
  icmps: z.array(icmpRuleSchema).optional(),
};

export const ingressRuleSchema = z.strictObject({
  ...ingressCommon,
  toPorts: z.array(portRuleSchema).optional(),
  authentication: authenticationSchema.optional(),
});
export const ingressDenyRuleSchema = z.strictObject({
  ...ingressCommon,
  toPorts: z.array(portDenyRuleSchema).optional(),
});
export const egressRuleSchema = z.strictObject({
  ...egressCommon,
  toFQDNs: z.array(fqdnSelectorSchema).optional(),
  toPorts: z.array(portRuleSchema).optional(),
  authentication: authenticationSchema.optional(),
});
export const egressDenyRuleSchema = z.strictObject({
  ...egressCommon,
  toPorts: z.array(portDenyRuleSchema).optional(),
});

export const ciliumRuleSchema = z.strictObject({
  endpointSelector: labelSelectorSchema.optional(),
  nodeSelector: labelSelectorSchema.optional(),
  ingress: z.array(ingressRuleSchema).optional(),
  ingressDeny: z.array(ingressDenyRuleSchema).optional(),
  egress: z.array(egressRuleSchema).optional(),
  egressDeny: z.array(egressDenyRuleSchema).optional(),
  labels: z.array(z.strictObject({ key: str, value: str.optional(), source: str.optional() })).optional(),
  enableDefaultDeny: z
    .strictObject({ ingress: z.boolean().optional(), egress: z.boolean().optional() })
    .optional(),
  description: str.optional(),
  log: z.strictObject({ value: str.optional() }).optional(),
});
export type CiliumRuleInput = z.infer<typeof ciliumRuleSchema>;
export type IngressRuleInput = z.infer<typeof ingressRuleSchema>;
export type EgressRuleInput = z.infer<typeof egressRuleSchema>;
export type CidrRuleInput = z.infer<typeof cidrRuleSchema>;
export type PortRuleInput = z.infer<typeof portRuleSchema>;
export type IcmpRuleInput = z.infer<typeof icmpRuleSchema>;

/** ObjectMeta is Kubernetes', not the policy language: unknown metadata fields are tolerated. */
const metadataSchema = z.looseObject({
  name: z.string({ error: 'metadata.name is required' }).min(1, 'metadata.name must not be empty'),
  namespace: str.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export const ciliumPolicySchema = z.strictObject({
  apiVersion: z.literal('cilium.io/v2'),
  kind: z.enum(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy']),
  metadata: metadataSchema,
  spec: ciliumRuleSchema.optional(),
  specs: z.array(ciliumRuleSchema).optional(),
  status: z.unknown().optional(),
  // Several upstream examples carry a top-level description (outside spec); accepted and ignored.
  description: str.optional(),
});
export type CiliumPolicyInput = z.infer<typeof ciliumPolicySchema>;

const k8sPeerSchema = z.strictObject({
  podSelector: labelSelectorSchema.optional(),
  namespaceSelector: labelSelectorSchema.optional(),
  ipBlock: z.strictObject({ cidr: str, except: strList.optional() }).optional(),
});
const k8sPortSchema = z.strictObject({
  protocol: str.optional(),
  port: portValue.optional(),
  endPort: z.number({ error: 'endPort must be a number' }).optional(),
});

export const k8sNetworkPolicySchema = z.strictObject({
  apiVersion: z.literal('networking.k8s.io/v1'),
  kind: z.literal('NetworkPolicy'),
  metadata: metadataSchema,
  spec: z.strictObject({
    podSelector: labelSelectorSchema,
    policyTypes: z
      .array(z.enum(['Ingress', 'Egress'], { error: 'policyTypes entries must be Ingress or Egress' }))
      .optional(),
    ingress: z
      .array(
        z.strictObject({ from: z.array(k8sPeerSchema).optional(), ports: z.array(k8sPortSchema).optional() }),
      )
      .optional(),
    egress: z
      .array(
        z.strictObject({ to: z.array(k8sPeerSchema).optional(), ports: z.array(k8sPortSchema).optional() }),
      )
      .optional(),
  }),
  status: z.unknown().optional(),
});
export type K8sNetworkPolicyInput = z.infer<typeof k8sNetworkPolicySchema>;
export type K8sPeerInput = z.infer<typeof k8sPeerSchema>;
export type K8sPortInput = z.infer<typeof k8sPortSchema>;
