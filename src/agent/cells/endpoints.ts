/**
 * Endpoints: the endpoint manager, the endpoints' desired datapath state (local delivery entries,
 * ipcache claims, policy maps) and its reconcilers, restore after a restart, and the endpoint,
 * `bpf policy` and policy trace routes. Follows policy, identity and pod/namespace changes.
 */
import {
  type BpfPolicyEntry,
  type EndpointView,
  routes,
  type TraceRequest,
  type TraceSide,
  toWire,
} from '../../api/types.js';
import { DEFS } from '../../datapath/index.js';
import { type DatapathTargets, EndpointDatapathState } from '../../endpoint/datapath-state.js';
import { EndpointManager } from '../../endpoint/manager.js';
import type { EndpointRecord } from '../../endpoint/types.js';
import { cell } from '../../hive/hive.js';
import { LabelSet } from '../../labels/index.js';
import { protoName } from '../datapath.js';
import { ApiError } from '../http.js';
import { remotePodIdentity } from './ipsync.js';
import {
  type AgentCellExtras,
  ConfigT,
  type EndpointService,
  EndpointsT,
  IdentitiesT,
  IpcacheT,
  KvStoreT,
  LogT,
  PolicyT,
  ResourcesT,
  SerialT,
  StateT,
  TargetsT,
} from './tokens.js';

/** Endpoint IDs whose (empty) policy maps are kept ready ahead of CNI ADDs. */
export const PREWARM_IDS = 2;

export const endpointsCell = cell<EndpointService, AgentCellExtras>({
  name: 'endpoints',
  needs: [ConfigT, LogT, IdentitiesT, PolicyT, IpcacheT, ResourcesT, TargetsT, StateT, SerialT, KvStoreT],
  provides: EndpointsT,
  build: (get) => {
    const cfg = get(ConfigT);
    const log = get(LogT);
    const identities = get(IdentitiesT);
    const policy = get(PolicyT);
    const ipcache = get(IpcacheT);
    const resources = get(ResourcesT);
    const serial = get(SerialT);
    const store = get(KvStoreT);
    const targets: DatapathTargets = get(TargetsT);
    const file = get(StateT).file<EndpointRecord[]>('endpoints');
    const state = new EndpointDatapathState(ipcache.meta, targets, ipcache.reconciler, {
      onError: (key, err, attempts) => log.warn({ key, err, attempts }, 'datapath write failed; will retry'),
    });
    const manager = new EndpointManager(
      identities.async,
      policy.engine,
      state,
      { pod: resources.pod, namespaceLabels: resources.namespaceLabels },
      cfg.clusterName,
    );
    // Endpoints still waiting for their interface are not persisted: a restart would not find them.
    const persist = async () => {
      await Promise.all([
        file.save(manager.list().filter((e) => e.state !== 'waiting-for-interface')),
        identities.persist(),
      ]);
    };
    const removed: ((ep: EndpointRecord) => void)[] = [];
    const svc: EndpointService = {
      manager,
      state,
      persist,
      onRemoved: (fn) => removed.push(fn),
      remove: async (ep) => {
        await manager.remove(ep);
        await state.flush();
        for (const fn of removed) fn(ep);
      },
    };

    /** After a change: the maps hold the endpoints' new state, and it is saved. */
    const written = async () => {
      await state.flush();
      await persist();
    };
    /** Policy of every endpoint a change touched, into the maps. */
    const regenerate = async () => {
      manager.regenerate();
      await written();
    };

    // Everything that changes some endpoint's policy, then waits until the maps have it.
    policy.onChanged(regenerate);
    resources.onNamespaceChanged(async (ns) => {
      await manager.relabel((ep) => ep.podNamespace === ns);
      await written();
    });
    resources.onPodChanged(async (ns, name, before) => {
      await manager.relabel((ep) => ep.podNamespace === ns && ep.podName === name);
      const after = resources.pod(ns, name);
      if (JSON.stringify(before?.namedPorts ?? {}) !== JSON.stringify(after?.namedPorts ?? {})) {
        policy.engine.namedPortsChanged();
        manager.regenerate();
      }
      await written();
    });

    const find = (ref: string): EndpointRecord => {
      const ep = /^\d+$/.test(ref)
        ? manager.get(Number(ref))
        : ref.includes('/')
          ? manager.byPod(ref.split('/')[0]!, ref.split('/')[1]!)
          : (manager.byIp(ref) ?? manager.byPod('default', ref));
      if (!ep) throw new ApiError(404, `endpoint ${ref} not found (give an ID, an IP, or namespace/pod)`);
      return ep;
    };

    let unfollow = () => {};
    return {
      provide: svc,
      start: async () => {
        const records = (await file.load()) ?? [];
        const alive = records.filter((r) => {
          const ok = targets.interfaceExists(r.hostIfName);
          if (!ok)
            log.warn(
              { endpoint: r.id, hostIf: r.hostIfName },
              'endpoint interface is gone; not restoring it',
            );
          return ok;
        });
        await manager.restore(alive);
        // Every owner has taken its identities again: what nobody owns now is freed.
        identities.finishRestore();
        manager.regenerate();
        state.prewarm(manager.spareIds(PREWARM_IDS));
        const gone = state.prunePrograms(new Set(manager.list().map((e) => e.id)));
        if (gone.length) log.info({ endpoints: gone }, 'removed pinned programs of endpoints that are gone');
        await persist();
        // Identities other nodes allocate arrive through the kvstore with no local change to carry
        // them: endpoints whose selectors gained or lost one get it into their maps now.
        let queued = false;
        unfollow = policy.cache.subscribe(() => {
          if (queued) return;
          queued = true;
          serial(async () => {
            queued = false;
            await regenerate();
          }).catch((err) => log.warn({ err }, 'applying identity changes to endpoints failed'));
        });
      },
      stop: () => unfollow(),
      status: () => ({ endpoints: manager.list().length }),
      routes: (r) => {
        r.route(routes.endpointList, () => manager.list().map(endpointView));
        r.route(routes.endpointGet, (q) => endpointView(find(q.params.id!)));
        r.route(routes.bpfPolicy, (q) => {
          const ep = find(q.params.id!);
          return { endpoint: ep.id, entries: policyEntries(targets, ep.id) };
        });
        r.route(routes.policyTrace, async (q) => {
          const t = (await q.body()) as TraceRequest;
          const side = async (s: TraceSide | undefined, what: string) => {
            if (!s) throw new ApiError(400, `${what}: required`);
            if (s.pod) {
              const [ns, name] = s.pod.includes('/') ? s.pod.split('/') : ['default', s.pod];
              const ep = manager.byPod(ns!, name!);
              if (ep) return { labels: LabelSet.parse(ep.labels), namedPorts: ep.namedPorts };
              const known = manager.podLabels(ns!, name!);
              if (known.meta) return { labels: known.labels, namedPorts: {} };
              // A pod of another node: its identity as its node published it.
              const id = await remotePodIdentity(store, cfg.clusterName, ns!, name!);
              const i = id === undefined ? undefined : identities.async.lookup(id);
              if (!i)
                throw new ApiError(
                  404,
                  `${what}.pod: pod ${ns}/${name} is not known on this node or in the kvstore`,
                );
              return { labels: policy.cache.identityLabels(i.id) ?? i.labels, namedPorts: {} };
            }
            if (s.identity !== undefined) {
              const i = identities.async.lookup(s.identity);
              if (!i) throw new ApiError(404, `${what}.identity: identity ${s.identity} not found`);
              return { labels: policy.cache.identityLabels(i.id) ?? i.labels, namedPorts: {} };
            }
            if (s.labels) return { labels: LabelSet.parse(s.labels, 'k8s'), namedPorts: {} };
            throw new ApiError(400, `${what}: give pod, identity or labels`);
          };
          const src = await side(t.src, 'src');
          const dst = await side(t.dst, 'dst');
          const dport = t.dport ?? 0;
          const protocol = t.protocol ?? 'TCP';
          const res = policy.engine.trace({ src, dst, dport, protocol });
          return {
            ...toWire(res),
            src: { labels: src.labels.toStrings() },
            dst: { labels: dst.labels.toStrings() },
            dport,
            protocol,
            revision: policy.repo.revision,
          };
        });
      },
    };
  },
});

