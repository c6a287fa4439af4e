/**
 * Observability: the monitor draining the datapath's ring buffer into the Hubble observer, the
 * Observer gRPC server, and Prometheus metrics (Hubble's and the agent's).
 */

import { dirname, join } from 'node:path';
import { routes } from '../../api/types.js';
import type { EndpointRecord } from '../../endpoint/types.js';
import { cell, token } from '../../hive/hive.js';
import { HubbleMetrics, type MetricsServer, startMetricsServer } from '../../hubble/metrics.js';
import { Observer } from '../../hubble/observer.js';
import type { EndpointInfo } from '../../hubble/parser.js';
import { nodePeerSource } from '../../hubble/peer.js';
import { HubbleServer } from '../../hubble/server.js';
import type { LbState } from '../../service/index.js';
import { registerAgentMetrics } from '../metrics.js';
import { Monitor } from '../monitor.js';
import { IpSyncT, type RemoteEndpoint } from './ipsync.js';
import { ServicesT } from './services.js';
import {
  type AgentCellExtras,
  ConfigT,
  DatapathT,
  EndpointsT,
  IdentitiesT,
  LogT,
  NodeT,
  PolicyT,
} from './tokens.js';

export interface HubbleService {
  readonly observer: Observer;
  readonly metrics: HubbleMetrics;
  readonly monitor: Monitor;
}

export const HubbleT = token<HubbleService>('hubble');

const NO_LABELS: readonly string[] = Object.freeze([]);

export const hubbleCell = cell<HubbleService, AgentCellExtras>({
  name: 'hubble',
  needs: [ConfigT, LogT, DatapathT, EndpointsT, IdentitiesT, PolicyT, NodeT, ServicesT, IpSyncT],
  provides: HubbleT,
  build: (get) => {
    const cfg = get(ConfigT);
    const log = get(LogT);
    const dp = get(DatapathT);
    const { manager } = get(EndpointsT);
    const { async: allocator } = get(IdentitiesT);
    const { repo } = get(PolicyT);
    const { registry } = get(NodeT);
    const { lb } = get(ServicesT);
    const remote = get(IpSyncT);
    const serviceByAddress = serviceIndex(lb);
    const metrics = new HubbleMetrics({ metrics: cfg.hubbleMetrics });
    registerAgentMetrics(
      {
        endpoints: () => manager.list(),
        identities: () => allocator.all(),
        policy: () => ({ count: repo.list().length, revision: repo.revision }),
        mapPressure: () => dp.mapPressure(),
        datapathCounters: () => dp.m.metrics.list(),
      },
      metrics.registry,
    );
    // The same EndpointInfo object while nothing about the address changed: the parser reuses
    // what it described from it (src/hubble/parser.ts).
    const localInfos = new WeakMap<EndpointRecord, EndpointInfo>();
    const localInfo = (ep: EndpointRecord): EndpointInfo => {
      const known = localInfos.get(ep);
      if (
        known?.identity === ep.identity &&
        known.labels === ep.labels &&
        known.podName === ep.podName &&
        known.namespace === ep.podNamespace
      )
        return known;
      const info: EndpointInfo = {
        id: ep.id,
        identity: ep.identity,
        namespace: ep.podNamespace,
        podName: ep.podName,
        labels: ep.labels,
        clusterName: cfg.clusterName,
      };
      localInfos.set(ep, info);
      return info;
    };
    const remoteInfos = new Map<string, EndpointInfo>();
    const remoteInfo = (r: RemoteEndpoint): EndpointInfo => {
      // (one empty array for identities not known here, so their info is reused too)
      const labels = allocator.lookup(r.identity)?.labels.strings() ?? NO_LABELS;
      const key = `${r.identity}/${r.namespace ?? ''}/${r.podName ?? ''}`;
      const known = remoteInfos.get(key);
      if (known?.labels === labels) return known;
      const info: EndpointInfo = {
        identity: r.identity,
        ...(r.namespace ? { namespace: r.namespace } : {}),
        ...(r.podName ? { podName: r.podName } : {}),
        labels,
        clusterName: cfg.clusterName,
      };
      if (remoteInfos.size >= 65536) remoteInfos.clear(); // pods come and go: bounded
      remoteInfos.set(key, info);
      return info;
    };
    const observer: Observer = new Observer({
      nodeName: cfg.node,
      capacity: cfg.hubbleRingSize,
      metrics,
      logger: log.child({ subsys: 'hubble' }),
      endpointByIp: (ip) => {
        const ep = manager.byIp(ip);
        if (ep) return localInfo(ep);
        // A pod of another node: what its agent published (namespace, pod, identity).
        const r = remote.byIp(ip);
        return r ? remoteInfo(r) : undefined;
      },
      identityLabels: (id) => allocator.lookup(id)?.labels.strings(),
      readerUp: (): boolean => monitor.readerUp,
      serviceByAddress,
    });
    const monitor: Monitor = new Monitor(
      { reader: () => dp.m.events.reader(), lost: () => dp.m.events.lost() },
      observer,
    );
    let server: HubbleServer | undefined;
    let metricsServer: MetricsServer | undefined;
    return {
      provide: { observer, metrics, monitor },
      start: async () => {
        await monitor.start();
        server = await HubbleServer.start({
          observer,
          // The Peer service announces every node's Hubble server (Relay discovers them here). In a
          // lab, nodes' unix sockets are reachable by path from any namespace.
          peers: nodePeerSource(
            registry,
            (n) => `unix://${join(dirname(cfg.runDir), n.name, 'hubble.sock')}`,
          ),
          unixSocket: join(cfg.runDir, 'hubble.sock'),
          ...(cfg.hubbleListenPort >= 0 ? { tcp: `127.0.0.1:${cfg.hubbleListenPort}` } : {}),
        });
        if (cfg.metricsPort >= 0)
          metricsServer = await startMetricsServer(metrics.registry, { port: cfg.metricsPort });
      },
      stop: async () => {
        await monitor.stop();
        await server?.stop();
        await metricsServer?.close();
      },
      routes: (r) => {
        r.route(routes.monitor, (q) => monitor.stream(q));
      },
      status: () => ({
        monitor: monitor.status(),
        hubble: {
          ...server?.addresses,
          flows: observer.status().num_flows,
          maxFlows: observer.status().max_flows,
        },
        metrics: metricsServer?.url,
      }),
    };
  },
});

/**
 * Which service an address belongs to, for flows: a frontend (VIP:port) or one of its backends
 * (socket-LB already connected the socket to a backend). Rebuilt when the LB tables change.
 */
function serviceIndex(lb: LbState) {
  let rev = -1;
  let index = new Map<string, { name: string; namespace: string }>();
  return (ip: string, port: number, protocol: 'TCP' | 'UDP') => {
    const now = lb.tables.services.revision;
    if (now !== rev) {
      index = new Map();
      for (const f of lb.frontends()) {
        const [namespace, name] = f.service.split('/') as [string, string];
        const svc = { name, namespace };
        index.set(`${f.address}|${f.port}|${f.protocol}`, svc);
        for (const b of f.backends)
          if (!index.has(`${b.address}|${b.port}|${b.protocol}`))
            index.set(`${b.address}|${b.port}|${b.protocol}`, svc);
      }
      rev = now;
    }
    return index.get(`${ip}|${port}|${protocol}`);
  };
}
