/**
 * The lab's objects as kubectl shows them: resource names (plural, singular, short), objects in
 * their Kubernetes shape for -o json|yaml, and the table columns of `kubectl get` (with -o wide).
 * Pure functions of the lab state and what the agents report.
 */
import type { EndpointView } from '../api/types.js';
import type { EndpointSlice, Service } from '../service/types.js';
import type { LabDeployment, LabNode, LabPod, LabPolicy, LabState } from './state.js';

export class ResourceError extends Error {}

export interface ResourceType {
  kind: string;
  /** What `lab get` calls it: plural, singular and short names (lower case). */
  plural: string;
  singular: string;
  short: string[];
  namespaced: boolean;
  /** API group, as kubectl prints it in `kind.group/name` (empty for the core group). */
  group: string;
  apiVersion: string;
}

const TYPES: ResourceType[] = [
  {
    kind: 'Pod',
    plural: 'pods',
    singular: 'pod',
    short: ['po'],
    namespaced: true,
    group: '',
    apiVersion: 'v1',
  },
  {
    kind: 'Node',
    plural: 'nodes',
    singular: 'node',
    short: ['no'],
    namespaced: false,
    group: '',
    apiVersion: 'v1',
  },
  {
    kind: 'Namespace',
    plural: 'namespaces',
    singular: 'namespace',
    short: ['ns'],
    namespaced: false,
    group: '',
    apiVersion: 'v1',
  },
  {
    kind: 'CiliumNetworkPolicy',
    plural: 'ciliumnetworkpolicies',
    singular: 'ciliumnetworkpolicy',
    short: ['cnp', 'ciliumnp'],
    namespaced: true,
    group: 'cilium.io',
    apiVersion: 'cilium.io/v2',
  },
  {
    kind: 'CiliumClusterwideNetworkPolicy',
    plural: 'ciliumclusterwidenetworkpolicies',
    singular: 'ciliumclusterwidenetworkpolicy',
    short: ['ccnp'],
    namespaced: false,
    group: 'cilium.io',
    apiVersion: 'cilium.io/v2',
  },
  {
    kind: 'NetworkPolicy',
    plural: 'networkpolicies',
    singular: 'networkpolicy',
    short: ['netpol'],
    namespaced: true,
    group: 'networking.k8s.io',
    apiVersion: 'networking.k8s.io/v1',
  },
  {
    kind: 'CiliumEndpoint',
    plural: 'ciliumendpoints',
    singular: 'ciliumendpoint',
    short: ['cep', 'ciliumep'],
    namespaced: true,
    group: 'cilium.io',
    apiVersion: 'cilium.io/v2',
  },
  {
    kind: 'Service',
    plural: 'services',
    singular: 'service',
    short: ['svc'],
    namespaced: true,
    group: '',
    apiVersion: 'v1',
  },
  {
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    singular: 'endpointslice',
    short: [],
    namespaced: true,
    group: 'discovery.k8s.io',
    apiVersion: 'discovery.k8s.io/v1',
  },
  {
    kind: 'Deployment',
    plural: 'deployments',
    singular: 'deployment',
    short: ['deploy'],
    namespaced: true,
    group: 'apps',
    apiVersion: 'apps/v1',
  },
];

/** The lab's own shorthand: every policy kind at once. */
export const POLICIES: ResourceType = {
  kind: 'Policy',
  plural: 'policies',
  singular: 'policy',
  short: [],
  namespaced: true,
  group: '',
  apiVersion: '',
};

/** Kubernetes types the lab does not have: named in the error instead of "unknown". */
const ABSENT: Record<string, string> = {
  endpoints: 'the lab has no endpoints (v1 Endpoints are deprecated): lab get endpointslices',
  ep: 'the lab has no endpoints (v1 Endpoints are deprecated): lab get endpointslices',
  replicasets: 'the lab has no replicasets (deployments own their pods directly): lab get deployments',
  rs: 'the lab has no replicasets (deployments own their pods directly): lab get deployments',
};

