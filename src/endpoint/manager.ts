/**
 * Endpoint manager: turns a plumbed pod interface into an endpoint with a security identity, a
 * policy and attached datapath programs, and keeps it in step as labels, identities and policies
 * change. Control-plane decisions happen here; writing them into BPF maps is delegated to the
 * DatapathOps the agent wires in.
 */
import type { AsyncIdentityAllocator } from '../identity/async.js';
import { LabelSet, podIdentityLabels } from '../labels/index.js';
import type { EndpointUpdate, MapDiff, MapEntry, PolicyEngine } from '../policy/index.js';
import { type EndpointRecord, MAX_ENDPOINT_ID } from './types.js';

/** What the endpoint manager needs from the datapath (implemented over the pinned BPF maps). */
export interface DatapathOps {
  /** Local delivery entry (cilium_lxc) and ipcache entry for the endpoint's addresses. */
  upsertEndpoint(ep: EndpointRecord): void;
  deleteEndpoint(ep: EndpointRecord): void;
  /** Applies a policy map diff for an endpoint (creating its policy map on first use). */
  applyPolicy(epId: number, diff: MapDiff, enforcement: Enforcement): void;
  /** Converges an endpoint's policy map to exactly `entries` (after a restart: prunes leftovers). */
  syncPolicy(epId: number, entries: readonly MapEntry[], enforcement: Enforcement): void;
  removePolicy(epId: number): void;
  /** Readies the policy maps of endpoint IDs about to be used, off the CNI ADD path. */
  prewarm(epIds: readonly number[]): void;
  /**
   * Takes the endpoint's programs (verified ahead, or verified now) before its interface exists;
   * the result is handed back to attach(). Must not touch shared maps.
   */
  preload(ep: EndpointRecord): Promise<unknown>;
  /** Releases a preload that will not be attached. */
  discard(preloaded: Promise<unknown>): void;
  /** Loads (or takes the preloaded programs) and attaches, or atomically replaces, the endpoint's programs. */
  attach(ep: EndpointRecord, preloaded?: Promise<unknown>): Promise<void>;
  detach(ep: EndpointRecord): void;
}

/** Which directions some rule enforces (an unenforced direction's allow-all is marked as such). */
export interface Enforcement {
  ingressEnforced: boolean;
  egressEnforced: boolean;
}

export interface PodMeta {
  labels: Record<string, string>;
  serviceAccount?: string;
  namedPorts: Record<string, { port: number; protocol: string }>;
}

export interface NewEndpoint {
  containerId: string;
  ifName: string;
  netns: string;
  podNamespace: string;
  podName: string;
  ipv4?: string | undefined;
  ipv6?: string | undefined;
  mac: string;
  hostIfName: string;
  hostIfindex: number;
  hostMac: string;
}

export interface PendingEndpoint {
  ep: EndpointRecord;
  labels: LabelSet;
  /** Resolves once the identity is allocated (ep.identity set). */
  identity: Promise<void>;
  programs: Promise<unknown>;
}

export interface MetaSource {
  pod(namespace: string, name: string): PodMeta | undefined;
  namespaceLabels(namespace: string): Record<string, string>;
}

export class EndpointManager {
  readonly #eps = new Map<number, EndpointRecord>();
  /** By address (Hubble resolves two per flow): the latest endpoint given each address. */
  readonly #byIp = new Map<string, EndpointRecord>();

  constructor(
    private readonly identities: AsyncIdentityAllocator,
    private readonly engine: PolicyEngine,
    private readonly datapath: DatapathOps,
    private readonly meta: MetaSource,
    private readonly clusterName: string,
  ) {}

