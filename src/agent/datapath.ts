/**
 * The node's datapath as the agent drives it: the pinned maps of this node, the per-endpoint
 * program loader, the targets the reconcilers write through, and the dumps behind `bpf ...`.
 */
import type { Logger } from 'pino';
import {
  type BpfCtEntry,
  type BpfEndpointEntry,
  type BpfIpcacheEntry,
  type BpfLbEntry,
  type BpfMetricsEntry,
  type StatusResponse,
  toWire,
} from '../api/types.js';
import {
  DatapathLoader,
  DatapathMaps,
  type EndpointDatapathConfig,
  formatMac,
  type LbTargets,
  MAPS,
  type NodeDatapathConfig,
} from '../datapath/index.js';
import { OVERLAY_DEVICE } from '../datapath/overlay.js';
import type { Collection } from '../ebpf/index.js';
import { ifindexOf } from '../ebpf/index.js';
import type { DatapathTargets, LbMapTargets, LxcInfo } from '../endpoint/datapath-state.js';
import type { EndpointRecord } from '../endpoint/types.js';
import type { IpcacheInfo } from '../ipcache/ipcache.js';
import {
  affinityMatchKey,
  backendStateName,
  familyIdKey,
  formatServiceFlags,
  maglevConfig,
  parseAffinityMatchKey,
  parseFamilyIdKey,
  parseServiceRowKey,
  parseSourceRangeKey,
  serviceRowKey,
  sourceRangeKey,
} from '../service/index.js';
import { type KeyedMap, setRows } from '../statedb/map-target.js';
import type { AgentConfig } from './config.js';

/**
 * Copies of the endpoint programs kept verified ahead (a few ADDs in a row skip the verifier). The
 * loader verifies more once endpoints take copies (as many as were taken, up to this). Eight cover
 * a burst of pods for about a second: a copy takes ~25 ms of a core to verify on a quiet machine,
 * ADDs can come every 15-30 ms.
 */
export const SPARE_PROGRAM_COPIES = 8;
/**
 * Copies verified as the agent starts, so that a node's first pods do not wait for the verifier
 * either (~25 ms of one core each, in the background).
 */
export const SPARE_PROGRAM_COPIES_AT_START = 2;

