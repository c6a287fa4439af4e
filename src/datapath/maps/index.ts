/**
 * Typed wrappers over the node's pinned datapath maps. `DatapathMaps.open(pinDir)` opens every map
 * the datapath objects pin by name (one per name, shared by every object that declares it) from the
 * node's bpffs directory, creating and pinning missing ones unless `create: false`, checked against
 * the generated descriptors.
 */
import { type BpfMap, MapType } from '../../ebpf/index.js';
import type { MapDescriptor } from './codec.js';
import { ConntrackMaps } from './conntrack.js';
import { EndpointsMap } from './endpoints.js';
import { EventsMap } from './events.js';
import { DEFS, MAPS } from './generated/layouts.js';
import { IpcacheMap } from './ipcache.js';
import { LB_MAP_NAMES, type LbFamilyMaps, LbMaps, openMaglevMap } from './lb.js';
import { MetricsMap } from './metrics.js';
import { NodePortNatMap } from './nodeport.js';
import { type OpenMapOptions, openPinnedMap } from './open.js';
import { PolicyMaps } from './policy.js';

export * from './addr.js';
export { checkObjectLayouts, GENERATED_LAYOUTS, layoutDifferences } from './check.js';
export * from './codec.js';
export * from './conntrack.js';
export * from './endpoints.js';
export * from './events.js';
export * as layouts from './generated/layouts.js';
export { DEFS, MAPS, OBJECTS, STRUCTS } from './generated/layouts.js';
export * from './ipcache.js';
export * from './lb.js';
export * from './metrics.js';
export * from './nodeport.js';
export * from './open.js';
export * from './policy.js';

export type MapName = keyof typeof MAPS;

export interface DatapathMapsOptions extends OpenMapOptions {
  /** Maglev table size M (backend IDs per service table, up to MAX_MAGLEV_TABLE_SIZE; default
   * LB_MAGLEV_LUT_SIZE 16381). Pinned maglev maps made for another M are replaced. */
  maglevTableSize?: number;
}

const MAGLEV_MAPS = new Set<string>([LB_MAP_NAMES[4].maglev, LB_MAP_NAMES[6].maglev]);

export class DatapathMaps implements Disposable {
  readonly ipcache: IpcacheMap;
  readonly endpoints: EndpointsMap;
  readonly policy: PolicyMaps;
  readonly conntrack: ConntrackMaps;
  readonly metrics: MetricsMap;
  readonly events: EventsMap;
  /** The service load-balancing maps of both families. */
  readonly lb: LbMaps;
  /** NAT of connections from outside the node to services (NodePort). */
  readonly nodeportNat: NodePortNatMap;

  private constructor(
    readonly pinDir: string,
    private readonly maps: ReadonlyMap<MapName, BpfMap>,
    maglevTableSize: number,
  ) {
    const m = (n: MapName): BpfMap => maps.get(n)!;
    this.ipcache = new IpcacheMap(m('cilium_ipcache'));
    this.endpoints = new EndpointsMap(m('cilium_lxc'));
    this.policy = new PolicyMaps(m('cilium_policy_maps'), {
      layers: m('cilium_policy_layers'),
      epLayers: m('cilium_policy_ep_layers'),
    });
    this.conntrack = new ConntrackMaps(m('cilium_ct4_global'), m('cilium_ct6_global'));
    this.metrics = new MetricsMap(m('cilium_metrics'), m('cilium_metrics_fwd'));
    this.events = new EventsMap(m('cilium_events'), m('cilium_events_lost'));
    const lb = (f: 4 | 6): LbFamilyMaps => {
      const n = LB_MAP_NAMES[f];
      return {
        services: m(n.services),
        backends: m(n.backends),
        revNat: m(n.revNat),
        affinity: m(n.affinity),
        sourceRange: m(n.sourceRange),
        maglev: m(n.maglev),
        reverseSk: m(n.reverseSk),
      };
    };
    this.lb = new LbMaps(lb(4), lb(6), m('cilium_lb_affinity_match'), maglevTableSize);
    this.nodeportNat = new NodePortNatMap(m('cilium_nodeport_nat4'));
  }

  /** Opens (or creates and pins) every node map under `pinDir`. */
  static open(pinDir: string, opts: DatapathMapsOptions = {}): DatapathMaps {
    const maglev = opts.maglevTableSize ?? DEFS.LB_MAGLEV_LUT_SIZE;
    const maps = new Map<MapName, BpfMap>();
    try {
      for (const [name, d] of Object.entries(MAPS) as [MapName, MapDescriptor][]) {
        // socket local storage needs its object's BTF: the object's loader creates it (bpf_sock.o)
        if (d.pinning !== 'by-name' || d.type === MapType.SK_STORAGE) continue;
        maps.set(
          name,
          MAGLEV_MAPS.has(name) ? openMaglevMap(pinDir, d, maglev, opts) : openPinnedMap(pinDir, d, opts),
        );
      }
    } catch (err) {
      for (const m of maps.values()) m.close();
      throw err;
    }
    return new DatapathMaps(pinDir, maps, maglev);
  }

  /** The raw map (e.g. as a Collection mapReplacement). Owned by this object. */
  raw(name: MapName): BpfMap {
    return this.maps.get(name)!;
  }

  /** All maps by name, for Collection.load's mapReplacements. */
  replacements(): Record<string, BpfMap> {
    return Object.fromEntries(this.maps);
  }

  close(): void {
    this.policy.close();
    for (const m of this.maps.values()) m.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