/** Resolves `pods`, `pod`, `po`, `Pod`, `pods.v1`, `cnp`, `ciliumnetworkpolicies.cilium.io`, ... */
export function resolveType(name: string): ResourceType {
  const n = name.toLowerCase().replace(/\.(v1|v2)$/, '');
  if (n === 'policies' || n === 'policy') return POLICIES;
  for (const t of TYPES) {
    const names = [t.plural, t.singular, ...t.short, t.kind.toLowerCase()];
    if (names.includes(n) || (t.group && names.some((x) => n === `${x}.${t.group}`))) return t;
  }
  const absent = ABSENT[n];
  if (absent) throw new ResourceError(absent);
  throw new ResourceError(
    `the lab doesn't have a resource type "${name}" (${[...TYPES.map((t) => t.plural), 'policies'].join(', ')})`,
  );
}

export function typeOfKind(kind: string): ResourceType {
  const t = TYPES.find((x) => x.kind === kind);
  if (!t) throw new ResourceError(`unknown kind ${kind}`);
  return t;
}

/** `pod`, `ciliumnetworkpolicy.cilium.io`: how kubectl names a type in its messages. */
export function qualifiedType(kind: string): string {
  const t = typeOfKind(kind);
  return `${t.singular}${t.group ? `.${t.group}` : ''}`;
}

/** `pod/a`, `ciliumnetworkpolicy.cilium.io/a`: how kubectl names an object in apply and -o name. */
export function qualifiedName(kind: string, name: string): string {
  return `${qualifiedType(kind)}/${name}`;
}

