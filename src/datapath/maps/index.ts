/**
 * Typed wrappers over the node's pinned datapath maps. `DatapathMaps.open(pinDir)` opens every map
 * the datapath objects pin by name (one per name, shared by every object that declares it) from the
 * node's bpffs directory, creating and pinning missing ones unless `create: false`, checked against
 * the generated descriptors.
 */
import type { BpfMap } from '../../ebpf/index.js';
import type { MapDescriptor } from './codec.js';
import { ConntrackMaps } from './conntrack.js';
import { EndpointsMap } from './endpoints.js';
import { EventsMap } from './events.js';
import { MAPS } from './generated/layouts.js';
import { IpcacheMap } from './ipcache.js';
import { MetricsMap } from './metrics.js';
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
export * from './metrics.js';
export * from './open.js';
export * from './policy.js';

export type MapName = keyof typeof MAPS;

export class DatapathMaps implements Disposable {
  readonly ipcache: IpcacheMap;
  readonly endpoints: EndpointsMap;
  readonly policy: PolicyMaps;
  readonly conntrack: ConntrackMaps;
  readonly metrics: MetricsMap;
  readonly events: EventsMap;

  private constructor(
    readonly pinDir: string,
    private readonly maps: ReadonlyMap<MapName, BpfMap>,
  ) {
    const m = (n: MapName): BpfMap => maps.get(n)!;
    this.ipcache = new IpcacheMap(m('cilium_ipcache'));
    this.endpoints = new EndpointsMap(m('cilium_lxc'));
    this.policy = new PolicyMaps(m('cilium_policy_maps'));
    this.conntrack = new ConntrackMaps(m('cilium_ct4_global'), m('cilium_ct6_global'));
    this.metrics = new MetricsMap(m('cilium_metrics'));
    this.events = new EventsMap(m('cilium_events'), m('cilium_events_lost'));
  }

  /** Opens (or creates and pins) every node map under `pinDir`. */
  static open(pinDir: string, opts: OpenMapOptions = {}): DatapathMaps {
    const maps = new Map<MapName, BpfMap>();
    try {
      for (const [name, d] of Object.entries(MAPS) as [MapName, MapDescriptor][])
        if (d.pinning === 'by-name') maps.set(name, openPinnedMap(pinDir, d, opts));
    } catch (err) {
      for (const m of maps.values()) m.close();
      throw err;
    }
    return new DatapathMaps(pinDir, maps);
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
