/**
 * Deployments as the lab runs them: a Deployment's pods are named as Kubernetes names them
 * (`<deployment>-<pod-template-hash>-<5 random characters>`, the hash taken over the pod template),
 * carry the template's labels plus `pod-template-hash`, and are owned by the ReplicaSet
 * `<deployment>-<hash>`. Scaling down removes the pods Kubernetes would remove first. Pure.
 */
import type { Deployment, PodSpec } from '../k8s/objects.js';
import { canonical } from './resources.js';

/** The alphabet of apimachinery's rand.String and SafeEncodeString (no vowels: no words). */
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';
export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';

/** FNV-1a, 32 bits, over the UTF-8 bytes of a string. */
export function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** apimachinery's SafeEncodeString: each character mapped into the vowel-free alphabet. */
export function safeEncode(s: string): string {
  let out = '';
  for (const ch of Buffer.from(s, 'utf8')) out += ALPHANUMS[ch % ALPHANUMS.length];
  return out;
}

/** The pod-template-hash of a template: its FNV-32a hash, in decimal, safely encoded (as the controller does). */
export function podTemplateHash(template: Deployment['spec']['template']): string {
  return safeEncode(String(fnv32a(canonical(template))));
}

/** Five random characters from the alphabet, as generateName appends. */
export function randomSuffix(random: () => number = Math.random): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += ALPHANUMS[Math.floor(random() * ALPHANUMS.length)];
  return s;
}

/** generateName's rule: the base is cut to 58 characters so that base + 5 stays a 63-character name. */
export function generatedName(base: string, suffix: string): string {
  return `${base.slice(0, 58)}${suffix}`;
}

export function replicaSetName(deployment: string, hash: string): string {
  return `${deployment}-${hash}`;
}

/** The pod a Deployment's ReplicaSet creates: template labels plus the hash, owned by the ReplicaSet. */
export function podFromTemplate(
  d: Deployment,
  namespace: string,
  name: string,
  hash: string,
): {
  metadata: Record<string, unknown> & { name: string; namespace: string; labels: Record<string, string> };
  spec: PodSpec;
} {
  const tm = d.spec.template.metadata ?? {};
  return {
    metadata: {
      name,
      namespace,
      labels: { ...(tm.labels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash },
      ...(tm.annotations ? { annotations: tm.annotations } : {}),
      generateName: `${replicaSetName(d.metadata.name, hash)}-`,
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: replicaSetName(d.metadata.name, hash),
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: structuredClone(d.spec.template.spec),
  };
}

/** What the deletion ranking needs of a pod. */
export interface ReplicaView {
  name: string;
  node: string;
  ready: boolean;
  createdAt: string;
}

/**
 * The order in which a ReplicaSet removes pods when scaled down (controller.ActivePodsWithRanks,
 * reduced to what the lab knows): not ready first, then pods sharing their node with more of their
 * replicas, then the newest.
 */
export function deletionOrder<T extends ReplicaView>(pods: readonly T[]): T[] {
  const perNode = new Map<string, number>();
  for (const p of pods) perNode.set(p.node, (perNode.get(p.node) ?? 0) + 1);
  return [...pods].sort(
    (a, b) =>
      Number(a.ready) - Number(b.ready) ||
      perNode.get(b.node)! - perNode.get(a.node)! ||
      Date.parse(b.createdAt) - Date.parse(a.createdAt) ||
      b.name.localeCompare(a.name),
  );
}
