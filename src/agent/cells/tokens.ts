/**
 * What the agent's cells provide to each other. Each token names one service; a cell lists the
 * tokens it needs, and the hive builds and starts cells in that order (src/hive).
 */
import type { Logger } from 'pino';
import type { StatusResponse } from '../../api/types.js';
import type { CniBackend } from '../../cni/agent-side.js';
import type { DatapathTargets, EndpointDatapathState } from '../../endpoint/datapath-state.js';
import type { EndpointManager, PodMeta } from '../../endpoint/manager.js';
import type { EndpointRecord } from '../../endpoint/types.js';
import type { CellInstance, Token } from '../../hive/hive.js';
import { token } from '../../hive/hive.js';
import type { AsyncIdentityAllocator } from '../../identity/async.js';
import type { IdentityAllocator } from '../../identity/index.js';
import type { NodeIpam } from '../../ipam/index.js';
import type { IpcacheMetadata } from '../../ipcache/ipcache.js';
import type { ClusterResources } from '../../k8s/resources.js';
import type { KvStore } from '../../kvstore/index.js';
import type { NodeRegistry } from '../../node/index.js';
import type { PolicyEngine, PolicyRef, PolicyRepository, SelectorCache } from '../../policy/index.js';
import type { Reconciler, ReconcilerHandle, ReconcilerStatus } from '../../statedb/reconciler.js';
import type { AgentConfig } from '../config.js';
import type { NodeDatapath } from '../datapath.js';
import type { Router } from '../http.js';
import type { AgentStateStore } from '../state.js';

/** Extras an agent cell may have beside its lifecycle: REST routes and a part of `status`. */
export interface AgentCellExtras {
  routes?(r: Router): void;
  /** This cell's part of GET /v1/status. */
  status?(): Partial<StatusResponse>;
}

export type AgentCellInstance<P> = CellInstance<P, AgentCellExtras>;

/** Runs the agent's mutations one at a time, in arrival order. */
export type Serial = <T>(fn: () => Promise<T>) => Promise<T>;

export interface Identities {
  /** Node-local numbering: CIDR identities, restore of the persisted numbering. */
  readonly allocator: IdentityAllocator;
  /** What endpoints allocate through (local today; a kvstore-backed one fits the same interface). */
  readonly async: AsyncIdentityAllocator;
  /** After restart: drops the restore's hold on every identity, so only owners keep references. */
  finishRestore(): void;
  persist(): Promise<void>;
}

export interface IpcacheService {
  readonly meta: IpcacheMetadata;
  readonly reconciler: Reconciler<import('../../ipcache/ipcache.js').IpcacheInfo>;
}

export interface Resources {
  /** The resource sources (list + watch) for pods, namespaces and policies. */
  readonly stores: ClusterResources;
  persist(): Promise<void>;
  pod(namespace: string, name: string): PodMeta | undefined;
  pods(): Record<string, PodMeta>;
  namespaceLabels(namespace: string): Record<string, string>;
  /** Sets (or with undefined deletes) a pod's metadata, then runs the pod handlers. */
  setPod(ns: string, name: string, meta: PodMeta | undefined): Promise<void>;
  setNamespace(name: string, labels: Record<string, string>): Promise<void>;
  /**
   * Stores (or with undefined deletes) a Service or EndpointSlice after `check` accepted it, then
   * runs the handlers; a refused object changes nothing. The object is handed over: the store
   * keeps it as it is, so the caller must not change it afterwards.
   */
  setObject(
    kind: 'Service' | 'EndpointSlice',
    ns: string,
    name: string,
    obj: Record<string, unknown> | undefined,
  ): Promise<void>;
  /** Validates Services / EndpointSlices before they are stored (the service cell installs it). */
  onObjectCheck(fn: (kind: 'Service' | 'EndpointSlice', obj: Record<string, unknown>) => void): void;
  onObjectChanged(fn: (kind: 'Service' | 'EndpointSlice', ns: string, name: string) => Promise<void>): void;
  /** Called (serially) after a pod or namespace changed. */
  onPodChanged(fn: (ns: string, name: string, before: PodMeta | undefined) => Promise<void>): void;
  onNamespaceChanged(fn: (ns: string) => Promise<void>): void;
}

export interface PolicyService {
  readonly repo: PolicyRepository;
  readonly cache: SelectorCache;
  readonly engine: PolicyEngine;
  /** Called (serially) after the repository changed. */
  onChanged(fn: () => Promise<void>): void;
  /** Called, synchronously, each time a policy entry is given a proxy port (before it is used). */
  onProxyPortInUse(fn: () => void): void;
  importPolicies(docs: Record<string, unknown>[]): Promise<{ revision: number; policies: string[] }>;
  deletePolicies(refs: PolicyRef[]): Promise<{ revision: number; deleted: string[] }>;
  persist(): Promise<void>;
}

export interface EndpointService {
  readonly manager: EndpointManager;
  readonly state: EndpointDatapathState;
  /** Removes an endpoint (programs, maps, identity reference) and tells the onRemoved listeners. */
  remove(ep: EndpointRecord): Promise<void>;
  onRemoved(fn: (ep: EndpointRecord) => void): void;
  persist(): Promise<void>;
}

/** This node and the others it knows. */
export interface NodeService {
  readonly registry: NodeRegistry;
  /** The pods' gateway addresses on this node. */
  readonly routerIPs: { ipv4?: string; ipv6?: string };
}

/** The reconcilers of every BPF map, started together once desired state is restored. */
export interface DatapathSync {
  reconcilers(): ReconcilerHandle[];
  status(): ReconcilerStatus[];
}

export const ConfigT: Token<AgentConfig> = token('config');
export const LogT: Token<Logger> = token('logger');
export const StateT: Token<AgentStateStore> = token('state');
export const SerialT: Token<Serial> = token('serial');
export const IpamT: Token<NodeIpam> = token('ipam');
export const DatapathT: Token<NodeDatapath> = token('datapath');
export const TargetsT: Token<DatapathTargets> = token('datapath-targets');
export const IdentitiesT: Token<Identities> = token('identities');
export const ResourcesT: Token<Resources> = token('resources');
export const IpcacheT: Token<IpcacheService> = token('ipcache');
export const PolicyT: Token<PolicyService> = token('policy');
export const EndpointsT: Token<EndpointService> = token('endpoints');
export const NodeT: Token<NodeService> = token('node');
export const KvStoreT: Token<KvStore> = token('kvstore');
export const SyncT: Token<DatapathSync> = token('datapath-sync');
export const CniT: Token<CniBackend> = token('cni');
