/**
 * The Hubble Peer service (`peer.Peer/Notify`, upstream's api/v1/peer): every node's Hubble server
 * announces the Hubble servers of the cluster, so a Relay that reaches one node finds them all.
 *
 * The agent feeds it a PeerSource: the peers it knows now (`list()`) and a way to hear that the list
 * changed (`subscribe()`). Each Notify stream first gets every peer as PEER_ADDED, then the
 * difference between what it was sent and the list after each change (added, deleted, updated), so
 * a source may call onChange as often as it likes, even with nothing changed.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Node, NodeHandlers } from '../node/index.js';
import { HubbleError } from './errors.js';
import { LOADER_OPTIONS } from './proto.js';

/** A node's Hubble server as the Peer service announces it. */
export interface Peer {
  /** The node's name, `cluster/name` when the cluster is not "default" (peerName()). */
  name: string;
  /** Where its Observer API answers: `host:port` or `unix:///path`. */
  address: string;
  /** Set when the peer serves TLS; the name its certificate must carry. */
  tls?: { serverName: string };
}

/** Where the Peer service takes the peers it announces from. */
export interface PeerSource {
  /** The peers now (names unique). */
  list(): readonly Peer[];
  /** Calls onChange after the list may have changed; returns the unsubscribe function. */
  subscribe(onChange: () => void): () => void;
}

export type PeerChangeType = 'PEER_ADDED' | 'PEER_DELETED' | 'PEER_UPDATED';

/** One `peer.ChangeNotification`. */
export interface PeerChange {
  type: PeerChangeType;
  peer: Peer;
}

export class PeerError extends HubbleError {
  override readonly code = 'invalid-argument';
}

/** Checks a peer's fields; the error names the one at fault. */
export function checkPeer(p: Peer, where = 'peer'): Peer {
  if (typeof p.name !== 'string' || p.name === '')
    throw new PeerError(`${where}: name must be a non-empty string`, { field: 'name' });
  if (typeof p.address !== 'string' || p.address === '')
    throw new PeerError(`${where} ${p.name}: address must be a non-empty string`, { field: 'address' });
  if (p.tls !== undefined && (typeof p.tls.serverName !== 'string' || p.tls.serverName === ''))
    throw new PeerError(`${where} ${p.name}: tls.serverName must be a non-empty string`, {
      field: 'tls.serverName',
    });
  return p;
}

function samePeer(a: Peer, b: Peer): boolean {
  return a.address === b.address && a.tls?.serverName === b.tls?.serverName;
}

/**
 * The notifications that take a stream from the peers it was sent (`sent`, updated in place) to
 * `now`: deletions first, then additions and updates, each by name.
 */
