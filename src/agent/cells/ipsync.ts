/**
 * IP → identity across the cluster, through the kvstore (upstream's `cilium/state/ip/v1` layout):
 * every agent publishes its endpoints' addresses with their identity and node (leased, so a dead
 * agent's entries vanish with it) and claims the other nodes' entries in its ipcache, so a pod on
 * another node is its own identity here, not `world`. With one node and the in-memory kvstore
 * there is nothing to learn.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { cell, token } from '../../hive/hive.js';
import type { IpcacheInfo } from '../../ipcache/ipcache.js';
import { IP_PREFIX, KvPrefixCache, type KvStore } from '../../kvstore/index.js';
import { type AgentCellExtras, ConfigT, EndpointsT, IpcacheT, KvStoreT, LogT } from './tokens.js';

/** The value upstream writes (IPIdentityPair), the fields this project uses. */
export interface IpIdentityPair {
  IP: string;
  /** The node's underlay address: where the endpoint lives. */
  HostIP: string;
  ID: number;
  K8sNamespace?: string;
  K8sPodName?: string;
  /** The publishing node's name (upstream keeps it in Metadata). */
  Metadata?: string;
}

export const REMOTE_ENDPOINTS_OWNER = 'kvstore:endpoints';

/** The identity another node published for its pod `namespace/name` (a read of the kvstore). */
export async function remotePodIdentity(
  store: KvStore,
  cluster: string,
  namespace: string,
  name: string,
): Promise<number | undefined> {
  for (const p of (await store.list(`${IP_PREFIX}${cluster}/`)).pairs) {
    try {
      const v = JSON.parse(p.value) as IpIdentityPair;
      if (v.K8sNamespace === namespace && v.K8sPodName === name && typeof v.ID === 'number') return v.ID;
    } catch {
      // not ours to judge here: the sync cell warns about it
    }
  }
  return undefined;
}

/** An endpoint of another node, as its agent published it. */
export interface RemoteEndpoint {
  identity: number;
  namespace?: string;
  podName?: string;
  node?: string;
}

/** Endpoints of other nodes, as their agents published them. */
export interface RemoteEndpoints {
  byIp(ip: string): RemoteEndpoint | undefined;
}

/** Started: remote endpoints are claimed in the ipcache (and known by address). */
export const IpSyncT = token<RemoteEndpoints>('ipcache-sync');

export const ipsyncCell = cell<RemoteEndpoints, AgentCellExtras>({
  name: 'ipcache-sync',
  needs: [ConfigT, LogT, KvStoreT, IpcacheT, EndpointsT],
  provides: IpSyncT,
  build: (get) => {
    const cfg = get(ConfigT);
    const log = get(LogT).child({ subsys: 'ipcache-sync' });
    const store = get(KvStoreT);
    const { meta } = get(IpcacheT);
    const { manager, state } = get(EndpointsT);
    const prefix = `${IP_PREFIX}${cfg.clusterName}/`;
    const hostIP = cfg.nodeIPs.find((ip) => !isIPv6(ip)) ?? cfg.nodeIPs[0] ?? '';
    const published = new Map<string, string>();
    const remote = new Map<string, IpcacheInfo>();
    const remoteMeta = new Map<string, IpIdentityPair>();

    /** Writes what this node's endpoints are now; removes what it no longer has. */
    const publish = async () => {
      const want = new Map<string, string>();
      for (const [ip, lxc] of state.lxc.entries()) {
        const ep = manager.get(lxc.endpointId);
        const v: IpIdentityPair = { IP: ip, HostIP: hostIP, ID: lxc.identity, Metadata: cfg.node };
        if (ep) Object.assign(v, { K8sNamespace: ep.podNamespace, K8sPodName: ep.podName });
        want.set(`${prefix}${ip}`, JSON.stringify(v));
      }
      for (const [k, v] of want)
        if (published.get(k) !== v) {
          await store.put(k, v, { lease: true });
          published.set(k, v);
        }
      for (const k of [...published.keys()])
        if (!want.has(k)) {
          await store.delete(k);
          published.delete(k);
        }
    };
    let pending: Promise<void> = Promise.resolve();
    const publishSoon = () => {
      pending = pending
        .then(publish)
        .catch((err) => log.warn({ err }, 'publishing endpoint IPs failed; will retry'));
    };
    const cache = new KvPrefixCache(
      store,
      prefix,
      (changes) => {
        for (const c of changes) {
          const ip = c.key.slice(prefix.length);
          if (c.type === 'delete') {
            remote.delete(ip);
            remoteMeta.delete(ip);
            continue;
          }
          let v: IpIdentityPair;
          try {
            v = JSON.parse(c.value) as IpIdentityPair;
          } catch {
            log.warn({ key: c.key }, 'ignoring an ip/v1 entry that is not JSON');
            continue;
          }
          if (v.Metadata === cfg.node || typeof v.ID !== 'number') {
            remote.delete(ip);
            remoteMeta.delete(ip);
            continue;
          }
          remoteMeta.set(ip, v);
          // Native routing: the kernel routes to the node; the identity is what policy needs. The
          // overlay encapsulates towards the node that published it.
          remote.set(
            ip,
            cfg.routingMode === 'vxlan' && isIPv4(v.HostIP)
              ? { identity: v.ID, tunnelEndpoint: v.HostIP }
              : { identity: v.ID },
          );
        }
        meta.replaceOwner(REMOTE_ENDPOINTS_OWNER, 'kvstore', remote);
      },
      { onError: (err) => log.warn({ err }, 'following remote endpoints') },
    );
    let unwatch = () => {};
    let retry: NodeJS.Timeout | undefined;
    return {
      provide: {
        byIp: (ip) => {
          const v = remoteMeta.get(ip);
          if (!v) return undefined;
          return {
            identity: v.ID,
            ...(v.K8sNamespace ? { namespace: v.K8sNamespace } : {}),
            ...(v.K8sPodName ? { podName: v.K8sPodName } : {}),
            ...(v.Metadata ? { node: v.Metadata } : {}),
          };
        },
      },
      start: async () => {
        unwatch = state.lxc.watch(() => publishSoon());
        // Leased keys are gone with a lost lease: write them again.
        store.onLeaseLost(() => {
          published.clear();
          publishSoon();
        });
        publishSoon();
        retry = setInterval(publishSoon, 30_000);
        retry.unref();
        await cache.start();
      },
      stop: async () => {
        unwatch();
        clearInterval(retry);
        cache.close();
        await pending;
      },
    };
  },
});