  list(): EndpointRecord[] {
    return [...this.#eps.values()].sort((a, b) => a.id - b.id);
  }

  get(id: number): EndpointRecord | undefined {
    return this.#eps.get(id);
  }

  byContainer(containerId: string, ifName: string): EndpointRecord | undefined {
    for (const ep of this.#eps.values())
      if (ep.containerId === containerId && ep.ifName === ifName) return ep;
    return undefined;
  }

  byPod(namespace: string, name: string): EndpointRecord | undefined {
    for (const ep of this.#eps.values()) if (ep.podNamespace === namespace && ep.podName === name) return ep;
    return undefined;
  }

  byIp(ip: string): EndpointRecord | undefined {
    return this.#byIp.get(ip);
  }

  #add(ep: EndpointRecord): void {
    this.#eps.set(ep.id, ep);
    if (ep.ipv4) this.#byIp.set(ep.ipv4, ep);
    if (ep.ipv6) this.#byIp.set(ep.ipv6, ep);
  }

  #delete(ep: EndpointRecord): void {
    this.#eps.delete(ep.id);
    for (const ip of [ep.ipv4, ep.ipv6])
      if (ip !== undefined && this.#byIp.get(ip) === ep) this.#byIp.delete(ip);
  }

  /** Identity labels for a pod as upstream derives them (pod labels, namespace labels, SA, cluster). */
  podLabels(namespace: string, name: string): { labels: LabelSet; meta: PodMeta | undefined } {
    const meta = this.meta.pod(namespace, name);
    const input: Parameters<typeof podIdentityLabels>[0] = {
      labels: meta?.labels ?? {},
      namespace,
      namespaceLabels: this.meta.namespaceLabels(namespace),
      cluster: this.clusterName,
    };
    if (meta?.serviceAccount) input.serviceAccount = meta.serviceAccount;
    return { labels: podIdentityLabels(input), meta };
  }

  /**
   * Creates an endpoint: identity, policy, map entries, then programs (last, so the policy is in
   * place before the first packet). Undoes what it did when a step fails.
   */
  async create(n: NewEndpoint): Promise<EndpointRecord> {
    const existing = this.byContainer(n.containerId, n.ifName);
    if (existing) return existing;
    return this.finish(this.begin(n), n.hostIfindex);
  }

  /**
   * First half of create(), before the pod's interfaces exist: reserves the endpoint ID, takes the
   * identity and starts verifying the programs, so that work overlaps the interface setup.
   */
  begin(n: Omit<NewEndpoint, 'hostIfindex'>): PendingEndpoint {
    const id = this.#nextId();
    const { labels, meta } = this.podLabels(n.podNamespace, n.podName);
    const ep: EndpointRecord = {
      id,
      containerId: n.containerId,
      ifName: n.ifName,
      netns: n.netns,
      podNamespace: n.podNamespace,
      podName: n.podName,
      labels: labels.toStrings(),
      identity: 0,
      mac: n.mac,
      hostIfName: n.hostIfName,
      hostIfindex: 0,
      hostMac: n.hostMac,
      namedPorts: meta?.namedPorts ?? {},
      policyRevision: 0,
      ingressEnforced: false,
      egressEnforced: false,
      state: 'waiting-for-interface',
      createdAt: new Date().toISOString(),
    };
    if (n.ipv4) ep.ipv4 = n.ipv4;
    if (n.ipv6) ep.ipv6 = n.ipv6;
    this.#add(ep);
    // The identity may come from the kvstore; the programs (a copy verified ahead when there is one)
    // are taken once it is known, and get the endpoint's settings (SECLABEL among them) at attach.
    const identity = this.identities.allocate(labels).then((r) => {
      ep.identity = r.identity.id;
    });
    const programs = identity.then(() => this.datapath.preload(ep));
    identity.catch(() => {}); // reported by finish(); a step nobody waits for must not crash us
    programs.catch(() => {});
    return { ep, labels, identity, programs };
  }

  /**
   * Second half of create(): the interface exists. `recorded` runs once the record is complete
   * (identity, policy), before the programs go in: the caller can start saving it meanwhile.
   */
  async finish(
    p: PendingEndpoint,
    hostIfindex: number,
    recorded?: (ep: EndpointRecord) => void,
  ): Promise<EndpointRecord> {
    const { ep, labels } = p;
    ep.hostIfindex = hostIfindex;
    ep.state = 'regenerating';
    try {
      await p.identity;
      this.datapath.upsertEndpoint(ep);
      this.#applyUpdate(this.engine.upsertEndpoint(ep.id, { labels, namedPorts: ep.namedPorts }));
      // Other endpoints' policies may select the new identity: push those changes too.
      this.regenerate();
      recorded?.(ep);
      await this.datapath.attach(ep, p.programs);
      ep.state = 'ready';
      return ep;
    } catch (err) {
      await this.#forget(ep);
      throw err;
    }
  }

  /** Drops a begun endpoint whose interfaces could not be created. */
  async abort(p: PendingEndpoint): Promise<void> {
    this.datapath.discard(p.programs);
    this.#delete(p.ep);
    await p.identity.catch(() => {});
    if (p.ep.identity) await this.identities.release(p.ep.identity);
  }

  /** Removes an endpoint: programs first (no traffic without policy), then maps and identity. */
  async remove(ep: EndpointRecord): Promise<void> {
    ep.state = 'disconnecting';
    await this.#forget(ep);
    this.regenerate();
  }

  async #forget(ep: EndpointRecord): Promise<void> {
    const steps = [
      () => this.datapath.detach(ep),
      () => this.datapath.deleteEndpoint(ep),
      () => this.engine.removeEndpoint(ep.id),
      () => this.datapath.removePolicy(ep.id),
      async () => {
        if (ep.identity) await this.identities.release(ep.identity);
      },
    ];
    this.#delete(ep);
    let first: unknown;
    for (const s of steps) {
      try {
        await s();
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  }

  /**
   * Re-derives identities after pod or namespace labels changed, for the matching endpoints.
   * Returns the endpoints whose identity changed.
   */
  async relabel(filter: (ep: EndpointRecord) => boolean): Promise<EndpointRecord[]> {
    const changed: EndpointRecord[] = [];
    for (const ep of this.#eps.values()) {
      if (ep.state === 'waiting-for-interface' || !filter(ep)) continue;
      const { labels, meta } = this.podLabels(ep.podNamespace, ep.podName);
      const namedPorts = meta?.namedPorts ?? ep.namedPorts;
      if (
        labels.toString() === LabelSet.parse(ep.labels).toString() &&
        JSON.stringify(namedPorts) === JSON.stringify(ep.namedPorts)
      ) {
        continue;
      }
      const old = ep.identity;
      const { identity } = await this.identities.allocate(labels);
      ep.identity = identity.id;
      ep.labels = labels.toStrings();
      ep.namedPorts = namedPorts;
      this.datapath.upsertEndpoint(ep);
      this.#applyUpdate(this.engine.upsertEndpoint(ep.id, { labels, namedPorts }));
      await this.datapath.attach(ep); // a copy's settings are written once: a new copy is swapped in
      await this.identities.release(old);
      changed.push(ep);
    }
    if (changed.length) this.regenerate();
    return changed;
  }

  /** Pushes policy changes (from policy, identity or selection changes) to affected endpoints. */
  regenerate(): EndpointUpdate[] {
    const updates = this.engine.regenerate();
    for (const u of updates) this.#applyUpdate(u);
    // Every endpoint the change did not touch enforces the latest revision as well.
    const revision = this.engine.repo.revision;
    for (const ep of this.#eps.values()) if (ep.state === 'ready') ep.policyRevision = revision;
    return updates;
  }

  /**
   * Restores endpoints from state after a restart: identities were restored already; recompute
   * policy and converge the maps to it (pruning leftovers), re-adopt the pinned programs.
   */
  async restore(records: EndpointRecord[]): Promise<void> {
    for (const ep of records) {
      this.#add(ep);
      const labels = LabelSet.parse(ep.labels);
      // Take the reference this endpoint holds (the number stays, the numbering was restored).
      ep.identity = (await this.identities.allocate(labels)).identity.id;
      const update = this.engine.upsertEndpoint(ep.id, { labels, namedPorts: ep.namedPorts });
      this.datapath.upsertEndpoint(ep);
      this.datapath.syncPolicy(ep.id, [...update.policy.state.values()], update.policy);
      this.#record(ep, update);
      await this.datapath.attach(ep);
      ep.state = 'ready';
    }
    this.regenerate();
  }

  #applyUpdate(u: EndpointUpdate): void {
    const ep = this.#eps.get(u.endpointId);
    this.datapath.applyPolicy(u.endpointId, u.diff, u.policy);
    if (ep) this.#record(ep, u);
  }

  #record(ep: EndpointRecord, u: EndpointUpdate): void {
    ep.policyRevision = u.policy.revision;
    ep.ingressEnforced = u.policy.ingressEnforced;
    ep.egressEnforced = u.policy.egressEnforced;
  }

  #nextId(): number {
    const [id] = this.spareIds(1);
    if (id === undefined) throw new Error(`no free endpoint ID (max ${MAX_ENDPOINT_ID} endpoints per node)`);
    return id;
  }

  /** The next `n` endpoint IDs that create() will hand out, lowest first. */
  spareIds(n: number): number[] {
    const out: number[] = [];
    for (let id = 1; id <= MAX_ENDPOINT_ID && out.length < n; id++) if (!this.#eps.has(id)) out.push(id);
    return out;
  }
}
