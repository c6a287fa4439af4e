/**
 * The kvstore this agent shares cluster state through. One node needs no external store: an
 * in-memory one serves (identities stay node-local); a multi-node cluster gives an etcd client
 * behind the same KvStore interface.
 */
import { cell } from '../../hive/hive.js';
import { type KvStore, MemoryKvStore } from '../../kvstore/index.js';
import { type AgentCellExtras, KvStoreT } from './tokens.js';

export const kvstoreCell = cell<KvStore, AgentCellExtras>({
  name: 'kvstore',
  needs: [],
  provides: KvStoreT,
  build: () => {
    const store = new MemoryKvStore({ name: 'memory' });
    return {
      provide: store,
      stop: () => store.close(),
      status: () => ({ kvstore: store.status().line }),
    };
  },
});
