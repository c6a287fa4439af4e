/** The KvStore contract against the in-memory store: the reference the etcd backend is held to. */
import { MemoryKvStore } from '../../../src/kvstore/index.js';
import { kvStoreContract } from './contract.js';

kvStoreContract('kvstore contract: memory', async () => {
  const store = new MemoryKvStore();
  return {
    client: async (name) => store.session(name),
    loseLease: (c) => (c as MemoryKvStore).expireLease(),
    close: () => store.close(),
  };
});
