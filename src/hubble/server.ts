/**
 * The Observer gRPC server (observer.Observer + grpc.health.v1.Health + peer.Peer) on a
 * unix socket and optionally a loopback TCP port, backed by an Observer.
 * The Peer service announces the cluster's Hubble servers from a PeerSource (this server alone
 * when none is given), so a Relay reaching this node finds every node.
 * The health check and ServerStatus follow the observer's reader: NOT_SERVING and an unavailable
 * node while no reader feeds it from the datapath.
 * Slow clients never slow the producer: each GetFlows stream reads the flow
 * ring at its own pace and waits while too many of its messages are unflushed (writer.ts).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { FilterError, RequestError } from './errors.js';
import { bindServer, healthImplementation, serviceDefinition, shutdownServer } from './grpc-server.js';
import type { FlowsQuery, Observer } from './observer.js';
import { PeerList, type PeerSource, peerServiceClientCtor, peerServiceImplementation } from './peer.js';
import { flowToProto, lostToProto, type ProtoTimestamp, timestampToMs } from './proto.js';
import type { FlowFilter } from './types.js';
import { StreamWriter } from './writer.js';

export interface HubbleServerOptions {
  observer: Observer;
  /** Path of the unix socket (created with its directory; a stale socket is replaced). */
  unixSocket?: string;
  /** Loopback TCP address, e.g. `127.0.0.1:4245` or `127.0.0.1:0` for a free port. */
  tcp?: string;
  /**
   * The Hubble servers the Peer service (peer.Peer/Notify) announces: the agent's node registry
   * (see nodePeerSource in peer.ts). Default: this server alone, at its TCP address (else its socket).
   */
  peers?: PeerSource;
}

/** observer.GetFlowsRequest as proto-loader decodes it. */
export interface GetFlowsRequest {
  number?: number;
  first?: boolean;
  follow?: boolean;
  whitelist?: FlowFilter[];
  blacklist?: FlowFilter[];
  since?: ProtoTimestamp;
  until?: ProtoTimestamp;
}

export class HubbleServer {
  private readonly server = new grpc.Server({
    'grpc.keepalive_permit_without_calls': 1,
  });
  /** Bound addresses: `unix:///path` and `127.0.0.1:port` (actual port). */
  readonly addresses: { unix?: string; tcp?: string } = {};
  private readonly calls = new Set<AbortController>();
  private selfPeer: PeerList | undefined;

  private constructor(private readonly opts: HubbleServerOptions) {}

  static async start(opts: HubbleServerOptions): Promise<HubbleServer> {
    if (!opts.unixSocket && !opts.tcp)
      throw new RequestError('hubble server needs a unix socket path or a TCP address');
    const s = new HubbleServer(opts);
    s.register();
    if (opts.unixSocket) {
      mkdirSync(dirname(opts.unixSocket), { recursive: true });
      rmSync(opts.unixSocket, { force: true });
      const addr = `unix://${opts.unixSocket}`;
      await bindServer(s.server, addr);
      s.addresses.unix = addr;
    }
    if (opts.tcp) {
      const host = opts.tcp.slice(0, opts.tcp.lastIndexOf(':'));
      const port = await bindServer(s.server, opts.tcp);
      s.addresses.tcp = `${host}:${port}`;
    }
    return s;
  }

