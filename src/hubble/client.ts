/**
 * A small Observer API client over grpc-js (used by the CLI and the tests).
 * Addresses: `unix:///path/hubble.sock`, `unix:/path`, or `host:port`.
 */
import * as grpc from '@grpc/grpc-js';
import { flowFromProto, loadHubbleProtos, lostFromProto } from './proto.js';
import type { Flow, FlowFilter, LostEvent } from './types.js';

export interface GetFlowsRequestInput {
  number?: number;
  first?: boolean;
  follow?: boolean;
  whitelist?: FlowFilter[];
  blacklist?: FlowFilter[];
  since?: { seconds: number; nanos: number };
  until?: { seconds: number; nanos: number };
}

/** `relay.NodeStatusEvent`: a relay telling which nodes its answer covers (or failed). */
export interface NodeStatusEvent {
  state_change: string;
  node_names: string[];
  message?: string;
}

export interface FlowsResponse {
  flow?: Flow;
  lost_events?: LostEvent;
  node_status?: NodeStatusEvent;
  node_name?: string;
  time?: string;
}

export interface ServerStatus {
  num_flows: number;
  max_flows: number;
  seen_flows: number;
  uptime_ns: number;
  num_connected_nodes?: number;
  num_unavailable_nodes?: number;
  unavailable_nodes?: string[];
  version?: string;
  flows_rate: number;
}

type Unary = (
  req: object,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;

interface RawClient extends grpc.Client {
  GetFlows(req: object, opts?: grpc.CallOptions): grpc.ClientReadableStream<Record<string, unknown>>;
  ServerStatus: Unary;
  GetNodes: Unary;
  GetNamespaces: Unary;
}

/** Normalise `unix:///p`, `unix:/p`, `/p` and `host:port` to a grpc-js target. */
export function grpcTarget(address: string): string {
  if (address.startsWith('unix://') || address.startsWith('unix:')) return address;
  if (address.startsWith('/')) return `unix://${address}`;
  return address;
}

function ctor(
  path: string,
): new (
  target: string,
  creds: grpc.ChannelCredentials,
  opts?: object,
) => grpc.Client {
  let o: unknown = loadHubbleProtos();
  for (const p of path.split('.')) o = (o as Record<string, unknown>)[p];
  return o as new (
    target: string,
    creds: grpc.ChannelCredentials,
    opts?: object,
  ) => grpc.Client;
}

export class ObserverClient {
  readonly raw: RawClient;
  private readonly health: grpc.Client & { Check: Unary };

  constructor(address: string) {
    const target = grpcTarget(address);
    const Obs = ctor('observer.Observer');
    const Health = ctor('grpc.health.v1.Health');
    this.raw = new Obs(target, grpc.credentials.createInsecure()) as RawClient;
    this.health = new Health(target, grpc.credentials.createInsecure()) as grpc.Client & { Check: Unary };
  }

  private unary<T>(fn: Unary, client: grpc.Client, req: object, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res as T),
      );
    });
  }

  async serverStatus(timeoutMs = 5000): Promise<ServerStatus> {
    const r = await this.unary<Record<string, unknown>>(this.raw.ServerStatus, this.raw, {}, timeoutMs);
    const out: ServerStatus = {
      num_flows: Number(r.num_flows ?? 0),
      max_flows: Number(r.max_flows ?? 0),
      seen_flows: Number(r.seen_flows ?? 0),
      uptime_ns: Number(r.uptime_ns ?? 0),
      flows_rate: Number(r.flows_rate ?? 0),
    };
    if (r.num_connected_nodes)
      out.num_connected_nodes = (r.num_connected_nodes as { value?: number }).value ?? 0;
    if (r.num_unavailable_nodes)
      out.num_unavailable_nodes = (r.num_unavailable_nodes as { value?: number }).value ?? 0;
    if (Array.isArray(r.unavailable_nodes) && r.unavailable_nodes.length > 0)
      out.unavailable_nodes = r.unavailable_nodes.map(String);
    if (typeof r.version === 'string') out.version = r.version;
    return out;
  }

  /** grpc.health.v1 Check of `service` ('' = the whole server): SERVING, NOT_SERVING, ... */
  async healthCheck(timeoutMs = 5000, service = ''): Promise<string> {
    const r = await this.unary<{ status?: string }>(this.health.Check, this.health, { service }, timeoutMs);
    return r.status ?? 'UNKNOWN';
  }

  async getNodes(timeoutMs = 5000): Promise<Record<string, unknown>[]> {
    const r = await this.unary<{ nodes?: Record<string, unknown>[] }>(
      this.raw.GetNodes,
      this.raw,
      {},
      timeoutMs,
    );
    return r.nodes ?? [];
  }

  async getNamespaces(timeoutMs = 5000): Promise<{ cluster: string; namespace: string }[]> {
    const r = await this.unary<{ namespaces?: { cluster?: string; namespace?: string }[] }>(
      this.raw.GetNamespaces,
      this.raw,
      {},
      timeoutMs,
    );
    return (r.namespaces ?? []).map((n) => ({ cluster: n.cluster ?? '', namespace: n.namespace ?? '' }));
  }

  /** Stream GetFlows responses; break out of the loop (or abort the signal) to cancel. */
  async *getFlows(req: GetFlowsRequestInput, signal?: AbortSignal): AsyncGenerator<FlowsResponse> {
    const call = this.raw.GetFlows(req);
    const onAbort = () => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const msg of call as AsyncIterable<Record<string, unknown>>) {
        const out: FlowsResponse = {};
        if (msg.flow) out.flow = flowFromProto(msg.flow as Record<string, unknown>);
        if (msg.lost_events) out.lost_events = lostFromProto(msg.lost_events as Record<string, unknown>);
        if (msg.node_status) {
          const ns = msg.node_status as { state_change?: string; node_names?: string[]; message?: string };
          out.node_status = {
            state_change: ns.state_change ?? 'UNKNOWN_NODE_STATE',
            node_names: ns.node_names ?? [],
          };
          if (ns.message) out.node_status.message = ns.message;
        }
        if (typeof msg.node_name === 'string') out.node_name = msg.node_name;
        if (msg.time) {
          const t = msg.time as { seconds?: number; nanos?: number };
          out.time = flowFromProto({ time: t }).time;
        }
        yield out;
      }
    } catch (err) {
      if ((err as grpc.ServiceError).code === grpc.status.CANCELLED && signal?.aborted) return;
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  close(): void {
    this.raw.close();
    this.health.close();
  }
}
