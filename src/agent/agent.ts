/**
 * The agent: the composition root of one node. It wires identities, policy, IPAM, endpoints, the
 * datapath and the monitor, restores their state on start, serves the REST API on a unix socket,
 * and persists every change. The datapath keeps forwarding while the agent is down: programs and
 * maps are pinned, and on start the agent adopts them instead of rebuilding.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CniBackend, handleCniHttp } from '../cni/agent-side.js';
import { setupNodeRouter } from '../cni/endpoint-plumbing.js';
import { run } from '../datapath/linux/index.js';
import { ifindexOf } from '../ebpf/index.js';
import { EndpointManager, type PendingEndpoint, type PodMeta } from '../endpoint/manager.js';
import type { EndpointRecord } from '../endpoint/types.js';
import { HubbleMetrics, type MetricsServer, startMetricsServer } from '../hubble/metrics.js';
import { Observer } from '../hubble/observer.js';
import { HubbleServer } from '../hubble/server.js';
import { IdentityAllocator, type IdentityState } from '../identity/index.js';
import { NodeIpam, type NodeIpamState } from '../ipam/index.js';
import { ManifestError, parseYamlDocuments } from '../k8s/objects.js';
import { formatPrefix, LabelSet } from '../labels/index.js';
import {
  CidrIdentitySync,
  namedPortLookup,
  PolicyEngine,
  type PolicyRef,
  PolicyRepository,
  PolicyValidationError,
  parsePolicies,
  SelectorCache,
  validatePolicies,
} from '../policy/index.js';
import type { AgentConfig } from './config.js';
import { NodeDatapath } from './datapath.js';
import { ApiError, type Request, Router } from './http.js';
import { registerAgentMetrics } from './metrics.js';
import { Monitor } from './monitor.js';
import { AgentState } from './state.js';

interface Resources {
  namespaces: Record<string, Record<string, string>>;
  pods: Record<string, PodMeta>;
}

interface StoredPolicyDoc {
  key: string;
  doc: Record<string, unknown>;
}

type StateFiles = {
  identities: IdentityState;
  ipam: NodeIpamState;
  endpoints: EndpointRecord[];
  resources: Resources;
  policies: StoredPolicyDoc[];
};

const HOST_IDENTITY = 1;
/** Endpoint IDs whose (empty) policy maps are kept ready ahead of CNI ADDs. */
const PREWARM_IDS = 2;

export class Agent {
  readonly identities: IdentityAllocator;
  readonly repo = new PolicyRepository();
  readonly cache = new SelectorCache();
  readonly engine: PolicyEngine;
  readonly cidr: CidrIdentitySync;
  readonly ipam: NodeIpam;
  readonly datapath: NodeDatapath;
  readonly endpoints: EndpointManager;
  readonly cni: CniBackend;
  readonly monitor: Monitor;
  readonly observer: Observer;
  readonly metrics: HubbleMetrics;
  private hubble?: HubbleServer;
  private metricsServer?: MetricsServer;
  readonly state: AgentState<StateFiles>;
  readonly startedAt = Date.now();
  private resources: Resources = { namespaces: {}, pods: {} };
  private policyDocs = new Map<string, Record<string, unknown>>();
  private server?: Server;
  private chain: Promise<unknown> = Promise.resolve();
  private ready = false;

