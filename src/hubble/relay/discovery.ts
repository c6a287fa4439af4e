/**
 * Peer discovery: the relay follows `peer.Peer/Notify` of a node's Hubble server and applies each
 * notification to its PeerManager. When the stream fails or ends it tries again (the next address
 * when several are given) after an exponential backoff; each new stream replays every peer as
 * PEER_ADDED, and peers it does not announce again within the resync delay are dropped.
 */
import * as grpc from '@grpc/grpc-js';
import { grpcTarget } from '../client.js';
import { peerChangeFromProto, peerServiceClientCtor } from '../peer.js';
import type { PeerManager } from './peers.js';

export interface DiscoveryOptions {
  /** First retry delay after the Peer service stream fails (ms, default 250). */
  initialBackoffMs?: number;
  /** Longest retry delay (ms, default 30000). */
  maxBackoffMs?: number;
  /** After a reconnect, peers not announced again within this delay are dropped (ms, default 2000). */
  resyncMs?: number;
  /** Told about each failure of the Peer service (for logs). */
  onError?(address: string, err: Error): void;
}

export class PeerDiscovery {
  #stopped = false;
  #call: grpc.ClientReadableStream<unknown> | undefined;
  #client: grpc.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #attempt = 0;
  #index = 0;
  #connected = false;
  /** Names announced since the current stream started. */
  #seen = new Set<string>();
  #hadStream = false;

  constructor(
    readonly addresses: readonly string[],
    private readonly peers: PeerManager,
    private readonly opts: DiscoveryOptions = {},
  ) {
    this.#connect();
  }

  /** Whether a Notify stream is open now. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The Peer service address in use (or tried next). */
  get address(): string {
    return this.addresses[this.#index % this.addresses.length]!;
  }

  #connect(): void {
    if (this.#stopped) return;
    const address = this.address;
    const Ctor = peerServiceClientCtor();
    this.#client?.close();
    const client = new Ctor(grpcTarget(address), grpc.credentials.createInsecure());
    this.#client = client;
    const call = (client as unknown as { Notify(req: object): grpc.ClientReadableStream<unknown> }).Notify(
      {},
    );
    this.#call = call;
    const resync = this.#hadStream;
    this.#seen = new Set();
    let gotData = false;
    call.on('data', (msg: Parameters<typeof peerChangeFromProto>[0]) => {
      if (!gotData) {
        gotData = true;
        this.#connected = true;
        this.#attempt = 0;
        this.#hadStream = true;
        if (resync) this.#scheduleSweep();
      }
      const change = peerChangeFromProto(msg);
      if (!change) return;
      if (change.type !== 'PEER_DELETED') this.#seen.add(change.peer.name);
      this.peers.apply(change);
    });
    const retry = (err?: Error) => {
      if (this.#call !== call) return;
      this.#call = undefined;
      this.#connected = false;
      if (this.#stopped) return;
      if (err) this.opts.onError?.(address, err);
      // a stream that never delivered: try the next address
      if (!gotData) this.#index++;
      const base = this.opts.initialBackoffMs ?? 250;
      const max = this.opts.maxBackoffMs ?? 30_000;
      const delay = Math.min(max, base * 2 ** Math.min(this.#attempt, 16));
      this.#attempt++;
      this.#timer = setTimeout(() => this.#connect(), delay);
    };
    call.on('error', (err: Error) => retry(err));
    call.on('end', () => retry());
  }

  #scheduleSweep(): void {
    clearTimeout(this.#sweep);
    this.#sweep = setTimeout(() => {
      for (const name of this.peers.names())
        if (!this.#seen.has(name)) this.peers.apply({ type: 'PEER_DELETED', peer: { name, address: '' } });
    }, this.opts.resyncMs ?? 2000);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#sweep);
    this.#call?.cancel();
    this.#client?.close();
  }
}
