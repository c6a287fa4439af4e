/**
 * Security identity numbering, as upstream:
 *  - 0 unknown / "any" (in policy keys), 1..8 reserved identities (below), up to 255 reserved space;
 *  - cluster-scoped identities: local part 256..65535, cluster ID (0..255) in bits 16..23;
 *  - node-local identities (CIDR, FQDN): bit 24 set (16777216 + n).
 */
import { LabelSet, ReservedName, reservedLabel } from '../labels/index.js';

export const ReservedIdentity = {
  Unknown: 0,
  Host: 1,
  World: 2,
  Unmanaged: 3,
  Health: 4,
  Init: 5,
  RemoteNode: 6,
  KubeApiserver: 7,
  Ingress: 8,
} as const;
export type ReservedIdentityNumber = (typeof ReservedIdentity)[keyof typeof ReservedIdentity];

export const MIN_CLUSTER_LOCAL_ID = 256;
export const MAX_CLUSTER_LOCAL_ID = 65535;
export const CLUSTER_ID_SHIFT = 16;
export const MAX_CLUSTER_ID = 255;
export const LOCAL_IDENTITY_FLAG = 1 << 24;
export const MAX_LOCAL_INDEX = LOCAL_IDENTITY_FLAG - 1;

/** Reserved identity number → its reserved label name. */
export const RESERVED_IDENTITY_NAMES: ReadonlyMap<number, string> = new Map<number, string>([
  [ReservedIdentity.Host, ReservedName.Host],
  [ReservedIdentity.World, ReservedName.World],
  [ReservedIdentity.Unmanaged, ReservedName.Unmanaged],
  [ReservedIdentity.Health, ReservedName.Health],
  [ReservedIdentity.Init, ReservedName.Init],
  [ReservedIdentity.RemoteNode, ReservedName.RemoteNode],
  [ReservedIdentity.KubeApiserver, ReservedName.KubeApiserver],
  [ReservedIdentity.Ingress, ReservedName.Ingress],
]);

export function reservedIdentityLabels(id: number): LabelSet | undefined {
  const name = RESERVED_IDENTITY_NAMES.get(id);
  return name === undefined ? undefined : LabelSet.of([reservedLabel(name)]);
}

export function reservedIdentityByName(name: string): number | undefined {
  for (const [id, n] of RESERVED_IDENTITY_NAMES) if (n === name) return id;
  return undefined;
}

export function isReservedIdentity(id: number): boolean {
  return id > 0 && id < MIN_CLUSTER_LOCAL_ID;
}

export function isLocalIdentity(id: number): boolean {
  return (id & LOCAL_IDENTITY_FLAG) !== 0;
}

export function isClusterIdentity(id: number): boolean {
  return !isLocalIdentity(id) && (id & 0xffff) >= MIN_CLUSTER_LOCAL_ID;
}

export function clusterIdOf(id: number): number {
  return isLocalIdentity(id) ? 0 : (id >>> CLUSTER_ID_SHIFT) & 0xff;
}

export function makeClusterIdentity(clusterId: number, localPart: number): number {
  return ((clusterId & 0xff) << CLUSTER_ID_SHIFT) | localPart;
}

export function makeLocalIdentity(index: number): number {
  return LOCAL_IDENTITY_FLAG | index;
}
