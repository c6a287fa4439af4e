/** The lab's record of what it made: nodes, pods, processes, namespaces, policies, deployments, services. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRoot } from '../common/paths.js';
import type { Deployment } from '../k8s/objects.js';
import type { EndpointSlice, Service } from '../service/types.js';
import type { EtcdCluster } from './etcd.js';
import type { ProcessRef } from './process.js';

export interface LabNode {
  name: string;
  netns: string;
  underlayIp: string;
  podCidrV4: string;
  /** The node's IPv6 pod CIDR and IPv6 underlay address (dual-stack labs). */
  podCidrV6?: string;
  underlayIpV6?: string;
  agentPid?: number;
  /** Start time of agentPid (see process.ts): a recycled PID is not mistaken for the agent. */
  agentStartTime?: number;
  /** The process exposing the node's Hubble and metrics ports on the root namespace's loopback. */
  forwarder?: LabForwarder;
  /** The node's cgroup v2 (socket-LB attaches there); every process of the node runs in it. */
  cgroup?: string;
}

export interface LabForwarder {
  pid: number;
  startTime?: number;
  /** Ports on 127.0.0.1 of the root namespace (where the CLI runs). */
  hubblePort: number;
  metricsPort: number;
}

export interface LabContainer {
  name: string;
  pid: number;
  startTime?: number;
  log: string;
}

export interface LabPod {
  namespace: string;
  name: string;
  node: string;
  netns: string;
  containerId: string;
  ipv4?: string;
  /** The pod's IPv6 address (dual-stack labs). */
  ipv6?: string;
  /** The plugin's ADD result, kept like a runtime does for CHECK and DEL (prevResult). */
  cniResult?: unknown;
  labels: Record<string, string>;
  /** The pod as last applied (metadata and spec), to answer `get -o yaml` and tell changes apart. */
  manifest?: { metadata: Record<string, unknown>; spec: Record<string, unknown> };
  containers: LabContainer[];
  createdAt: string;
  /** The pod's UID (endpoints' targetRef); absent in states written before it was recorded. */
  uid?: string;
  /** The Deployment whose ReplicaSet made the pod, and the template hash it was made from. */
  owner?: { deployment: string; templateHash: string };
  /** Set once the pod is deleted: its endpoints terminate until its processes are gone. */
  deletion?: { at: string; graceSeconds: number };
}

export interface LabDeployment {
  namespace: string;
  name: string;
  uid: string;
  createdAt: string;
  /** As last applied (apply compares with it). */
  manifest: Deployment;
  /** Replicas wanted now: from the manifest, or from `lab scale` since. */
  replicas: number;
}

export interface LabService {
  /** As last applied (apply compares with it). */
  manifest: Record<string, unknown>;
  /** The stored object: defaults, allocated ClusterIP, NodePorts and LoadBalancer status. */
  object: Service;
}

export interface LabNamespace {
  labels: Record<string, string>;
  createdAt: string;
}

export interface LabPolicy {
  kind: string;
  namespace: string;
  name: string;
  createdAt?: string;
  /** The document as last applied. */
  doc?: Record<string, unknown>;
}

/** The lab's Hubble Relay (root namespace): every node's flows through one Observer API. */
export interface LabRelay extends ProcessRef {
  /** TCP port on 127.0.0.1 of the root namespace. */
  port: number;
  /** Its unix socket (relaySocketPath). */
  socket: string;
  log: string;
}

/** The lab's Hubble UI (root namespace): `cilium-ts hubble ui` reading the relay or the node's flows. */
export interface LabUi extends ProcessRef {
  url: string;
  port: number;
  /** The Observer API it reads flows from. */
  server: string;
  log: string;
}

/** How a node reaches other nodes' pods (the agents' --routing-mode): the VXLAN overlay or native routes. */
export type RoutingMode = 'vxlan' | 'native';
export const ROUTING_MODES: readonly RoutingMode[] = ['vxlan', 'native'];

