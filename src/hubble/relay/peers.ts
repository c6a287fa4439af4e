/**
 * The relay's peers: one gRPC channel per node's Hubble server, kept connected. grpc-js reconnects
 * a channel with exponential backoff (initial and maximum delay from the relay's options); the
 * relay watches each channel's connectivity, wakes it when it goes idle, and reports the node
 * CONNECTED while the channel is READY and UNAVAILABLE otherwise.
 */
import * as grpc from '@grpc/grpc-js';
import type { Peer, PeerChange } from '../peer.js';
import { loadHubbleProtos } from '../proto.js';

export type PeerState = 'NODE_CONNECTED' | 'NODE_UNAVAILABLE';

export interface PeerInfo extends Peer {
  state: PeerState;
  /** When the state last changed (ms since the epoch). */
  sinceMs: number;
}

export interface PeerConnectionOptions {
  /** First reconnect delay (ms, default 1000). */
  initialBackoffMs?: number;
  /** Longest reconnect delay (ms, default 30000, upstream relay's retry timeout). */
  maxBackoffMs?: number;
}

type Unary<Res> = (
  req: object,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => void;

interface ObserverStub extends grpc.Client {
  ServerStatus: Unary<Record<string, unknown>>;
  GetNamespaces: Unary<{ namespaces?: { cluster?: string; namespace?: string }[] }>;
}

const identity = (b: Buffer): Buffer => b;

function observerCtor(): grpc.ServiceClientConstructor {
  return (loadHubbleProtos().observer as grpc.GrpcObject).Observer as grpc.ServiceClientConstructor;
}

/** One node's Hubble server as the relay talks to it. */
export class PeerConnection {
  readonly client: ObserverStub;
  #state: PeerState = 'NODE_UNAVAILABLE';
  #sinceMs = Date.now();
  #closed = false;

  constructor(
    readonly peer: Peer,
    opts: PeerConnectionOptions,
    private readonly onState: (conn: PeerConnection) => void,
  ) {
    const Ctor = observerCtor();
    this.client = new Ctor(
      peer.address.startsWith('/') ? `unix://${peer.address}` : peer.address,
      grpc.credentials.createInsecure(),
      {
        'grpc.initial_reconnect_backoff_ms': opts.initialBackoffMs ?? 1000,
        'grpc.max_reconnect_backoff_ms': opts.maxBackoffMs ?? 30_000,
        // each peer its own connection: a relay may follow the same node twice under two names
        'grpc.use_local_subchannel_pool': 1,
      },
    ) as unknown as ObserverStub;
    this.#watch();
  }

  get state(): PeerState {
    return this.#state;
  }

  get info(): PeerInfo {
    return { ...this.peer, state: this.#state, sinceMs: this.#sinceMs };
  }

  #watch(): void {
    if (this.#closed) return;
    const channel = this.client.getChannel();
    // `true`: an idle channel (after the server went away) starts connecting again
    const st = channel.getConnectivityState(true);
    const next: PeerState = st === grpc.connectivityState.READY ? 'NODE_CONNECTED' : 'NODE_UNAVAILABLE';
    if (next !== this.#state) {
      this.#state = next;
      this.#sinceMs = Date.now();
      this.onState(this);
    }
    if (st === grpc.connectivityState.SHUTDOWN) return;
    channel.watchConnectivityState(st, Number.POSITIVE_INFINITY, () => this.#watch());
  }

  /** GetFlows with the response messages left serialized (the relay forwards the bytes). */
  flows(request: object): grpc.ClientReadableStream<Buffer> {
    const def = observerCtor().service.GetFlows!;
    return this.client.makeServerStreamRequest(
      def.path,
      def.requestSerialize as (req: object) => Buffer,
      identity,
      request,
    );
  }

  unary<Res>(method: 'ServerStatus' | 'GetNamespaces', timeoutMs: number): Promise<Res> {
    const fn = this.client[method] as unknown as Unary<Res>;
    return new Promise((resolve, reject) => {
      fn.call(this.client, {}, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.client.close();
  }
}

export type PeerEvent = { type: 'added' | 'deleted' | 'state'; peer: PeerInfo; conn: PeerConnection };

/** The peers the relay knows, by name, each with its connection. */
export class PeerManager {
  readonly #conns = new Map<string, PeerConnection>();
  readonly #listeners = new Set<(ev: PeerEvent) => void>();

  constructor(private readonly opts: PeerConnectionOptions = {}) {}

  /** Applies a Peer service notification (an address change replaces the connection). */
  apply(change: PeerChange): void {
    const { peer } = change;
    const existing = this.#conns.get(peer.name);
    if (change.type === 'PEER_DELETED') {
      if (existing) this.#remove(existing);
      return;
    }
    if (!peer.address) return;
    if (
      existing &&
      existing.peer.address === peer.address &&
      existing.peer.tls?.serverName === peer.tls?.serverName
    )
      return;
    if (existing) this.#remove(existing);
    const conn = new PeerConnection({ ...peer }, this.opts, (c) => {
      if (this.#conns.get(c.peer.name) === c) this.#emit({ type: 'state', peer: c.info, conn: c });
    });
    this.#conns.set(peer.name, conn);
    this.#emit({ type: 'added', peer: conn.info, conn });
  }

  #remove(conn: PeerConnection): void {
    this.#conns.delete(conn.peer.name);
    conn.close();
    this.#emit({ type: 'deleted', peer: conn.info, conn });
  }

  /** Every peer, by name. */
  list(): PeerInfo[] {
    return [...this.#conns.values()].map((c) => c.info).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  names(): string[] {
    return [...this.#conns.keys()];
  }

  connection(name: string): PeerConnection | undefined {
    return this.#conns.get(name);
  }

  connections(): PeerConnection[] {
    return [...this.#conns.values()].sort((a, b) => (a.peer.name < b.peer.name ? -1 : 1));
  }

  subscribe(listener: (ev: PeerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #emit(ev: PeerEvent): void {
    for (const l of [...this.#listeners]) l(ev);
  }

  close(): void {
    for (const c of [...this.#conns.values()]) this.#remove(c);
  }
}
