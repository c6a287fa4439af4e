/**
 * Agent side of the CNI API: IPAM + endpoint plumbing + result for ADD, teardown + release for DEL,
 * verification for CHECK, and a node:http request handler for POST /v1/cni/*. The agent composes this
 * with its own endpoint management through the `hooks`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { NodeIpam, PodAllocation } from '../ipam/node-ipam.js';
import type { AgentResponse } from './agent-client.js';
import {
  checkEndpoint,
  EndpointCheckError,
  type EndpointPlumbingResult,
  type EndpointPlumbingSpec,
  hostVethName,
  randomMac,
  setupEndpoint,
  teardownEndpoint,
} from './endpoint-plumbing.js';
import { CniError } from './errors.js';
import { type PluginOutcome, runPlugin } from './plugin-core.js';
import { buildAddResult } from './result.js';
import {
  CNI_API,
  CNI_EXIT_HEADER,
  type CniAgentExecRequest,
  type CniAgentGcRequest,
  type CniAgentRequest,
  type CniDns,
  CniErrorCode,
  type CniResult,
} from './types.js';

/** Plugin-specific code: CHECK found the endpoint differs from its configuration. */
export const CNI_ERR_CHECK_FAILED = 104;
/** Plugin-specific code: IPAM could not allocate. */
export const CNI_ERR_IPAM = 105;
/** Plugin-specific code: creating the interfaces failed. */
export const CNI_ERR_PLUMBING = 106;

export interface CniEndpoint {
  containerId: string;
  ifName: string;
  netns: string;
  podNamespace?: string | undefined;
  podName?: string | undefined;
  allocation: PodAllocation;
  plumbing: EndpointPlumbingResult;
}

/** What the agent knows before the interfaces exist (so it can start loading programs early). */
export interface CniPendingEndpoint {
  containerId: string;
  ifName: string;
  netns: string;
  podNamespace?: string | undefined;
  podName?: string | undefined;
  allocation: PodAllocation;
  hostIfName: string;
  hostMac: string;
  podMac: string;
}

export interface CniBackendHooks {
  /** First thing on ADD: learn the pod's metadata (labels) from the runtime when it has its own. */
  podStarting?(req: CniAgentRequest): Promise<void>;
  /** Last thing on DEL: forget what podStarting learnt. */
  podGone?(
    req: Pick<CniAgentRequest, 'containerId' | 'ifName' | 'config' | 'podNamespace' | 'podName'>,
  ): Promise<void>;
  /**
   * Before IPAM: an endpoint the agent began for this pod ahead of the ADD (addresses allocated to
   * this container now, MACs, the token endpointPending would have returned), or undefined.
   */
  claimPrepared?(req: CniAgentRequest): PreparedAdd | undefined;
  /**
   * After IPAM, before plumbing: lets the agent start work that needs no interface (endpoint ID,
   * identity, program verification) while the interfaces are created. Its result is handed to
   * endpointAdded, or to endpointAborted when plumbing fails.
   */
  endpointPending?(ep: CniPendingEndpoint): unknown;
  /** The interfaces of a pending endpoint are ready (before the endpoint is created). */
  hostLinkReady?(token: unknown, ifindex: number): void;
  endpointAborted?(token: unknown): void;
  /**
   * After IPAM + plumbing succeeded on ADD (e.g. create the endpoint, attach BPF). Throwing fails ADD
   * and undoes it. May return how long its own steps took (ms, by step name) for the timing line.
   */
  endpointAdded?(ep: CniEndpoint, token?: unknown): Promise<Record<string, number> | undefined>;
  /** Before teardown on DEL (e.g. detach, forget the endpoint). Teardown still happens if it throws; DEL then fails with 11. */
  endpointRemoved?(p: { containerId: string; ifName: string; hostIfName: string }): Promise<void>;
  /** IPAM state changed: persist it. */
  ipamChanged?(): Promise<void>;
  /** An ADD succeeded: how long its steps took. */
  addTimed?(t: CniAddTimings): void;
}

/** What an ADD takes over from an endpoint begun ahead (see claimPrepared). */
export interface PreparedAdd {
  allocation: PodAllocation;
  hostMac: string;
  podMac: string;
  token: unknown;
}

/**
 * IPAM owners of endpoints begun ahead of their ADD have container IDs with this prefix (a real
 * one cannot contain ':'); GC leaves them alone.
 */
export const PREPARED_OWNER_PREFIX = 'prepared:';

