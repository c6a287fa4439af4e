/**
 * What the orchestrator tells this agent about pods and namespaces (today the lab feeds it over
 * REST; a kvstore or Kubernetes watcher can feed the same store). Persisted, so identities can be
 * derived again after a restart before the orchestrator speaks.
 */
import type { PodMeta } from '../../endpoint/manager.js';
import { cell } from '../../hive/hive.js';
import { ApiError } from '../http.js';
import { type AgentCellExtras, type Resources, ResourcesT, SerialT, StateT } from './tokens.js';

interface StoredResources {
  namespaces: Record<string, Record<string, string>>;
  pods: Record<string, PodMeta>;
}

export const resourcesCell = cell<Resources, AgentCellExtras>({
  name: 'resources',
  needs: [StateT, SerialT],
  provides: ResourcesT,
  build: (get) => {
    const file = get(StateT).file<StoredResources>('resources');
    const serial = get(SerialT);
    let res: StoredResources = { namespaces: {}, pods: {} };
    const podHandlers: ((ns: string, name: string, before: PodMeta | undefined) => Promise<void>)[] = [];
    const nsHandlers: ((ns: string) => Promise<void>)[] = [];
    const persist = () => file.save(res);
    const setPod = (ns: string, name: string, meta: PodMeta | undefined) =>
      serial(async () => {
        const before = res.pods[`${ns}/${name}`];
        if (meta) res.pods[`${ns}/${name}`] = meta;
        else delete res.pods[`${ns}/${name}`];
        await persist();
        for (const h of podHandlers) await h(ns, name, before);
      });
    const setNamespace = (name: string, labels: Record<string, string>) =>
      serial(async () => {
        res.namespaces[name] = { 'kubernetes.io/metadata.name': name, ...labels };
        await persist();
        for (const h of nsHandlers) await h(name);
      });
    const svc: Resources = {
      pod: (ns, name) => res.pods[`${ns}/${name}`],
      pods: () => res.pods,
      namespaceLabels: (ns) => res.namespaces[ns] ?? { 'kubernetes.io/metadata.name': ns },
      setPod,
      setNamespace,
      onPodChanged: (fn) => podHandlers.push(fn),
      onNamespaceChanged: (fn) => nsHandlers.push(fn),
    };
    return {
      provide: svc,
      start: async () => {
        res = (await file.load()) ?? { namespaces: {}, pods: {} };
      },
      routes: (r) => {
        r.on('GET', '/v1/k8s/pods', () => res.pods);
        r.on('PUT', '/v1/k8s/namespaces/:name', async (q) => {
          const b = (await q.body()) as { labels?: Record<string, string> };
          await setNamespace(q.params.name!, checkLabels(b.labels, 'labels'));
          return {};
        });
        r.on('PUT', '/v1/k8s/pods/:ns/:name', async (q) => {
          const b = (await q.body()) as Partial<PodMeta>;
          const meta: PodMeta = { labels: checkLabels(b.labels, 'labels'), namedPorts: b.namedPorts ?? {} };
          if (b.serviceAccount) meta.serviceAccount = b.serviceAccount;
          await setPod(q.params.ns!, q.params.name!, meta);
          return {};
        });
        r.on('DELETE', '/v1/k8s/pods/:ns/:name', async (q) => {
          await setPod(q.params.ns!, q.params.name!, undefined);
          return {};
        });
      },
    };
  },
});

function checkLabels(v: unknown, field: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ApiError(400, `${field}: must be a map of strings`);
  for (const [k, x] of Object.entries(v))
    if (typeof x !== 'string') throw new ApiError(400, `${field}.${k}: must be a string`);
  return v as Record<string, string>;
}
