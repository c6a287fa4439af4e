/**
 * Policy: the repository of imported policies (persisted as their documents), the selector cache
 * and engine, and the CIDR identities policies need (claimed in the ipcache). The endpoints cell
 * subscribes to changes and pushes the new per-endpoint state.
 */

import { routes } from '../../api/types.js';
import { cell } from '../../hive/hive.js';
import { policyKey } from '../../k8s/resources.js';
import { formatPrefix } from '../../labels/index.js';
import {
  CidrIdentitySync,
  ENFORCED_L7,
  namedPortLookup,
  PolicyEngine,
  type PolicyRef,
  PolicyRepository,
  PolicyValidationError,
  parsePolicies,
  SelectorCache,
  validatePolicies,
} from '../../policy/index.js';
import { PROXY_PORTS } from '../../proxy/framework.js';
import { ApiError, type Request } from '../http.js';
import {
  type AgentCellExtras,
  ConfigT,
  IdentitiesT,
  IpcacheT,
  NodeT,
  type PolicyService,
  PolicyT,
  ResourcesT,
  SerialT,
} from './tokens.js';

export const POLICY_CIDR_OWNER = 'policy:cidr';

export const policyCell = cell<PolicyService, AgentCellExtras>({
  name: 'policy',
  needs: [ConfigT, IdentitiesT, IpcacheT, ResourcesT, SerialT, NodeT],
  provides: PolicyT,
  build: (get) => {
    const cfg = get(ConfigT);
    const { allocator, async: identities } = get(IdentitiesT);
    const { meta } = get(IpcacheT);
    const resources = get(ResourcesT);
    const serial = get(SerialT);
    const repo = new PolicyRepository();
    const { registry } = get(NodeT);
    // The host identity carries this node's labels: fromNodes/toNodes select it by them.
    const cache = new SelectorCache({ nodeLabels: registry.local.labels });
    const proxyPortUsers: (() => void)[] = [];
    // Egress named ports resolve against the container ports of every pod this agent knows.
    const engine = new PolicyEngine(repo, cache, {
      egressNamedPorts: namedPortLookup(() => Object.values(resources.pods()).map((p) => p.namedPorts)),
      // L7 rules go to the node's proxy of their parser, at its fixed port (src/proxy)
      proxyPort: (parser) => {
        if (!ENFORCED_L7.has(parser)) return 0;
        for (const fn of proxyPortUsers) fn();
        return PROXY_PORTS[parser];
      },
    });
    const cidr = new CidrIdentitySync(allocator);
    // The documents as given are the policy resource source; the repository is derived from them.
    const docs = resources.stores.policies;
    const handlers: (() => Promise<void>)[] = [];
    const persist = () => resources.persist();

    /** CIDR identities for the prefixes policies name, claimed in the ipcache as one owner. */
    let cidrClaimed = false;
    const syncCidr = () => {
      const c = cidr.sync(repo.cidrPrefixes());
      // Most policy changes leave the prefixes as they were: nothing to claim again then.
      if (cidrClaimed && c.upserts.length === 0 && c.deletes.length === 0) return;
      meta.replaceOwner(
        POLICY_CIDR_OWNER,
        'generated',
        new Map(cidr.entries().map((e) => [formatPrefix(e.prefix), { identity: e.identity }])),
      );
      cidrClaimed = true;
    };
    const changed = async () => {
      syncCidr();
      for (const h of handlers) await h();
      await persist();
    };

    const svc: PolicyService = {
      repo,
      cache,
      engine,
      onChanged: (fn) => handlers.push(fn),
      onProxyPortInUse: (fn) => proxyPortUsers.push(fn),
      persist,
      importPolicies: (list) =>
        serial(async () => {
          const parsed = parsePolicies(list, { clusterName: cfg.clusterName });
          repo.upsertAll(parsed);
          for (const p of parsed) docs.upsert(policyKey(p.ref), { ref: p.ref, doc: list[p.document]! });
          await changed();
          return { revision: repo.revision, policies: parsed.map((p) => policyKey(p.ref)) };
        }),
      deletePolicies: (refs) =>
        serial(async () => {
          const deleted: string[] = [];
          for (const r of refs) {
            if (repo.delete(r) !== undefined) {
              deleted.push(policyKey(r));
              docs.delete(policyKey(r));
            }
          }
          await changed();
          return { revision: repo.revision, deleted };
        }),
    };

    return {
      provide: svc,
      start: async () => {
        const stored = docs.list();
        if (stored.length)
          repo.upsertAll(
            parsePolicies(
              stored.map((d) => d.object.doc),
              { clusterName: cfg.clusterName },
            ),
          );
        // Every identity this node knows: reserved, node-local and the cluster's (kvstore).
        cache.attach(identities);
        registry.subscribe(
          {
            onUpdate: (n, _before, isLocal) => {
              if (!isLocal) return;
              void serial(async () => {
                cache.setNodeLabels(n.labels);
                await changed();
              });
            },
          },
          { replay: false },
        );
        syncCidr();
      },
      stop: () => engine.close(),
      status: () => ({ policy: { revision: repo.revision, policies: repo.list().length } }),
      routes: (r) => {
        r.route(routes.policyList, () => ({
          revision: repo.revision,
          policies: repo.list().map((s) => ({
            kind: s.policy.ref.kind,
            namespace: s.policy.ref.namespace,
            name: s.policy.ref.name,
            revision: s.revision,
            rules: s.policy.rules.length,
            document: docs.get(policyKey(s.policy.ref))?.doc,
          })),
        }));
        r.route(routes.policyImport, async (q) => {
          const list = await policyDocsFromRequest(q);
          try {
            return await svc.importPolicies(list);
          } catch (err) {
            if (err instanceof PolicyValidationError) throw new ApiError(400, err.message, err.issues);
            throw err;
          }
        });
        r.route(routes.policyValidate, async (q) => {
          const list = await policyDocsFromRequest(q);
          const issues = validatePolicies(list, { clusterName: cfg.clusterName });
          return { valid: issues.length === 0, issues };
        });
        r.route(routes.policyDelete, async (q) => {
          const b = (await q.body()) as { refs?: PolicyRef[]; all?: boolean };
          const refs = b.all ? repo.list().map((s) => s.policy.ref) : (b.refs ?? []);
          if (!b.all && refs.length === 0)
            throw new ApiError(400, 'refs: give at least one {kind, namespace, name}, or all: true');
          return svc.deletePolicies(refs);
        });
      },
    };
  },
});

/** Accepts a JSON body {documents: [...]} or raw YAML/JSON text (multi-document). */
async function policyDocsFromRequest(q: Request): Promise<Record<string, unknown>[]> {
  const text = await q.text();
  const ct = q.raw.headers['content-type'] ?? '';
  let docs: unknown[];
  if (ct.includes('application/json')) {
    let b: unknown;
    try {
      b = JSON.parse(text);
    } catch (e) {
      throw new ApiError(400, `request body is not valid JSON: ${(e as Error).message}`);
    }
    docs = Array.isArray((b as { documents?: unknown[] }).documents)
      ? (b as { documents: unknown[] }).documents
      : [b];
  } else {
    // The YAML parser (~1 MiB of heap) is loaded on the first YAML body: the lab sends JSON documents.
    const { ManifestError, parseYamlDocuments } = await import('../../k8s/objects.js');
    try {
      docs = parseYamlDocuments(text, 'request body').map((d) => d.obj);
    } catch (e) {
      if (e instanceof ManifestError) throw new ApiError(400, e.message);
      throw e;
    }
  }
  if (docs.length === 0) throw new ApiError(400, 'no policy documents in the request');
  return docs.filter((d) => d !== null) as Record<string, unknown>[];
}