export class NodeDatapath {
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
    this.maps = DatapathMaps.open(this.cfg.bpffsDir, { maglevTableSize: this.cfg.maglevTableSize });
    this.loader = DatapathLoader.open({
      bpffs: this.cfg.bpffsDir,
      maps: this.maps,
      // every endpoint has the agent's (config() below): the spare copies are made with it
      node: { ...nodeDatapathConfig(this.cfg), monitorAggregation: this.cfg.monitorAggregation },
      spares: SPARE_PROGRAM_COPIES,
      // tc filters: no RCU grace periods under the rtnl lock on the CNI ADD path (loader.ts)
      attach: 'tc',
    });
    if (router.ipv4) this.routerV4 = router.ipv4;
    if (router.ipv6) this.routerV6 = router.ipv6;
    void this.loader.fillSpares(SPARE_PROGRAM_COPIES_AT_START);
    const pinned = this.loader.restore();
    if (pinned.length)
      this.log.info({ endpoints: pinned.map((p) => p.id) }, 'adopted pinned endpoint programs');
  }

  close(): void {
    this.loader?.close();
    this.maps?.close();
  }

  get isOpen(): boolean {
    return this.maps !== undefined;
  }

  get m(): DatapathMaps {
    if (!this.maps) throw new Error('datapath not open');
    return this.maps;
  }

  private get l(): DatapathLoader {
    if (!this.loader) throw new Error('datapath not open');
    return this.loader;
  }

  /** What the reconcilers write through: the real maps and programs of this node. */
  targets(): DatapathTargets {
    return {
      ipcache: {
        set: (prefix: string, info: IpcacheInfo) => this.m.ipcache.upsert(prefix, info),
        delete: (prefix: string) => void this.m.ipcache.delete(prefix),
        keys: () => this.m.ipcache.list().map((e) => e.prefix),
      },
      lxc: {
        set: (ip: string, info: LxcInfo) => this.m.endpoints.upsert(ip, info),
        delete: (ip: string) => void this.m.endpoints.delete(ip),
        keys: () => this.m.endpoints.list().map((e) => e.ip),
      },
      policy: {
        endpoints: () => this.m.policy.endpoints(),
        has: (id, opts) => this.m.policy.has(id, opts),
        replace: (id, entries, enf) => this.m.policy.replace(id, entries, enf),
        replaceAsync: (id, entries, enf) => this.m.policy.replaceAsync(id, entries, enf),
        apply: (id, diff, enf) => this.m.policy.apply(id, diff, enf),
        dump: (id, opts) => this.m.policy.dump(id, opts),
        delete: (id) => this.m.policy.delete(id),
        setLayers: (id, layers) => this.m.policy.setLayers(id, layers),
        layersOf: (id) => this.m.policy.layersOf(id),
        pruneLayers: () => this.m.policy.pruneLayers(),
        prepareLayers: (n) => this.m.policy.prepareLayers(n),
      },
      programs: {
        preload: (ep) => this.l.preload(this.config(ep)),
        discard: (p) => void (p as Promise<Collection>).then((c) => c.close()).catch(() => {}),
        attach: async (ep, preloaded) => {
          const r = await this.l.loadAsync(this.config(ep), preloaded as Promise<Collection> | undefined);
          this.log.debug(
            { endpoint: ep.id, replaced: r.replaced, ...r.timings },
            'endpoint programs attached',
          );
        },
        prelink: (ep, ifindex) => this.l.prelink(this.config(ep), ifindex),
        detach: (id) => this.l.remove(id),
        pinned: () => this.l.restore().map((p) => p.id),
      },
      lb: this.lbTargets(),
      interfaceExists: (name) => {
        // The agent runs in the node's network namespace; /sys may show another one, so ask the kernel.
        try {
          return ifindexOf(name) > 0;
        } catch {
          return false;
        }
      },
    };
  }

  private lbTargets(): LbMapTargets {
    // Opened lazily: the maps open at start, the targets are built before.
    let t: LbTargets | undefined;
    const get = () => {
      t ??= this.m.lb.targets({
        service: serviceRowKey,
        parseService: parseServiceRowKey,
        familyId: familyIdKey,
        parseFamilyId: parseFamilyIdKey,
        affinityMatch: affinityMatchKey,
        parseAffinityMatch: parseAffinityMatchKey,
        sourceRange: sourceRangeKey,
        parseSourceRange: parseSourceRangeKey,
      });
      return t;
    };
    const lazy = (name: keyof LbTargets): KeyedMap<never> => ({
      set: (k, v) => (get()[name] as KeyedMap<unknown>).set(k, v),
      setMany: (rows) => setRows(get()[name] as KeyedMap<unknown>, rows),
      delete: (k) => get()[name].delete(k),
      keys: () => get()[name].keys(),
    });
    return {
      services: lazy('services'),
      backends: lazy('backends'),
      revNat: lazy('revNat'),
      maglev: lazy('maglev'),
      affinityMatch: lazy('affinityMatch'),
      sourceRange: lazy('sourceRange'),
      held: () => ({
        services: this.m.lb.listServiceEntries().filter((e) => e.key.backendSlot === 0) as never,
        backends: this.m.lb.listBackends() as never,
      }),
    };
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

  // ---- introspection ----

  dumpCt(): BpfCtEntry[] {
    return toWire(this.m.conntrack.list());
  }

  dumpIpcache(): BpfIpcacheEntry[] {
    return this.m.ipcache.list().map((e) => ({
      prefix: e.prefix,
      identity: e.identity,
      tunnelEndpoint: (e as { tunnelEndpoint?: string }).tunnelEndpoint ?? '',
      flags: e.flags,
    }));
  }

  dumpEndpoints(): BpfEndpointEntry[] {
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

  /** The LB maps as `bpf lb list` shows them: each master entry with its slots' backends. */
  dumpLb(): BpfLbEntry[] {
    const backends = new Map(this.m.lb.listBackends().map((b) => [b.id, b]));
    const ap = (family: number, a: string, port: number) =>
      family === 6 ? `[${a}]:${port}` : `${a}:${port}`;
    return this.m.lb.listFrontends().map((f) => ({
      frontend: `${ap(f.frontend.family, f.frontend.address, f.frontend.port)}/${protoName(f.frontend.protocol)}`,
      revNatIndex: f.master.revNatIndex,
      flags: formatServiceFlags(f.master.flags | (f.master.flags2 << 8)),
      count: f.master.count,
      qcount: f.master.qcount,
      slots: f.backends.map((id, i) => {
        const b = backends.get(id);
        return {
          slot: i + 1,
          backendId: id,
          backend: b ? `${ap(b.family, b.address, b.port)}/${protoName(b.protocol)}` : '(missing)',
          state: b ? (backendStateName(b.state) ?? String(b.state)) : '',
        };
      }),
    }));
  }

  dumpMetrics(): BpfMetricsEntry[] {
    return toWire(this.m.metrics.list());
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
      worst = Math.max(
        worst,
        (this.m.policy.dump(id, { own: true })?.length ?? 0) / MAPS.cilium_policy_maps.inner.maxEntries,
      );
    out.set('cilium_policy', worst);
    return out;
  }

  status(): StatusResponse['datapath'] {
    if (!this.maps) return { open: false };
    return {
      open: true,
      bpffs: this.cfg.bpffsDir,
      policyMaps: this.m.policy.endpoints().length,
      eventsLost: this.m.events.lost().toString(),
    };
  }
}

/**
 * Node-wide settings every datapath object is loaded with: allow-localhost, and the LB algorithm
 * with the Maglev flow-hash seed (the same seed on every node, so a flow picks the same backend).
 */
export function nodeDatapathConfig(cfg: AgentConfig): NodeDatapathConfig {
  return {
    // the overlay device exists before the datapath opens (datapathCell)
    encapIfindex: cfg.routingMode === 'vxlan' ? ifindexOf(OVERLAY_DEVICE) : 0,
    allowLocalhost: cfg.allowLocalhost,
    lbAlgorithm: cfg.lbAlgorithm,
    lbHashSeed: maglevConfig({ tableSize: cfg.maglevTableSize }).seedJhash0,
    ctAccounting: cfg.conntrackAccounting,
  };
}

export function protoName(p: number): string {
  return (
    ({ 0: 'ANY', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' } as Record<number, string>)[p] ??
    String(p)
  );
}

export { formatMac };
