/**
 * The node's datapath as the agent drives it: the pinned maps of this node plus the per-endpoint
 * program loader. Implements the endpoint manager's DatapathOps, and the dumps behind `bpf ...`.
 */
import type { Logger } from 'pino';
import { DatapathLoader, DatapathMaps, type EndpointDatapathConfig, formatMac } from '../datapath/index.js';
import type { Collection } from '../ebpf/index.js';
import type { DatapathOps, Enforcement } from '../endpoint/manager.js';
import type { EndpointRecord } from '../endpoint/types.js';
import type { MapDiff, MapEntry } from '../policy/index.js';
import type { AgentConfig } from './config.js';

export class NodeDatapath implements DatapathOps {
  private maps?: DatapathMaps;
  private loader?: DatapathLoader;
  private routerV4?: string;
  private routerV6?: string;

  constructor(
    readonly cfg: AgentConfig,
    readonly log: Logger,
  ) {}

  /** Opens (or creates and pins) the node's maps and the loader; adopts what is pinned. */
  open(router: { ipv4?: string; ipv6?: string } = {}): void {
    this.maps = DatapathMaps.open(this.cfg.bpffsDir);
    this.loader = DatapathLoader.open({ bpffs: this.cfg.bpffsDir, maps: this.maps });
    if (router.ipv4) this.routerV4 = router.ipv4;
    if (router.ipv6) this.routerV6 = router.ipv6;
    const pinned = this.loader.restore();
    if (pinned.length)
      this.log.info({ endpoints: pinned.map((p) => p.id) }, 'adopted pinned endpoint programs');
  }

  close(): void {
    this.loader?.close();
    this.maps?.close();
  }

  get m(): DatapathMaps {
    if (!this.maps) throw new Error('datapath not open');
    return this.maps;
  }

  private get l(): DatapathLoader {
    if (!this.loader) throw new Error('datapath not open');
    return this.loader;
  }

  upsertIpcache(prefix: string, identity: number, tunnelEndpoint?: string): void {
    this.m.ipcache.upsert(prefix, { identity, ...(tunnelEndpoint ? { tunnelEndpoint } : {}) });
  }

  deleteIpcache(prefix: string): void {
    this.m.ipcache.delete(prefix);
  }

  upsertEndpoint(ep: EndpointRecord): void {
    const info = {
      ifindex: ep.hostIfindex,
      endpointId: ep.id,
      identity: ep.identity,
      mac: ep.mac,
      nodeMac: ep.hostMac,
    };
    for (const ip of [ep.ipv4, ep.ipv6]) {
      if (!ip) continue;
      this.m.endpoints.upsert(ip, info);
      this.upsertIpcache(ip.includes(':') ? `${ip}/128` : `${ip}/32`, ep.identity);
    }
  }

  deleteEndpoint(ep: EndpointRecord): void {
    for (const ip of [ep.ipv4, ep.ipv6]) {
      if (!ip) continue;
      this.m.endpoints.delete(ip);
      this.deleteIpcache(ip.includes(':') ? `${ip}/128` : `${ip}/32`);
    }
  }

  applyPolicy(epId: number, diff: MapDiff, enforcement: Enforcement): void {
    this.m.policy.apply(epId, diff, enforcement);
  }

  syncPolicy(epId: number, entries: readonly MapEntry[], enforcement: Enforcement): void {
    this.m.policy.replace(epId, entries, enforcement);
  }

  /**
   * Empties an endpoint's policy trie but keeps it in cilium_policy_maps for the next endpoint
   * with this ID: publishing a trie in the map-of-maps waits for an RCU grace period (milliseconds),
   * which should not be paid on the CNI ADD path. A trie of an unused ID is never consulted: no
   * program and no cilium_lxc entry carries that ID.
   */
  removePolicy(epId: number): void {
    const cur = this.m.policy.dump(epId);
    if (cur?.length)
      this.m.policy.apply(
        epId,
        { upserts: [], deletes: cur.map((e) => e.key) },
        { ingressEnforced: true, egressEnforced: true },
      );
  }

  prewarm(epIds: readonly number[]): void {
    for (const id of epIds) {
      if (!this.m.policy.has(id))
        this.m.policy.replace(id, [], { ingressEnforced: true, egressEnforced: true });
    }
  }

