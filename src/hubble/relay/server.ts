/**
 * Hubble Relay: one Observer API for the whole cluster. It learns every node's Hubble server from
 * a node's Peer service (or a fixed list), keeps a connection to each, and serves observer.Observer
 * and grpc.health.v1.Health:
 *
 * - GetFlows asks every connected node with the same request (filters, since/until, follow) and
 *   merges their streams by time (merge.ts). It first announces NODE_CONNECTED and NODE_UNAVAILABLE
 *   nodes; a node whose stream fails is reported as NODE_ERROR (the same message from several nodes
 *   within the aggregation window in one event). Without follow, `number` is the newest (or with
 *   `first` the oldest) N flows across all nodes. With follow, as upstream, each node sends its last
 *   N first; nodes that connect while the stream is open join it (live flows only).
 * - ServerStatus sums the connected nodes' counters and counts connected and unavailable nodes.
 * - GetNodes lists every node with its state; GetNamespaces merges the nodes' namespaces.
 *
 * The nodes' flow messages are forwarded as the bytes they sent (wire.ts), never re-encoded.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { grpcTarget } from '../client.js';
import { FilterError, RequestError } from '../errors.js';
import { compileFilters } from '../filter.js';
import { bindServer, healthImplementation, serviceDefinition, shutdownServer } from '../grpc-server.js';
import { checkPeer, type Peer } from '../peer.js';
import { VERSION } from '../proto.js';
import type { GetFlowsRequest } from '../server.js';
import { StreamWriter } from '../writer.js';
import { PeerDiscovery } from './discovery.js';
import { FlowMerger } from './merge.js';
import { type PeerConnection, type PeerEvent, PeerManager } from './peers.js';
import { responseMeta, withNodeName } from './wire.js';

export interface RelayLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RelayOptions {
  /** TCP address to serve on (`127.0.0.1:4245`; port 0 picks a free one). */
  listen?: string;
  /** Unix socket to serve on as well (created with its directory). */
  unixSocket?: string;
  /** Peer service address(es) to discover nodes from (`unix:///path` or `host:port`); tried in turn. */
  peerService?: readonly string[];
  /** A fixed list of nodes instead of (or besides) the Peer service. */
  peers?: readonly Peer[];
  /** Follow mode: most flows held for sorting before the oldest goes out (default 100, as upstream). */
  sortBufferMaxLen?: number;
  /** Follow mode: flows older than this (ms) go out without waiting for quiet nodes (default 1000). */
  sortBufferDrainTimeoutMs?: number;
  /** NODE_ERROR events with the same message are merged within this window (ms, default 10000). */
  errorAggregationWindowMs?: number;
  /** Reconnect backoff towards the nodes and the Peer service (ms; defaults 1000 and 30000). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Deadline of the relay's unary calls to a node (ms, default 5000). */
  nodeTimeoutMs?: number;
  logger?: RelayLogger;
}

interface Item {
  sec: number;
  nsec: number;
  bytes: Buffer;
  isFlow: boolean;
}

type NodeState = 'NODE_CONNECTED' | 'NODE_UNAVAILABLE' | 'NODE_GONE' | 'NODE_ERROR';

/** A node stream is paused when this many of its flows wait in the merge, resumed below half. */
const SOURCE_HIGH_WATER = 4096;
const MAX_UNAVAILABLE_LISTED = 10;

function errorDetails(err: unknown): string {
  const e = err as { details?: string; message?: string };
  return e.details || e.message || String(err);
}

export class Relay {
  private readonly server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
  readonly peers: PeerManager;
  private discovery: PeerDiscovery | undefined;
  /** Bound addresses: `127.0.0.1:port` and `unix:///path`. */
  readonly addresses: { tcp?: string; unix?: string } = {};
  private readonly calls = new Set<AbortController>();
  private readonly started = process.hrtime.bigint();
  private readonly flowsDef: grpc.MethodDefinition<object, object>;

  private constructor(private readonly opts: RelayOptions) {
    this.peers = new PeerManager({
      ...(opts.initialBackoffMs !== undefined ? { initialBackoffMs: opts.initialBackoffMs } : {}),
      ...(opts.maxBackoffMs !== undefined ? { maxBackoffMs: opts.maxBackoffMs } : {}),
    });
    this.flowsDef = serviceDefinition('observer.Observer').GetFlows as grpc.MethodDefinition<object, object>;
  }

