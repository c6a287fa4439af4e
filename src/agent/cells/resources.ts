/**
 * What the orchestrator tells this agent: pods, namespaces and policies, kept as resource sources
 * (list + watch, src/k8s/resources.ts). Today the lab feeds them over REST; a kvstore or
 * Kubernetes watcher can feed the same stores. Persisted, so identities and policy are derived
 * again after a restart before the orchestrator speaks. Cells that must act before a change is
 * acknowledged (relabel endpoints, recompute policy) register handlers that run serially.
 */
import { routes } from '../../api/types.js';
import type { PodMeta } from '../../endpoint/manager.js';
import { cell } from '../../hive/hive.js';
import { portNameErrors } from '../../k8s/names.js';
import { ClusterResources, type ClusterResourcesState, namespacedKey } from '../../k8s/resources.js';
import { ApiError, type Request } from '../http.js';
import { type AgentCellExtras, LogT, type Resources, ResourcesT, SerialT, StateT } from './tokens.js';

export const resourcesCell = cell<Resources, AgentCellExtras>({
  name: 'resources',
  needs: [StateT, SerialT, LogT],
  provides: ResourcesT,
  build: (get) => {
    const file = get(StateT).file<ClusterResourcesState>('resources');
    const serial = get(SerialT);
    const log = get(LogT).child({ subsys: 'resources' });
    const stores = new ClusterResources();
    const podHandlers: ((ns: string, name: string, before: PodMeta | undefined) => Promise<void>)[] = [];
    const nsHandlers: ((ns: string) => Promise<void>)[] = [];
    type Kind = 'Service' | 'EndpointSlice';
    const objChecks: ((kind: Kind, obj: Record<string, unknown>) => void)[] = [];
    const objHandlers: ((kind: Kind, ns: string, name: string) => Promise<void>)[] = [];
    const storeOf = (kind: Kind) => (kind === 'Service' ? stores.services : stores.endpointSlices);
    const setObject = (kind: Kind, ns: string, name: string, obj: Record<string, unknown> | undefined) =>
      serial(async () => {
        if (obj) for (const c of objChecks) c(kind, obj);
        const key = namespacedKey(ns, name);
        // The object is a request body nobody else holds: the store keeps it without a copy.
        if (obj) storeOf(kind).upsert(key, obj, { handOver: true });
        else storeOf(kind).delete(key);
        for (const h of objHandlers) await h(kind, ns, name);
        // Saved after the maps are written and not awaited: services reach the maps without
        // waiting for the whole snapshot (an orchestrator sends them again to a restarted agent);
        // bursts share one write.
        persist().catch((err) => log.warn({ err }, 'saving resources failed'));
      });
    // Saves run one at a time; calls made while one runs share the next, which takes the latest state.
    let inflight: Promise<void> = Promise.resolve();
    let queued: Promise<void> | undefined;
    const persist = (): Promise<void> => {
      queued ??= inflight
        .catch(() => {})
        .then(() => {
          queued = undefined;
          return file.saveChunks(stores.exportJson());
        });
      inflight = queued;
      return queued;
    };
    const setPod = (ns: string, name: string, meta: PodMeta | undefined) =>
      serial(async () => {
        const key = namespacedKey(ns, name);
        const before = stores.pods.get(key);
        if (meta) stores.pods.upsert(key, meta);
        else stores.pods.delete(key);
        await persist();
        for (const h of podHandlers) await h(ns, name, before);
      });
    const setNamespace = (name: string, labels: Record<string, string>) =>
      serial(async () => {
        stores.namespaces.upsert(name, { labels: { 'kubernetes.io/metadata.name': name, ...labels } });
        await persist();
        for (const h of nsHandlers) await h(name);
      });
    const svc: Resources = {
      stores,
      persist,
      pod: (ns, name) => stores.pods.get(namespacedKey(ns, name)),
      pods: () => Object.fromEntries(stores.pods.list().map((p) => [p.key, p.object])),
      namespaceLabels: (ns) => stores.namespaces.get(ns)?.labels ?? { 'kubernetes.io/metadata.name': ns },
      setPod,
      setNamespace,
      setObject,
      onObjectCheck: (fn) => objChecks.push(fn),
      onObjectChanged: (fn) => objHandlers.push(fn),
      onPodChanged: (fn) => podHandlers.push(fn),
      onNamespaceChanged: (fn) => nsHandlers.push(fn),
    };
    return {
      provide: svc,
      start: async () => {
        const st = await file.load();
        if (st) stores.import(st, { handOver: true });
        // One complete view: what the orchestrator said before the restart.
        for (const s of [stores.pods, stores.namespaces, stores.policies]) s.markSynced();
      },
      // A save still running is finished before the agent exits.
      stop: () => inflight.catch(() => {}),
      routes: (r) => {
        r.route(routes.pods, () => svc.pods());
        r.route(routes.namespacePut, async (q) => {
          const b = (await q.body()) as { labels?: Record<string, string> };
          await setNamespace(q.params.name!, checkLabels(b.labels, 'labels'));
          return {};
        });
        r.route(routes.podPut, async (q) => {
          const b = (await q.body()) as Partial<PodMeta>;
          const meta: PodMeta = {
            labels: checkLabels(b.labels, 'labels'),
            namedPorts: checkPorts(b.namedPorts),
          };
          if (b.serviceAccount) meta.serviceAccount = b.serviceAccount;
          await setPod(q.params.ns!, q.params.name!, meta);
          return {};
        });
        r.route(routes.podDelete, async (q) => {
          await setPod(q.params.ns!, q.params.name!, undefined);
          return {};
        });
        const objects = (kind: Kind) =>
          Object.fromEntries(
            storeOf(kind)
              .list()
              .map((o) => [o.key, o.object]),
          );
        const put = (kind: Kind) => async (q: Request<'ns' | 'name'>) => {
          const b = await q.body();
          if (typeof b !== 'object' || b === null || Array.isArray(b))
            throw new ApiError(400, `request body: a ${kind} object is required`);
          await setObject(kind, q.params.ns, q.params.name, b as Record<string, unknown>);
          return {};
        };
        const del = (kind: Kind) => async (q: Request<'ns' | 'name'>) => {
          await setObject(kind, q.params.ns, q.params.name, undefined);
          return {};
        };
        r.route(routes.services, () => objects('Service'));
        r.route(routes.servicePut, put('Service'));
        r.route(routes.serviceDelete, del('Service'));
        r.route(routes.endpointSlices, () => objects('EndpointSlice'));
        r.route(routes.endpointSlicePut, put('EndpointSlice'));
        r.route(routes.endpointSliceDelete, del('EndpointSlice'));
      },
    };
  },
});

/** Container port names as the API server checks them (lowercase IANA service names). */
function checkPorts(v: unknown): PodMeta['namedPorts'] {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ApiError(400, 'namedPorts: must be a map of name to {port, protocol}');
  for (const [name, p] of Object.entries(v as Record<string, unknown>)) {
    const errs = portNameErrors(name);
    if (errs.length) throw new ApiError(400, `namedPorts.${name}: ${errs.join('; ')}`);
    const port = (p as { port?: unknown } | null)?.port;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)
      throw new ApiError(400, `namedPorts.${name}.port: must be an integer 1-65535`);
  }
  return v as PodMeta['namedPorts'];
}

function checkLabels(v: unknown, field: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ApiError(400, `${field}: must be a map of strings`);
  for (const [k, x] of Object.entries(v))
    if (typeof x !== 'string') throw new ApiError(400, `${field}.${k}: must be a string`);
  return v as Record<string, string>;
}
