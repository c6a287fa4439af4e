/**
 * Clients of the agent's REST API over its unix socket: AgentClient moves JSON (and NDJSON streams),
 * AgentApi has one typed method per route of src/api/types.ts. Used by the CLI and the lab.
 */
import { request } from 'node:http';
import { AgentApiError, AgentUnreachableError } from './errors.js';
import {
  type BpfCtEntry,
  type BpfEndpointEntry,
  type BpfIpcacheEntry,
  type BpfLbEntry,
  type BpfMetricsEntry,
  type BpfPolicyResponse,
  type CtFlushQuery,
  type CtFlushResponse,
  type CtGcRunResponse,
  type CtGcStatusResponse,
  type Empty,
  type EndpointView,
  type HealthzResponse,
  type IdentityView,
  type KubeObject,
  type KubeObjectsResponse,
  type MonitorEvent,
  type MonitorQuery,
  type NamespaceRequest,
  type NodeView,
  type PathParams,
  type PodRequest,
  type PodsResponse,
  type PolicyDeleteRequest,
  type PolicyDeleteResponse,
  type PolicyDocumentsRequest,
  type PolicyImportResponse,
  type PolicyListResponse,
  type PolicyValidateResponse,
  type RouteDef,
  routes,
  type ServiceView,
  type StatusResponse,
  type TraceRequest,
  type TraceResponse,
} from './types.js';

/**
 * A unix socket has no TLS server name. Without one given, Node's http agent works it out from the
 * host (`localhost`) with net.isIP, whose first IPv6 check compiles a large regular expression:
 * ~11 ms of every short command that calls the agent.
 */
const NO_SERVERNAME = { servername: '' } as const;

export class AgentClient {
  constructor(
    readonly socketPath: string,
    readonly timeoutMs = 30_000,
  ) {}

  get<T = unknown>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }
  put<T = unknown>(path: string, body: unknown, contentType = 'application/json'): Promise<T> {
    return this.call<T>('PUT', path, body, contentType);
  }
  post<T = unknown>(path: string, body: unknown, contentType = 'application/json'): Promise<T> {
    return this.call<T>('POST', path, body, contentType);
  }
  delete<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.call<T>('DELETE', path, body);
  }

  call<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          ...NO_SERVERNAME,
          path,
          method,
          timeout: this.timeoutMs,
          headers:
            payload === undefined
              ? {}
              : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : {};
            } catch {
              json = { error: text };
            }
            const status = res.statusCode ?? 500;
            if (status >= 400) reject(AgentApiError.fromResponse(status, json));
            else resolve(json as T);
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(
          new AgentUnreachableError(
            `agent at ${this.socketPath} did not answer within ${this.timeoutMs} ms`,
            'timeout',
          ),
        ),
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof AgentUnreachableError) reject(e);
        else if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
          reject(
            new AgentUnreachableError(
              `cannot reach the agent at ${this.socketPath} (is it running? start a lab with 'cilium-ts lab up')`,
            ),
          );
        } else reject(e);
      });
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** Streams newline-delimited JSON from a GET endpoint until the server ends it or `signal` aborts. */
  stream(path: string, onLine: (obj: unknown) => void, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, ...NO_SERVERNAME, path, method: 'GET', signal },
        (res) => {
          const status = res.statusCode ?? 500;
          if (status >= 400) {
            // An error answers with one JSON body instead of a stream.
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              let json: unknown;
              try {
                json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
              } catch {
                json = {};
              }
              reject(AgentApiError.fromResponse(status, json));
            });
            return;
          }
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            buf += d;
            let i = buf.indexOf('\n');
            while (i >= 0) {
              const line = buf.slice(0, i);
              buf = buf.slice(i + 1);
              if (line.trim()) onLine(JSON.parse(line));
              i = buf.indexOf('\n');
            }
          });
          res.on('end', () => resolve());
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e.name === 'AbortError') resolve();
        else if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED')
          reject(new AgentUnreachableError(`cannot reach the agent at ${this.socketPath}`));
        else reject(e);
      });
      req.end();
    });
  }
}

/** Fills `:param` segments of a route's path (each value URL-encoded). */
export function routePath<P extends string>(path: P, params: Record<PathParams<P>, string | number>): string {
  return path.replace(/:([A-Za-z]+)/g, (_m, name: string) =>
    encodeURIComponent(String((params as Record<string, string | number>)[name])),
  );
}

/** Policy documents for import/validate: parsed objects, or YAML/JSON text as a user wrote it. */
export type PolicyInput = PolicyDocumentsRequest | { text: string };

function policyBody(input: PolicyInput): { body: PolicyDocumentsRequest | string; contentType?: string } {
  return 'text' in input ? { body: input.text, contentType: 'application/yaml' } : { body: input };
}

/** The agent's REST API, one typed method per route. */
export class AgentApi {
  readonly client: AgentClient;

  constructor(socketPathOrClient: string | AgentClient, timeoutMs?: number) {
    this.client =
      typeof socketPathOrClient === 'string'
        ? new AgentClient(socketPathOrClient, timeoutMs)
        : socketPathOrClient;
  }

