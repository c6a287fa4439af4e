/**
 * Identity-relevant labels of a Kubernetes pod, as upstream derives them:
 *  - pod labels            → `k8s:<key>=<value>` (minus the default-excluded keys below)
 *  - pod namespace         → `k8s:io.kubernetes.pod.namespace=<ns>`
 *  - namespace labels      → `k8s:io.cilium.k8s.namespace.labels.<key>=<value>`
 *  - service account       → `k8s:io.cilium.k8s.policy.serviceaccount=<sa>` (when set)
 *  - cluster name          → `k8s:io.cilium.k8s.policy.cluster=<cluster>` (default "default")
 */
import { type Label, LabelSet, LabelSource, makeLabel } from './label.js';
import { DEFAULT_CLUSTER_NAME, K8sLabelKey } from './reserved.js';

/**
 * Keys dropped from identities by default (upstream's default exclusive patterns, matched as
 * prefixes of the key): they are hashes, counters and bookkeeping that would give every pod its
 * own identity.
 */
export const DEFAULT_EXCLUDED_LABEL_PATTERNS: readonly RegExp[] = [
  /^io\.kubernetes/,
  /^kubernetes\.io/,
  /^beta\.kubernetes\.io/,
  /^k8s\.io/,
  /^pod-template-generation/,
  /^pod-template-hash/,
  /^controller-revision-hash/,
  /^annotation.*/,
  /^etcd_node/,
];

/** Keys always kept whatever the exclusion patterns say (the ones this module adds itself). */
const ALWAYS_KEPT: readonly RegExp[] = [/^io\.kubernetes\.pod\.namespace$/, /^io\.cilium\.k8s\./];

export function isIdentityRelevantKey(
  key: string,
  excluded: readonly RegExp[] = DEFAULT_EXCLUDED_LABEL_PATTERNS,
): boolean {
  if (ALWAYS_KEPT.some((r) => r.test(key))) return true;
  return !excluded.some((r) => r.test(key));
}

export interface PodIdentityInput {
  /** Pod's own labels (metadata.labels). */
  labels?: Readonly<Record<string, string>>;
  namespace: string;
  /** Labels of the pod's namespace (metadata.labels of the Namespace). */
  namespaceLabels?: Readonly<Record<string, string>>;
  /** spec.serviceAccountName; omitted or empty → no service-account label. */
  serviceAccount?: string;
  /** Cluster name; default "default". */
  cluster?: string;
  /** Override the exclusion patterns applied to pod labels. */
  excludedPatterns?: readonly RegExp[];
}

/** The label set from which a pod's security identity is allocated. */
export function podIdentityLabels(input: PodIdentityInput): LabelSet {
  const out: Label[] = [];
  const excluded = input.excludedPatterns ?? DEFAULT_EXCLUDED_LABEL_PATTERNS;
  for (const [k, v] of Object.entries(input.labels ?? {})) {
    if (isIdentityRelevantKey(k, excluded)) out.push(makeLabel(LabelSource.K8s, k, v));
  }
  for (const [k, v] of Object.entries(input.namespaceLabels ?? {})) {
    out.push(makeLabel(LabelSource.K8s, K8sLabelKey.NamespaceLabelsPrefix + k, v));
  }
  out.push(makeLabel(LabelSource.K8s, K8sLabelKey.PodNamespace, input.namespace));
  if (input.serviceAccount !== undefined && input.serviceAccount !== '') {
    out.push(makeLabel(LabelSource.K8s, K8sLabelKey.ServiceAccount, input.serviceAccount));
  }
  out.push(makeLabel(LabelSource.K8s, K8sLabelKey.Cluster, input.cluster ?? DEFAULT_CLUSTER_NAME));
  return LabelSet.of(out);
}

/**
 * The labels a node gives the identities that stand for it (the host identity on the node itself):
 * its Kubernetes node labels with source `node`, which is what `fromNodes` / `toNodes` selectors
 * match. No exclusion patterns: `kubernetes.io/hostname` is the usual way to name a node.
 */
export function nodeIdentityLabels(nodeLabels: Readonly<Record<string, string>>): Label[] {
  return Object.entries(nodeLabels).map(([k, v]) => makeLabel(LabelSource.Node, k, v));
}
