/**
 * Kubernetes `Service` (v1) and `EndpointSlice` (discovery.k8s.io/v1) as the agent and the lab use
 * them: the fields cilium-ts implements, after validation, with the API server's defaults filled in
 * (see validate.ts). The shapes follow the API objects, so they print back as manifests.
 */

export type Protocol = 'TCP' | 'UDP';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';
export type TrafficPolicy = 'Cluster' | 'Local';
export type SessionAffinity = 'None' | 'ClientIP';
export type IpFamilyName = 'IPv4' | 'IPv6';
export type IpFamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

/** Kubernetes' default ClientIP affinity timeout (3 h) and its upper bound (1 day). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;
/** The API server's default NodePort range (`--service-node-port-range`). */
export const DEFAULT_NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;
/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  /** Defaults to `default`. */
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  generateName?: string;
}

export interface ServicePort {
  /** '' when the service has a single unnamed port. */
  name: string;
  protocol: Protocol;
  port: number;
  /** A container port number, or a container port name resolved per pod. Defaults to `port`. */
  targetPort: number | string;
  /** Unset until allocated (by the lab) for NodePort and LoadBalancer services. */
  nodePort?: number;
  appProtocol?: string;
}

export interface ServiceSpec {
  type: ServiceType;
  selector?: Record<string, string>;
  /** A VIP, or 'None' for a headless service; unset until allocated. */
  clusterIP?: string;
  clusterIPs?: string[];
  ipFamilies?: IpFamilyName[];
  ipFamilyPolicy?: IpFamilyPolicy;
  ports: ServicePort[];
  externalIPs?: string[];
  sessionAffinity: SessionAffinity;
  /** Set (with the default timeout) exactly when sessionAffinity is ClientIP. */
  sessionAffinityConfig?: { clientIP: { timeoutSeconds: number } };
  /** Set (default Cluster) exactly when the service is reachable from outside (see isExternallyAccessible). */
  externalTrafficPolicy?: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  /** Requested LoadBalancer IP (deprecated upstream, honoured by the lab's pool). */
  loadBalancerIP?: string;
  loadBalancerSourceRanges?: string[];
  /** LoadBalancer only; default true. */
  allocateLoadBalancerNodePorts?: boolean;
  /** Endpoints of pods that are not ready are published (the endpoint controller's business). */
  publishNotReadyAddresses?: boolean;
}

export interface LoadBalancerIngress {
  ip: string;
  ipMode?: 'VIP' | 'Proxy';
}

export interface ServiceStatus {
  loadBalancer?: { ingress?: LoadBalancerIngress[] };
}

export interface Service {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: ServiceSpec;
  status?: ServiceStatus;
}

export interface EndpointConditions {
  /** Unset means unknown and is read as ready (as the API says). */
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export interface ObjectReference {
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiVersion?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

export interface Endpoint {
  addresses: string[];
  conditions: EndpointConditions;
  hostname?: string;
  nodeName?: string;
  zone?: string;
  targetRef?: ObjectReference;
}

export interface EndpointPort {
  /** '' for the unnamed port; matches the service port of the same name. */
  name: string;
  protocol: Protocol;
  port?: number;
  appProtocol?: string;
}

export interface EndpointSlice {
  apiVersion: 'discovery.k8s.io/v1';
  kind: 'EndpointSlice';
  metadata: ObjectMeta;
  addressType: 'IPv4' | 'IPv6';
  endpoints: Endpoint[];
  ports: EndpointPort[];
}

/** `namespace/name`. */
export function serviceKey(s: { metadata: { namespace: string; name: string } }): string {
  return `${s.metadata.namespace}/${s.metadata.name}`;
}

/** The Service an EndpointSlice belongs to, as `namespace/name` (from its service-name label). */
export function sliceServiceKey(slice: EndpointSlice): string {
  return `${slice.metadata.namespace}/${slice.metadata.labels![SERVICE_NAME_LABEL]!}`;
}

export function isHeadless(svc: Service): boolean {
  return svc.spec.clusterIP === 'None';
}

/** NodePort, LoadBalancer, or ClusterIP with external IPs: what externalTrafficPolicy applies to. */
export function isExternallyAccessible(spec: Pick<ServiceSpec, 'type' | 'externalIPs'>): boolean {
  return spec.type !== 'ClusterIP' || (spec.externalIPs?.length ?? 0) > 0;
}

/** The affinity timeout in seconds, 0 without ClientIP affinity. */
export function affinityTimeoutSeconds(svc: Service): number {
  return svc.spec.sessionAffinity === 'ClientIP'
    ? (svc.spec.sessionAffinityConfig?.clientIP.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS)
    : 0;
}
