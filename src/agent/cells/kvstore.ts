/**
 * The kvstore this agent shares cluster state through: in memory for one node (identities stay
 * node-local), etcd for a cluster (--kvstore etcd --kvstore-endpoints ...), behind one interface.
 */
import { cell } from '../../hive/hive.js';
import { EtcdKvStore } from '../../kvstore/etcd.js';
import { type KvStore, MemoryKvStore } from '../../kvstore/index.js';
import { type AgentCellExtras, ConfigT, KvStoreT, LogT } from './tokens.js';

export const kvstoreCell = cell<KvStore, AgentCellExtras>({
  name: 'kvstore',
  needs: [ConfigT, LogT],
  provides: KvStoreT,
  build: (get) => {
    const cfg = get(ConfigT);
    const log = get(LogT).child({ subsys: 'kvstore' });
    const store: KvStore =
      cfg.kvstore === 'etcd'
        ? new EtcdKvStore({
            endpoints: cfg.kvstoreEndpoints,
            leaseTtlSeconds: cfg.kvstoreLeaseTtlSeconds,
            onError: (err: unknown) => log.warn({ err }, 'kvstore'),
          })
        : new MemoryKvStore({ name: 'memory' });
    return {
      provide: store,
      stop: () => store.close(),
      status: () => ({ kvstore: store.status().line }),
    };
  },
});