  constructor(
    readonly cfg: AgentConfig,
    readonly log: Logger,
  ) {
    this.identities = new IdentityAllocator({ clusterId: cfg.clusterId });
    // Egress named ports resolve against the container ports of every pod this agent knows.
    this.engine = new PolicyEngine(this.repo, this.cache, {
      egressNamedPorts: namedPortLookup(() => Object.values(this.resources.pods).map((p) => p.namedPorts)),
    });
    this.cidr = new CidrIdentitySync(this.identities);
    this.ipam = new NodeIpam({
      ipv4Cidr: cfg.podCidrV4,
      ...(cfg.podCidrV6 ? { ipv6Cidr: cfg.podCidrV6 } : {}),
    });
    this.state = new AgentState<StateFiles>(cfg.stateDir);
    this.datapath = new NodeDatapath(cfg, log.child({ subsys: 'datapath' }));
    this.endpoints = new EndpointManager(
      this.identities,
      this.engine,
      this.datapath,
      {
        pod: (ns, name) => this.resources.pods[`${ns}/${name}`],
        namespaceLabels: (ns) => this.resources.namespaces[ns] ?? { 'kubernetes.io/metadata.name': ns },
      },
      cfg.clusterName,
    );
    this.cni = new CniBackend({
      ipam: this.ipam,
      hooks: {
        // Before the interfaces exist: ID, identity and program verification start right away,
        // overlapping the interface setup (a retried ADD of a known endpoint skips this).
        endpointPending: (e) =>
          this.endpoints.byContainer(e.containerId, e.ifName)
            ? undefined
            : this.endpoints.begin({
                containerId: e.containerId,
                ifName: e.ifName,
                netns: e.netns,
                podNamespace: e.podNamespace ?? 'default',
                podName: e.podName ?? e.containerId.slice(0, 12),
                ipv4: e.allocation.ipv4?.ip,
                ipv6: e.allocation.ipv6?.ip,
                mac: e.podMac,
                hostIfName: e.hostIfName,
                hostMac: e.hostMac,
              }),
        endpointAborted: (token) => this.endpoints.abort(token as PendingEndpoint),
        endpointAdded: (e, token) =>
          this.serial(async () => {
            const t0 = performance.now();
            const ep = token
              ? await this.endpoints.finish(token as PendingEndpoint, e.plumbing.hostIfindex)
              : await this.endpoints.create({
                  containerId: e.containerId,
                  ifName: e.ifName,
                  netns: e.netns,
                  podNamespace: e.podNamespace ?? 'default',
                  podName: e.podName ?? e.containerId.slice(0, 12),
                  ipv4: e.allocation.ipv4?.ip,
                  ipv6: e.allocation.ipv6?.ip,
                  mac: e.plumbing.podMac,
                  hostIfName: e.plumbing.hostIfName,
                  hostIfindex: e.plumbing.hostIfindex,
                  hostMac: e.plumbing.hostMac,
                });
            await this.persist('endpoints', 'identities');
            this.prewarmSoon();
            this.log.info(
              {
                endpoint: ep.id,
                pod: `${ep.podNamespace}/${ep.podName}`,
                identity: ep.identity,
                ipv4: ep.ipv4,
                ms: +(performance.now() - t0).toFixed(1),
              },
              'endpoint created',
            );
          }),
        endpointRemoved: (p) =>
          this.serial(async () => {
            const ep = this.endpoints.byContainer(p.containerId, p.ifName);
            if (!ep) return;
            this.endpoints.remove(ep);
            await this.persist('endpoints', 'identities');
            this.log.info({ endpoint: ep.id, pod: `${ep.podNamespace}/${ep.podName}` }, 'endpoint removed');
          }),
        ipamChanged: () => this.state.save('ipam', this.ipam.export()),
      },
    });
    this.metrics = new HubbleMetrics({ metrics: cfg.hubbleMetrics });
    registerAgentMetrics(this, this.metrics.registry);
    this.observer = new Observer({
      nodeName: cfg.node,
      capacity: cfg.hubbleRingSize,
      metrics: this.metrics,
      logger: log.child({ subsys: 'hubble' }),
      endpointByIp: (ip) => {
        const ep = this.endpoints.byIp(ip);
        if (!ep) return undefined;
        return {
          id: ep.id,
          identity: ep.identity,
          namespace: ep.podNamespace,
          podName: ep.podName,
          labels: ep.labels,
          clusterName: cfg.clusterName,
        };
      },
      identityLabels: (id) => this.identities.lookup(id)?.labels.toStrings(),
    });
    this.monitor = new Monitor(this, this.observer);
  }

  /** After the ADD was answered, ready the policy maps of the next endpoint IDs. */
  private prewarmSoon(): void {
    setImmediate(
      () =>
        void this.serial(async () => this.datapath.prewarm(this.endpoints.spareIds(PREWARM_IDS))).catch((e) =>
          this.log.warn({ err: e }, 'prewarm failed'),
        ),
    );
  }

