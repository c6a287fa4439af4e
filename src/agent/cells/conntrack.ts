/**
 * Conntrack garbage collection: a periodic sweep of the CT maps whose interval follows how much
 * it finds (src/conntrack), flushing of a removed endpoint's entries, `bpf ct flush` and the GC's
 * metrics in the agent's registry.
 */
import { ConntrackGC, registerConntrackRoutes } from '../../conntrack/index.js';
import { cell } from '../../hive/hive.js';
import { HubbleT } from './hubble.js';
import { type AgentCellExtras, DatapathT, EndpointsT, LogT } from './tokens.js';

export const conntrackCell = cell<undefined, AgentCellExtras>({
  name: 'conntrack-gc',
  needs: [DatapathT, HubbleT, EndpointsT, LogT],
  build: (get) => {
    const dp = get(DatapathT);
    const { metrics } = get(HubbleT);
    const endpoints = get(EndpointsT);
    const log = get(LogT).child({ subsys: 'ct-gc' });
    let gc: ConntrackGC | undefined;
    // A removed endpoint's connections must not outlive it (its address may be reused).
    endpoints.onRemoved((ep) => {
      const ips = [ep.ipv4, ep.ipv6].filter((ip): ip is string => !!ip);
      if (gc && ips.length) gc.flushEndpoint(ips);
    });
    return {
      start: () => {
        const ct = dp.m.conntrack;
        gc = new ConntrackGC({ maps: { ct4: ct.ct4, ct6: ct.ct6 }, registry: metrics.registry, log });
        gc.start();
      },
      stop: () => gc?.stop(),
      // Routes are mounted once every cell has started.
      routes: (r) => {
        if (gc) registerConntrackRoutes(r, gc);
      },
      status: () => (gc ? { conntrackGC: gc.status() } : {}),
    };
  },
});
