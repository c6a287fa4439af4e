/**
 * Node discovery through the kvstore, as upstream with kvstore mode: each agent publishes its own
 * node under `cilium/state/nodes/v1/<cluster>/<name>`, bound to its lease (a dead agent's node
 * vanishes with it), and watches its cluster's prefix to feed the registry with the others. What
 * it owns it writes again when it is lost: after a lost lease, or when its key is deleted (a store
 * restored empty).
 */
import { KvPrefixCache, type KvStore, NODES_PREFIX, nodeKey, type PrefixChange } from '../kvstore/index.js';
import type { NodeRegistry } from './registry.js';
import { NodeError, parseNode } from './types.js';

export interface NodeKvSyncOptions {
  store: KvStore;
  registry: NodeRegistry;
  /** Told about keys it ignores (invalid nodes) and failed re-publishing. */
  onError?: (err: unknown) => void;
}

export class NodeKvSync {
  readonly #store: KvStore;
  readonly #registry: NodeRegistry;
  readonly #onError: (err: unknown) => void;
  readonly #prefix: string;
  readonly #cache: KvPrefixCache;
  readonly #unsubscribe: (() => void)[] = [];
  #published = false;

  constructor(opts: NodeKvSyncOptions) {
    this.#store = opts.store;
    this.#registry = opts.registry;
    this.#onError = opts.onError ?? (() => {});
    this.#prefix = `${NODES_PREFIX}${opts.registry.local.cluster}/`;
    this.#cache = new KvPrefixCache(this.#store, this.#prefix, (cs) => this.#apply(cs), {
      onError: this.#onError,
    });
  }

  /** The local node's key. */
  get key(): string {
    const { cluster, name } = this.#registry.local;
    return nodeKey(cluster, name);
  }

  /** Publishes the local node and follows the others; resolves once the nodes already there are known. */
  async start(): Promise<void> {
    await this.publish();
    this.#unsubscribe.push(
      this.#registry.subscribe(
        {
          onUpdate: (_node, _before, local) => {
            if (local) this.publish().catch(this.#onError);
          },
        },
        { replay: false },
      ),
      this.#store.onLeaseLost(() => {
        this.publish().catch(this.#onError);
      }),
    );
    await this.#cache.start();
  }

  /** Writes the local node (leased). */
  async publish(): Promise<void> {
    this.#published = true;
    await this.#store.put(this.key, JSON.stringify(this.#registry.local), { lease: true });
  }

  /** Removes the local node from the cluster (the node leaves for good; a restart keeps it). */
  async withdraw(): Promise<void> {
    this.#published = false;
    await this.#store.delete(this.key);
  }

  /** Stops following; the local node's key stays until the lease ends or withdraw(). */
  close(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#cache.close();
  }

  #apply(changes: readonly PrefixChange[]): void {
    for (const c of changes) {
      const name = c.key.slice(this.#prefix.length);
      if (name === this.#registry.local.name) {
        // Someone removed our key (or the store lost it): we own it, so write it again.
        if (c.type === 'delete' && this.#published) this.publish().catch(this.#onError);
        continue;
      }
      try {
        if (c.type === 'delete') {
          this.#registry.delete(name);
          continue;
        }
        const node = parseNode(JSON.parse(c.value), c.key);
        if (node.name !== name || node.cluster !== this.#registry.local.cluster)
          throw new NodeError(`${c.key}: holds node ${node.cluster}/${node.name}`, { field: 'name' });
        this.#registry.upsert(node);
      } catch (err) {
        this.#onError(err);
      }
    }
  }
}
