/** Small cells every agent has: the state store, the mutation queue, IPAM and identities. */

import { routes, toWire } from '../../api/types.js';
import { cell } from '../../hive/hive.js';
import { type AsyncIdentityAllocator, LocalIdentityAllocator } from '../../identity/async.js';
import { type Identity, IdentityAllocator, type IdentityState } from '../../identity/index.js';
import { KvstoreIdentityAllocator } from '../../identity/kvstore-allocator.js';
import { NodeIpam, type NodeIpamState } from '../../ipam/index.js';
import { retryUnavailable } from '../../kvstore/index.js';
import type { LabelSet } from '../../labels/index.js';
import { ApiError } from '../http.js';
import { AgentStateStore } from '../state.js';
import {
  type AgentCellExtras,
  ConfigT,
  type Identities,
  IdentitiesT,
  IpamT,
  KvStoreT,
  LogT,
  type Serial,
  SerialT,
  StateT,
} from './tokens.js';

export const stateCell = cell<AgentStateStore, AgentCellExtras>({
  name: 'state',
  needs: [ConfigT],
  provides: StateT,
  build: (get) => {
    const store = new AgentStateStore(get(ConfigT).stateDir);
    // saves are fsynced in the background (state.ts); an agent that stops waits for them
    return { provide: store, stop: () => store.syncs() };
  },
});

/** One queue for every mutation (CNI, policy, resources), so they apply in arrival order. */
export const serialCell = cell<Serial, AgentCellExtras>({
  name: 'serial',
  needs: [],
  provides: SerialT,
  build: () => {
    let chain: Promise<unknown> = Promise.resolve();
    const serial: Serial = (fn) => {
      const p = chain.then(fn);
      chain = p.catch(() => {});
      return p;
    };
    return { provide: serial, stop: () => serial(async () => {}) };
  },
});

export const ipamCell = cell<NodeIpam, AgentCellExtras>({
  name: 'ipam',
  needs: [ConfigT, StateT],
  provides: IpamT,
  build: (get) => {
    const cfg = get(ConfigT);
    const file = get(StateT).file<NodeIpamState>('ipam');
    const ipam = new NodeIpam({
      ipv4Cidr: cfg.podCidrV4,
      ...(cfg.podCidrV6 ? { ipv6Cidr: cfg.podCidrV6 } : {}),
    });
    return {
      provide: ipam,
      start: async () => {
        const st = await file.load();
        if (st) ipam.import(st);
      },
      status: () => ({
        ipam: toWire({
          podCidrV4: cfg.podCidrV4,
          ...(cfg.podCidrV6 ? { podCidrV6: cfg.podCidrV6 } : {}),
          ...ipam.stats(),
        }),
      }),
    };
  },
});

/**
 * Identities. The numbering (labels ↔ ID) is persisted so numbers survive a restart; reference
 * counts are not: restored identities come back unclaimed, owners (endpoints, policy CIDRs) take
 * their references again, then finishRestore() frees what nobody claimed.
 */
export const identityCell = cell<Identities, AgentCellExtras>({
  name: 'identities',
  needs: [ConfigT, StateT, KvStoreT, LogT],
  provides: IdentitiesT,
  build: (get) => {
    const cfg = get(ConfigT);
    const log = get(LogT).child({ subsys: 'identity' });
    const file = get(StateT).file<IdentityState>('identities');
    const allocator = new IdentityAllocator({ clusterId: cfg.clusterId });
    // One node: identities are numbered here. A cluster: the kvstore numbers them for every node.
    const clusterwide =
      cfg.kvstore === 'etcd'
        ? new KvstoreIdentityAllocator({
            store: get(KvStoreT),
            node: cfg.node,
            clusterId: cfg.clusterId,
            local: allocator,
            onError: (err) => log.warn({ err }, 'identity allocation'),
          })
        : undefined;
    const inner: AsyncIdentityAllocator = clusterwide ?? new LocalIdentityAllocator(allocator);
    // While the kvstore is unreachable, allocation waits (a pod needing a new identity is created
    // once it returns); known identities keep working from the cache.
    // Allocations waiting for the kvstore, for `status`: label set → since when.
    const waiting = new Map<object, { labels: string; since: number }>();
    const async: AsyncIdentityAllocator = {
      allocate: (labels: LabelSet) => {
        const token = {};
        return retryUnavailable(() => inner.allocate(labels), {
          onRetry: (err, attempt) => {
            if (!waiting.has(token)) waiting.set(token, { labels: labels.toString(), since: Date.now() });
            log.warn(
              { err, attempt, labels: labels.toString() },
              'kvstore unavailable: waiting to allocate an identity',
            );
          },
        }).finally(() => {
          const w = waiting.get(token);
          if (!w) return;
          waiting.delete(token);
          log.info(
            { labels: w.labels, waitedMs: Date.now() - w.since },
            'identity allocation no longer waiting for the kvstore',
          );
        });
      },
      release: (x) => inner.release(x),
      all: () => inner.all(),
      lookup: (id) => inner.lookup(id),
      lookupByLabels: (labels) => inner.lookupByLabels(labels),
      refCount: (id) => inner.refCount(id),
      subscribe: (listener, opts) => inner.subscribe(listener, opts),
      close: () => inner.close(),
    };
    return {
      provide: {
        allocator,
        async,
        finishRestore: () => void allocator.releaseUnclaimed(),
        persist: () => file.save(allocator.export()),
      },
      start: async () => {
        const st = await file.load();
        if (st) allocator.restore(st);
        await clusterwide?.start();
      },
      stop: () => clusterwide?.close(),
      status: () => {
        if (waiting.size === 0) return { identities: async.all().length };
        const oldest = Math.min(...[...waiting.values()].map((w) => w.since));
        const labels = [...new Set([...waiting.values()].map((w) => w.labels))];
        return {
          identities: async.all().length,
          identitiesWaiting: `${waiting.size} allocation(s) waiting for the kvstore for ${Math.round((Date.now() - oldest) / 1000)} s (${labels.join('; ')})`,
        };
      },
      routes: (r) => {
        const view = (i: Identity) => ({
          id: i.id,
          labels: i.labels.toStrings(),
          scope: i.scope,
          refCount: async.refCount(i.id),
        });
        r.route(routes.identityList, () => async.all().map(view));
        r.route(routes.identityGet, (q) => {
          const i = async.lookup(Number(q.params.id));
          if (!i) throw new ApiError(404, `identity ${q.params.id} not found`);
          return view(i);
        });
      },
    };
  },
});
