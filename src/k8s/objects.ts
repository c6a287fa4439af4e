/**
 * The Kubernetes objects the lab and the agent understand (Namespace, Pod, Deployment; Services are
 * handed to src/service's validator, policies to src/policy), parsed from YAML/JSON manifests with
 * errors that name the document and field.
 */
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { CiliumTsError } from '../common/errors.js';
import { portNameErrors } from './names.js';

export class ManifestError extends CiliumTsError {
  override readonly code = 'invalid-argument';
  constructor(
    message: string,
    readonly document?: number,
    readonly path?: string,
  ) {
    super(message, path === undefined ? {} : { field: path });
  }
}

const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const name = z.string().min(1).max(63).regex(dns1123, 'must be a lowercase RFC 1123 label');
const labels = z.record(z.string(), z.string());

const metadata = z.looseObject({
  name,
  namespace: name.optional(),
  labels: labels.optional(),
  annotations: labels.optional(),
});

/** Container port names are IANA service names (lowercase), as the API server requires. */
const portName = z.string().superRefine((v, ctx) => {
  for (const message of portNameErrors(v))
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)}: ${message}` });
});

const containerPort = z.looseObject({
  name: portName.optional(),
  containerPort: z.number().int().min(1).max(65535),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
});

const container = z.looseObject({
  name,
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  ports: z.array(containerPort).optional(),
  env: z.array(z.looseObject({ name: z.string().min(1), value: z.string().optional() })).optional(),
});

const podSpec = z
  .looseObject({
    nodeName: z.string().optional(),
    serviceAccountName: z.string().optional(),
    containers: z.array(container).min(1),
    /** How long a deleted pod's processes get between SIGTERM and SIGKILL (Kubernetes: 30 s). */
    terminationGracePeriodSeconds: z.number().int().min(0).optional(),
    /** With subdomain naming a headless service: the pod's DNS name under it. */
    hostname: name.optional(),
    subdomain: name.optional(),
    /** ClusterFirst (default): the cluster's DNS; Default: the node's resolv.conf. */
    dnsPolicy: z.enum(['ClusterFirst', 'Default']).optional(),
  })
  .superRefine((spec, ctx) => {
    // Named ports resolve by name: a name must be unique within the pod.
    const seen = new Set<string>();
    spec.containers.forEach((c, i) => {
      (c.ports ?? []).forEach((p, j) => {
        if (p.name === undefined) return;
        if (seen.has(p.name))
          ctx.addIssue({
            code: 'custom',
            path: ['containers', i, 'ports', j, 'name'],
            message: `duplicate port name ${JSON.stringify(p.name)}`,
          });
        seen.add(p.name);
      });
    });
  });

export const PodSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Pod'),
  metadata,
  spec: podSpec,
});

/** A label selector as Deployments use it: matchLabels and matchExpressions, ANDed. */
const labelSelector = z.looseObject({
  matchLabels: labels.optional(),
  matchExpressions: z
    .array(
      z.looseObject({
        key: z.string().min(1),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

export type LabelSelector = z.infer<typeof labelSelector>;

/** Whether labels match a selector (an empty selector matches everything, as in Kubernetes). */
export function selectorMatches(sel: LabelSelector, l: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(l, e.key);
    const inValues = has && (e.values ?? []).includes(l[e.key]!);
    const ok =
      e.operator === 'In'
        ? inValues
        : e.operator === 'NotIn'
          ? !inValues
          : e.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

export const DeploymentSchema = z.looseObject({
  apiVersion: z.literal('apps/v1'),
  kind: z.literal('Deployment'),
  metadata,
  spec: z
    .looseObject({
      /** Default 1. */
      replicas: z.number().int().min(0).max(1000).optional(),
      selector: labelSelector,
      template: z.looseObject({
        metadata: z.looseObject({ labels: labels.optional(), annotations: labels.optional() }).optional(),
        spec: podSpec,
      }),
    })
    .superRefine((spec, ctx) => {
      const sel = spec.selector;
      for (const [i, e] of (sel.matchExpressions ?? []).entries()) {
        const withValues = e.operator === 'In' || e.operator === 'NotIn';
        if (withValues !== (e.values?.length ?? 0) > 0)
          ctx.addIssue({
            code: 'custom',
            path: ['selector', 'matchExpressions', i, 'values'],
            message: withValues
              ? `must be specified when \`operator\` is '${e.operator}'`
              : `may not be specified when \`operator\` is '${e.operator}'`,
          });
      }
      if (!Object.keys(sel.matchLabels ?? {}).length && !(sel.matchExpressions ?? []).length)
        ctx.addIssue({
          code: 'custom',
          path: ['selector'],
          message: 'empty selector is invalid for deployment',
        });
      else if (!selectorMatches(sel, spec.template.metadata?.labels ?? {}))
        ctx.addIssue({
          code: 'custom',
          path: ['template', 'metadata', 'labels'],
          message: '`selector` does not match template `labels`',
        });
    }),
});

/** The Service kind: the shape is checked here, the fields by src/service's validator. */
export const ServiceHeadSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Service'),
  metadata,
});

export const NamespaceSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Namespace'),
  metadata: z.looseObject({ name, labels: labels.optional() }),
});

export type Pod = z.infer<typeof PodSchema>;
export type PodSpec = Pod['spec'];
export type Namespace = z.infer<typeof NamespaceSchema>;
export type Deployment = z.infer<typeof DeploymentSchema>;