  /** Runs mutations one at a time, in arrival order. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  async start(): Promise<void> {
    const { cfg } = this;
    mkdirSync(cfg.runDir, { recursive: true });
    await this.mountBpffs();
    await this.restoreState();
    this.cache.attach(this.identities);
    const routers = this.ipam.routerIPs();
    this.datapath.open(routers);

    // The node's router device and addresses; the node and router IPs are the host identity.
    await setupNodeRouter({ ipv4Router: routers.ipv4, ipv6Router: routers.ipv6 });
    for (const ip of [...cfg.nodeIPs, routers.ipv4, routers.ipv6]) {
      if (ip) this.datapath.upsertIpcache(hostPrefix(ip), HOST_IDENTITY);
    }

    const records = (await this.state.load('endpoints')) ?? [];
    this.syncCidrIdentities();
    await this.endpoints.restore(records.filter((r) => this.endpointStillPlumbed(r)));
    await this.persist('endpoints', 'identities');

    this.datapath.prewarm(this.endpoints.spareIds(PREWARM_IDS));
    await this.monitor.start();
    this.hubble = await HubbleServer.start({
      observer: this.observer,
      unixSocket: join(cfg.runDir, 'hubble.sock'),
      ...(cfg.hubbleListenPort >= 0 ? { tcp: `127.0.0.1:${cfg.hubbleListenPort}` } : {}),
    });
    if (cfg.metricsPort >= 0)
      this.metricsServer = await startMetricsServer(this.metrics.registry, { port: cfg.metricsPort });
    await this.listen();
    this.ready = true;
    this.log.info(
      {
        socket: cfg.socketPath,
        endpoints: this.endpoints.list().length,
        policies: this.repo.list().length,
        revision: this.repo.revision,
      },
      'agent started',
    );
  }

  async stop(): Promise<void> {
    this.ready = false;
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections?.();
    await this.monitor.stop();
    await this.hubble?.stop();
    await this.metricsServer?.close();
    await this.chain;
    this.datapath.close();
    this.log.info('agent stopped (programs and maps stay pinned: the datapath keeps forwarding)');
  }

  // ---- state ----

  private async restoreState(): Promise<void> {
    const ids = await this.state.load('identities');
    if (ids) this.identities.import(ids);
    const ipam = await this.state.load('ipam');
    if (ipam) this.ipam.import(ipam);
    this.resources = (await this.state.load('resources')) ?? { namespaces: {}, pods: {} };
    const docs = (await this.state.load('policies')) ?? [];
    if (docs.length) {
      const parsed = parsePolicies(
        docs.map((d) => d.doc),
        { clusterName: this.cfg.clusterName },
      );
      this.repo.upsertAll(parsed);
      for (const d of docs) this.policyDocs.set(d.key, d.doc);
    }
  }

  private async persist(...what: (keyof StateFiles)[]): Promise<void> {
    const save: Record<keyof StateFiles, () => Promise<void>> = {
      identities: () => this.state.save('identities', this.identities.export()),
      ipam: () => this.state.save('ipam', this.ipam.export()),
      // Endpoints still waiting for their interface are not persisted: a restart would not find them.
      endpoints: () =>
        this.state.save(
          'endpoints',
          this.endpoints.list().filter((e) => e.state !== 'waiting-for-interface'),
        ),
      resources: () => this.state.save('resources', this.resources),
      policies: () =>
        this.state.save(
          'policies',
          [...this.policyDocs].map(([key, doc]) => ({ key, doc })),
        ),
    };
    await Promise.all(what.map((w) => save[w]()));
  }

  /** A restored endpoint whose host veth vanished (pod deleted while we were down) is dropped. */
  private endpointStillPlumbed(r: EndpointRecord): boolean {
    // The agent runs in the node's network namespace; /sys may show another one, so ask the kernel.
    const ok = ifNametoindexSafe(r.hostIfName) > 0;
    if (!ok)
      this.log.warn({ endpoint: r.id, hostIf: r.hostIfName }, 'endpoint interface is gone; not restoring it');
    return ok;
  }

