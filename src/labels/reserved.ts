/** Reserved labels (`reserved:<name>`), one per reserved identity, numbering as upstream. */
import { type Label, LabelSet, LabelSource, makeLabel } from './label.js';

export const ReservedName = {
  Host: 'host',
  World: 'world',
  Unmanaged: 'unmanaged',
  Health: 'health',
  Init: 'init',
  RemoteNode: 'remote-node',
  KubeApiserver: 'kube-apiserver',
  Ingress: 'ingress',
} as const;
export type ReservedName = (typeof ReservedName)[keyof typeof ReservedName];

export function reservedLabel(name: string): Label {
  return makeLabel(LabelSource.Reserved, name);
}

export function reservedLabelSet(name: string): LabelSet {
  return LabelSet.of([reservedLabel(name)]);
}

/** Well-known label keys (all with source `k8s`). */
export const K8sLabelKey = {
  PodNamespace: 'io.kubernetes.pod.namespace',
  NamespaceLabelsPrefix: 'io.cilium.k8s.namespace.labels.',
  ServiceAccount: 'io.cilium.k8s.policy.serviceaccount',
  Cluster: 'io.cilium.k8s.policy.cluster',
  PolicyName: 'io.cilium.k8s.policy.name',
  PolicyNamespace: 'io.cilium.k8s.policy.namespace',
  PolicyUid: 'io.cilium.k8s.policy.uid',
  PolicyDerivedFrom: 'io.cilium.k8s.policy.derived-from',
} as const;

export const DEFAULT_CLUSTER_NAME = 'default';