/** kubectl's age format (k8s.io/apimachinery duration.HumanDuration). */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  if (y < 8) return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`;
  return `${y}y`;
}

// ---- objects ----

export type KObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    uid?: string;
  };
} & Record<string, unknown>;

/** Facts the lab reads at `get` time: which processes run, what the agents report. */
export interface Observed {
  /** Per pod key: how many of its containers still run (by recorded PID and start time). */
  running: (p: LabPod) => boolean[];
  nodeReady: (n: LabNode) => boolean;
  /** Addresses reachable from the machine's shell, per node. */
  addresses: (n: LabNode) => { hubble?: string; metrics?: string };
}

/** What the lab shows of an endpoint the agent reports. */
export type AgentEndpoint = Pick<EndpointView, 'id' | 'identity' | 'state' | 'labels' | 'ipv4' | 'ipv6'>;

export function podObject(s: LabState, p: LabPod, o: Observed): KObject {
  const running = o.running(p);
  const node = s.nodes.find((n) => n.name === p.node);
  const spec = p.manifest?.spec ?? { containers: p.containers.map((c) => ({ name: c.name })) };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...(p.manifest?.metadata ?? {}),
      name: p.name,
      namespace: p.namespace,
      labels: p.labels,
      creationTimestamp: p.createdAt,
      ...(p.uid ? { uid: p.uid } : {}),
      ...(p.deletion
        ? { deletionTimestamp: p.deletion.at, deletionGracePeriodSeconds: p.deletion.graceSeconds }
        : {}),
    },
    spec: { ...spec, nodeName: p.node },
    status: {
      phase: running.every(Boolean) ? 'Running' : 'Failed',
      ...(node ? { hostIP: node.underlayIp } : {}),
      ...(p.ipv4 ? { podIP: p.ipv4, podIPs: [p.ipv4, p.ipv6].filter(Boolean).map((ip) => ({ ip })) } : {}),
      startTime: p.createdAt,
      containerStatuses: p.containers.map((c, i) => ({
        name: c.name,
        ready: running[i] ?? false,
        restartCount: 0,
        started: running[i] ?? false,
        state: running[i]
          ? { running: { startedAt: p.createdAt } }
          : { terminated: { reason: 'Terminated' } },
      })),
    },
  };
}

export function nodeObject(s: LabState, n: LabNode, o: Observed): KObject {
  const ready = o.nodeReady(n);
  const addr = o.addresses(n);
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.name,
      labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux' },
      creationTimestamp: s.createdAt,
      annotations: {
        ...(addr.hubble ? { 'lab.cilium-ts.io/hubble': addr.hubble } : {}),
        ...(addr.metrics ? { 'lab.cilium-ts.io/metrics': addr.metrics } : {}),
      },
    },
    spec: { podCIDR: n.podCidrV4, podCIDRs: n.podCidrV6 ? [n.podCidrV4, n.podCidrV6] : [n.podCidrV4] },
    status: {
      addresses: [
        { type: 'InternalIP', address: n.underlayIp },
        ...(n.underlayIpV6 ? [{ type: 'InternalIP', address: n.underlayIpV6 }] : []),
        { type: 'Hostname', address: n.name },
      ],
      conditions: [
        {
          type: 'Ready',
          status: ready ? 'True' : 'False',
          reason: ready ? 'AgentReady' : 'AgentNotRunning',
        },
      ],
    },
  };
}

export function namespaceObject(
  name: string,
  labels: Record<string, string>,
  createdAt: string | undefined,
): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels, ...(createdAt ? { creationTimestamp: createdAt } : {}) },
    status: { phase: 'Active' },
  };
}

export function policyObject(p: LabPolicy): KObject {
  const t = typeOfKind(p.kind);
  const doc = (p.doc ?? {}) as Record<string, unknown>;
  const md = (doc.metadata ?? {}) as Record<string, unknown>;
  return {
    ...doc,
    apiVersion: typeof doc.apiVersion === 'string' ? doc.apiVersion : t.apiVersion,
    kind: p.kind,
    metadata: {
      ...md,
      name: p.name,
      ...(t.namespaced ? { namespace: p.namespace } : {}),
      ...(p.createdAt ? { creationTimestamp: p.createdAt } : {}),
    },
  };
}

export function serviceObject(svc: Service): KObject {
  return svc as unknown as KObject;
}

export function endpointSliceObject(slice: EndpointSlice): KObject {
  return slice as unknown as KObject;
}

/** A Deployment with its status from the pods it owns (ready: every container runs). */
export function deploymentObject(
  d: LabDeployment,
  pods: readonly { pod: LabPod; ready: boolean; current: boolean }[],
): KObject {
  const live = pods.filter((p) => !p.pod.deletion);
  const ready = live.filter((p) => p.ready).length;
  return {
    ...d.manifest,
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      ...d.manifest.metadata,
      namespace: d.namespace,
      uid: d.uid,
      creationTimestamp: d.createdAt,
    },
    spec: { ...d.manifest.spec, replicas: d.replicas },
    status: {
      replicas: live.length,
      updatedReplicas: live.filter((p) => p.current).length,
      readyReplicas: ready,
      availableReplicas: ready,
      unavailableReplicas: Math.max(0, d.replicas - ready),
    },
  };
}

export function endpointObject(s: LabState, p: LabPod, e: AgentEndpoint): KObject {
  const node = s.nodes.find((n) => n.name === p.node);
  return {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumEndpoint',
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels, creationTimestamp: p.createdAt },
    status: {
      id: e.id,
      identity: { id: e.identity, labels: e.labels ?? [] },
      networking: {
        addressing: [{ ...(e.ipv4 ? { ipv4: e.ipv4 } : {}), ...(e.ipv6 ? { ipv6: e.ipv6 } : {}) }],
        ...(node ? { node: node.underlayIp } : {}),
      },
      state: e.state,
    },
  };
}

// ---- tables ----

export interface TableOptions {
  wide: boolean;
  /** A NAMESPACE column first (kubectl does this with -A). */
  withNamespace: boolean;
  showLabels: boolean;
  now: number;
}

export interface Table {
  headers: string[];
  rows: string[][];
}

const labelList = (l: Record<string, string> | undefined) =>
  Object.entries(l ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',') || '<none>';

function age(o: KObject, now: number): string {
  const t = o.metadata.creationTimestamp;
  return t ? humanDuration(now - Date.parse(t)) : '<unknown>';
}

/** kubectl's listWithMoreString: three items, then "+ N more...", `<unset>` when empty. */
function listWithMore(items: readonly string[], max = 3): string {
  if (items.length === 0) return '<unset>';
  const shown = items.slice(0, max).join(',');
  return items.length > max ? `${shown} + ${items.length - max} more...` : shown;
}

/** kubectl's PORT(S): `80/TCP`, `80:30080/TCP` with a NodePort. */
function servicePorts(spec: Service['spec']): string {
  if (spec.ports.length === 0) return '<none>';
  return spec.ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol}`).join(',');
}