  static async start(opts: RelayOptions): Promise<Relay> {
    if (!opts.listen && !opts.unixSocket)
      throw new RequestError('hubble relay needs a TCP address (listen) or a unix socket', {
        field: 'listen',
      });
    if (!opts.peerService?.length && !opts.peers?.length)
      throw new RequestError('hubble relay needs a peer service address or a list of peers', {
        field: 'peerService',
      });
    for (const [k, v] of Object.entries({
      sortBufferMaxLen: opts.sortBufferMaxLen,
      sortBufferDrainTimeoutMs: opts.sortBufferDrainTimeoutMs,
      errorAggregationWindowMs: opts.errorAggregationWindowMs,
      nodeTimeoutMs: opts.nodeTimeoutMs,
    }))
      if (v !== undefined && !(Number.isFinite(v) && v > 0))
        throw new RequestError(`${k} must be a positive number, not ${v}`, { field: k });
    for (const [i, p] of (opts.peers ?? []).entries()) checkPeer(p, `peers[${i}]`);
    const relay = new Relay(opts);
    relay.register();
    try {
      if (opts.listen) {
        const host = opts.listen.slice(0, opts.listen.lastIndexOf(':'));
        const port = await bindServer(relay.server, opts.listen);
        relay.addresses.tcp = `${host}:${port}`;
      }
      if (opts.unixSocket) {
        mkdirSync(dirname(opts.unixSocket), { recursive: true });
        rmSync(opts.unixSocket, { force: true });
        await bindServer(relay.server, `unix://${opts.unixSocket}`);
        relay.addresses.unix = `unix://${opts.unixSocket}`;
      }
    } catch (err) {
      relay.server.forceShutdown();
      throw err;
    }
    for (const p of opts.peers ?? []) relay.peers.apply({ type: 'PEER_ADDED', peer: p });
    if (opts.peerService?.length) {
      relay.discovery = new PeerDiscovery(opts.peerService.map(grpcTarget), relay.peers, {
        ...(opts.initialBackoffMs !== undefined ? { initialBackoffMs: opts.initialBackoffMs } : {}),
        ...(opts.maxBackoffMs !== undefined ? { maxBackoffMs: opts.maxBackoffMs } : {}),
        onError: (address, err) => opts.logger?.warn({ address, err: errorDetails(err) }, 'peer service'),
      });
    }
    relay.peers.subscribe((ev) => {
      if (ev.type === 'state' || ev.type === 'deleted')
        opts.logger?.info(
          {
            node: ev.peer.name,
            address: ev.peer.address,
            state: ev.type === 'deleted' ? 'NODE_GONE' : ev.peer.state,
          },
          'node',
        );
    });
    return relay;
  }

  /** Whether the Peer service stream is open (undefined without one). */
  get peerServiceConnected(): boolean | undefined {
    return this.discovery?.connected;
  }

