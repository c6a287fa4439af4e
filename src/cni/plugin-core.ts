/**
 * The CNI plugin's logic, free of process side effects so it can be unit-tested: validate the
 * invocation, forward ADD/DEL/CHECK/STATUS/GC to the agent, and produce stdout + exit code.
 * Imports only node builtins (start-up time matters: the runtime spawns the plugin per pod).
 */
import { existsSync } from 'node:fs';
import { type AgentPost, AgentTransportError, postJson } from './agent-client.js';
import { CniError } from './errors.js';
import { convertResult, validateResult } from './result.js';
import {
  AGENT_SOCKET_ENV,
  CNI_API,
  CNI_VERSION,
  type CniAgentRequest,
  CniErrorCode,
  type CniResult,
  DEFAULT_AGENT_SOCKET,
  type NetConf,
  SUPPORTED_VERSIONS,
} from './types.js';
import { type CniInvocation, parseInvocation, sniffVersion } from './validate.js';

export interface PluginIo {
  env: Record<string, string | undefined>;
  stdin: string;
  /** Override the agent transport (tests). Default: HTTP over the unix socket. */
  post?: AgentPost;
  /** Override netns existence checks (tests). */
  netnsExists?: (path: string) => boolean;
}

export interface PluginOutcome {
  exitCode: number;
  /** What to print on stdout ('' for nothing). */
  stdout: string;
}

const DEFAULT_TIMEOUT_MS = 120_000;

export function agentSocketFor(config: NetConf | undefined, env: Record<string, string | undefined>): string {
  return env[AGENT_SOCKET_ENV] || config?.agentSocket || DEFAULT_AGENT_SOCKET;
}

export async function runPlugin(io: PluginIo): Promise<PluginOutcome> {
  const version = sniffVersion(io.stdin);
  try {
    return await dispatch(io);
  } catch (e) {
    const err =
      e instanceof CniError
        ? e
        : new CniError(CniErrorCode.IoFailure, 'internal plugin failure', (e as Error)?.message ?? String(e));
    return { exitCode: 1, stdout: `${JSON.stringify(err.toObject(version))}\n` };
  }
}

async function dispatch(io: PluginIo): Promise<PluginOutcome> {
  const inv = parseInvocation(io.env, io.stdin);
  if (inv.command === 'VERSION') {
    return ok({ cniVersion: CNI_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] });
  }
  const config = inv.config!;
  const socket = agentSocketFor(config, io.env);
  const timeoutMs = Number(io.env.CILIUM_TS_CNI_TIMEOUT_MS) || DEFAULT_TIMEOUT_MS;
  const post: AgentPost = io.post ?? ((path, body) => postJson(socket, path, body, timeoutMs));
  const exists = io.netnsExists ?? existsSync;

  switch (inv.command) {
    case 'ADD': {
      if (!exists(inv.netns))
        throw new CniError(
          CniErrorCode.UnknownContainer,
          'container network namespace does not exist',
          inv.netns,
        );
      const body = await call(post, CNI_API.add, agentRequest(inv), socket);
      const result = (body as { result?: unknown }).result;
      const problems = validateResult(result);
      if (result === undefined || problems.length > 0) {
        throw new CniError(
          CniErrorCode.AgentProtocol,
          'agent returned an invalid ADD result',
          problems.join('; ') || 'missing result',
        );
      }
      return ok(convertResult(result as CniResult, config.cniVersion));
    }
    case 'CHECK': {
      if (!exists(inv.netns))
        throw new CniError(
          CniErrorCode.UnknownContainer,
          'container network namespace does not exist',
          inv.netns,
        );
      await call(post, CNI_API.check, agentRequest(inv), socket);
      return { exitCode: 0, stdout: '' };
    }
    case 'DEL': {
      try {
        await call(post, CNI_API.del, agentRequest(inv), socket);
      } catch (e) {
        // The agent no longer knows the container: DEL is idempotent.
        if (e instanceof CniError && e.cniCode === CniErrorCode.UnknownContainer)
          return { exitCode: 0, stdout: '' };
        if (
          e instanceof CniError &&
          (e.cniCode === CniErrorCode.AgentUnreachable || e.cniCode === CniErrorCode.AgentTimeout)
        ) {
          // Nothing left to clean up if the namespace is gone (its veth end went with it).
          if (!inv.netns || !exists(inv.netns)) return { exitCode: 0, stdout: '' };
          throw new CniError(
            CniErrorCode.TryAgainLater,
            'agent unreachable, try again later',
            e.details ?? e.message,
          );
        }
        throw e;
      }
      return { exitCode: 0, stdout: '' };
    }
    case 'STATUS': {
      try {
        await call(post, CNI_API.status, { config }, socket);
      } catch (e) {
        if (e instanceof CniError && e.cniCode >= 100) {
          throw new CniError(CniErrorCode.PluginNotAvailable, 'agent not available', e.details ?? e.message);
        }
        throw e;
      }
      return { exitCode: 0, stdout: '' };
    }
    case 'GC': {
      const valid = Array.isArray(config['cni.dev/valid-attachments'])
        ? config['cni.dev/valid-attachments']
        : [];
      await call(post, CNI_API.gc, { config, validAttachments: valid }, socket);
      return { exitCode: 0, stdout: '' };
    }
  }
}

function ok(obj: unknown): PluginOutcome {
  return { exitCode: 0, stdout: `${JSON.stringify(obj)}\n` };
}

function agentRequest(inv: CniInvocation): CniAgentRequest {
  const r: CniAgentRequest = {
    containerId: inv.containerId,
    netns: inv.netns,
    ifName: inv.ifName,
    args: inv.args,
    config: inv.config!,
  };
  if (inv.podNamespace) r.podNamespace = inv.podNamespace;
  if (inv.podName) r.podName = inv.podName;
  return r;
}

/** POST and map every failure to a CniError (agent error objects pass through unchanged). */
async function call(post: AgentPost, path: string, body: unknown, socket: string): Promise<unknown> {
  let res: Awaited<ReturnType<AgentPost>>;
  try {
    res = await post(path, body);
  } catch (e) {
    if (e instanceof AgentTransportError) {
      if (e.kind === 'unreachable')
        throw new CniError(CniErrorCode.AgentUnreachable, 'cilium-ts agent unreachable', e.message);
      if (e.kind === 'timeout')
        throw new CniError(CniErrorCode.AgentTimeout, 'cilium-ts agent did not answer in time', e.message);
      throw new CniError(CniErrorCode.AgentProtocol, 'bad answer from cilium-ts agent', e.message);
    }
    throw new CniError(
      CniErrorCode.AgentUnreachable,
      'cilium-ts agent unreachable',
      `${socket}: ${(e as Error).message}`,
    );
  }
  if (res.status >= 200 && res.status < 300) return res.body ?? {};
  const b = res.body as { code?: unknown; msg?: unknown; details?: unknown } | null;
  if (b && typeof b.code === 'number' && typeof b.msg === 'string') {
    throw new CniError(b.code, b.msg, typeof b.details === 'string' ? b.details : undefined);
  }
  throw new CniError(
    CniErrorCode.AgentFailure,
    `cilium-ts agent failed the request (HTTP ${res.status})`,
    JSON.stringify(res.body),
  );
}
