/**
 * Real etcd members for tests, on 127.0.0.1 of the test's own namespace with free ports (loopback
 * only), data under a temporary directory. stop() removes processes and data even after a failure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { EtcdKvStore, type EtcdKvStoreOptions } from '../../../src/kvstore/etcd.js';
import {
  destroyEtcd,
  type EtcdCluster,
  etcdEndpoints,
  planEtcdCluster,
  startEtcd,
  stopEtcd,
} from '../../../src/lab/etcd.js';

/** A port nobody listens on right now (the kernel's pick, released again). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface TestEtcd {
  cluster: EtcdCluster;
  endpoints: string[];
  /** A client with short timeouts for tests (its lease TTL defaults to 3 s). */
  client(opts?: Partial<EtcdKvStoreOptions>): EtcdKvStore;
  /** A raw etcd3 client for what the KvStore interface does not do (compaction, lease revocation). */
  raw(): Etcd3;
  stopMembers(names?: string[]): Promise<void>;
  startMembers(names?: string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestEtcd(members = 1): Promise<TestEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'cts-etcd-'));
  const ports: number[] = [];
  while (ports.length < members * 2) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const cluster = planEtcdCluster({
    dir,
    token: `test-${process.pid}-${ports[0]}`,
    members: Array.from({ length: members }, (_, i) => ({
      ip: '127.0.0.1',
      clientPort: ports[2 * i]!,
      peerPort: ports[2 * i + 1]!,
    })),
  });
  const clients: { close(): unknown }[] = [];
  const stop = async () => {
    for (const c of clients.splice(0)) await c.close();
    await destroyEtcd(cluster);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await startEtcd(cluster);
  } catch (err) {
    await stop();
    throw err;
  }
  const endpoints = etcdEndpoints(cluster);
  return {
    cluster,
    endpoints,
    client: (opts = {}) => {
      const c = new EtcdKvStore({
        endpoints,
        leaseTtlSeconds: 3,
        requestTimeoutMs: 2000,
        statusIntervalMs: 500,
        quorumTimeoutMs: 1000,
        ...opts,
      });
      clients.push(c);
      return c;
    },
    raw: () => {
      const c = new Etcd3({ hosts: endpoints });
      clients.push(c);
      return c;
    },
    stopMembers: (names) => stopEtcd(cluster, names ? { members: names } : {}),
    startMembers: async (names) => {
      await startEtcd(cluster, names ? { members: names } : {});
    },
    stop,
  };
}