  private register(): void {
    const obs = this.opts.observer;
    this.server.addService(serviceDefinition('observer.Observer'), {
      GetFlows: (call: grpc.ServerWritableStream<GetFlowsRequest, unknown>) => {
        void this.getFlows(call);
      },
      ServerStatus: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        const st = obs.status();
        // This node counts as unavailable while no reader feeds its observer (flows are stale).
        cb(null, {
          num_flows: st.num_flows,
          max_flows: st.max_flows,
          seen_flows: st.seen_flows,
          uptime_ns: st.uptime_ns,
          num_connected_nodes: { value: st.reader_up ? 1 : 0 },
          num_unavailable_nodes: { value: st.reader_up ? 0 : 1 },
          unavailable_nodes: st.reader_up ? [] : [obs.nodeName],
          version: `cilium-ts ${st.version}`,
          flows_rate: st.flows_rate,
        });
      },
      GetNodes: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        const st = obs.status();
        cb(null, {
          nodes: [
            {
              name: obs.nodeName,
              version: st.version,
              address: this.addresses.tcp ?? this.addresses.unix ?? '',
              state: st.reader_up ? 'NODE_CONNECTED' : 'NODE_ERROR',
              tls: { enabled: false },
              uptime_ns: st.uptime_ns,
              num_flows: st.num_flows,
              max_flows: st.max_flows,
              seen_flows: st.seen_flows,
            },
          ],
        });
      },
      GetNamespaces: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        cb(null, { namespaces: obs.namespaces().map((namespace) => ({ cluster: 'default', namespace })) });
      },
    });
    this.server.addService(
      peerServiceClientCtor().service,
      peerServiceImplementation(
        () => this.peerSource(),
        (ac) => {
          this.calls.add(ac);
          return () => this.calls.delete(ac);
        },
      ),
    );
    // the health check follows the reader feeding the observer
    this.server.addService(
      serviceDefinition('grpc.health.v1.Health'),
      healthImplementation(() => obs.readerUp()),
    );
  }

  /** The peers to announce: the given source, else this server (its addresses are known once bound). */
  private peerSource(): PeerSource {
    if (this.opts.peers) return this.opts.peers;
    this.selfPeer ??= new PeerList([
      { name: this.opts.observer.nodeName, address: this.addresses.tcp ?? this.addresses.unix ?? '' },
    ]);
    return this.selfPeer;
  }

  private async getFlows(call: grpc.ServerWritableStream<GetFlowsRequest, unknown>): Promise<void> {
    const req = call.request;
    const ac = new AbortController();
    this.calls.add(ac);
    const onCancel = () => ac.abort();
    call.on('cancelled', onCancel);
    call.on('close', onCancel);
    const q: FlowsQuery = {
      number: Number(req.number ?? 0),
      first: req.first ?? false,
      follow: req.follow ?? false,
      whitelist: req.whitelist ?? [],
      blacklist: req.blacklist ?? [],
    };
    const since = timestampToMs(req.since);
    const until = timestampToMs(req.until);
    if (since !== undefined) q.sinceMs = since;
    if (until !== undefined) q.untilMs = until;
    const node = this.opts.observer.nodeName;
    const writer = new StreamWriter(call);
    try {
      const events = this.opts.observer.getFlows(q, ac.signal);
      for await (const ev of events) {
        if (ac.signal.aborted) break;
        const time = { seconds: ev.sec, nanos: ev.nsec };
        const msg = ev.flow
          ? { flow: flowToProto(ev.flow, ev.sec, ev.nsec), node_name: node, time }
          : { lost_events: lostToProto(ev.lost!), node_name: node, time };
        if (!writer.write(msg)) await writer.ready(ac.signal);
      }
      if (!ac.signal.aborted) call.end();
    } catch (err) {
      const code =
        err instanceof FilterError || err instanceof RequestError
          ? grpc.status.INVALID_ARGUMENT
          : grpc.status.INTERNAL;
      const details = err instanceof Error ? err.message : String(err);
      // grpc-js turns an 'error' on a server stream into the call's status
      call.emit('error', { code, details, message: details });
    } finally {
      this.calls.delete(ac);
    }
  }

  /** Stop: end follow streams, then shut down (forced after graceMs). Removes the unix socket. */
  async stop(graceMs = 2000): Promise<void> {
    for (const ac of this.calls) ac.abort();
    await shutdownServer(this.server, graceMs);
    if (this.opts.unixSocket) rmSync(this.opts.unixSocket, { force: true });
  }
}
