/**
 * What the DNS proxy (src/proxy/dns, registered in the proxy cell) needs from the control plane:
 * learn() puts an allowed answer's IPs into the FQDN cache, then their identities into the ipcache
 * and the endpoints' policy maps, and resolves only once both maps hold them, so the answer is
 * released to the pod after its IPs are allowed. A removed endpoint's lookups go with it.
 */
import { cell, type Token, token } from '../../hive/hive.js';
import type { DnsAnswerInfo } from '../../proxy/dns/handler.js';
import { FqdnT } from './fqdn.js';
import { type AgentCellExtras, EndpointsT, LogT, SerialT } from './tokens.js';

export interface DnsProxyService {
  /** Records an answer; resolves once its IPs are allowed in the maps. */
  learn(info: DnsAnswerInfo): Promise<void>;
}

export const DnsProxyT: Token<DnsProxyService> = token('dns-proxy');

export const fqdnProxyCell = cell<DnsProxyService, AgentCellExtras>({
  name: 'dns-proxy',
  needs: [FqdnT, EndpointsT, SerialT, LogT],
  provides: DnsProxyT,
  build: (get) => {
    const fqdn = get(FqdnT);
    const endpoints = get(EndpointsT);
    const serial = get(SerialT);
    const log = get(LogT).child({ subsys: 'dns-proxy' });

    const learn = (info: DnsAnswerInfo) =>
      serial(async () => {
        const now = Date.now();
        // The IPs count for the name asked and for every alias on the way (a toFQDNs rule may name either).
        let changed = false;
        for (const name of [info.name, ...info.cnames])
          changed = fqdn.cache.update(info.endpointId, name, info.ips, now) || changed;
        if (!changed) return;
        fqdn.apply();
        endpoints.manager.regenerate();
        await endpoints.state.flush();
      });

    // An endpoint's lookups go with it (its address may be given to another pod).
    endpoints.onRemoved((ep) => {
      if (!fqdn.cache.removeEndpoint(ep.id)) return;
      void serial(async () => fqdn.apply()).catch((err) =>
        log.warn({ err }, 'dropping the DNS lookups of a removed endpoint failed'),
      );
    });

    return { provide: { learn } };
  },
});
