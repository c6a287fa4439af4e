/**
 * The DNS proxy of the node (src/proxy/dns): for each query, the DNS rules of the endpoint that
 * asked (its policy's L7 items for the server and port it asked, src/policy/l7.ts), and for each
 * allowed answer, its IPs into the FQDN cache, then their identities into the ipcache and the
 * endpoints' policy maps, all written before the answer is released.
 */
import { cell, type Token, token } from '../../hive/hive.js';
import type { IpcacheMetadata } from '../../ipcache/ipcache.js';
import { formatPrefix, makePrefix, parseIp } from '../../labels/index.js';
import { l7RulesFor } from '../../policy/l7.js';
import { Proto } from '../../policy/ports.js';
import {
  type DnsAnswerInfo,
  DnsProxyHandler,
  type DnsQueryContext,
  type DnsRuleMatch,
} from '../../proxy/dns/handler.js';
import { FqdnT } from './fqdn.js';
import { type AgentCellExtras, EndpointsT, IpcacheT, LogT, PolicyT, SerialT } from './tokens.js';

/** Identity of `reserved:world`: what an address nobody claims is. */
const WORLD_IDENTITY = 2;

export interface DnsProxyService {
  readonly handler: DnsProxyHandler;
  /** The DNS rules for a query (undefined: no endpoint or no DNS rule for that server: REFUSED). */
  rulesFor(ctx: DnsQueryContext): DnsRuleMatch | undefined;
  /** Records an answer; resolves once its IPs are allowed in the maps. */
  learn(info: DnsAnswerInfo): Promise<void>;
}

export const DnsProxyT: Token<DnsProxyService> = token('dns-proxy');

/** The identity the ipcache gives an address: its longest claimed prefix, else world. */
export function ipcacheIdentity(meta: IpcacheMetadata, ip: string): number {
  const a = parseIp(ip);
  if (a === undefined) return WORLD_IDENTITY;
  for (let len = a.family === 4 ? 32 : 128; len >= 0; len--) {
    const hit = meta.table.get(formatPrefix(makePrefix(a.family, a.addr, len)));
    if (hit !== undefined) return hit.identity;
  }
  return WORLD_IDENTITY;
}

export const fqdnProxyCell = cell<DnsProxyService, AgentCellExtras>({
  name: 'dns-proxy',
  needs: [FqdnT, EndpointsT, PolicyT, IpcacheT, SerialT, LogT],
  provides: DnsProxyT,
  build: (get) => {
    const fqdn = get(FqdnT);
    const endpoints = get(EndpointsT);
    const policy = get(PolicyT);
    const { meta } = get(IpcacheT);
    const serial = get(SerialT);
    const log = get(LogT).child({ subsys: 'dns-proxy' });

    const rulesFor = (ctx: DnsQueryContext): DnsRuleMatch | undefined => {
      const ep = endpoints.manager.byIp(ctx.source.host);
      const pol = ep === undefined ? undefined : policy.engine.endpointPolicy(ep.id);
      if (ep === undefined || pol === undefined) return undefined;
      const remote = ipcacheIdentity(meta, ctx.destination.host);
      const proto = ctx.transport === 'udp' ? Proto.UDP : Proto.TCP;
      const d = l7RulesFor(pol.l7, 1, remote, proto, ctx.destination.port, (sel, id) =>
        policy.cache.selections(sel).has(id),
      );
      if (d.kind === 'deny') return undefined;
      if (d.kind === 'allow-all') return { endpointId: ep.id, patterns: ['*'] };
      return { endpointId: ep.id, patterns: d.rules.flatMap((r) => (r.parser === 'dns' ? r.dns : [])) };
    };

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

    const handler = new DnsProxyHandler({
      rules: rulesFor,
      onAnswer: learn,
      log: (line) => log.warn(line),
    });

    // An endpoint's lookups go with it (its address may be given to another pod).
    endpoints.onRemoved((ep) => {
      if (!fqdn.cache.removeEndpoint(ep.id)) return;
      void serial(async () => fqdn.apply()).catch((err) =>
        log.warn({ err }, 'dropping the DNS lookups of a removed endpoint failed'),
      );
    });

    return { provide: { handler, rulesFor, learn } };
  },
});
