/**
 * A pod's /etc/resolv.conf, as the kubelet writes it for dnsPolicy ClusterFirst: the pod's namespace
 * first in the search path, then svc.<zone> and <zone>, the cluster DNS server, ndots:5 (so `deathstar`
 * and `deathstar.default` are tried under the search path before being asked as they are).
 */
import { isIP } from 'node:net';
import { DnsArgumentError } from './errors.js';

export interface PodResolvConfOptions {
  namespace: string;
  /** The cluster DNS server's address(es); glibc reads at most 3. */
  nameservers: readonly string[];
  /** The cluster domain (default cluster.local). */
  zone?: string;
  /** Default 5, as the kubelet sets it. */
  ndots?: number;
  /** Domains searched after the cluster's (the node's own search path, if any). */
  extraSearches?: readonly string[];
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function podResolvConf(o: PodResolvConfOptions): string {
  if (!LABEL.test(o.namespace) || o.namespace.length > 63)
    throw new DnsArgumentError('namespace', `"${o.namespace}" is not a namespace name`);
  const zone = (o.zone ?? 'cluster.local').replace(/\.$/, '');
  if (!NAME.test(zone)) throw new DnsArgumentError('zone', `"${zone}" is not a DNS name`);
  if (o.nameservers.length === 0 || o.nameservers.length > 3)
    throw new DnsArgumentError('nameservers', 'needs 1 to 3 addresses (glibc reads no more)');
  o.nameservers.forEach((n, i) => {
    if (isIP(n) === 0) throw new DnsArgumentError(`nameservers[${i}]`, `"${n}" is not an IP address`);
  });
  const ndots = o.ndots ?? 5;
  if (!Number.isInteger(ndots) || ndots < 0 || ndots > 15)
    throw new DnsArgumentError('ndots', 'must be an integer in 0..15 (glibc caps it at 15)');
  const extra = (o.extraSearches ?? []).map((s, i) => {
    const d = s.replace(/\.$/, '').toLowerCase();
    if (!NAME.test(d)) throw new DnsArgumentError(`extraSearches[${i}]`, `"${s}" is not a DNS name`);
    return d;
  });
  const search = [`${o.namespace}.svc.${zone}`, `svc.${zone}`, zone, ...extra];
  return [
    `search ${search.join(' ')}`,
    ...o.nameservers.map((n) => `nameserver ${n}`),
    `options ndots:${ndots}`,
    '',
  ].join('\n');
}