  private config(ep: EndpointRecord): EndpointDatapathConfig {
    return {
      id: ep.id,
      identity: ep.identity,
      ipv4: ep.ipv4,
      ipv6: ep.ipv6,
      mac: ep.mac,
      nodeMac: ep.hostMac,
      interface: ep.hostIfName,
      routerIpv4: this.routerV4,
      routerIpv6: this.routerV6,
      monitorAggregation: this.cfg.monitorAggregation,
      policyAuditMode: this.cfg.policyAuditMode,
    };
  }

  preload(ep: EndpointRecord): Promise<Collection> {
    return this.l.preload(this.config(ep));
  }

  discard(preloaded: Promise<unknown>): void {
    (preloaded as Promise<Collection>).then((c) => c.close()).catch(() => {});
  }

  async attach(ep: EndpointRecord, preloaded?: Promise<unknown>): Promise<void> {
    const r = await this.l.loadAsync(this.config(ep), preloaded as Promise<Collection> | undefined);
    this.log.debug({ endpoint: ep.id, replaced: r.replaced, ...r.timings }, 'endpoint programs attached');
  }

  detach(ep: EndpointRecord): void {
    this.l.remove(ep.id);
  }

  // ---- introspection ----

  dumpPolicy(epId: number): Record<string, unknown>[] {
    const entries = this.m.policy.dump(epId) ?? [];
    return entries.map((e) => ({
      direction: e.key.egress ? 'Egress' : 'Ingress',
      identity: e.key.identity === 0 ? 'ANY' : e.key.identity,
      protocol: protoName(e.key.protocol),
      port: portText(e.key),
      action: e.entry.deny ? 'deny' : 'allow',
      flags: e.flags,
      proxyPort: e.entry.proxyPort || '',
      cookie: e.entry.ruleCookie,
    }));
  }

  dumpCt(): Record<string, unknown>[] {
    return this.m.conntrack.list().map((e) => ({ ...e }));
  }

  dumpIpcache(): Record<string, unknown>[] {
    return this.m.ipcache.list().map((e) => ({
      prefix: e.prefix,
      identity: e.identity,
      tunnelEndpoint: (e as { tunnelEndpoint?: string }).tunnelEndpoint ?? '',
      flags: e.flags,
    }));
  }

  dumpEndpoints(): Record<string, unknown>[] {
    return this.m.endpoints.list().map((e) => ({
      ip: e.ip,
      endpoint: e.endpointId,
      identity: e.identity,
      ifindex: e.ifindex,
      mac: e.mac,
      nodeMac: e.nodeMac,
      flags: e.flags,
    }));
  }

  dumpMetrics(): Record<string, unknown>[] {
    return this.m.metrics.list().map((e) => ({ ...e }));
  }

  /** Entries / max entries of the node's maps (per-endpoint policy tries: the fullest one). */
  mapPressure(): Map<string, number> {
    const out = new Map<string, number>();
    const count = (m: { keys(): Iterable<unknown> }) => {
      let n = 0;
      for (const _ of m.keys()) n++;
      return n;
    };
    out.set('cilium_lxc', count(this.m.endpoints.map) / this.m.endpoints.map.maxEntries);
    out.set('cilium_ipcache', count(this.m.ipcache.map) / this.m.ipcache.map.maxEntries);
    let worst = 0;
    for (const id of this.m.policy.endpoints())
      worst = Math.max(worst, (this.m.policy.dump(id)?.length ?? 0) / 16384);
    out.set('cilium_policy', worst);
    return out;
  }

  status(): Record<string, unknown> {
    if (!this.maps) return { open: false };
    return {
      open: true,
      bpffs: this.cfg.bpffsDir,
      policyMaps: this.m.policy.endpoints().length,
      eventsLost: this.m.events.lost().toString(),
    };
  }
}

export function protoName(p: number): string {
  return (
    ({ 0: 'ANY', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' } as Record<number, string>)[p] ??
    String(p)
  );
}

function portText(k: { dport: number; prefixLen: number; protocol: number }): string {
  if (k.prefixLen <= 48) return 'ANY';
  const span = 2 ** (64 - k.prefixLen);
  return span === 1 ? String(k.dport) : `${k.dport}-${k.dport + span - 1}`;
}

export { formatMac };