/** kubectl's EXTERNAL-IP: LoadBalancer ingress (or `<pending>`) and external IPs. */
function serviceExternalIP(svc: Service, wide: boolean): string {
  const external = svc.spec.externalIPs ?? [];
  if (svc.spec.type !== 'LoadBalancer') return external.length ? external.join(',') : '<none>';
  let lb = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).join(',');
  if (!wide && lb.length > 16) lb = `${lb.slice(0, 13)}...`;
  const all = [...(lb ? lb.split(',') : []), ...external];
  return all.length ? all.join(',') : '<pending>';
}

/** A label selector as kubectl prints it (`app=web,tier in (a,b)`). */
function formatSelector(sel: {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}): string {
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const values = `(${(e.values ?? []).join(',')})`;
    if (e.operator === 'In') parts.push(`${e.key} in ${values}`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin ${values}`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else parts.push(`!${e.key}`);
  }
  return parts.join(',') || '<none>';
}

/** The columns of `kubectl get <type>` for these objects (all of that type). */
export function table(type: ResourceType, objects: KObject[], opt: TableOptions): Table {
  const cols: [string, (o: KObject) => string][] = [];
  const status = (o: KObject) => (o.status ?? {}) as Record<string, unknown>;
  switch (type.kind) {
    case 'Pod': {
      const cs = (o: KObject) => (status(o).containerStatuses ?? []) as { ready: boolean }[];
      cols.push(
        ['NAME', (o) => o.metadata.name],
        ['READY', (o) => `${cs(o).filter((c) => c.ready).length}/${cs(o).length}`],
        [
          'STATUS',
          (o) =>
            o.metadata.deletionTimestamp
              ? 'Terminating'
              : status(o).phase === 'Running'
                ? 'Running'
                : 'Terminated',
        ],
        ['RESTARTS', () => '0'],
        ['AGE', (o) => age(o, opt.now)],
      );
      if (opt.wide)
        cols.push(
          ['IP', (o) => String(status(o).podIP ?? '<none>')],
          ['NODE', (o) => String((o.spec as { nodeName?: string }).nodeName ?? '<none>')],
        );
      break;
    }
    case 'Node': {
      const ready = (o: KObject) =>
        ((status(o).conditions ?? []) as { type: string; status: string }[]).some(
          (c) => c.type === 'Ready' && c.status === 'True',
        );
      const ann = (o: KObject, k: string) => o.metadata.annotations?.[`lab.cilium-ts.io/${k}`] ?? '<none>';
      cols.push(
        ['NAME', (o) => o.metadata.name],
        ['STATUS', (o) => (ready(o) ? 'Ready' : 'NotReady')],
        ['AGE', (o) => age(o, opt.now)],
      );
      if (opt.wide)
        cols.push(
          [
            'INTERNAL-IP',
            (o) => (status(o).addresses as { type: string; address: string }[])[0]?.address ?? '<none>',
          ],
          ['POD-CIDRS', (o) => ((o.spec as { podCIDRs?: string[] }).podCIDRs ?? []).join(',') || '<none>'],
          ['HUBBLE', (o) => ann(o, 'hubble')],
          ['METRICS', (o) => ann(o, 'metrics')],
        );
      break;
    }
    case 'Namespace':
      cols.push(
        ['NAME', (o) => o.metadata.name],
        ['STATUS', (o) => String(status(o).phase ?? 'Active')],
        ['AGE', (o) => age(o, opt.now)],
      );
      break;
    case 'NetworkPolicy':
      cols.push(
        ['NAME', (o) => o.metadata.name],
        [
          'POD-SELECTOR',
          (o) => {
            const sel = ((o.spec ?? {}) as { podSelector?: { matchLabels?: Record<string, string> } })
              .podSelector;
            const l = labelList(sel?.matchLabels);
            return l === '<none>' ? '<none>' : l;
          },
        ],
        ['AGE', (o) => age(o, opt.now)],
      );
      break;
    case 'CiliumEndpoint': {
      const st = (o: KObject) =>
        status(o) as {
          id: number;
          identity: { id: number };
          state: string;
          networking: { addressing: { ipv4?: string; ipv6?: string }[]; node?: string };
        };
      cols.push(
        ['NAME', (o) => o.metadata.name],
        ['SECURITY IDENTITY', (o) => String(st(o).identity.id)],
        ['ENDPOINT STATE', (o) => st(o).state],
        ['IPV4', (o) => st(o).networking.addressing[0]?.ipv4 ?? ''],
        ['IPV6', (o) => st(o).networking.addressing[0]?.ipv6 ?? ''],
      );
      if (opt.wide)
        cols.push(['ENDPOINT ID', (o) => String(st(o).id)], ['NODE', (o) => st(o).networking.node ?? '']);
      break;
    }
    case 'Service': {
      const spec = (o: KObject) => o.spec as unknown as Service['spec'];
      cols.push(
        ['NAME', (o) => o.metadata.name],
        ['TYPE', (o) => spec(o).type],
        ['CLUSTER-IP', (o) => spec(o).clusterIP ?? '<none>'],
        ['EXTERNAL-IP', (o) => serviceExternalIP(o as unknown as Service, opt.wide)],
        ['PORT(S)', (o) => servicePorts(spec(o))],
        ['AGE', (o) => age(o, opt.now)],
      );
      if (opt.wide)
        cols.push(['SELECTOR', (o) => (spec(o).selector ? labelList(spec(o).selector) : '<none>')]);
      break;
    }
    case 'EndpointSlice': {
      const sl = (o: KObject) => o as unknown as EndpointSlice;
      cols.push(
        ['NAME', (o) => o.metadata.name],
        ['ADDRESSTYPE', (o) => sl(o).addressType],
        [
          'PORTS',
          (o) =>
            listWithMore(sl(o).ports.map((p) => (p.port !== undefined ? String(p.port) : p.name || '*'))),
        ],
        ['ENDPOINTS', (o) => listWithMore(sl(o).endpoints.flatMap((e) => e.addresses))],
        ['AGE', (o) => age(o, opt.now)],
      );
      break;
    }
    case 'Deployment': {
      const st = (o: KObject) =>
        status(o) as { readyReplicas: number; updatedReplicas: number; availableReplicas: number };
      const spec = (o: KObject) =>
        o.spec as {
          replicas: number;
          template: { spec: { containers: { name: string; image?: string }[] } };
          selector: {
            matchLabels?: Record<string, string>;
            matchExpressions?: { key: string; operator: string; values?: string[] }[];
          };
        };
      cols.push(
        ['NAME', (o) => o.metadata.name],
        ['READY', (o) => `${st(o).readyReplicas}/${spec(o).replicas}`],
        ['UP-TO-DATE', (o) => String(st(o).updatedReplicas)],
        ['AVAILABLE', (o) => String(st(o).availableReplicas)],
        ['AGE', (o) => age(o, opt.now)],
      );
      if (opt.wide)
        cols.push(
          [
            'CONTAINERS',
            (o) =>
              spec(o)
                .template.spec.containers.map((c) => c.name)
                .join(','),
          ],
          [
            'IMAGES',
            (o) =>
              spec(o)
                .template.spec.containers.map((c) => c.image ?? '<none>')
                .join(','),
          ],
          ['SELECTOR', (o) => formatSelector(spec(o).selector)],
        );
      break;
    }
    case 'Policy':
      cols.push(['KIND', (o) => o.kind], ['NAME', (o) => o.metadata.name], ['AGE', (o) => age(o, opt.now)]);
      break;
    default: // CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy
      cols.push(['NAME', (o) => o.metadata.name], ['AGE', (o) => age(o, opt.now)]);
  }
  if (opt.withNamespace) cols.unshift(['NAMESPACE', (o) => o.metadata.namespace ?? '']);
  if (opt.showLabels) cols.push(['LABELS', (o) => labelList(o.metadata.labels)]);
  return { headers: cols.map((c) => c[0]), rows: objects.map((o) => cols.map((c) => c[1](o))) };
}

/** kubectl's plain table layout: columns padded to their widest cell, three spaces apart. */
export function formatTable(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `${cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join('')
      .trimEnd()}\n`;
  return [t.headers, ...t.rows].map(line).join('');
}

// ---- apply ----

/** Key order and undefined values do not make two objects different. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>)
            .filter(([, y]) => y !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : x,
  );
}

export type ApplyResult = 'created' | 'configured' | 'unchanged';

/** What `apply` does with an object given what the lab holds (undefined: nothing yet). */
export function applyResult(held: unknown, next: unknown): ApplyResult {
  if (held === undefined) return 'created';
  return canonical(held) === canonical(next) ? 'unchanged' : 'configured';
}
