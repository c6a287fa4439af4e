/**
 * Cluster-wide identities through the kvstore, with upstream's layout and algorithm
 * (pkg/allocator, pkg/kvstore/allocator):
 *
 *   cilium/state/identities/v1/id/<id>                 → label key   (permanent "master key")
 *   cilium/state/identities/v1/value/<label key>/<node> → id          (leased, one per node using it)
 *   cilium/state/identities/v1/locks/<label key>        → lock holder (leased)
 *
 * A label key is the label set as `source:key=value;` per label. Allocation takes the lock of the
 * label key, then uses the ID another node already uses for it (value keys), or an ID whose master
 * key is left for these labels, or creates the master key of a free ID create-only (retrying with
 * another ID when a different label set took it), and writes this node's value key. The lock makes
 * nodes allocating the same new labels at once agree; create-only makes two label sets never share
 * an ID. References are counted per node, locally: the value key exists while this node holds at
 * least one. gc() deletes master keys no value key refers to (under the same lock, so it never races
 * an allocation). Reserved and node-local (CIDR) identities never reach the kvstore.
 *
 * Lookups are answered from a cache of every master key, kept by a watch of the `id/` prefix, so
 * identities allocated by other nodes appear here and reach subscribers.
 */
import {
  IDENTITY_ID_PREFIX,
  IDENTITY_VALUE_PREFIX,
  identityIdKey,
  identityLockKey,
  identityValueKey,
  identityValuePrefix,
  KvPrefixCache,
  type KvStore,
  lockKey,
  type PrefixChange,
  prefixMatchesKey,
} from '../kvstore/index.js';
import { LabelSet } from '../labels/index.js';
import {
  type Identity,
  IdentityAllocator,
  IdentityError,
  type IdentityEvent,
  type IdentityListener,
  scopeForLabels,
} from './allocator.js';
import type { AllocationResult, AsyncIdentityAllocator } from './async.js';
import {
  isClusterIdentity,
  isReservedIdentity,
  MAX_CLUSTER_LOCAL_ID,
  MIN_CLUSTER_LOCAL_ID,
  makeClusterIdentity,
} from './numbering.js';

/** Upstream's label key: every label followed by `;` (`k8s:app=web;k8s:io.kubernetes.pod.namespace=default;`). */
export function labelKeyOf(labels: LabelSet): string {
  return labels
    .toStrings()
    .map((l) => `${l};`)
    .join('');
}

export function labelsOfKey(key: string): LabelSet {
  if (!key.endsWith(';') || key.length < 2)
    throw new IdentityError(`invalid label key ${JSON.stringify(key)}`);
  return LabelSet.parse(key.slice(0, -1).split(';'));
}

export interface KvstoreIdentityAllocatorOptions {
  store: KvStore;
  /** This node's name: the last element of its value keys (no `/`). */
  node: string;
  /** Cluster ID (0..255) placed in bits 16..23 of the identities this allocator creates. */
  clusterId?: number;
  /** Allocator of the reserved and node-local identities (default: a new one). */
  local?: IdentityAllocator;
  /**
   * How a free ID is chosen: `random` (default, as upstream: nodes allocating at once rarely pick
   * the same ID) or `sequential` (lowest free first).
   */
  idOrder?: 'random' | 'sequential';
  /** Told about problems the allocator works around (bad keys, failed re-publishing). */
  onError?: (err: unknown) => void;
}

interface Held {
  identity: Identity;
  refs: number;
}

export class KvstoreIdentityAllocator implements AsyncIdentityAllocator {
  readonly node: string;
  readonly clusterId: number;
  readonly #store: KvStore;
  readonly #local: IdentityAllocator;
  readonly #random: boolean;
  readonly #onError: (err: unknown) => void;
  readonly #masters: KvPrefixCache;
  /** Every cluster identity known from the kvstore (and the ones this node holds). */
  readonly #cluster = new Map<number, Identity>();
  /** This node's references, by label key. */
  readonly #held = new Map<string, Held>();
  readonly #heldById = new Map<number, string>();
  /** Held IDs whose master key was deleted: forgotten once this node lets go of them. */
  readonly #goneWhileHeld = new Set<number>();
  readonly #listeners = new Set<IdentityListener>();
  /** Per label key, the tail of the operations queued on it (one at a time per label set). */
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #unsubscribe: (() => void)[] = [];
  #started: Promise<void> | undefined;

