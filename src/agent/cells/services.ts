/**
 * Services (kube-proxy replacement): Services and EndpointSlices from the resource sources become
 * the load-balancer desired state (src/service: frontends per type, backend slots, Maglev tables),
 * and its reconcilers write the LB maps the socket-LB programs read. Writes are ordered so the
 * datapath never follows a slot to a missing backend: backends, rev-NAT, Maglev, affinity match,
 * source ranges, then service slots and masters; removals the other way round.
 */
import { routes } from '../../api/types.js';
import { cell, token } from '../../hive/hive.js';
import { namespacedKey, splitNamespacedKey } from '../../k8s/resources.js';
import {
  type EndpointSlice,
  type LbFrontendRow,
  LbState,
  parseEndpointSlice,
  parseService,
  rowEquals,
  type Service,
} from '../../service/index.js';
import type { KeyedMap } from '../../statedb/map-target.js';
import { mapTarget } from '../../statedb/map-target.js';
import { Reconciler, type ReconcilerHandle } from '../../statedb/reconciler.js';
import type { Table } from '../../statedb/table.js';
import { type AgentCellExtras, ConfigT, LogT, NodeT, ResourcesT, TargetsT } from './tokens.js';

export interface ServicesService {
  readonly lb: LbState;
  /** In write order (backends first, service entries last). */
  readonly reconcilers: ReconcilerHandle[];
  /** Writes pending LB changes in order: additions first to last, removals last to first. */
  flush(): Promise<void>;
  /**
   * Takes Services and EndpointSlices that changed in the resource stores (present: upserted,
   * absent: deleted) as one step, then writes the maps: how every change reaches the maps, one
   * object from the REST routes, all of them at start.
   */
  apply(changes: readonly ObjectRef[]): Promise<void>;
}

/** A Service or EndpointSlice of the resource stores. */
export interface ObjectRef {
  readonly kind: 'Service' | 'EndpointSlice';
  readonly namespace: string;
  readonly name: string;
}

export const ServicesT = token<ServicesService>('services');