/** Wall time of an ADD's steps in the agent, in milliseconds. */
export interface CniAddTimings {
  containerId: string;
  ipamMs: number;
  /** From IPAM to the interfaces being ready: the rtnetlink requests plus whatever the agent's
   * event loop ran meanwhile (the endpoint's start: identity, preparing its programs). */
  linksMs: number;
  /** Of linksMs, the rtnetlink requests themselves: node side (veth, host routes), pod side. */
  netlinkMs: number;
  nodeSideMs: number;
  podSideMs: number;
  /** Identity, policy and map entries, programs attached. */
  endpointMs: number;
  /** The endpoint was begun ahead of the ADD (see claimPrepared). */
  prepared: boolean;
  /** The endpoint hook's own steps (see endpointAdded). */
  steps?: Record<string, number> | undefined;
  totalMs: number;
}

export interface CniBackendOptions {
  ipam: NodeIpam;
  /** Node namespace path when the agent does not run inside it. */
  nodeNetns?: string | undefined;
  mtu?: number | undefined;
  /** IPv4 BIG TCP: pods' veths take GSO/GRO packets of this size (src/datapath/big-tcp.ts). */
  bigTcpIpv4?: number | undefined;
  dns?: CniDns | undefined;
  hooks?: CniBackendHooks;
}

export class CniBackend {
  constructor(private readonly o: CniBackendOptions) {}

  private spec(req: CniAgentRequest, a: PodAllocation): EndpointPlumbingSpec {
    return {
      nodeNetns: this.o.nodeNetns,
      podNetns: req.netns,
      ifName: req.ifName,
      hostIfName: hostVethName(req.containerId, req.ifName),
      ipv4: a.ipv4 ? { ip: a.ipv4.ip, router: a.ipv4.gateway } : undefined,
      ipv6: a.ipv6 ? { ip: a.ipv6.ip, router: a.ipv6.gateway } : undefined,
      mtu: req.config.mtu ?? this.o.mtu,
      bigTcpIpv4: this.o.bigTcpIpv4,
    };
  }

  async add(req: CniAgentRequest): Promise<{ result: CniResult; endpoint: CniEndpoint }> {
    const t0 = performance.now();
    await this.o.hooks?.podStarting?.(req);
    const pod = req.podNamespace && req.podName ? `${req.podNamespace}/${req.podName}` : undefined;
    const prepared = this.o.hooks?.claimPrepared?.(req);
    let allocation: PodAllocation;
    try {
      allocation =
        prepared?.allocation ??
        this.o.ipam.allocate({ containerId: req.containerId, ifName: req.ifName, pod });
    } catch (e) {
      throw new CniError(CNI_ERR_IPAM, 'IP allocation failed', (e as Error).message);
    }
    // Written while the interfaces and the endpoint are made; durable before the answer.
    const ipamSaved = this.#ipamSaved();
    const t1 = performance.now();
    const spec = {
      ...this.spec(req, allocation),
      hostMac: prepared?.hostMac ?? randomMac(),
      podMac: prepared?.podMac ?? randomMac(),
    };
    let token: unknown = prepared?.token;
    let plumbing: EndpointPlumbingResult;
    try {
      token ??= this.o.hooks?.endpointPending?.({
        containerId: req.containerId,
        ifName: req.ifName,
        netns: req.netns,
        podNamespace: req.podNamespace,
        podName: req.podName,
        allocation,
        hostIfName: spec.hostIfName,
        hostMac: spec.hostMac,
        podMac: spec.podMac,
      });
      const pending = token;
      // One turn of the event loop first: a known identity resolves and the programs' verification
      // gets onto the thread pool before the (synchronous) rtnetlink requests hold the loop.
      if (pending !== undefined && !prepared) await new Promise((r) => setImmediate(r));
      plumbing = await setupEndpoint({
        ...spec,
        onHostLink: (ifindex) => {
          if (pending !== undefined) this.o.hooks?.hostLinkReady?.(pending, ifindex);
        },
      });
    } catch (e) {
      if (token !== undefined) this.o.hooks?.endpointAborted?.(token);
      this.o.ipam.release(req);
      await this.#ipamSaved().catch(() => {});
      throw new CniError(CNI_ERR_PLUMBING, 'failed to set up the pod interface', (e as Error).message);
    }
    const endpoint: CniEndpoint = {
      containerId: req.containerId,
      ifName: req.ifName,
      netns: req.netns,
      podNamespace: req.podNamespace,
      podName: req.podName,
      allocation,
      plumbing,
    };
    const t2 = performance.now();
    let steps: Record<string, number> | undefined;
    try {
      steps = await this.o.hooks?.endpointAdded?.(endpoint, token);
      await ipamSaved;
    } catch (e) {
      await teardownEndpoint({ nodeNetns: this.o.nodeNetns, hostIfName: spec.hostIfName }).catch(() => {});
      this.o.ipam.release(req);
      await this.#ipamSaved().catch(() => {});
      throw e instanceof CniError
        ? e
        : new CniError(CNI_ERR_PLUMBING, 'endpoint creation failed', (e as Error).message);
    }
    const result = buildAddResult({
      hostInterface: { name: plumbing.hostIfName, mac: plumbing.hostMac },
      podInterface: {
        name: req.ifName,
        mac: plumbing.podMac,
        sandbox: req.netns,
        ...(spec.mtu ? { mtu: spec.mtu } : {}),
      },
      ...(allocation.ipv4 ? { ipv4: { ip: allocation.ipv4.ip, gateway: allocation.ipv4.gateway } } : {}),
      ...(allocation.ipv6 ? { ipv6: { ip: allocation.ipv6.ip, gateway: allocation.ipv6.gateway } } : {}),
      ...(this.o.dns ? { dns: this.o.dns } : {}),
    });
    const t3 = performance.now();
    const ms = (x: number) => Math.round(x * 100) / 100;
    this.o.hooks?.addTimed?.({
      containerId: req.containerId,
      ipamMs: ms(t1 - t0),
      linksMs: ms(t2 - t1),
      netlinkMs: plumbing.timings.totalMs,
      nodeSideMs: plumbing.timings.nodeMs,
      podSideMs: plumbing.timings.podMs,
      endpointMs: ms(t3 - t2),
      prepared: prepared !== undefined,
      steps,
      totalMs: ms(t3 - t0),
    });
    return { result, endpoint };
  }

