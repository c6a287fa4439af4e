/**
 * The lab's endpoint controller, as Kubernetes' EndpointSlice controller behaves: for a Service with
 * a selector, every pod of its namespace that matches, has an IP and is not terminal becomes an
 * endpoint (ready, serving and terminating conditions from the pod's state); named target ports are
 * resolved per pod, and pods whose ports resolve alike share slices of at most 100 endpoints. An
 * endpoint stays in the slice it was placed in while it exists, so a change touches few slices. Pure.
 */
import type { PodSpec } from '../k8s/objects.js';
import {
  type Endpoint,
  type EndpointPort,
  type EndpointSlice,
  SERVICE_NAME_LABEL,
  type Service,
} from '../service/types.js';
import { canonical } from './resources.js';

export const MAX_ENDPOINTS_PER_SLICE = 100;
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY = 'endpointslice-controller.k8s.io';

/** What the controller sees of a pod. */
export interface PodView {
  namespace: string;
  name: string;
  uid: string;
  labels: Record<string, string>;
  spec: Pick<PodSpec, 'containers' | 'hostname' | 'subdomain'>;
  nodeName: string;
  ip?: string;
  /** Every container runs (the lab has no readiness probes: running is ready). */
  ready: boolean;
  /** Deleted, within its grace period. */
  terminating: boolean;
  /** Its processes ended (Failed): no longer an endpoint, as terminal pods are not. */
  terminal: boolean;
}

/** kube's podutil.FindPort: a number as it is; a name through the pod's container ports of that protocol. */
export function findPort(
  pod: Pick<PodView, 'spec'>,
  targetPort: number | string,
  protocol: string,
): number | undefined {
  if (typeof targetPort === 'number') return targetPort;
  for (const c of pod.spec.containers)
    for (const p of c.ports ?? [])
      if (p.name === targetPort && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
  return undefined;
}

/** The service's ports as this pod serves them; a port whose target the pod lacks is left out. */
function endpointPorts(svc: Service, pod: PodView): EndpointPort[] {
  const out: EndpointPort[] = [];
  for (const sp of svc.spec.ports) {
    const port = findPort(pod, sp.targetPort, sp.protocol);
    if (port === undefined) continue;
    out.push({
      name: sp.name,
      protocol: sp.protocol,
      port,
      ...(sp.appProtocol !== undefined ? { appProtocol: sp.appProtocol } : {}),
    });
  }
  return out;
}

function selects(svc: Service, pod: PodView): boolean {
  const sel = svc.spec.selector;
  if (sel === undefined || pod.namespace !== svc.metadata.namespace) return false;
  return Object.entries(sel).every(([k, v]) => pod.labels[k] === v);
}

function toEndpoint(svc: Service, pod: PodView): Endpoint {
  const pnr = svc.spec.publishNotReadyAddresses === true;
  const serving = pnr || pod.ready;
  const ep: Endpoint = {
    addresses: [pod.ip!],
    // A terminating pod is never "ready" (unless not-ready addresses are published), but it may
    // still serve: its existing connections keep working through the grace period.
    conditions: { ready: pnr || (serving && !pod.terminating), serving, terminating: pod.terminating },
    nodeName: pod.nodeName,
    targetRef: { kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid },
  };
  if (pod.spec.hostname && pod.spec.subdomain === svc.metadata.name) ep.hostname = pod.spec.hostname;
  return ep;
}

export interface SliceOptions {
  now: string;
  /** A new slice's name (`<service>-<random>`, unique in the namespace). */
  newName: (service: string) => string;
}

/** The slices of one service's endpoints, given the slices it has now. [] when it has no selector. */
export function endpointSlicesFor(
  svc: Service,
  pods: readonly PodView[],
  previous: readonly EndpointSlice[],
  opt: SliceOptions,
): EndpointSlice[] {
  if (svc.spec.selector === undefined) return [];
  // Desired endpoints, grouped by how their ports resolve.
  const groups = new Map<string, { ports: EndpointPort[]; endpoints: Map<string, Endpoint> }>();
  for (const pod of [...pods].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!selects(svc, pod) || pod.terminal || !pod.ip) continue;
    const ports = endpointPorts(svc, pod);
    const key = canonical(ports);
    const g = groups.get(key) ?? { ports, endpoints: new Map<string, Endpoint>() };
    groups.set(key, g);
    g.endpoints.set(pod.uid, toEndpoint(svc, pod));
  }

  const base = (name: string, prev?: EndpointSlice): EndpointSlice => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: svc.metadata.namespace,
      generateName: `${svc.metadata.name}-`,
      labels: {
        ...(svc.metadata.labels ?? {}),
        [SERVICE_NAME_LABEL]: svc.metadata.name,
        [MANAGED_BY_LABEL]: MANAGED_BY,
      },
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Service',
          name: svc.metadata.name,
          uid: svc.metadata.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
      creationTimestamp: prev?.metadata.creationTimestamp ?? opt.now,
      generation: prev?.metadata.generation ?? 1,
    },
    addressType: 'IPv4',
    endpoints: [],
    ports: [],
  });

  const out: EndpointSlice[] = [];
  const unused = [...previous];
  for (const [key, g] of groups) {
    // Slices that served this port mapping keep the endpoints still wanted, in their order.
    const slices: EndpointSlice[] = [];
    for (const prev of previous.filter((p) => canonical(p.ports) === key)) {
      unused.splice(unused.indexOf(prev), 1);
      const s = base(prev.metadata.name, prev);
      s.ports = g.ports;
      for (const e of prev.endpoints) {
        const uid = e.targetRef?.uid ?? '';
        const now = g.endpoints.get(uid);
        if (now && s.endpoints.length < MAX_ENDPOINTS_PER_SLICE) {
          s.endpoints.push(now);
          g.endpoints.delete(uid);
        }
      }
      slices.push(s);
    }
    // New endpoints fill the slices with room, then new slices.
    for (const e of g.endpoints.values()) {
      let s = slices.find((x) => x.endpoints.length < MAX_ENDPOINTS_PER_SLICE);
      if (!s) {
        s = base(opt.newName(svc.metadata.name));
        s.ports = g.ports;
        slices.push(s);
      }
      s.endpoints.push(e);
    }
    out.push(...slices.filter((s) => s.endpoints.length > 0));
  }
  // A service that selects nothing keeps one empty slice, as Kubernetes' placeholder.
  if (out.length === 0) {
    const prev = previous.find((p) => p.endpoints.length === 0) ?? unused[0];
    out.push(base(prev?.metadata.name ?? opt.newName(svc.metadata.name), prev));
  }
  // A changed slice gets the next generation.
  for (const s of out) {
    const prev = previous.find((p) => p.metadata.name === s.metadata.name);
    if (
      prev &&
      canonical({ ...prev, metadata: { ...prev.metadata, generation: 0 } }) !==
        canonical({ ...s, metadata: { ...s.metadata, generation: 0 } })
    )
      s.metadata.generation = (prev.metadata.generation ?? 1) + 1;
  }
  return out;
}