  /** Calls a route of the table; `params` fill its `:param` segments. */
  call<Req, Res, P extends string>(
    r: RouteDef<Req, Res, P>,
    params: Record<PathParams<P>, string | number>,
    opts: { body?: Req | string; contentType?: string; query?: URLSearchParams } = {},
  ): Promise<Res> {
    const query = opts.query?.size ? `?${opts.query}` : '';
    return this.client.call<Res>(
      r.method,
      `${routePath(r.path, params)}${query}`,
      opts.body,
      opts.contentType,
    );
  }

  healthz(): Promise<HealthzResponse> {
    return this.call(routes.healthz, {});
  }
  status(): Promise<StatusResponse> {
    return this.call(routes.status, {});
  }

  endpoints(): Promise<EndpointView[]> {
    return this.call(routes.endpointList, {});
  }
  /** By endpoint ID, IP, `namespace/pod`, or pod name in `default`. */
  endpoint(ref: string | number): Promise<EndpointView> {
    return this.call(routes.endpointGet, { id: ref });
  }
  identities(): Promise<IdentityView[]> {
    return this.call(routes.identityList, {});
  }
  identity(id: string | number): Promise<IdentityView> {
    return this.call(routes.identityGet, { id });
  }

  policies(): Promise<PolicyListResponse> {
    return this.call(routes.policyList, {});
  }
  /** All or nothing: a document with an error imports none. */
  importPolicies(input: PolicyInput): Promise<PolicyImportResponse> {
    return this.call(routes.policyImport, {}, policyBody(input));
  }
  validatePolicies(input: PolicyInput): Promise<PolicyValidateResponse> {
    return this.call(routes.policyValidate, {}, policyBody(input));
  }
  deletePolicies(req: PolicyDeleteRequest): Promise<PolicyDeleteResponse> {
    return this.call(routes.policyDelete, {}, { body: req });
  }
  tracePolicy(req: TraceRequest): Promise<TraceResponse> {
    return this.call(routes.policyTrace, {}, { body: req });
  }

  bpfPolicy(endpoint: string | number): Promise<BpfPolicyResponse> {
    return this.call(routes.bpfPolicy, { id: endpoint });
  }
  bpfCt(): Promise<BpfCtEntry[]> {
    return this.call(routes.bpfCt, {});
  }
  bpfIpcache(): Promise<BpfIpcacheEntry[]> {
    return this.call(routes.bpfIpcache, {});
  }
  bpfEndpoints(): Promise<BpfEndpointEntry[]> {
    return this.call(routes.bpfEndpoints, {});
  }
  bpfMetrics(): Promise<BpfMetricsEntry[]> {
    return this.call(routes.bpfMetrics, {});
  }
  /** `bpf ct flush`: deletes every conntrack entry (of one family). */
  bpfCtFlush(q: CtFlushQuery = {}): Promise<CtFlushResponse> {
    return this.call(
      routes.bpfCtFlush,
      {},
      { query: new URLSearchParams(q.family ? { family: q.family } : {}) },
    );
  }
  bpfCtGcStatus(): Promise<CtGcStatusResponse> {
    return this.call(routes.bpfCtGcStatus, {});
  }
  bpfCtGcRun(): Promise<CtGcRunResponse> {
    return this.call(routes.bpfCtGcRun, {});
  }

  /** Datapath events as they happen, until `signal` aborts. */
  monitor(q: MonitorQuery, onEvent: (e: MonitorEvent) => void, signal?: AbortSignal): Promise<void> {
    const qs = new URLSearchParams();
    for (const t of q.type ?? []) qs.append('type', t);
    if (q.endpoint !== undefined) qs.set('endpoint', String(q.endpoint));
    const query = qs.size ? `?${qs}` : '';
    return this.client.stream(`${routes.monitor.path}${query}`, (o) => onEvent(o as MonitorEvent), signal);
  }

  pods(): Promise<PodsResponse> {
    return this.call(routes.pods, {});
  }
  putNamespace(name: string, req: NamespaceRequest): Promise<Empty> {
    return this.call(routes.namespacePut, { name }, { body: req });
  }
  putPod(ns: string, name: string, req: PodRequest): Promise<Empty> {
    return this.call(routes.podPut, { ns, name }, { body: req });
  }
  deletePod(ns: string, name: string): Promise<Empty> {
    return this.call(routes.podDelete, { ns, name });
  }
  nodeList(): Promise<NodeView[]> {
    return this.call(routes.nodeList, {});
  }
  serviceList(): Promise<ServiceView[]> {
    return this.call(routes.serviceList, {});
  }
  bpfLb(): Promise<BpfLbEntry[]> {
    return this.call(routes.bpfLb, {});
  }
  services(): Promise<KubeObjectsResponse> {
    return this.call(routes.services, {});
  }
  putService(ns: string, name: string, obj: KubeObject): Promise<Empty> {
    return this.call(routes.servicePut, { ns, name }, { body: obj });
  }
  deleteService(ns: string, name: string): Promise<Empty> {
    return this.call(routes.serviceDelete, { ns, name });
  }
  endpointSlices(): Promise<KubeObjectsResponse> {
    return this.call(routes.endpointSlices, {});
  }
  putEndpointSlice(ns: string, name: string, obj: KubeObject): Promise<Empty> {
    return this.call(routes.endpointSlicePut, { ns, name }, { body: obj });
  }
  deleteEndpointSlice(ns: string, name: string): Promise<Empty> {
    return this.call(routes.endpointSliceDelete, { ns, name });
  }
}
