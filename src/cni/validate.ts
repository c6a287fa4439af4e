/** Validation of a CNI invocation (environment + network configuration), per CNI spec 1.0.0. Pure. */
import { CniError } from './errors.js';
import { type CniCommand, CniErrorCode, type NetConf, SUPPORTED_VERSIONS } from './types.js';

const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

export interface CniInvocation {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_ARGS as key/values. */
  args: Record<string, string>;
  podNamespace?: string;
  podName?: string;
  cniPath: string[];
  /** Absent only for VERSION. */
  config?: NetConf;
}

type Env = Record<string, string | undefined>;

/** Which environment variables each command requires (CNI_PATH for ADD/DEL/CHECK as libcni's skel does). */
const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  VERSION: [],
  STATUS: [],
  GC: [],
};

export function isSupportedVersion(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compare dotted versions: negative if a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p" → map. Empty → {}. A pair without '=' is error 4. */
export function parseCniArgs(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const pair of s.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        'invalid CNI_ARGS',
        `malformed pair ${JSON.stringify(pair)}`,
      );
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Spec: container IDs are non-empty, alphanumeric plus '_', '.', '-', starting alphanumeric. */
export function isValidContainerId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id);
}

/** Linux interface name rules (what the runtime may pass as CNI_IFNAME). */
export function isValidIfName(n: string): boolean {
  return n.length > 0 && n.length <= 15 && n !== '.' && n !== '..' && !/[/:\s]/.test(n);
}

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * Decode and validate the network configuration. Errors: 6 (not JSON / not an object),
 * 7 (missing or mistyped field), 1 (unsupported cniVersion), 2 (unsupported field value).
 */
export function parseNetConf(text: string, command?: CniCommand): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CniError(
      CniErrorCode.DecodingFailure,
      'failed to decode network configuration',
      (e as Error).message,
    );
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CniError(
      CniErrorCode.DecodingFailure,
      'failed to decode network configuration',
      'expected a JSON object',
    );
  }
  const c = raw as Record<string, unknown>;
  const invalid = (details: string) =>
    new CniError(CniErrorCode.InvalidNetworkConfig, 'invalid network configuration', details);
  if (typeof c.cniVersion !== 'string' || c.cniVersion === '')
    throw invalid('"cniVersion" must be a non-empty string');
  if (!isSupportedVersion(c.cniVersion)) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      'incompatible CNI versions',
      `config is "${c.cniVersion}", plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    );
  }
  if (typeof c.name !== 'string' || !NETWORK_NAME.test(c.name)) {
    throw invalid(
      '"name" must start with an alphanumeric character and contain only alphanumerics, "_", "." and "-"',
    );
  }
  if (typeof c.type !== 'string' || c.type === '') throw invalid('"type" must be a non-empty string');
  if (c.agentSocket !== undefined && (typeof c.agentSocket !== 'string' || !c.agentSocket.startsWith('/'))) {
    throw invalid('"agentSocket" must be an absolute path');
  }
  if (
    c.mtu !== undefined &&
    (typeof c.mtu !== 'number' || !Number.isInteger(c.mtu) || c.mtu < 68 || c.mtu > 65535)
  ) {
    throw invalid('"mtu" must be an integer between 68 and 65535');
  }
  if (c.ipam !== undefined) {
    if (c.ipam === null || typeof c.ipam !== 'object' || Array.isArray(c.ipam))
      throw invalid('"ipam" must be an object');
    const t = (c.ipam as Record<string, unknown>).type;
    if (t !== undefined && t !== 'cluster-pool' && t !== c.type) {
      throw new CniError(
        CniErrorCode.UnsupportedField,
        'unsupported field in network configuration',
        `ipam.type=${JSON.stringify(t)}: addresses come from the agent's cluster-pool IPAM`,
      );
    }
  }
  if (c.podman !== undefined) {
    const db = (c.podman as { db?: unknown } | null)?.db;
    if (c.podman === null || typeof c.podman !== 'object' || typeof db !== 'string' || !db.startsWith('/'))
      throw invalid('"podman.db" must be an absolute path (podman\'s libpod/bolt_state.db)');
  }
  if (c.prevResult !== undefined && (c.prevResult === null || typeof c.prevResult !== 'object')) {
    throw invalid('"prevResult" must be an object');
  }
  if (command === 'CHECK') {
    if (compareVersions(c.cniVersion, '0.4.0') < 0) {
      throw new CniError(
        CniErrorCode.IncompatibleVersion,
        'config version does not allow CHECK',
        `cniVersion ${c.cniVersion}`,
      );
    }
    if (c.prevResult === undefined) throw invalid('CHECK requires "prevResult"');
  }
  return c as NetConf;
}

/** Best-effort cniVersion of stdin for error objects (falls back to 1.0.0). */
export function sniffVersion(text: string): string {
  try {
    const v = (JSON.parse(text) as { cniVersion?: unknown }).cniVersion;
    if (typeof v === 'string' && isSupportedVersion(v)) return v;
  } catch {
    // not JSON
  }
  return '1.0.0';
}

/** Validate environment and stdin for one plugin invocation. Throws CniError. */
export function parseInvocation(env: Env, stdin: string): CniInvocation {
  const command = env.CNI_COMMAND as CniCommand | undefined;
  if (!command)
    throw new CniError(CniErrorCode.InvalidEnvironment, 'required env variables [CNI_COMMAND] missing');
  if (!COMMANDS.includes(command)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${command}`);
  }
  const missing = REQUIRED[command].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      `required env variables [${missing.join(',')}] missing`,
    );
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifName = env.CNI_IFNAME ?? '';
  const netns = env.CNI_NETNS ?? '';
  if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
    if (!isValidContainerId(containerId)) {
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        'invalid CNI_CONTAINERID',
        JSON.stringify(containerId),
      );
    }
    if (!isValidIfName(ifName))
      throw new CniError(CniErrorCode.InvalidEnvironment, 'invalid CNI_IFNAME', JSON.stringify(ifName));
    if (netns && !netns.startsWith('/')) {
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        'invalid CNI_NETNS',
        `${JSON.stringify(netns)} is not an absolute path`,
      );
    }
  }
  const args = parseCniArgs(env.CNI_ARGS);
  const inv: CniInvocation = {
    command,
    containerId,
    netns,
    ifName,
    args,
    cniPath: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
  if (args.K8S_POD_NAMESPACE) inv.podNamespace = args.K8S_POD_NAMESPACE;
  if (args.K8S_POD_NAME) inv.podName = args.K8S_POD_NAME;
  if (command === 'VERSION') return inv;
  if (stdin.trim() === '') {
    throw new CniError(
      CniErrorCode.DecodingFailure,
      'failed to decode network configuration',
      'stdin is empty',
    );
  }
  inv.config = parseNetConf(stdin, command);
  return inv;
}