  private async mountBpffs(): Promise<void> {
    mkdirSync(this.cfg.bpffsDir, { recursive: true });
    const mounts = readFileSync('/proc/mounts', 'utf8');
    if (!mounts.split('\n').some((l) => l.split(' ')[1] === this.cfg.bpffsDir && l.split(' ')[2] === 'bpf')) {
      await run(['mount', '-t', 'bpf', 'bpf', this.cfg.bpffsDir]);
    }
  }

  // ---- policy ----

  private syncCidrIdentities(): void {
    const changes = this.cidr.sync(this.repo.cidrPrefixes());
    for (const u of changes.upserts) this.datapath.upsertIpcache(formatPrefix(u.prefix), u.identity);
    for (const d of changes.deletes) this.datapath.deleteIpcache(formatPrefix(d));
  }

  /** Imports policy documents all-or-nothing; returns the new revision. */
  importPolicies(docs: Record<string, unknown>[]): Promise<{ revision: number; policies: string[] }> {
    return this.serial(async () => {
      const parsed = parsePolicies(docs, { clusterName: this.cfg.clusterName });
      this.repo.upsertAll(parsed);
      for (const p of parsed) this.policyDocs.set(refKey(p.ref), docs[p.document]!);
      this.syncCidrIdentities();
      this.endpoints.regenerate();
      await this.persist('policies', 'endpoints', 'identities');
      return { revision: this.repo.revision, policies: parsed.map((p) => refKey(p.ref)) };
    });
  }

  deletePolicies(refs: PolicyRef[]): Promise<{ revision: number; deleted: string[] }> {
    return this.serial(async () => {
      const deleted: string[] = [];
      for (const r of refs) {
        if (this.repo.delete(r) !== undefined) {
          deleted.push(refKey(r));
          this.policyDocs.delete(refKey(r));
        }
      }
      this.syncCidrIdentities();
      this.endpoints.regenerate();
      await this.persist('policies', 'endpoints', 'identities');
      return { revision: this.repo.revision, deleted };
    });
  }

  // ---- resources (what the orchestrator tells us about pods and namespaces) ----

  setNamespace(name: string, labels: Record<string, string>): Promise<void> {
    return this.serial(async () => {
      this.resources.namespaces[name] = { 'kubernetes.io/metadata.name': name, ...labels };
      await this.endpoints.relabel((ep) => ep.podNamespace === name);
      await this.persist('resources', 'endpoints', 'identities');
    });
  }

  setPod(ns: string, name: string, meta: PodMeta): Promise<void> {
    return this.serial(async () => {
      const before = JSON.stringify(this.resources.pods[`${ns}/${name}`]?.namedPorts ?? {});
      this.resources.pods[`${ns}/${name}`] = meta;
      await this.endpoints.relabel((ep) => ep.podNamespace === ns && ep.podName === name);
      if (JSON.stringify(meta.namedPorts) !== before) {
        this.engine.namedPortsChanged();
        this.endpoints.regenerate();
      }
      await this.persist('resources', 'endpoints', 'identities');
    });
  }

  deletePod(ns: string, name: string): Promise<void> {
    return this.serial(async () => {
      const had = Object.keys(this.resources.pods[`${ns}/${name}`]?.namedPorts ?? {}).length > 0;
      delete this.resources.pods[`${ns}/${name}`];
      if (had) {
        this.engine.namedPortsChanged();
        this.endpoints.regenerate();
        await this.persist('resources', 'endpoints');
      } else await this.persist('resources');
    });
  }

  // ---- API ----