export function diffPeers(sent: Map<string, Peer>, now: readonly Peer[]): PeerChange[] {
  const next = new Map<string, Peer>();
  for (const p of now) next.set(p.name, p);
  const out: PeerChange[] = [];
  for (const [name, p] of [...sent].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (next.has(name)) continue;
    sent.delete(name);
    out.push({ type: 'PEER_DELETED', peer: p });
  }
  for (const p of [...next.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const before = sent.get(p.name);
    if (before && samePeer(before, p)) continue;
    sent.set(p.name, p);
    out.push({ type: before ? 'PEER_UPDATED' : 'PEER_ADDED', peer: p });
  }
  return out;
}

/** A PeerSource held in memory: a fixed list, or one its owner changes with set/upsert/remove. */
export class PeerList implements PeerSource {
  readonly #peers = new Map<string, Peer>();
  readonly #listeners = new Set<() => void>();

  constructor(peers: readonly Peer[] = []) {
    this.set(peers);
  }

  list(): Peer[] {
    return [...this.#peers.values()];
  }

  subscribe(onChange: () => void): () => void {
    this.#listeners.add(onChange);
    return () => {
      this.#listeners.delete(onChange);
    };
  }

  /** Replaces the whole list (checked first: a bad peer changes nothing). */
  set(peers: readonly Peer[]): void {
    const names = new Set<string>();
    for (const [i, p] of peers.entries()) {
      checkPeer(p, `peers[${i}]`);
      if (names.has(p.name)) throw new PeerError(`peers[${i}]: duplicate name ${p.name}`, { field: 'name' });
      names.add(p.name);
    }
    this.#peers.clear();
    for (const p of peers) this.#peers.set(p.name, { ...p });
    this.#notify();
  }

  upsert(peer: Peer): void {
    this.#peers.set(checkPeer(peer).name, { ...peer });
    this.#notify();
  }

  remove(name: string): boolean {
    const had = this.#peers.delete(name);
    if (had) this.#notify();
    return had;
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }
}

/** Upstream's peer name: the node name, `cluster/name` when the cluster is not "default". */
export function peerName(node: Pick<Node, 'name' | 'cluster'>): string {
  return !node.cluster || node.cluster === 'default' ? node.name : `${node.cluster}/${node.name}`;
}

/** What nodePeerSource needs of the node registry (src/node NodeRegistry has it). */
export interface NodeListSource {
  list(): Node[];
  subscribe(handlers: NodeHandlers, opts?: { replay?: boolean }): () => void;
}

/**
 * The peers of a node registry: every node (the local one too) whose Hubble address `hubbleAddress`
 * knows (nodes it answers undefined for are left out), following the registry's changes.
 */
export function nodePeerSource(
  nodes: NodeListSource,
  hubbleAddress: (node: Node) => string | undefined,
): PeerSource {
  return {
    list: () =>
      nodes.list().flatMap((n) => {
        const address = hubbleAddress(n);
        return address ? [{ name: peerName(n), address }] : [];
      }),
    subscribe: (onChange) => {
      const changed = () => onChange();
      return nodes.subscribe({ onAdd: changed, onUpdate: changed, onDelete: changed }, { replay: false });
    },
  };
}

// ---------- gRPC ----------

let loaded: grpc.GrpcObject | undefined;

type PeerClientCtor = grpc.ServiceClientConstructor;

/** The peer.Peer service from proto/peer/peer.proto. */
export function peerServiceClientCtor(): PeerClientCtor {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(['peer/peer.proto'], LOADER_OPTIONS));
  return (loaded.peer as grpc.GrpcObject).Peer as PeerClientCtor;
}

interface ChangeNotificationProto {
  name?: string;
  address?: string;
  type?: string;
  tls?: { server_name?: string } | null;
}

export function peerChangeToProto(c: PeerChange): ChangeNotificationProto {
  const out: ChangeNotificationProto = { name: c.peer.name, address: c.peer.address, type: c.type };
  if (c.peer.tls) out.tls = { server_name: c.peer.tls.serverName };
  return out;
}

/** A decoded ChangeNotification; undefined for one without a name or with an unknown type. */
export function peerChangeFromProto(m: ChangeNotificationProto): PeerChange | undefined {
  const type = m.type;
  if (!m.name || (type !== 'PEER_ADDED' && type !== 'PEER_DELETED' && type !== 'PEER_UPDATED'))
    return undefined;
  const peer: Peer = { name: m.name, address: m.address ?? '' };
  if (m.tls?.server_name) peer.tls = { serverName: m.tls.server_name };
  return { type, peer };
}

/**
 * The Notify handler of a Peer service serving `source()`. `track` registers each stream's
 * AbortController with the server (aborting it ends the stream) and returns the untrack function.
 */
export function peerServiceImplementation(
  source: () => PeerSource,
  track: (ac: AbortController) => () => void,
): grpc.UntypedServiceImplementation {
  return {
    Notify: (call: grpc.ServerWritableStream<unknown, ChangeNotificationProto>) => {
      const src = source();
      const sent = new Map<string, Peer>();
      const ac = new AbortController();
      const untrack = track(ac);
      let scheduled = false;
      let failed = false;
      const flush = () => {
        scheduled = false;
        if (ac.signal.aborted) return;
        let now: readonly Peer[];
        try {
          now = src.list();
        } catch (err) {
          failed = true;
          const details = `peer source: ${err instanceof Error ? err.message : String(err)}`;
          call.emit('error', { code: grpc.status.INTERNAL, details, message: details });
          ac.abort();
          return;
        }
        for (const c of diffPeers(sent, now)) call.write(peerChangeToProto(c));
      };
      // Changes arrive in bursts (a registry replays every node): one diff per turn of the loop.
      const unsubscribe = src.subscribe(() => {
        if (scheduled || ac.signal.aborted) return;
        scheduled = true;
        setImmediate(flush);
      });
      const finish = () => {
        if (!ac.signal.aborted) ac.abort();
      };
      ac.signal.addEventListener(
        'abort',
        () => {
          unsubscribe();
          untrack();
          if (failed) return;
          try {
            call.end();
          } catch {
            // the client is gone already
          }
        },
        { once: true },
      );
      call.on('cancelled', finish);
      call.on('close', finish);
      flush();
    },
  };
}
