/**
 * The node's L7 proxies (src/proxy): the manager with the HTTP proxy registered, the node
 * namespace's routing for redirected packets, and the bridge to Hubble (L7 flows and metrics).
 * Other proxies register through ProxyT before the cell starts (`proxies.register(p)`).
 *
 * Routing (node namespace only, upstream's numbers): packets the datapath marked for a proxy
 * (fwmark 0x200/0xf00) are delivered locally (table 2004: local default via lo), where the socket
 * bpf_sk_assign chose, or the proxy's socket of their tuple, takes them. Installed when a policy
 * first gives an entry a proxy port, not before.
 */
import { spawnSync } from 'node:child_process';
import { cell, token } from '../../hive/hive.js';
import { L7Recorder } from '../../hubble/l7.js';
import { l7RulesFor } from '../../policy/l7.js';
import { DnsProxy } from '../../proxy/dns/proxy.js';
import { connectTransparent, type ProxyHost, ProxyManager, readRedirect } from '../../proxy/framework.js';
import { HttpProxy } from '../../proxy/http/proxy.js';
import { KafkaProxy } from '../../proxy/kafka/proxy.js';
import { DnsProxyT } from './fqdn-proxy.js';
import { HubbleT } from './hubble.js';
import { type AgentCellExtras, DatapathT, LogT, PolicyT } from './tokens.js';

export const ProxyT = token<ProxyManager>('proxy');

const TO_PROXY_TABLE = '2004';
const TO_PROXY_RULE_PRIORITY = '9';
const ROUTING_RETRY_MS = 5000;

/**
 * ip rule + route for marked packets, in this (the node's) namespace; idempotent. Synchronous: it
 * runs before the first policy entry with a proxy port is computed, so that entry never reaches
 * the datapath before the routing its packets need (without it they are dropped, not forwarded:
 * the stack does not forward a packet with a socket assigned). True when both families have it.
 */
function installProxyRouting(): boolean {
  let ok = true;
  const ip = (args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });
  for (const [fam, dst] of [
    ['-4', '0.0.0.0/0'],
    ['-6', '::/0'],
  ] as const) {
    if (ip([fam, 'route', 'replace', 'local', dst, 'dev', 'lo', 'table', TO_PROXY_TABLE]).status !== 0)
      ok = false;
    const rules = ip([fam, 'rule', 'show', 'priority', TO_PROXY_RULE_PRIORITY]);
    if (rules.status === 0 && rules.stdout.includes(`lookup ${TO_PROXY_TABLE}`)) continue;
    const add = ip([
      fam,
      'rule',
      'add',
      'fwmark',
      '0x200/0xf00',
      'lookup',
      TO_PROXY_TABLE,
      'priority',
      TO_PROXY_RULE_PRIORITY,
    ]);
    if (add.status !== 0) ok = false;
  }
  return ok;
}

export const proxyCell = cell<ProxyManager, AgentCellExtras>({
  name: 'proxy',
  needs: [LogT, DatapathT, PolicyT, HubbleT, DnsProxyT],
  provides: ProxyT,
  build: (get) => {
    const log = get(LogT).child({ subsys: 'proxy' });
    const dp = get(DatapathT);
    const { engine, cache } = get(PolicyT);
    const hubble = get(HubbleT);
    const flows = new L7Recorder(hubble.observer, (err) => log.warn({ err }, 'L7 flow not recorded'));
    const host: ProxyHost = {
      redirect: (protocol, client, port) => readRedirect(dp.m.raw('cilium_proxy'), protocol, client, port),
      rules: (info) => {
        const items = engine.endpointPolicy(info.endpointId)?.l7 ?? [];
        return l7RulesFor(
          items,
          info.egress ? 1 : 0,
          info.egress ? info.dstIdentity : info.srcIdentity,
          info.protocol === 'tcp' ? 6 : 17,
          info.original.port,
          (sel, id) => cache.selections(sel).has(id),
        );
      },
      connectUpstream: (info) => connectTransparent(info),
      // flows are built in batches after the proxy has answered, off the request path
      emit: (record) => flows.add(record),
    };
    // The routing for redirected packets comes with the first policy that needs a proxy: any ip
    // rule in a namespace makes each of its route lookups walk the rules and two tables instead of
    // one (the kernel unmerges its local and main tables for good), which every packet the node
    // encapsulates or receives would pay.
    // A failed install is tried again at most every few seconds: the hook runs for every entry
    // with a proxy port, and each try runs `ip` processes with the agent's event loop waiting.
    let routed = false;
    let triedAt = -Infinity;
    get(PolicyT).onProxyPortInUse(() => {
      if (routed || performance.now() - triedAt < ROUTING_RETRY_MS) return;
      triedAt = performance.now();
      routed = installProxyRouting();
      if (routed) log.info('routing for packets redirected to the L7 proxies installed');
      else log.error('cannot install the routing for packets redirected to the L7 proxies');
    });
    const manager = new ProxyManager(host);
    manager.register(new HttpProxy());
    manager.register(new DnsProxy({ learn: get(DnsProxyT).learn, log: (line) => log.warn(line) }));
    manager.register(new KafkaProxy());
    return {
      provide: manager,
      start: async () => {
        await manager.start();
        log.info({ proxies: manager.status() }, 'L7 proxies listening');
      },
      stop: async () => {
        await manager.stop();
        flows.flush(); // what the proxies reported last
      },
      status: () => ({ proxies: manager.status() }),
    };
  },
});