  private async listen(): Promise<void> {
    const router = this.routes();
    rmSync(this.cfg.socketPath, { force: true });
    this.server = createServer((req, res) => {
      void (async () => {
        if (await handleCniHttp(req, res, this.cni, () => this.ready)) return;
        await router.handle(req, res);
      })();
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.cfg.socketPath, () => resolve());
    });
  }

  status(): Record<string, unknown> {
    return {
      lab: this.cfg.lab,
      node: this.cfg.node,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      ready: this.ready,
      kvstore: 'memory (single node)',
      ipam: { podCidrV4: this.cfg.podCidrV4, podCidrV6: this.cfg.podCidrV6, ...this.ipam.stats() },
      endpoints: this.endpoints.list().length,
      identities: this.identities.all().length,
      policy: { revision: this.repo.revision, policies: this.repo.list().length },
      datapath: this.datapath.status(),
      monitor: this.monitor.status(),
      hubble: {
        ...this.hubble?.addresses,
        flows: this.observer.status().num_flows,
        maxFlows: this.observer.status().max_flows,
      },
      metrics: this.metricsServer?.url,
    };
  }

  private endpointView(ep: EndpointRecord): Record<string, unknown> {
    return {
      ...ep,
      identityLabels: ep.labels,
      policyEnabled: { ingress: ep.ingressEnforced, egress: ep.egressEnforced },
    };
  }

  private routes(): Router {
    const r = new Router();
    r.on('GET', '/v1/healthz', () => ({ ok: this.ready }));
    r.on('GET', '/v1/status', () => this.status());
    r.on('GET', '/v1/endpoint', () => this.endpoints.list().map((e) => this.endpointView(e)));
    r.on('GET', '/v1/endpoint/:id', (q) => this.endpointView(this.findEndpoint(q.params.id!)));
    r.on('GET', '/v1/identity', () =>
      this.identities
        .all()
        .sort((a, b) => a.id - b.id)
        .map((i) => ({
          id: i.id,
          labels: i.labels.toStrings(),
          scope: i.scope,
          refCount: this.identities.refCount(i.id),
        })),
    );
    r.on('GET', '/v1/identity/:id', (q) => {
      const i = this.identities.lookup(Number(q.params.id));
      if (!i) throw new ApiError(404, `identity ${q.params.id} not found`);
      return {
        id: i.id,
        labels: i.labels.toStrings(),
        scope: i.scope,
        refCount: this.identities.refCount(i.id),
      };
    });
    r.on('GET', '/v1/policy', () => ({
      revision: this.repo.revision,
      policies: this.repo.list().map((s) => ({
        kind: s.policy.ref.kind,
        namespace: s.policy.ref.namespace,
        name: s.policy.ref.name,
        revision: s.revision,
        rules: s.policy.rules.length,
        document: this.policyDocs.get(refKey(s.policy.ref)),
      })),
    }));
    r.on('PUT', '/v1/policy', async (q) => {
      const docs = await policyDocsFromRequest(q);
      try {
        return await this.importPolicies(docs);
      } catch (err) {
        throw policyError(err);
      }
    });
    r.on('POST', '/v1/policy/validate', async (q) => {
      const docs = await policyDocsFromRequest(q);
      const issues = validatePolicies(docs, { clusterName: this.cfg.clusterName });
      return { valid: issues.length === 0, issues };
    });
    r.on('DELETE', '/v1/policy', async (q) => {
      const b = (await q.body()) as { refs?: PolicyRef[]; all?: boolean };
      const refs = b.all ? this.repo.list().map((s) => s.policy.ref) : (b.refs ?? []);
      if (!b.all && refs.length === 0)
        throw new ApiError(400, 'refs: give at least one {kind, namespace, name}, or all: true');
      return this.deletePolicies(refs);
    });
    r.on('POST', '/v1/policy/trace', async (q) => this.trace((await q.body()) as TraceRequest));
    r.on('GET', '/v1/bpf/policy/:id', (q) => {
      const ep = this.findEndpoint(q.params.id!);
      return { endpoint: ep.id, entries: this.datapath.dumpPolicy(ep.id) };
    });
    r.on('GET', '/v1/bpf/ct', () => this.datapath.dumpCt());
    r.on('GET', '/v1/bpf/ipcache', () => this.datapath.dumpIpcache());
    r.on('GET', '/v1/bpf/endpoints', () => this.datapath.dumpEndpoints());
    r.on('GET', '/v1/bpf/metrics', () => this.datapath.dumpMetrics());
    r.on('GET', '/v1/monitor', (q) => this.monitor.stream(q));
    r.on('GET', '/v1/k8s/pods', () => this.resources.pods);
    r.on('PUT', '/v1/k8s/namespaces/:name', async (q) => {
      const b = (await q.body()) as { labels?: Record<string, string> };
      await this.setNamespace(q.params.name!, checkLabels(b.labels, 'labels'));
      return {};
    });
    r.on('PUT', '/v1/k8s/pods/:ns/:name', async (q) => {
      const b = (await q.body()) as Partial<PodMeta>;
      const meta: PodMeta = { labels: checkLabels(b.labels, 'labels'), namedPorts: b.namedPorts ?? {} };
      if (b.serviceAccount) meta.serviceAccount = b.serviceAccount;
      await this.setPod(q.params.ns!, q.params.name!, meta);
      return {};
    });
    r.on('DELETE', '/v1/k8s/pods/:ns/:name', async (q) => {
      await this.deletePod(q.params.ns!, q.params.name!);
      return {};
    });
    return r;
  }

  findEndpoint(ref: string): EndpointRecord {
    const ep = /^\d+$/.test(ref)
      ? this.endpoints.get(Number(ref))
      : ref.includes('/')
        ? this.endpoints.byPod(ref.split('/')[0]!, ref.split('/')[1]!)
        : (this.endpoints.byIp(ref) ?? this.endpoints.byPod('default', ref));
    if (!ep) throw new ApiError(404, `endpoint ${ref} not found (give an ID, an IP, or namespace/pod)`);
    return ep;
  }

  private trace(t: TraceRequest): unknown {
    const side = (s: TraceSide | undefined, what: string) => {
      if (!s) throw new ApiError(400, `${what}: required`);
      if (s.pod) {
        const [ns, name] = s.pod.includes('/') ? s.pod.split('/') : ['default', s.pod];
        const ep = this.endpoints.byPod(ns!, name!);
        if (ep) return { labels: LabelSet.parse(ep.labels), namedPorts: ep.namedPorts };
        return { labels: this.endpoints.podLabels(ns!, name!).labels, namedPorts: {} };
      }
      if (s.identity !== undefined) {
        const i = this.identities.lookup(s.identity);
        if (!i) throw new ApiError(404, `${what}.identity: identity ${s.identity} not found`);
        return { labels: i.labels, namedPorts: {} };
      }
      if (s.labels) return { labels: LabelSet.parse(s.labels, 'k8s'), namedPorts: {} };
      throw new ApiError(400, `${what}: give pod, identity or labels`);
    };
    const src = side(t.src, 'src');
    const dst = side(t.dst, 'dst');
    const dport = t.dport ?? 0;
    const protocol = t.protocol ?? 'TCP';
    const r = this.engine.trace({ src, dst, dport, protocol });
    return {
      ...r,
      src: { labels: src.labels.toStrings() },
      dst: { labels: dst.labels.toStrings() },
      dport,
      protocol,
      revision: this.repo.revision,
    };
  }
}

interface TraceSide {
  pod?: string;
  identity?: number;
  labels?: string[];
}
interface TraceRequest {
  src?: TraceSide;
  dst?: TraceSide;
  dport?: number;
  protocol?: string;
}

function refKey(r: PolicyRef): string {
  return r.namespace ? `${r.kind}/${r.namespace}/${r.name}` : `${r.kind}/${r.name}`;
}

function ifNametoindexSafe(name: string): number {
  try {
    return ifindexOf(name);
  } catch {
    return 0;
  }
}

export function hostPrefix(ip: string): string {
  return isIPv6(ip) ? `${ip}/128` : `${ip}/32`;
}

function checkLabels(v: unknown, field: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ApiError(400, `${field}: must be a map of strings`);
  for (const [k, x] of Object.entries(v))
    if (typeof x !== 'string') throw new ApiError(400, `${field}.${k}: must be a string`);
  return v as Record<string, string>;
}

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

function policyError(err: unknown): unknown {
  if (err instanceof PolicyValidationError) return new ApiError(400, err.message, err.issues);
  return err;
}