function endpointView(ep: EndpointRecord): EndpointView {
  return {
    ...ep,
    identityLabels: ep.labels,
    policyEnabled: { ingress: ep.ingressEnforced, egress: ep.egressEnforced },
  };
}

/** The endpoint's policy map as stored (what `bpf policy get` shows). */
function policyEntries(targets: DatapathTargets, epId: number): BpfPolicyEntry[] {
  const entries = (targets.policy.dump(epId) ?? []) as {
    key: { egress: number; identity: number; protocol: number; dport: number; prefixLen: number };
    entry: { deny: boolean; proxyPort: number; ruleCookie: number };
    flags?: number;
  }[];
  return entries.map((e) => ({
    direction: e.key.egress ? 'Egress' : 'Ingress',
    identity: e.key.identity === 0 ? 'ANY' : e.key.identity,
    protocol: protoName(e.key.protocol),
    port: portText(e.key),
    action: e.entry.deny ? 'deny' : 'allow',
    flags: e.flags ?? 0,
    proxyPort: e.entry.proxyPort || '',
    cookie: e.entry.ruleCookie,
  }));
}

function portText(k: { dport: number; prefixLen: number }): string {
  if (k.prefixLen <= DEFS.POLICY_PROTO_PREFIX) return 'ANY';
  const span = 2 ** (DEFS.POLICY_FULL_PREFIX - k.prefixLen);
  return span === 1 ? String(k.dport) : `${k.dport}-${k.dport + span - 1}`;
}