  private register(): void {
    const def = serviceDefinition('observer.Observer');
    // GetFlows answers with the nodes' bytes: its serializer passes buffers through.
    const relayDef: grpc.ServiceDefinition = {
      ...def,
      GetFlows: { ...def.GetFlows!, responseSerialize: (b: Buffer) => b },
    };
    this.server.addService(relayDef, {
      GetFlows: (call: grpc.ServerWritableStream<GetFlowsRequest, Buffer>) => this.getFlows(call),
      ServerStatus: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        this.serverStatus().then(
          (r) => cb(null, r),
          (err) => cb({ code: grpc.status.INTERNAL, details: errorDetails(err) }),
        );
      },
      GetNodes: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        this.getNodes().then(
          (r) => cb(null, r),
          (err) => cb({ code: grpc.status.INTERNAL, details: errorDetails(err) }),
        );
      },
      GetNamespaces: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        this.getNamespaces().then(
          (r) => cb(null, r),
          (err) => cb({ code: grpc.status.INTERNAL, details: errorDetails(err) }),
        );
      },
    });
    // serving while at least one node can answer
    this.server.addService(
      serviceDefinition('grpc.health.v1.Health'),
      healthImplementation(() => this.peers.list().some((p) => p.state === 'NODE_CONNECTED')),
    );
  }

  private get nodeTimeoutMs(): number {
    return this.opts.nodeTimeoutMs ?? 5000;
  }

  /** Each node's ServerStatus (undefined for a node that is not connected or does not answer). */
  private async nodeStatuses(): Promise<
    { conn: PeerConnection; status?: Record<string, unknown>; error?: string }[]
  > {
    return Promise.all(
      this.peers.connections().map(async (conn) => {
        if (conn.state !== 'NODE_CONNECTED') return { conn, error: 'not connected' };
        try {
          return {
            conn,
            status: await conn.unary<Record<string, unknown>>('ServerStatus', this.nodeTimeoutMs),
          };
        } catch (err) {
          return { conn, error: errorDetails(err) };
        }
      }),
    );
  }

  /** A node that answers but reports itself unavailable (its datapath reader is down). */
  private static selfUnavailable(st: Record<string, unknown>): boolean {
    const c = st.num_connected_nodes as { value?: number } | undefined;
    const u = st.num_unavailable_nodes as { value?: number } | undefined;
    return (c?.value ?? 0) === 0 && (u?.value ?? 0) > 0;
  }

  async serverStatus(): Promise<Record<string, unknown>> {
    const all = await this.nodeStatuses();
    let numFlows = 0;
    let maxFlows = 0;
    let seenFlows = 0;
    let rate = 0;
    const unavailable: string[] = [];
    let connected = 0;
    for (const { conn, status } of all) {
      if (!status || Relay.selfUnavailable(status)) unavailable.push(conn.peer.name);
      else connected++;
      if (!status) continue;
      numFlows += Number(status.num_flows ?? 0);
      maxFlows += Number(status.max_flows ?? 0);
      seenFlows += Number(status.seen_flows ?? 0);
      rate += Number(status.flows_rate ?? 0);
    }
    return {
      num_flows: numFlows,
      max_flows: maxFlows,
      seen_flows: seenFlows,
      uptime_ns: Number(process.hrtime.bigint() - this.started),
      num_connected_nodes: { value: connected },
      num_unavailable_nodes: { value: unavailable.length },
      unavailable_nodes: unavailable.slice(0, MAX_UNAVAILABLE_LISTED),
      version: `cilium-ts ${VERSION}`,
      flows_rate: rate,
    };
  }

  async getNodes(): Promise<{ nodes: Record<string, unknown>[] }> {
    const all = await this.nodeStatuses();
    return {
      nodes: all.map(({ conn, status }) => {
        const node: Record<string, unknown> = {
          name: conn.peer.name,
          address: conn.peer.address,
          tls: conn.peer.tls ? { enabled: true, server_name: conn.peer.tls.serverName } : { enabled: false },
          state: !status
            ? 'NODE_UNAVAILABLE'
            : Relay.selfUnavailable(status)
              ? 'NODE_ERROR'
              : 'NODE_CONNECTED',
        };
        if (status) {
          node.version = String(status.version ?? '').replace(/^cilium-ts /, '');
          node.uptime_ns = Number(status.uptime_ns ?? 0);
          node.num_flows = Number(status.num_flows ?? 0);
          node.max_flows = Number(status.max_flows ?? 0);
          node.seen_flows = Number(status.seen_flows ?? 0);
        }
        return node;
      }),
    };
  }

  async getNamespaces(): Promise<{ namespaces: { cluster: string; namespace: string }[] }> {
    const seen = new Map<string, { cluster: string; namespace: string }>();
    await Promise.all(
      this.peers.connections().map(async (conn) => {
        if (conn.state !== 'NODE_CONNECTED') return;
        try {
          const r = await conn.unary<{ namespaces?: { cluster?: string; namespace?: string }[] }>(
            'GetNamespaces',
            this.nodeTimeoutMs,
          );
          for (const n of r.namespaces ?? []) {
            const ns = { cluster: n.cluster ?? '', namespace: n.namespace ?? '' };
            seen.set(`${ns.cluster}/${ns.namespace}`, ns);
          }
        } catch {
          // a node that does not answer adds nothing
        }
      }),
    );
    return {
      namespaces: [...seen.values()].sort((a, b) =>
        a.cluster + a.namespace < b.cluster + b.namespace ? -1 : 1,
      ),
    };
  }

  private nodeStatusEvent(state: NodeState, names: string[], message = ''): Buffer {
    const ms = Date.now();
    return this.flowsDef.responseSerialize({
      node_status: { state_change: state, node_names: names, message },
      time: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 },
    });
  }

  private getFlows(call: grpc.ServerWritableStream<GetFlowsRequest, Buffer>): void {
    const req = call.request;
    const fail = (code: grpc.status, details: string): void => {
      call.emit('error', { code, details, message: details });
    };
    if (req.first && req.follow) {
      fail(grpc.status.INVALID_ARGUMENT, 'first cannot be used with follow');
      return;
    }
    try {
      compileFilters(req.whitelist ?? [], req.blacklist ?? []);
    } catch (err) {
      const code = err instanceof FilterError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL;
      fail(code, errorDetails(err));
      return;
    }
    new FlowsCall(this, call, req, this.opts).run();
  }

  /** @internal used by FlowsCall */
  track(ac: AbortController): () => void {
    this.calls.add(ac);
    return () => this.calls.delete(ac);
  }

  /** @internal */
  statusEvent(state: NodeState, names: string[], message = ''): Buffer {
    return this.nodeStatusEvent(state, names, message);
  }

  /** Stops serving: ends open streams, closes the node connections, removes the unix socket. */
  async stop(graceMs = 2000): Promise<void> {
    for (const ac of this.calls) ac.abort();
    this.discovery?.stop();
    await shutdownServer(this.server, graceMs);
    this.peers.close();
    if (this.opts.unixSocket) rmSync(this.opts.unixSocket, { force: true });
  }
}