  /** Saves the IPAM state (a rejection is the caller's to await). */
  #ipamSaved(): Promise<void> {
    const p = Promise.resolve(this.o.hooks?.ipamChanged?.());
    p.catch(() => {}); // awaited where it matters
    return p;
  }

  /** Idempotent: unknown containers and missing interfaces are not errors. */
  async del(req: Pick<CniAgentRequest, 'containerId' | 'ifName'> & Partial<CniAgentRequest>): Promise<void> {
    const hostIfName = hostVethName(req.containerId, req.ifName);
    let hookError: unknown;
    try {
      await this.o.hooks?.endpointRemoved?.({ containerId: req.containerId, ifName: req.ifName, hostIfName });
    } catch (e) {
      hookError = e;
    }
    await teardownEndpoint({ nodeNetns: this.o.nodeNetns, hostIfName });
    if (this.o.ipam.release(req)) await this.o.hooks?.ipamChanged?.();
    if (req.config) await this.o.hooks?.podGone?.({ ...req, config: req.config });
    // Network resources are gone either way; a failed hook makes the runtime retry DEL (idempotent).
    if (hookError)
      throw new CniError(CniErrorCode.TryAgainLater, 'endpoint removal failed', (hookError as Error).message);
  }

  async check(req: CniAgentRequest): Promise<void> {
    const a = this.o.ipam.get(req);
    if (!a)
      throw new CniError(
        CniErrorCode.UnknownContainer,
        'container unknown to the agent',
        `${req.containerId}/${req.ifName}`,
      );
    const prev = req.config.prevResult;
    if (prev?.ips) {
      const mine = [a.ipv4?.ip, a.ipv6?.ip].filter(Boolean);
      for (const ip of prev.ips) {
        const bare = ip.address.slice(0, ip.address.indexOf('/'));
        if (!mine.includes(bare)) {
          throw new CniError(
            CNI_ERR_CHECK_FAILED,
            'prevResult does not match the allocation',
            `${ip.address} not in [${mine.join(', ')}]`,
          );
        }
      }
    }
    try {
      await checkEndpoint(this.spec(req, a));
    } catch (e) {
      if (e instanceof EndpointCheckError)
        throw new CniError(CNI_ERR_CHECK_FAILED, 'endpoint check failed', e.message);
      throw e;
    }
  }

  /** Release attachments the runtime no longer knows (GC); returns what was removed. */
  async gc(req: CniAgentGcRequest): Promise<string[]> {
    const keep = new Set(req.validAttachments.map((v) => `${v.containerID}/${v.ifname}`));
    const removed: string[] = [];
    for (const { owner } of this.o.ipam.list()) {
      if (owner.containerId.startsWith(PREPARED_OWNER_PREFIX)) continue;
      const key = `${owner.containerId}/${owner.ifName}`;
      if (keep.has(key)) continue;
      await this.del(owner);
      removed.push(key);
    }
    return removed;
  }
}

