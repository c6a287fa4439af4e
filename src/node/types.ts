/**
 * A node of the cluster as agents share it (upstream's node.Node, kvstore `nodes/v1`): its name and
 * cluster, underlay addresses, pod CIDRs, labels, and optional health and encryption details.
 * Stored in the kvstore as this JSON (field names are ours, the content is upstream's).
 */
import { z } from 'zod';
import { CiliumTsError } from '../common/errors.js';
import { parseIp, tryParsePrefix } from '../labels/index.js';

export interface NodeAddress {
  type: 'InternalIP' | 'ExternalIP';
  ip: string;
}

export interface Node {
  name: string;
  cluster: string;
  /** Underlay addresses; InternalIP ones are where tunnels and native routes point. */
  addresses: NodeAddress[];
  ipv4PodCidr?: string;
  ipv6PodCidr?: string;
  labels: Record<string, string>;
  /** Cluster ID (0..255) of the node's cluster (cluster mesh). */
  clusterId?: number;
  /** Addresses of the node's health endpoint. */
  ipv4HealthIp?: string;
  ipv6HealthIp?: string;
  /** IPsec key index (0 for none) and WireGuard public key, when encryption is on. */
  encryptionKey?: number;
  wireguardPublicKey?: string;
}

export class NodeError extends CiliumTsError {
  override readonly code = 'invalid-argument';
}

const name = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a lowercase DNS name');
const ip = (family?: 4 | 6) =>
  z.string().refine(
    (s) => {
      const p = parseIp(s);
      return p !== undefined && (family === undefined || p.family === family);
    },
    `must be an IP${family ? `v${family}` : ''} address`,
  );
const cidr = (family: 4 | 6) =>
  z
    .string()
    .refine((s) => s.includes('/') && tryParsePrefix(s)?.family === family, `must be an IPv${family} CIDR`);

const NodeSchema = z.strictObject({
  name,
  cluster: name,
  addresses: z.array(z.strictObject({ type: z.enum(['InternalIP', 'ExternalIP']), ip: ip() })),
  ipv4PodCidr: cidr(4).optional(),
  ipv6PodCidr: cidr(6).optional(),
  labels: z.record(z.string(), z.string()),
  clusterId: z.number().int().min(0).max(255).optional(),
  ipv4HealthIp: ip(4).optional(),
  ipv6HealthIp: ip(6).optional(),
  encryptionKey: z.number().int().min(0).max(255).optional(),
  wireguardPublicKey: z.string().min(1).optional(),
});

/** Validates a node (from the kvstore or configuration); the error names the field at fault. */
export function parseNode(value: unknown, where = 'node'): Node {
  const r = NodeSchema.safeParse(value);
  if (r.success) return r.data as Node;
  const issue = r.error.issues[0]!;
  const field = issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .slice(1);
  throw new NodeError(`${where}: ${field || '(root)'}: ${issue.message}`, { field: field || undefined });
}

/** The node's first internal address of a family (where tunnels to it go). */
export function nodeInternalIp(node: Node, family: 4 | 6): string | undefined {
  return node.addresses.find((a) => a.type === 'InternalIP' && parseIp(a.ip)?.family === family)?.ip;
}

/** `cluster/name`: nodes are unique per cluster. */
export function nodeId(node: Pick<Node, 'cluster' | 'name'>): string {
  return `${node.cluster}/${node.name}`;
}