/** One GetFlows call of a client: streams from the nodes, the merge, the answer. */
class FlowsCall {
  private readonly ac = new AbortController();
  private readonly merger: FlowMerger<Item>;
  private readonly streams = new Map<
    string,
    { stream: grpc.ClientReadableStream<Buffer>; paused: boolean }
  >();
  private readonly mode: 'follow' | 'last' | 'first' | 'all';
  private readonly number: number;
  private readonly writer: StreamWriter<Buffer>;
  /** The client is slow: the node streams are paused until the writer takes messages again. */
  private waiting = false;
  private finished = false;
  private flowsOut = 0;
  /** `last` mode: everything merged, trimmed at the end. */
  private readonly tail: Item[] = [];
  private pendingError: { message: string; names: string[]; timer: NodeJS.Timeout } | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private untrack: (() => void) | undefined;

  constructor(
    private readonly relay: Relay,
    private readonly call: grpc.ServerWritableStream<GetFlowsRequest, Buffer>,
    private readonly req: GetFlowsRequest,
    private readonly opts: RelayOptions,
  ) {
    this.writer = new StreamWriter(call);
    this.number = Number(req.number ?? 0);
    this.mode = req.follow ? 'follow' : this.number === 0 ? 'all' : req.first ? 'first' : 'last';
    this.merger = new FlowMerger<Item>(
      this.mode === 'follow'
        ? { maxLen: opts.sortBufferMaxLen ?? 100, windowMs: opts.sortBufferDrainTimeoutMs ?? 1000 }
        : {},
    );
  }

  run(): void {
    this.untrack = this.relay.track(this.ac);
    this.ac.signal.addEventListener('abort', () => this.cleanup(), { once: true });
    const cancel = () => this.ac.abort();
    this.call.on('cancelled', cancel);
    this.call.on('close', cancel);
    const peers = this.relay.peers.list();
    const connected = peers.filter((p) => p.state === 'NODE_CONNECTED').map((p) => p.name);
    const unavailable = peers.filter((p) => p.state !== 'NODE_CONNECTED').map((p) => p.name);
    if (connected.length > 0) this.write(this.relay.statusEvent('NODE_CONNECTED', connected));
    if (unavailable.length > 0) this.write(this.relay.statusEvent('NODE_UNAVAILABLE', unavailable));
    for (const name of connected) this.open(name, this.req);
    if (this.mode === 'follow') {
      this.unsubscribe = this.relay.peers.subscribe((ev) => this.onPeerEvent(ev));
      const window = this.opts.sortBufferDrainTimeoutMs ?? 1000;
      this.ticker = setInterval(() => this.pump(), Math.max(10, Math.min(100, window / 2)));
    } else this.maybeComplete();
  }

  /** Follow mode: nodes that (re)connect join with live flows; the client hears of every change. */
  private onPeerEvent(ev: PeerEvent): void {
    if (this.finished) return;
    const name = ev.peer.name;
    if (ev.type === 'deleted') {
      this.close(name);
      this.write(this.relay.statusEvent('NODE_GONE', [name]));
    } else if (ev.type === 'state') {
      this.write(this.relay.statusEvent(ev.peer.state, [name]));
      if (ev.peer.state === 'NODE_CONNECTED' && !this.streams.has(name)) {
        const { since: _since, ...live } = this.req;
        this.open(name, { ...live, number: 0 });
      }
    }
  }

