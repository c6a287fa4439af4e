/** The KvStore contract against a real etcd (one member on 127.0.0.1), as the memory store passes it. */
import type { EtcdKvStore } from '../../../src/kvstore/etcd.js';
import { kvStoreContract } from './contract.js';
import { startTestEtcd } from './etcd-harness.js';

kvStoreContract('etcd: kvstore contract', async () => {
  const etcd = await startTestEtcd(1);
  const raw = etcd.raw();
  return {
    client: async () => etcd.client(),
    // etcd revokes the lease as an expiry would; the client learns it at its next keepalive.
    loseLease: async (c) => {
      const id = (c as EtcdKvStore).leaseId;
      if (id === undefined) throw new Error('the client has no lease');
      await raw.leaseClient.leaseRevoke({ ID: id });
    },
    close: () => etcd.stop(),
  };
});
