/**
 * A small cluster for the relay tests: N real Observers + HubbleServers (one temp dir, unix sockets and
 * 127.0.0.1:0), fed through the observers' ingest path with datapath events, every server announcing
 * the same peer list, and a Relay following node1's Peer service.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubbleServer, Observer, PeerList } from '../../../src/hubble/index.js';
import { Relay, type RelayOptions } from '../../../src/hubble/relay/index.js';
import { PODS, packet, TCP_SYN, traceEvent, worldGetters } from '../../unit/hubble/helpers/events.js';

export const BOOT_SEC = 1700596862; // 2023-11-21T20:01:02Z

export interface ClusterNode {
  name: string;
  observer: Observer;
  server: HubbleServer | undefined;
  socket: string;
  /** The address announced by the Peer service. */
  address: string;
}

export interface RelayCluster {
  dir: string;
  nodes: ClusterNode[];
  peers: PeerList;
  relay: Relay;
  /** Starts (again) the node's server on its socket. */
  startNode(node: ClusterNode): Promise<void>;
  stopNode(node: ClusterNode): Promise<void>;
  close(): Promise<void>;
}

const { tiefighter: tf, deathstar: ds } = PODS;

/** A TCP SYN tiefighter → deathstar:dport observed at `sec` (+ nsec) since the epoch. */
export function synEvent(dport: number, sec: number, nsec = 0): Uint8Array {
  return traceEvent({
    obsPoint: 0,
    source: ds.ep,
    srcLabel: tf.id,
    dstLabel: ds.id,
    dstId: ds.ep,
    reason: 0,
    ktimeNs: BigInt(sec - BOOT_SEC) * 1_000_000_000n + BigInt(nsec),
    pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 40000, dport, flags: TCP_SYN }),
  });
}

/** The same at `ms` since the epoch (default: now). */
export function synNow(dport: number, ms = Date.now()): Uint8Array {
  return synEvent(dport, Math.floor(ms / 1000), (ms % 1000) * 1_000_000);
}

/**
 * Nodes node1..nodeN. node i holds `history` flows at BOOT_SEC + j*N + i seconds, j = 0.., with
 * destination port 1000 + j*N + i: merged by time, the ports count up by one.
 * The last node is announced at its unix socket, the others at their TCP port.
 */
export async function startRelayCluster(
  n: number,
  opts: {
    history?: number;
    /** Relay options over the defaults (a function gets the started nodes). */
    relay?: Partial<RelayOptions> | ((nodes: readonly ClusterNode[]) => Partial<RelayOptions>);
    /** Flow ring capacity of each node (default 4095). */
    capacity?: number;
    /** Whether the node's datapath reader runs (default: always). */
    readerUp?: (node: string) => boolean;
  } = {},
): Promise<RelayCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cts-relay-'));
  const peers = new PeerList();
  const nodes: ClusterNode[] = [];
  const history = opts.history ?? 4;
  const startNode = async (node: ClusterNode) => {
    node.server = await HubbleServer.start({
      observer: node.observer,
      unixSocket: node.socket,
      ...(node.address.startsWith('unix://') ? {} : { tcp: node.address }),
      peers,
    });
  };
  for (let i = 0; i < n; i++) {
    const name = `node${i + 1}`;
    const readerUp = opts.readerUp;
    const observer = new Observer({
      nodeName: name,
      bootTime: { sec: BOOT_SEC, nsec: 0 },
      ...(opts.capacity ? { capacity: opts.capacity } : {}),
      ...(readerUp ? { readerUp: () => readerUp(name) } : {}),
      ...worldGetters(),
    });
    for (let j = 0; j < history; j++) {
      const k = j * n + i;
      observer.ingest(synEvent(1000 + k, BOOT_SEC + k));
    }
    const socket = join(dir, name, 'hubble.sock');
    const node: ClusterNode = {
      name,
      observer,
      server: undefined,
      socket,
      address: i === n - 1 ? `unix://${socket}` : '127.0.0.1:0',
    };
    await startNode(node);
    // a TCP node keeps its port across restarts
    if (!node.address.startsWith('unix://')) node.address = node.server!.addresses.tcp!;
    nodes.push(node);
  }
  peers.set(nodes.map((nd) => ({ name: nd.name, address: nd.address })));
  const relay = await Relay.start({
    listen: '127.0.0.1:0',
    unixSocket: join(dir, 'relay', 'relay.sock'),
    peerService: [nodes[0]!.server!.addresses.unix!],
    initialBackoffMs: 50,
    maxBackoffMs: 200,
    sortBufferDrainTimeoutMs: 200,
    ...(typeof opts.relay === 'function' ? opts.relay(nodes) : opts.relay),
  });
  return {
    dir,
    nodes,
    peers,
    relay,
    startNode,
    stopNode: async (node) => {
      await node.server?.stop(200);
      node.server = undefined;
    },
    close: async () => {
      await relay.stop(200);
      for (const nd of nodes) await nd.server?.stop(200);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` every 20 ms until it returns true (or throws after timeoutMs, with its last answer). */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
