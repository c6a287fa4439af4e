/**
 * Starts the BPF map reconcilers once every cell has restored its desired state (node addresses,
 * policy CIDRs, endpoints): the first step is a full pass that writes everything and prunes what
 * the maps hold beyond it (entries of endpoints deleted while the agent was down, stale slots).
 */
import { cell } from '../../hive/hive.js';
import type { ReconcilerHandle } from '../../statedb/reconciler.js';
import { IpSyncT } from './ipsync.js';
import { ServicesT } from './services.js';
import {
  type AgentCellExtras,
  type DatapathSync,
  EndpointsT,
  IpcacheT,
  NodeT,
  PolicyT,
  SyncT,
} from './tokens.js';

export const syncCell = cell<DatapathSync, AgentCellExtras>({
  name: 'datapath-sync',
  // Node and policy are needed for ordering: their claims must be in before the first prune.
  // Remote endpoints (ipcache-sync) are claimed before the first prune too.
  needs: [IpcacheT, EndpointsT, NodeT, PolicyT, ServicesT, IpSyncT],
  provides: SyncT,
  build: (get) => {
    const ipcache = get(IpcacheT);
    const endpoints = get(EndpointsT);
    const services = get(ServicesT);
    const all = (): ReconcilerHandle[] => [
      ipcache.reconciler,
      ...endpoints.state.reconcilers,
      ...services.reconcilers,
    ];
    const sync: DatapathSync = { reconcilers: all, status: () => all().map((r) => r.status()) };
    return {
      provide: sync,
      start: async () => {
        for (const r of all()) await r.start();
      },
      stop: async () => {
        for (const r of all().reverse()) await r.stop();
      },
      status: () => ({ reconcilers: sync.status() }),
    };
  },
});
