/**
 * A kube-proxy-shaped ruleset (its iptables mode, nat table) as iptables-restore text, for benches
 * that put socket-LB next to kube-proxy. The shape kube-proxy writes for ClusterIP services:
 *
 *   OUTPUT, PREROUTING  -j KUBE-SERVICES
 *   KUBE-SERVICES       one rule per VIP:port (`-d VIP -p tcp --dport P`) -j KUBE-SVC-<hash>, and
 *                       last the KUBE-NODEPORTS jump for local destinations
 *   KUBE-SVC-<hash>     mark for masquerade what comes from outside the cluster CIDR, then one rule
 *                       per endpoint: `-m statistic --mode random --probability 1/(n-i)` (the last
 *                       unconditional) -j KUBE-SEP-<hash>
 *   KUBE-SEP-<hash>     mark hairpin traffic (from the endpoint itself), DNAT to the endpoint
 *   POSTROUTING         -j KUBE-POSTROUTING: masquerade what was marked
 *
 * Every new connection walks KUBE-SERVICES rule by rule until its VIP:port matches, so the cost
 * grows with the number of services ahead of it. Chain names are kube-proxy's: the first 16
 * base32 characters of a SHA-256 of the service port name (and endpoint). The comments on the
 * per-endpoint rules, which kube-proxy drops in large clusters, are left out.
 */
import { createHash } from 'node:crypto';

export interface KubeProxyService {
  /** `namespace/name:port`, what kube-proxy hashes into chain names and writes in comments. */
  name: string;
  clusterIP: string;
  port: number;
  protocol: 'tcp' | 'udp';
  endpoints: readonly { ip: string; port: number }[];
}

export interface KubeProxyRuleset {
  /** iptables-restore input (the nat table only). */
  text: string;
  rules: number;
  chains: number;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** KUBE-SVC-XXXXXXXXXXXXXXXX / KUBE-SEP-...: kube-proxy's hashed chain names. */
export function kubeChainName(prefix: 'KUBE-SVC' | 'KUBE-SEP', of: string): string {
  const digest = createHash('sha256').update(of).digest();
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const byte of digest) {
    acc = ((acc << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      out += BASE32[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length === 16) break;
  }
  return `${prefix}-${out}`;
}

/** The ruleset for `services`, in their order in KUBE-SERVICES. `clusterCidr`: pod addresses. */
export function kubeProxyRuleset(
  services: readonly KubeProxyService[],
  clusterCidr: string,
): KubeProxyRuleset {
  const chains = [
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ':KUBE-MARK-MASQ - [0:0]',
  ];
  const rules = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  ];
  for (const s of services) {
    const svc = kubeChainName('KUBE-SVC', `${s.name}${s.protocol}`);
    const match = `-d ${s.clusterIP}/32 -p ${s.protocol} -m comment --comment "${s.name} cluster IP" -m ${s.protocol} --dport ${s.port}`;
    chains.push(`:${svc} - [0:0]`);
    rules.push(`-A KUBE-SERVICES ${match} -j ${svc}`);
    rules.push(`-A ${svc} ! -s ${clusterCidr} ${match} -j KUBE-MARK-MASQ`);
    const n = s.endpoints.length;
    for (const [i, ep] of s.endpoints.entries()) {
      const sep = kubeChainName('KUBE-SEP', `${s.name}${s.protocol}${ep.ip}:${ep.port}`);
      chains.push(`:${sep} - [0:0]`);
      const pick = i < n - 1 ? `-m statistic --mode random --probability ${(1 / (n - i)).toFixed(11)} ` : '';
      rules.push(`-A ${svc} ${pick}-j ${sep}`);
      rules.push(`-A ${sep} -s ${ep.ip}/32 -j KUBE-MARK-MASQ`);
      rules.push(`-A ${sep} -p ${s.protocol} -m ${s.protocol} -j DNAT --to-destination ${ep.ip}:${ep.port}`);
    }
  }
  rules.push(
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
  );
  return {
    text: ['*nat', ...chains, ...rules, 'COMMIT', ''].join('\n'),
    rules: rules.length,
    chains: chains.length,
  };
}
