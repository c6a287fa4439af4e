/**
 * The ipcache: prefix claims by owner (src/ipcache) resolved into one desired table, and its
 * reconciler into the cilium_ipcache map. The node cell claims the node's addresses, endpoints
 * claim theirs, policy claims CIDR identities; none of them writes the map.
 */
import { cell } from '../../hive/hive.js';
import { type IpcacheInfo, IpcacheMetadata } from '../../ipcache/ipcache.js';
import { mapTarget } from '../../statedb/map-target.js';
import { Reconciler } from '../../statedb/reconciler.js';
import { type AgentCellExtras, type IpcacheService, IpcacheT, LogT, TargetsT } from './tokens.js';

export const ipcacheCell = cell<IpcacheService, AgentCellExtras>({
  name: 'ipcache',
  needs: [TargetsT, LogT],
  provides: IpcacheT,
  build: (get) => {
    const log = get(LogT);
    const meta = new IpcacheMetadata();
    const reconciler = new Reconciler<IpcacheInfo>(
      'ipcache',
      meta.table,
      mapTarget(
        get(TargetsT).ipcache,
        (a, b) => a.identity === b.identity && a.tunnelEndpoint === b.tunnelEndpoint,
      ),
      {
        onError: (key, err, attempts) =>
          log.warn({ prefix: key, err, attempts }, 'ipcache write failed; will retry'),
      },
    );
    return { provide: { meta, reconciler } };
  },
});