  private open(name: string, request: GetFlowsRequest): void {
    const conn = this.relay.peers.connection(name);
    if (!conn) return;
    const stream = conn.flows(request);
    this.streams.set(name, { stream, paused: false });
    this.merger.addSource(name);
    stream.on('data', (buf: Buffer) => {
      if (this.finished) return;
      let meta: ReturnType<typeof responseMeta>;
      try {
        meta = responseMeta(buf);
      } catch (err) {
        this.nodeError(name, `malformed response: ${errorDetails(err)}`);
        return;
      }
      if (meta.kind === 'none') return;
      const bytes = meta.nodeName ? buf : withNodeName(buf, name);
      this.merger.push(
        name,
        { sec: meta.sec, nsec: meta.nsec, bytes, isFlow: meta.kind === 'flow' },
        Date.now(),
      );
      if (this.merger.queued(name) > SOURCE_HIGH_WATER) this.adjustFlow();
      this.pump();
    });
    const done = (err?: grpc.ServiceError) => {
      const s = this.streams.get(name);
      if (!s || s.stream !== stream) return;
      this.streams.delete(name);
      this.merger.end(name);
      if (err && !this.finished) this.nodeError(name, errorDetails(err));
      this.pump();
      this.maybeComplete();
    };
    stream.on('error', (err: grpc.ServiceError) => done(err));
    stream.on('end', () => done());
  }

  private close(name: string): void {
    const s = this.streams.get(name);
    if (!s) return;
    this.streams.delete(name);
    this.merger.end(name);
    s.stream.cancel();
  }

  /** Pause node streams while the client is slow or a node is far ahead in the merge. */
  private adjustFlow(): void {
    for (const [name, s] of this.streams) {
      const queued = this.merger.queued(name);
      const pause = this.waiting || queued > SOURCE_HIGH_WATER;
      if (pause && !s.paused) {
        s.paused = true;
        s.stream.pause();
      } else if (!pause && s.paused && queued < SOURCE_HIGH_WATER / 2) {
        s.paused = false;
        s.stream.resume();
      }
    }
  }

  private write(buf: Buffer): void {
    if (this.finished) return;
    if (!this.writer.write(buf) && !this.waiting) {
      this.waiting = true;
      this.adjustFlow();
      this.writer.onReady(() => {
        this.waiting = false;
        this.adjustFlow();
        this.pump();
      });
    }
  }

  private emit(items: Item[]): void {
    for (const it of items) {
      if (this.finished) return;
      switch (this.mode) {
        case 'last':
          this.tail.push(it);
          break;
        case 'first':
          this.write(it.bytes);
          if (it.isFlow && ++this.flowsOut >= this.number) {
            this.complete();
            return;
          }
          break;
        default:
          this.write(it.bytes);
      }
    }
  }

  private pump(): void {
    if (this.finished || this.waiting) return;
    this.emit(this.merger.ready(Date.now()));
    if (!this.waiting) this.adjustFlow();
  }

  private maybeComplete(): void {
    if (this.finished || this.mode === 'follow' || this.streams.size > 0) return;
    this.emit(this.merger.drain());
    if (this.mode === 'last') {
      // keep from the point where exactly `number` flows remain (loss notices in between stay)
      let start = this.tail.length;
      for (let n = 0; start > 0 && n < this.number; ) if (this.tail[--start]!.isFlow) n++;
      for (const it of this.tail.slice(start)) this.write(it.bytes);
    }
    this.complete();
  }

  /** A node's stream failed: NODE_ERROR, merged with other nodes' identical errors within the window. */
  private nodeError(name: string, message: string): void {
    if (this.pendingError?.message === message) {
      this.pendingError.names.push(name);
      return;
    }
    this.flushError();
    const timer = setTimeout(() => this.flushError(), this.opts.errorAggregationWindowMs ?? 10_000);
    this.pendingError = { message, names: [name], timer };
  }

  private flushError(): void {
    const p = this.pendingError;
    if (!p) return;
    this.pendingError = undefined;
    clearTimeout(p.timer);
    this.write(this.relay.statusEvent('NODE_ERROR', p.names, p.message));
  }

  private complete(): void {
    if (this.finished) return;
    this.flushError();
    this.finished = true;
    try {
      this.call.end();
    } catch {
      // the client is gone
    }
    this.ac.abort();
  }

  private cleanup(): void {
    this.finished = true;
    clearInterval(this.ticker);
    if (this.pendingError) clearTimeout(this.pendingError.timer);
    this.unsubscribe?.();
    for (const name of [...this.streams.keys()]) this.close(name);
    this.untrack?.();
    if (!this.call.writableEnded) {
      try {
        this.call.end();
      } catch {
        // the client is gone
      }
    }
  }
}
