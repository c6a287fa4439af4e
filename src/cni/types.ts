/** CNI spec 1.0.0 shapes and constants shared by the plugin and the agent (no runtime dependencies). */

export const CNI_VERSION = '1.0.0';
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;

/** Well-known CNI error codes (spec 1.0.0 §"Error"), plus our plugin-specific codes (100+). */
export const CniErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  /** Spec 1.1 STATUS: the plugin is not available (agent not ready). */
  PluginNotAvailable: 50,
  /** The agent's unix socket could not be reached. */
  AgentUnreachable: 100,
  /** The agent answered something that is not a valid response. */
  AgentProtocol: 101,
  /** The agent did not answer in time. */
  AgentTimeout: 102,
  /** The agent failed the request without giving a CNI error code. */
  AgentFailure: 103,
} as const;

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

export const DEFAULT_AGENT_SOCKET = '/run/cilium-ts/default/node/agent.sock';
export const AGENT_SOCKET_ENV = 'CILIUM_TS_AGENT_SOCKET';

/** The network configuration a runtime passes on stdin (our plugin's subset; other fields are kept). */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  /** Path of the agent's unix socket. */
  agentSocket?: string;
  /** Containers run by podman: where the agent reads their labels (see podman.ts). */
  podman?: { db: string };
  mtu?: number;
  ipam?: { type?: string; [k: string]: unknown };
  dns?: CniDns;
  prevResult?: CniResult;
  runtimeConfig?: Record<string, unknown>;
  args?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  /** Netns path for interfaces inside the container; absent for host interfaces. */
  sandbox?: string;
}

export interface CniIpConfig {
  /** CIDR notation, e.g. "10.200.0.5/32". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
  /** Only in results converted to 0.3.x/0.4.0. */
  version?: '4' | '6';
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

export interface CniErrorObject {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

// ---- agent protocol (plugin → agent over the unix socket) ----

export const CNI_API = {
  add: '/v1/cni/add',
  del: '/v1/cni/del',
  check: '/v1/cni/check',
  status: '/v1/cni/status',
  gc: '/v1/cni/gc',
  /** The whole invocation as the runtime made it (CNI_* environment + stdin); answers the plugin's stdout. */
  exec: '/v1/cni/exec',
} as const;

/** Body of POST /v1/cni/exec (sent by the compiled plugin entry). */
export interface CniAgentExecRequest {
  env: Record<string, string>;
  stdin: string;
}

/** Header of the /v1/cni/exec answer carrying the plugin's exit code (the body is its stdout). */
export const CNI_EXIT_HEADER = 'x-cni-exit';

/** Body of POST /v1/cni/add|del|check. */
export interface CniAgentRequest {
  containerId: string;
  /** Netns path; may be empty on DEL. */
  netns: string;
  ifName: string;
  podNamespace?: string;
  podName?: string;
  /** All CNI_ARGS key/values. */
  args?: Record<string, string>;
  config: NetConf;
}

/** Body of POST /v1/cni/gc (spec 1.1 GC). */
export interface CniAgentGcRequest {
  config: NetConf;
  /** cni.dev/valid-attachments: attachments to keep. */
  validAttachments: Array<{ containerID: string; ifname: string }>;
}

/** 200 answer to ADD (`result` is a 1.0.0 result); DEL/CHECK answer 200 with `{}`. */
export interface CniAgentOkResponse {
  result?: CniResult;
}

/** Non-200 answer: a CNI error object (cniVersion optional; the plugin fills it in). */
export interface CniAgentErrorResponse {
  code: number;
  msg: string;
  details?: string;
}
