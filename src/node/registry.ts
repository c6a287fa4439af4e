/**
 * Every node this agent knows: itself (the local node) and the remote nodes some source (the
 * kvstore, later the Kubernetes API) reports. Subsystems that follow nodes (ipcache, routes,
 * tunnels, the node map) subscribe handlers; a new subscriber first gets every known node as an
 * add (replay), so it needs no separate initial listing.
 */
import { type Node, NodeError, nodeId, parseNode } from './types.js';

export interface NodeHandlers {
  onAdd?(node: Node, local: boolean): void;
  onUpdate?(node: Node, before: Node, local: boolean): void;
  onDelete?(node: Node, local: boolean): void;
}

export class NodeRegistry {
  #local: Node;
  readonly #remote = new Map<string, Node>();
  readonly #handlers = new Set<NodeHandlers>();

  constructor(local: Node) {
    this.#local = freezeNode(parseNode(local, 'local node'));
  }

  get local(): Node {
    return this.#local;
  }

  isLocal(node: Pick<Node, 'cluster' | 'name'>): boolean {
    return nodeId(node) === nodeId(this.#local);
  }

  /** Updates the local node (same name and cluster); handlers get onUpdate. */
  setLocal(node: Node): void {
    const next = parseNode(node, 'local node');
    if (!this.isLocal(next))
      throw new NodeError(`local node is ${nodeId(this.#local)}, not ${nodeId(next)}`, { field: 'name' });
    if (sameNode(next, this.#local)) return;
    const before = this.#local;
    this.#local = freezeNode(next);
    this.#run((h) => h.onUpdate?.(this.#local, before, true));
  }

  /** Adds or updates a remote node. Returns what changed. */
  upsert(node: Node): 'added' | 'updated' | 'unchanged' {
    const next = parseNode(node);
    if (this.isLocal(next))
      throw new NodeError(`${nodeId(next)} is the local node: use setLocal()`, { field: 'name' });
    const id = nodeId(next);
    const before = this.#remote.get(id);
    if (before && sameNode(before, next)) return 'unchanged';
    const frozen = freezeNode(next);
    this.#remote.set(id, frozen);
    if (before) this.#run((h) => h.onUpdate?.(frozen, before, false));
    else this.#run((h) => h.onAdd?.(frozen, false));
    return before ? 'updated' : 'added';
  }

  /** Removes a remote node. Returns whether it was known. */
  delete(name: string, cluster: string = this.#local.cluster): boolean {
    const id = nodeId({ name, cluster });
    const before = this.#remote.get(id);
    if (!before) return false;
    this.#remote.delete(id);
    this.#run((h) => h.onDelete?.(before, false));
    return true;
  }

  get(name: string, cluster: string = this.#local.cluster): Node | undefined {
    if (this.isLocal({ name, cluster })) return this.#local;
    return this.#remote.get(nodeId({ name, cluster }));
  }

  /** The local node first, then remote nodes by cluster and name. */
  list(): Node[] {
    const remote = [...this.#remote.values()].sort((a, b) => (nodeId(a) < nodeId(b) ? -1 : 1));
    return [this.#local, ...remote];
  }

  /** Remote nodes only. */
  remotes(): Node[] {
    return this.list().slice(1);
  }

  /**
   * Subscribes handlers; unless `replay: false`, onAdd is called at once for every known node
   * (the local node first). Returns an unsubscribe function.
   */
  subscribe(handlers: NodeHandlers, opts: { replay?: boolean } = {}): () => void {
    this.#handlers.add(handlers);
    if (opts.replay ?? true) {
      for (const n of this.list()) handlers.onAdd?.(n, n === this.#local);
    }
    return () => {
      this.#handlers.delete(handlers);
    };
  }

  // Every handler runs even if one throws; the first error is rethrown afterwards.
  #run(call: (h: NodeHandlers) => void): void {
    let first: unknown;
    let failed = false;
    for (const h of [...this.#handlers]) {
      try {
        call(h);
      } catch (err) {
        if (!failed) first = err;
        failed = true;
      }
    }
    if (failed) throw first;
  }
}

function sameNode(a: Node, b: Node): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Node fields in a fixed order (labels sorted), for comparison. */
function canonical(n: Node): unknown[] {
  return [
    n.name,
    n.cluster,
    n.addresses.map((a) => [a.type, a.ip]),
    n.ipv4PodCidr,
    n.ipv6PodCidr,
    Object.entries(n.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    n.clusterId,
    n.ipv4HealthIp,
    n.ipv6HealthIp,
    n.encryptionKey,
    n.wireguardPublicKey,
  ];
}

function freezeNode(n: Node): Node {
  return Object.freeze({
    ...n,
    addresses: Object.freeze(n.addresses.map((a) => Object.freeze({ ...a }))) as Node['addresses'],
    labels: Object.freeze({ ...n.labels }),
  });
}
