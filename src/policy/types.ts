/** Internal rule model shared by CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and NetworkPolicy. */
import type { Label, Prefix } from '../labels/index.js';
import type { L7Rules } from './l7.js';
import type { L4ProtoName } from './ports.js';
import type { Selector } from './selector.js';

export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';

export interface PolicyRef {
  readonly kind: PolicyKind;
  /** '' for cluster-wide policies. */
  readonly namespace: string;
  readonly name: string;
}

export function policyRefKey(r: PolicyRef): string {
  return r.namespace === '' ? `${r.kind}/${r.name}` : `${r.kind}/${r.namespace}/${r.name}`;
}

export type Direction = 'ingress' | 'egress';
export type Section = 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny';
export const SECTIONS: readonly Section[] = ['ingress', 'ingressDeny', 'egress', 'egressDeny'];

export function sectionDirection(s: Section): Direction {
  return s === 'ingress' || s === 'ingressDeny' ? 'ingress' : 'egress';
}
export function sectionIsDeny(s: Section): boolean {
  return s === 'ingressDeny' || s === 'egressDeny';
}

export interface L4Port {
  /** Numeric port (0 = all ports); undefined when `name` is set. */
  readonly port?: number;
  /** Named port, resolved per endpoint by exact name (CiliumNetworkPolicy names are lower-cased, as upstream). */
  readonly name?: string;
  readonly endPort?: number;
  readonly protocol: L4ProtoName;
}

export interface PortRule {
  readonly ports: readonly L4Port[];
  /** L7 rules: the ports are allowed through the parser's proxy only (l7.ts). */
  readonly l7?: L7Rules;
}

export interface IcmpField {
  readonly family: 'IPv4' | 'IPv6';
  readonly type: number;
}

export type PeerOrigin = 'endpoints' | 'entities' | 'cidr' | 'nodes' | 'wildcard' | 'k8s' | 'fqdn';

export interface Peer {
  readonly selector: Selector;
  /** Where the selector came from; only `endpoints` peers get fromRequires/toRequires ANDed in. */
  readonly origin: PeerOrigin;
}

/** One element of a rule's ingress/ingressDeny/egress/egressDeny list. */
export interface PeerRule {
  readonly index: number;
  /**
   * The L3 peers. Endpoint, entity, CIDR and node selectors are all label selectors over identity
   * labels (node selectors only select identities that represent nodes: `reserved:host`,
   * `reserved:remote-node`). When the rule names no L3 peer at all but has ports/ICMP, this is `[Selector.wildcard]`
   * (upstream: "nil ToEndpoints is a wildcard if ToPorts are specified"); when it names none and has
   * no ports either (`ingress: [{}]`), this is empty and the rule allows nothing.
   */
  readonly peers: readonly Peer[];
  /** CIDR prefixes (except-holes already removed) that need CIDR identities in the ipcache. */
  readonly cidrPrefixes: readonly Prefix[];
  /** fromRequires / toRequires: ANDed into every peer selector of rules selecting the same endpoint. */
  readonly requires: readonly Selector[];
  /** Empty = all ports and protocols (unless `icmps` is set). */
  readonly ports: readonly PortRule[];
  readonly icmps: readonly IcmpField[];
}

export interface PolicyRule {
  readonly policy: PolicyRef;
  /** Index in `specs` (spec is 0, then specs[i] follow) or 0 for NetworkPolicy. */
  readonly ruleIndex: number;
  /** Endpoints the rule applies to (host policies, `nodeSelector`, are refused at parse time). */
  readonly subject: Selector;
  readonly ingress?: readonly PeerRule[];
  readonly ingressDeny?: readonly PeerRule[];
  readonly egress?: readonly PeerRule[];
  readonly egressDeny?: readonly PeerRule[];
  /** undefined = default (true when the direction has a section). */
  readonly enableDefaultDeny: { readonly ingress?: boolean; readonly egress?: boolean };
  readonly labels: readonly Label[];
  readonly description?: string;
}

export interface ParsedPolicy {
  readonly ref: PolicyRef;
  readonly rules: readonly PolicyRule[];
  /** Document index within the input. */
  readonly document: number;
}