  constructor(opts: KvstoreIdentityAllocatorOptions) {
    if (typeof opts.node !== 'string' || opts.node === '' || opts.node.includes('/')) {
      throw new IdentityError(`node ${JSON.stringify(opts.node)}: must be a non-empty name without '/'`, {
        code: 'invalid-argument',
        field: 'node',
      });
    }
    this.node = opts.node;
    this.#store = opts.store;
    this.#local = opts.local ?? new IdentityAllocator({ clusterId: opts.clusterId ?? 0 });
    this.clusterId = opts.clusterId ?? this.#local.clusterId;
    if (this.#local.clusterId !== this.clusterId) {
      throw new IdentityError(
        `clusterId ${this.clusterId}: the local allocator has cluster ID ${this.#local.clusterId}`,
        { code: 'invalid-argument', field: 'clusterId' },
      );
    }
    this.#random = (opts.idOrder ?? 'random') === 'random';
    this.#onError = opts.onError ?? (() => {});
    this.#masters = new KvPrefixCache(this.#store, IDENTITY_ID_PREFIX, (cs) => this.#onMasterKeys(cs), {
      onError: this.#onError,
    });
    this.#unsubscribe.push(
      this.#local.subscribe((events) => this.#emit(events)),
      this.#store.onLeaseLost(() => void this.#republish()),
    );
  }

  /** Starts following the kvstore; resolves once the identities it holds are known. */
  start(): Promise<void> {
    this.#started ??= this.#masters.start();
    return this.#started;
  }

  async allocate(labels: LabelSet): Promise<AllocationResult> {
    if (this.#nodeLocal(labels)) return this.#local.allocate(labels);
    await this.start();
    const key = labelKeyOf(labels);
    return this.#serial(key, async () => {
      const held = this.#held.get(key);
      if (held) {
        held.refs++;
        return { identity: held.identity, isNew: false };
      }
      const { id, isNew } = await this.#acquire(key);
      const identity = this.#learn(id, labels);
      this.#held.set(key, { identity, refs: 1 });
      this.#heldById.set(id, key);
      return { identity, isNew };
    });
  }

  async release(idOrLabels: number | LabelSet): Promise<boolean> {
    let key: string | undefined;
    if (typeof idOrLabels === 'number') {
      if (isReservedIdentity(idOrLabels)) return false;
      if (!isClusterIdentity(idOrLabels)) return this.#local.release(idOrLabels);
      key = this.#heldById.get(idOrLabels);
    } else {
      if (this.#nodeLocal(idOrLabels)) return this.#local.release(idOrLabels);
      key = labelKeyOf(idOrLabels);
    }
    const what = String(idOrLabels);
    if (key === undefined) throw new IdentityError(`release of unknown identity ${what}`);
    return this.#serial(key, async () => {
      const held = this.#held.get(key);
      if (!held) throw new IdentityError(`release of unknown identity ${what}`);
      held.refs--;
      if (held.refs > 0) return false;
      const id = held.identity.id;
      this.#held.delete(key);
      this.#heldById.delete(id);
      if (this.#goneWhileHeld.delete(id)) this.#forget(id);
      await this.#store.deleteIf(identityValueKey(key, this.node), { value: String(id) });
      return true;
    });
  }

  all(): Identity[] {
    return [...this.#local.all(), ...this.#cluster.values()].sort((a, b) => a.id - b.id);
  }

  lookup(id: number): Identity | undefined {
    return isClusterIdentity(id) ? this.#cluster.get(id) : this.#local.lookup(id);
  }

  lookupByLabels(labels: LabelSet): Identity | undefined {
    if (this.#nodeLocal(labels)) return this.#local.lookupByLabels(labels);
    const held = this.#held.get(labelKeyOf(labels));
    if (held) return held.identity;
    return this.#idsWithLabels(labelKeyOf(labels))
      .map((id) => this.#cluster.get(id)!)
      .at(0);
  }

  refCount(id: number): number {
    if (!isClusterIdentity(id)) return this.#local.refCount(id);
    const key = this.#heldById.get(id);
    return key === undefined ? 0 : (this.#held.get(key)?.refs ?? 0);
  }

  subscribe(listener: IdentityListener, opts: { replay?: boolean } = {}): () => void {
    this.#listeners.add(listener);
    if (opts.replay) listener(this.all().map((identity) => ({ type: 'added' as const, identity })));
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Deletes the master keys no node refers to any more (no value key with their ID). Safe to run on
   * every node at once. Returns the IDs it deleted.
   */
  async gc(): Promise<number[]> {
    const [masters, values] = await Promise.all([
      this.#store.list(IDENTITY_ID_PREFIX),
      this.#store.list(IDENTITY_VALUE_PREFIX),
    ]);
    const used = new Set<string>();
    for (const v of values.pairs) {
      const rest = v.key.slice(IDENTITY_VALUE_PREFIX.length);
      const slash = rest.lastIndexOf('/');
      if (slash > 0) used.add(`${rest.slice(0, slash)}\n${v.value}`);
    }
    const deleted: number[] = [];
    for (const m of masters.pairs) {
      const id = m.key.slice(IDENTITY_ID_PREFIX.length);
      if (used.has(`${m.value}\n${id}`)) continue;
      const lock = await lockKey(this.#store, identityLockKey(m.value), this.#lockOptions);
      try {
        // Under the lock nobody adds a value key for these labels: check again, then delete if the
        // master key is still the one listed.
        if ((await this.#usersOf(m.value)).some((u) => u.value === id)) continue;
        if (await this.#store.deleteIf(m.key, { modRevision: m.modRevision })) deleted.push(Number(id));
      } finally {
        await lock.unlock();
      }
    }
    return deleted;
  }

  async close(): Promise<void> {
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#masters.close();
  }

  /** Under the label key's lock: the ID to use, and this node's value key written for it. */
  async #acquire(key: string): Promise<{ id: number; isNew: boolean }> {
    const lock = await lockKey(this.#store, identityLockKey(key), this.#lockOptions);
    try {
      // 1. An ID other nodes (or this one, before a restart) use for these labels.
      for (const user of await this.#usersOf(key)) {
        const id = parseId(user.value);
        if (id === undefined || !(await this.#ensureMaster(id, key))) continue;
        await this.#writeValue(key, id);
        return { id, isNew: false };
      }
      // 2. An ID whose master key is left for these labels (released everywhere, not collected yet).
      for (const id of this.#idsWithLabels(key)) {
        if ((await this.#store.get(identityIdKey(id)))?.value !== key) continue;
        await this.#writeValue(key, id);
        return { id, isNew: false };
      }
      // 3. A free ID: create-only its master key; another label set may win it, then try the next.
      const tried = new Set<number>();
      for (;;) {
        const id = this.#pickFree(tried);
        tried.add(id);
        if (await this.#store.create(identityIdKey(id), key)) {
          await this.#writeValue(key, id);
          return { id, isNew: true };
        }
      }
    } finally {
      await lock.unlock();
    }
  }

  /**
   * Whether `id`'s master key holds `key`, re-creating it if it is missing (a store that lost its
   * data comes back with the nodes' value keys but without master keys). False if another label set
   * has the ID.
   */
  async #ensureMaster(id: number, key: string): Promise<boolean> {
    const master = await this.#store.get(identityIdKey(id));
    if (master) return master.value === key;
    return (await this.#store.create(identityIdKey(id), key)) || (await this.#ensureMaster(id, key));
  }

  /** Reserved, node-local (CIDR) and empty label sets stay with the local allocator (it refuses the empty set). */
  #nodeLocal(labels: LabelSet): boolean {
    if (labels.size === 0 || scopeForLabels(labels) === 'local') return true;
    const id = this.#local.lookupByLabels(labels)?.id;
    return id !== undefined && isReservedIdentity(id);
  }

  /** The value keys of a label key (exactly that key: `a;` does not see `a;b;`'s). */
  async #usersOf(key: string): Promise<{ node: string; value: string }[]> {
    const prefix = identityValuePrefix(key);
    const { pairs } = await this.#store.list(prefix);
    return pairs
      .filter((p) => prefixMatchesKey(prefix, p.key))
      .map((p) => ({ node: p.key.slice(prefix.length), value: p.value }));
  }

  /** Writes this node's value key, bound to this client's lease (a restarted agent's key was bound to the old one). */
  async #writeValue(key: string, id: number): Promise<void> {
    await this.#store.put(identityValueKey(key, this.node), String(id), { lease: true });
  }

  /** A lock left behind by an outage is released once the store answers: said, not silent. */
  get #lockOptions() {
    return {
      owner: this.node,
      onDeferredRelease: (key: string, err: unknown) =>
        this.#onError(new IdentityError(`releasing ${key} once the kvstore answers`, { cause: err })),
    };
  }

  #pickFree(tried: Set<number>): number {
    const span = MAX_CLUSTER_LOCAL_ID - MIN_CLUSTER_LOCAL_ID + 1;
    const start = this.#random ? Math.floor(Math.random() * span) : 0;
    for (let i = 0; i < span; i++) {
      const id = makeClusterIdentity(this.clusterId, MIN_CLUSTER_LOCAL_ID + ((start + i) % span));
      if (!this.#cluster.has(id) && !tried.has(id)) return id;
    }
    throw new IdentityError('cluster identity space exhausted', { code: 'resource-exhausted' });
  }

  #idsWithLabels(key: string): number[] {
    const ids: number[] = [];
    for (const [id, identity] of this.#cluster) if (labelKeyOf(identity.labels) === key) ids.push(id);
    return ids.sort((a, b) => a - b);
  }

  /** After the lease was lost: this node's value keys are gone; write them (and missing master keys) again. */
  async #republish(): Promise<void> {
    await Promise.all(
      [...this.#held.keys()].map((key) =>
        this.#serial(key, async () => {
          const held = this.#held.get(key);
          if (!held) return;
          const lock = await lockKey(this.#store, identityLockKey(key), this.#lockOptions);
          try {
            if (!(await this.#ensureMaster(held.identity.id, key))) {
              throw new IdentityError(
                `identity ${held.identity.id} (${key}) was taken by other labels while this node's lease was lost`,
                { code: 'conflict' },
              );
            }
            await this.#writeValue(key, held.identity.id);
          } finally {
            await lock.unlock();
          }
        }).catch(this.#onError),
      ),
    );
  }

  #onMasterKeys(changes: readonly PrefixChange[]): void {
    const events: IdentityEvent[] = [];
    for (const c of changes) {
      const id = parseId(c.key.slice(IDENTITY_ID_PREFIX.length));
      if (id === undefined) {
        this.#onError(new IdentityError(`ignoring kvstore key ${c.key}: not a cluster identity`));
        continue;
      }
      // An identity this node holds stays known even if its key goes (it is re-published).
      if (this.#heldById.has(id)) {
        if (c.type === 'delete') this.#goneWhileHeld.add(id);
        else this.#goneWhileHeld.delete(id);
        continue;
      }
      const old = this.#cluster.get(id);
      if (c.type === 'delete') {
        if (old) {
          this.#cluster.delete(id);
          events.push({ type: 'removed', identity: old });
        }
        continue;
      }
      let labels: LabelSet;
      try {
        labels = labelsOfKey(c.value);
      } catch (err) {
        this.#onError(err);
        continue;
      }
      if (old && old.labels.toString() === labels.toString()) continue;
      if (old) events.push({ type: 'removed', identity: old });
      const identity: Identity = Object.freeze({ id, labels, scope: 'cluster' });
      this.#cluster.set(id, identity);
      events.push({ type: 'added', identity });
    }
    this.#emit(events);
  }

  /** Records an identity this node just allocated (before the watch brings its key). */
  #learn(id: number, labels: LabelSet): Identity {
    const old = this.#cluster.get(id);
    if (old && old.labels.toString() === labels.toString()) return old;
    const identity: Identity = Object.freeze({ id, labels, scope: 'cluster' });
    this.#cluster.set(id, identity);
    this.#emit(
      old
        ? [
            { type: 'removed', identity: old },
            { type: 'added', identity },
          ]
        : [{ type: 'added', identity }],
    );
    return identity;
  }

  #forget(id: number): void {
    const old = this.#cluster.get(id);
    if (!old) return;
    this.#cluster.delete(id);
    this.#emit([{ type: 'removed', identity: old }]);
  }

  #emit(events: readonly IdentityEvent[]): void {
    if (events.length === 0) return;
    for (const l of [...this.#listeners]) l(events);
  }

  #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.#queues.get(key) ?? Promise.resolve()).then(fn);
    const tail = run.catch(() => {});
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return run;
  }
}

function parseId(s: string): number | undefined {
  if (!/^[1-9][0-9]{0,9}$/.test(s)) return undefined;
  const id = Number(s);
  return isClusterIdentity(id) ? id : undefined;
}