export const POLICY_KINDS = new Set([
  'CiliumNetworkPolicy',
  'CiliumClusterwideNetworkPolicy',
  'NetworkPolicy',
]);

export interface Manifests {
  namespaces: Namespace[];
  pods: Pod[];
  deployments: Deployment[];
  /** Service documents, validated later by src/service (all-or-nothing). */
  services: Record<string, unknown>[];
  /** Policy documents, validated later by the policy parser (all-or-nothing). */
  policies: Record<string, unknown>[];
  /** Other kinds are kept so callers can say what they do not support. */
  other: { kind: string; document: number }[];
}

export function emptyManifests(): Manifests {
  return { namespaces: [], pods: [], deployments: [], services: [], policies: [], other: [] };
}

/** Appends b's objects to a's (several files, a List's items). */
export function mergeManifests(a: Manifests, b: Manifests): Manifests {
  a.namespaces.push(...b.namespaces);
  a.pods.push(...b.pods);
  a.deployments.push(...b.deployments);
  a.services.push(...b.services);
  a.policies.push(...b.policies);
  a.other.push(...b.other);
  return a;
}

/** Several files' manifests, merged in order (each file named in errors). Throws ManifestError. */
export function parseManifestFiles(files: readonly { name: string; text: string }[]): Manifests {
  const merged = emptyManifests();
  for (const f of files) mergeManifests(merged, parseManifests(f.text, f.name));
  return merged;
}

/**
 * The non-empty documents of a multi-document YAML (or JSON) text, with their positions.
 * Throws ManifestError naming the document on a YAML syntax error.
 */
export function parseYamlDocuments(text: string, source = 'input'): { obj: unknown; index: number }[] {
  const out: { obj: unknown; index: number }[] = [];
  for (const [i, d] of parseAllDocuments(text).entries()) {
    if (d.errors.length > 0) {
      throw new ManifestError(
        `${source}: document ${i + 1}: YAML: ${d.errors[0]!.message.split('\n')[0]}`,
        i,
      );
    }
    const obj = d.toJS() as unknown;
    if (obj !== null && obj !== undefined) out.push({ obj, index: i });
  }
  return out;
}

/** Parses a multi-document YAML (or JSON) text. Throws ManifestError naming document and field. */
export function parseManifests(text: string, source = 'input'): Manifests {
  const out = emptyManifests();
  for (const { obj, index: i } of parseYamlDocuments(text, source)) {
    if (typeof obj !== 'object' || Array.isArray(obj)) {
      throw new ManifestError(`${source}: document ${i + 1}: expected an object with apiVersion and kind`, i);
    }
    const o = obj as Record<string, unknown>;
    if (o.kind === 'List' && Array.isArray(o.items)) {
      mergeManifests(
        out,
        parseManifests(o.items.map((x) => JSON.stringify(x)).join('\n---\n'), `${source} (List)`),
      );
      continue;
    }
    const check = <T>(schema: z.ZodType<T>): T => {
      const r = schema.safeParse(o);
      if (!r.success) {
        const issue = r.error.issues[0]!;
        const path = formatPath(issue.path);
        const what =
          typeof o.metadata === 'object' && o.metadata ? (o.metadata as { name?: string }).name : undefined;
        throw new ManifestError(
          `${source}: document ${i + 1} (${String(o.kind)}${what ? ` ${what}` : ''}): ${path}: ${issue.message}`,
          i,
          path,
        );
      }
      return r.data;
    };
    if (typeof o.kind !== 'string')
      throw new ManifestError(`${source}: document ${i + 1}: kind: required`, i, 'kind');
    switch (o.kind) {
      case 'Pod':
        out.pods.push(check(PodSchema));
        break;
      case 'Namespace':
        out.namespaces.push(check(NamespaceSchema));
        break;
      case 'Deployment':
        out.deployments.push(check(DeploymentSchema));
        break;
      case 'Service':
        check(ServiceHeadSchema);
        out.services.push(o);
        break;
      default:
        if (POLICY_KINDS.has(o.kind)) out.policies.push(o);
        else out.other.push({ kind: o.kind, document: i });
    }
  }
  return out;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(root)';
}

/** Which policy a document names: kind, namespace ('' for clusterwide; default "default") and name. */
export function policyRefOf(doc: Record<string, unknown>): { kind: string; namespace: string; name: string } {
  const md = (doc.metadata ?? {}) as { name?: string; namespace?: string };
  const kind = String(doc.kind);
  return {
    kind,
    namespace: kind === 'CiliumClusterwideNetworkPolicy' ? '' : (md.namespace ?? 'default'),
    name: md.name ?? '',
  };
}

/** Named ports of a pod (container port names → number/protocol), as policies resolve them. */
export function podNamedPorts(pod: { spec: PodSpec }): Record<string, { port: number; protocol: string }> {
  const out: Record<string, { port: number; protocol: string }> = {};
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? [])
      if (p.name) out[p.name] = { port: p.containerPort, protocol: p.protocol ?? 'TCP' };
  }
  return out;
}

/** An object's namespace ("default" when the manifest leaves it out). */
export function podNamespace(obj: { metadata: { namespace?: string } }): string {
  return obj.metadata.namespace ?? 'default';
}