export interface LabState {
  name: string;
  createdAt: string;
  world: { netns: string; ip: string };
  nodes: LabNode[];
  namespaces: Record<string, LabNamespace>;
  pods: Record<string, LabPod>;
  policies: LabPolicy[];
  nextNode: number;
  deployments: Record<string, LabDeployment>;
  services: Record<string, LabService>;
  /** The EndpointSlices the lab's endpoint controller generated, by `namespace/name`. */
  endpointSlices: Record<string, EndpointSlice>;
  /** The lab's controller process (terminations, readiness, slices; see controller.ts). */
  controller?: ProcessRef;
  /** Cluster DNS: a system pod serving the cluster zone behind the kube-dns Service. */
  dns?: { enabled: boolean };
  /** Routes the world namespace holds for LoadBalancer and external IPs. */
  worldRoutes?: string[];
  /**
   * A multi-node lab's cluster state: a real etcd on the underlay (one node uses memory). Its
   * authoritative copy is etcd.json (see saveEtcdState); lab.json carries it as last seen.
   */
  etcd?: EtcdCluster;
  /** TTL of the agents' etcd leases (`lab up --kvstore-lease-ttl`; the agent's default when unset). */
  kvstoreLeaseTtlSeconds?: number;
  /** A multi-node lab's routing between nodes. */
  routingMode?: RoutingMode;
  /** Dual stack (new labs' default; unset after `lab up --ipv6=false`): IPv6 pod CIDRs and addresses. */
  ipv6?: boolean;
  /** A multi-node lab's Hubble Relay. */
  relay?: LabRelay;
  /** The lab's Hubble UI. */
  ui?: LabUi;
  /** Per node, what its agent was last synced with (agents.ts syncServices). */
  servicesSynced?: Record<string, string>;
  /** Pod network namespaces made ahead (pods.ts SPARE_NETNS). */
  spareNetns?: string[];
}

export const LAB_NAME = /^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/;

export function labDir(lab: string): string {
  return join(runRoot, lab);
}

export function labStatePath(lab: string): string {
  return join(labDir(lab), 'lab.json');
}

/** The lab's Hubble Relay socket (`hubble observe` goes through it when it exists). */
export function relaySocketPath(lab: string): string {
  return join(labDir(lab), 'relay.sock');
}

/** Every network namespace of a lab starts with this prefix (cleanup finds them even after a crash). */
export function netnsPrefix(lab: string): string {
  return `cts-${lab}-`;
}

export function loadLab(lab: string): LabState | undefined {
  const p = labStatePath(lab);
  if (!existsSync(p)) return undefined;
  const s = JSON.parse(readFileSync(p, 'utf8')) as LabState;
  s.etcd = loadEtcdState(lab) ?? s.etcd;
  // States written before deployments and services existed.
  s.deployments ??= {};
  s.services ??= {};
  s.endpointSlices ??= {};
  return s;
}

export function saveLab(s: LabState): void {
  mkdirSync(labDir(s.name), { recursive: true });
  // A command holding the state since before `lab etcd` changed the members must not undo that.
  s.etcd = loadEtcdState(s.name) ?? s.etcd;
  const p = labStatePath(s.name);
  writeFileSync(`${p}.tmp`, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(`${p}.tmp`, p);
}

/**
 * The etcd members' record (their PIDs) is kept in a file of its own, written only under the etcd
 * lock (`withLock(lab, fn, 'etcd.lock')`): `lab etcd start` must work while another lab command
 * holds the lab's lock waiting for etcd (an apply whose pod waits for a new identity).
 */
function etcdStatePath(lab: string): string {
  return join(labDir(lab), 'etcd.json');
}

export function loadEtcdState(lab: string): EtcdCluster | undefined {
  const p = etcdStatePath(lab);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as EtcdCluster) : undefined;
}

/** Records `s.etcd` (call with the etcd lock held). */
export function saveEtcdState(s: LabState): void {
  if (!s.etcd) return;
  mkdirSync(labDir(s.name), { recursive: true });
  const p = etcdStatePath(s.name);
  writeFileSync(`${p}.tmp`, `${JSON.stringify(s.etcd, null, 2)}\n`);
  renameSync(`${p}.tmp`, p);
}

export function podKey(ns: string, name: string): string {
  return `${ns}/${name}`;
}