export const servicesCell = cell<ServicesService, AgentCellExtras>({
  name: 'services',
  needs: [ConfigT, LogT, ResourcesT, NodeT, TargetsT],
  provides: ServicesT,
  build: (get) => {
    const cfg = get(ConfigT);
    const log = get(LogT).child({ subsys: 'services' });
    const resources = get(ResourcesT);
    const { registry } = get(NodeT);
    const targets = get(TargetsT).lb;
    const nodeIPs = () => registry.local.addresses.map((a) => a.ip);
    const lb = new LbState(
      { nodeName: cfg.node, nodeIPs: nodeIPs() },
      {
        algorithm: cfg.lbAlgorithm,
        maglev: { tableSize: cfg.maglevTableSize, fill: cfg.maglevFill },
        // The datapath does not look up port-0 wildcard entries (yet): do not write them.
        wildcardEntries: false,
      },
    );
    const t = lb.tables;
    const reconciler = <V>(name: string, table: Table<V>, target: KeyedMap<V>) =>
      new Reconciler<V>(`lb-${name}`, table, mapTarget(target, rowEquals), {
        autoFlush: false,
        // A map write of an unchanged row is harmless: no copy of every written row.
        rememberApplied: false,
        onError: (key, err, attempts) =>
          log.warn({ map: name, key, err, attempts }, 'LB map write failed; will retry'),
      });
    const order: ReconcilerHandle[] = [
      reconciler('backends', t.backends, targets.backends),
      reconciler('rev-nat', t.revNat, targets.revNat),
      reconciler('maglev', t.maglev, targets.maglev),
      reconciler('affinity-match', t.affinityMatch, targets.affinityMatch),
      reconciler('source-range', t.sourceRange, targets.sourceRange),
      reconciler('services', t.services, targets.services),
    ];
    const flush = async () => {
      for (const r of order) await r.flush('upserts');
      for (const r of [...order].reverse()) await r.flush('deletes');
    };
    // Bad objects are refused before the resource store takes them. The check's result is kept
    // for the object it parsed until it is applied: the store keeps a handed-over object as it
    // is, so applying it does not parse it again. Objects applied without a check (at start, the
    // stores' content) are parsed then and not kept: a weak map of every object costs the
    // garbage collector on each pass.
    const checked = new WeakMap<object, Service | EndpointSlice>();
    resources.onObjectCheck((kind, obj) => {
      checked.set(obj, kind === 'Service' ? parseService(obj) : parseEndpointSlice(obj));
    });
    const parse = <T extends Service | EndpointSlice>(obj: object, fn: (o: unknown) => T): T => {
      const hit = checked.get(obj) as T | undefined;
      if (hit === undefined) return fn(obj);
      checked.delete(obj);
      return hit;
    };
    const applyOne = ({ kind, namespace, name }: ObjectRef) => {
      const key = namespacedKey(namespace, name);
      if (kind === 'Service') {
        const obj = resources.stores.services.get(key);
        if (obj) lb.upsertService(parse(obj, parseService));
        else lb.deleteService(key);
      } else {
        const obj = resources.stores.endpointSlices.get(key);
        if (obj) lb.upsertEndpointSlice(parse(obj, parseEndpointSlice));
        else lb.deleteEndpointSlice(namespace, name);
      }
    };
    const applyAll = (changes: readonly ObjectRef[]) =>
      lb.update(() => {
        for (const c of changes) applyOne(c);
      });
    const apply = async (changes: readonly ObjectRef[]) => {
      applyAll(changes);
      await flush();
    };
    const svc: ServicesService = { lb, reconcilers: order, flush, apply };
    resources.onObjectChanged((kind, namespace, name) => apply([{ kind, namespace, name }]));
    registry.subscribe(
      {
        onUpdate: (_n, _before, isLocal) => {
          if (isLocal) lb.setNode({ nodeName: cfg.node, nodeIPs: nodeIPs() });
        },
      },
      { replay: false },
    );

    return {
      provide: svc,
      start: () => {
        // rev-NAT indexes and backend IDs the pinned maps hold stay with their frontends and
        // backends: established connections and socket-LB reverse entries name them.
        for (const problem of lb.restoreIds(targets.held()))
          log.warn({ problem }, 'not restoring an LB ID found in the maps');
        const ref = (kind: ObjectRef['kind']) => (o: { key: string }) => ({
          kind,
          ...splitNamespacedKey(o.key),
        });
        applyAll([
          ...resources.stores.services.list().map(ref('Service')),
          ...resources.stores.endpointSlices.list().map(ref('EndpointSlice')),
        ]);
        lb.pruneRestoredIds();
      },
      routes: (r) => {
        r.route(routes.serviceList, () =>
          lb
            .frontends()
            .sort((a, b) => a.id - b.id)
            .map(serviceView),
        );
      },
      status: () => ({
        kubeProxyReplacement: {
          enabled: true,
          features: [
            ...(cfg.cgroup ? ['Socket LB (connect, sendmsg, recvmsg, getpeername)'] : []),
            'Protocols: TCP, UDP',
            `Backend selection: ${cfg.lbAlgorithm === 'maglev' ? `Maglev (table size ${cfg.maglevTableSize}, ${cfg.maglevFill} fill)` : 'Random'}`,
            'Session affinity',
            'Graceful termination',
          ],
          services: lb.frontends().length,
          ...(cfg.cgroup ? { socketLbCgroup: cfg.cgroup } : {}),
        },
      }),
    };
  },
});

/** A frontend as `service list` shows it. */
function serviceView(f: LbFrontendRow) {
  return {
    id: f.id,
    frontend:
      f.family === 6 ? `[${f.address}]:${f.port}/${f.protocol}` : `${f.address}:${f.port}/${f.protocol}`,
    type: f.type,
    service: f.service,
    port: f.portName,
    flags: f.flagsText,
    backends: f.backends.map((b) => ({
      id: b.id,
      address: b.address,
      port: b.port,
      protocol: b.protocol,
      state: b.state,
      ...(b.nodeName ? { nodeName: b.nodeName } : {}),
    })),
  };
}