/** Map an error to an HTTP status and a CNI error object body. */
export function cniErrorResponse(e: unknown): {
  status: number;
  body: { code: number; msg: string; details?: string };
} {
  if (e instanceof CniError) {
    const status =
      e.cniCode === CniErrorCode.UnknownContainer
        ? 404
        : e.cniCode === CniErrorCode.TryAgainLater
          ? 503
          : e.cniCode < 100
            ? 400
            : 500;
    const body: { code: number; msg: string; details?: string } = { code: e.cniCode, msg: e.message };
    if (e.details) body.details = e.details;
    return { status, body };
  }
  return {
    status: 500,
    body: {
      code: CniErrorCode.IoFailure,
      msg: 'agent internal error',
      details: (e as Error)?.message ?? String(e),
    },
  };
}

function readBody(req: IncomingMessage, limit = 1 << 20): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) reject(new CniError(CniErrorCode.DecodingFailure, 'request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch (e) {
        reject(new CniError(CniErrorCode.DecodingFailure, 'request body is not JSON', (e as Error).message));
      }
    });
    req.on('error', reject);
  });
}

function validRequest(b: unknown): CniAgentRequest {
  const r = b as Partial<CniAgentRequest> | null;
  if (
    !r ||
    typeof r.containerId !== 'string' ||
    typeof r.ifName !== 'string' ||
    typeof r.netns !== 'string' ||
    !r.config
  ) {
    throw new CniError(
      CniErrorCode.DecodingFailure,
      'malformed CNI request',
      'need containerId, ifName, netns, config',
    );
  }
  return r as CniAgentRequest;
}

/** Answer one CNI API request in process: the same status and body the HTTP handler sends. */
export async function answerCni(
  backend: CniBackend,
  path: string,
  body: unknown,
  ready: () => boolean = () => true,
): Promise<AgentResponse> {
  try {
    switch (path) {
      case CNI_API.add:
        return { status: 200, body: { result: (await backend.add(validRequest(body))).result } };
      case CNI_API.del:
        await backend.del(validRequest(body));
        return { status: 200, body: {} };
      case CNI_API.check:
        await backend.check(validRequest(body));
        return { status: 200, body: {} };
      case CNI_API.status:
        return ready()
          ? { status: 200, body: {} }
          : { status: 503, body: { code: CniErrorCode.PluginNotAvailable, msg: 'agent not ready' } };
      case CNI_API.gc: {
        const g = body as Partial<CniAgentGcRequest>;
        return {
          status: 200,
          body: {
            removed: await backend.gc({ config: g.config!, validAttachments: g.validAttachments ?? [] }),
          },
        };
      }
      default:
        return { status: 404, body: { code: CniErrorCode.InvalidEnvironment, msg: `no CNI route ${path}` } };
    }
  } catch (e) {
    return cniErrorResponse(e);
  }
}

/**
 * The plugin's whole logic (runPlugin: validation, dispatch, result conversion, error objects) run in
 * the agent for an invocation the compiled entry forwarded as it is; the backend is called in process.
 */
export async function execCni(
  backend: CniBackend,
  body: unknown,
  ready: () => boolean = () => true,
): Promise<PluginOutcome> {
  const b = body as Partial<CniAgentExecRequest> | null;
  const env = b?.env;
  if (!env || typeof env !== 'object' || typeof b?.stdin !== 'string') {
    throw new CniError(CniErrorCode.DecodingFailure, 'malformed CNI exec request', 'need env and stdin');
  }
  const cniEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('CNI_') && typeof v === 'string') cniEnv[k] = v;
  return runPlugin({
    env: cniEnv,
    stdin: b.stdin,
    post: (path, reqBody) => answerCni(backend, path, reqBody, ready),
  });
}

/**
 * node:http handler for the CNI API; returns false when the path is not a CNI route (so the agent can
 * route other paths). `ready()` gates STATUS (default: always ready).
 */
export async function handleCniHttp(
  req: IncomingMessage,
  res: ServerResponse,
  backend: CniBackend,
  ready: () => boolean = () => true,
): Promise<boolean> {
  const path = (req.url ?? '').split('?')[0];
  const routes: string[] = Object.values(CNI_API);
  if (!path || !routes.includes(path)) return false;
  const send = (status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (req.method !== 'POST') {
    send(405, { code: CniErrorCode.InvalidEnvironment, msg: `use POST for ${path}` });
    return true;
  }
  let body: unknown;
  try {
    body = await readBody(req);
  } catch (e) {
    const r = cniErrorResponse(e);
    send(r.status, r.body);
    return true;
  }
  if (path === CNI_API.exec) {
    let out: PluginOutcome;
    try {
      out = await execCni(backend, body, ready);
    } catch (e) {
      const r = cniErrorResponse(e);
      send(r.status, r.body);
      return true;
    }
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(out.stdout),
      [CNI_EXIT_HEADER]: String(out.exitCode),
    });
    res.end(out.stdout);
    return true;
  }
  const r = await answerCni(backend, path, body, ready);
  send(r.status, r.body);
  return true;
}
