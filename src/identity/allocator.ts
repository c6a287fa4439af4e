/**
 * Security identity allocator: label set → numeric identity.
 *
 * The same label set always maps to the same identity while anyone holds a reference; each
 * `allocate()` takes a reference and each `release()` drops one; the identity is freed when the
 * last reference goes. Label sets containing a `cidr:` (or `fqdn:`) label get node-local identities
 * (bit 24 set); everything else is cluster-scoped (256.., cluster ID in bits 16..23). Reserved label
 * sets (`reserved:host`, ...) resolve to their fixed reserved identity and are never freed.
 *
 * Listeners receive batches of added/removed events synchronously, after the state has changed.
 *
 * Persistence keeps only the numbering (id ↔ labels), never reference counts: counts belong to the
 * owners (endpoints, policies), which take their references again after a restart. `export()`
 * returns the numbering; `restore()` brings identities back unclaimed (0 references, still
 * resolvable), owners re-allocate theirs, and `releaseUnclaimed()` frees the ones nobody claimed.
 */
import { CiliumTsError } from '../common/errors.js';
import {
  cidrIdentityLabels,
  type LabelSet,
  LabelSet as LabelSetClass,
  type Prefix,
} from '../labels/index.js';
import {
  isLocalIdentity,
  isReservedIdentity,
  LOCAL_IDENTITY_FLAG,
  MAX_CLUSTER_ID,
  MAX_CLUSTER_LOCAL_ID,
  MAX_LOCAL_INDEX,
  MIN_CLUSTER_LOCAL_ID,
  makeClusterIdentity,
  makeLocalIdentity,
  RESERVED_IDENTITY_NAMES,
  reservedIdentityLabels,
} from './numbering.js';

export type IdentityScope = 'reserved' | 'cluster' | 'local';

export interface Identity {
  readonly id: number;
  readonly labels: LabelSet;
  readonly scope: IdentityScope;
}

export interface IdentityEvent {
  readonly type: 'added' | 'removed';
  readonly identity: Identity;
}

export type IdentityListener = (events: readonly IdentityEvent[]) => void;

export class IdentityError extends CiliumTsError {
  override readonly name = 'IdentityError';
}

export interface IdentityAllocatorOptions {
  /** Cluster ID (0..255) placed in bits 16..23 of cluster-scoped identities. */
  clusterId?: number;
}

/** Persisted allocator state (plain JSON): the numbering only, no reference counts. */
export interface IdentityState {
  version: 2;
  clusterId: number;
  nextCluster: number;
  nextLocal: number;
  identities: { id: number; labels: string[] }[];
}

/** State written by earlier versions; its reference counts are ignored on restore. */
export interface IdentityStateV1 {
  version: 1;
  clusterId: number;
  nextCluster: number;
  nextLocal: number;
  identities: { id: number; labels: string[]; refs: number }[];
}

const LOCAL_SOURCES = new Set(['cidr', 'fqdn', 'cidrgroup']);

/** Node-local (`cidr:`, `fqdn:` labels) or cluster-scoped. */
export function scopeForLabels(labels: LabelSet): IdentityScope {
  for (const l of labels) if (LOCAL_SOURCES.has(l.source)) return 'local';
  return 'cluster';
}

interface Slot {
  identity: Identity;
  /** 0 for a restored identity no owner has claimed yet. */
  refs: number;
}

export class IdentityAllocator {
  readonly clusterId: number;
  readonly #byId = new Map<number, Slot>();
  readonly #byLabels = new Map<string, Slot>();
  readonly #reserved = new Map<string, Identity>();
  readonly #listeners = new Set<IdentityListener>();
  #nextCluster = MIN_CLUSTER_LOCAL_ID;
  #nextLocal = 1;

  constructor(opts: IdentityAllocatorOptions = {}) {
    const clusterId = opts.clusterId ?? 0;
    if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId > MAX_CLUSTER_ID) {
      throw new IdentityError(`cluster ID ${clusterId} out of range 0-${MAX_CLUSTER_ID}`);
    }
    this.clusterId = clusterId;
    for (const id of RESERVED_IDENTITY_NAMES.keys()) {
      const identity: Identity = Object.freeze({
        id,
        labels: reservedIdentityLabels(id)!,
        scope: 'reserved',
      });
      this.#reserved.set(identity.labels.toString(), identity);
      this.#byId.set(id, { identity, refs: 0 });
    }
  }

  /** Every live identity, reserved ones included, ordered by number. */
  all(): Identity[] {
    return [...this.#byId.values()].map((s) => s.identity).sort((a, b) => a.id - b.id);
  }

  lookup(id: number): Identity | undefined {
    return this.#byId.get(id)?.identity;
  }

  lookupByLabels(labels: LabelSet): Identity | undefined {
    const key = labels.toString();
    return this.#reserved.get(key) ?? this.#byLabels.get(key)?.identity;
  }

  /** Reference count of a non-reserved identity (0 if unknown, reserved or unclaimed). */
  refCount(id: number): number {
    if (isReservedIdentity(id)) return 0;
    return this.#byId.get(id)?.refs ?? 0;
  }

  /**
   * Takes a reference on the identity for `labels`, allocating it if needed. A restored, unclaimed
   * identity keeps its number (isNew false).
   */
  allocate(labels: LabelSet): { identity: Identity; isNew: boolean } {
    const key = labels.toString();
    const reserved = this.#reserved.get(key);
    if (reserved !== undefined) return { identity: reserved, isNew: false };
    if (labels.size === 0) throw new IdentityError('cannot allocate an identity for an empty label set');
    const existing = this.#byLabels.get(key);
    if (existing !== undefined) {
      existing.refs++;
      return { identity: existing.identity, isNew: false };
    }
    const scope = scopeForLabels(labels);
    const id = scope === 'local' ? this.#pickLocal() : this.#pickCluster();
    const identity: Identity = Object.freeze({ id, labels, scope });
    const slot: Slot = { identity, refs: 1 };
    this.#byId.set(id, slot);
    this.#byLabels.set(key, slot);
    this.#emit([{ type: 'added', identity }]);
    return { identity, isNew: true };
  }

  /** Takes a reference on the local CIDR identity of a prefix (labels `cidr:<p>`, `reserved:world`). */
  allocateCidr(prefix: Prefix): { identity: Identity; isNew: boolean } {
    return this.allocate(LabelSetClass.of(cidrIdentityLabels(prefix)));
  }

  /**
   * Drops one reference. Returns true when the identity was freed. Releasing a reserved identity is
   * a no-op (false); releasing an unknown or unclaimed identity throws.
   */
  release(idOrLabels: number | LabelSet): boolean {
    const slot =
      typeof idOrLabels === 'number' ? this.#byId.get(idOrLabels) : this.#byLabels.get(idOrLabels.toString());
    if (slot === undefined) {
      if (typeof idOrLabels !== 'number' && this.#reserved.has(idOrLabels.toString())) return false;
      throw new IdentityError(`release of unknown identity ${String(idOrLabels)}`);
    }
    if (slot.identity.scope === 'reserved') return false;
    if (slot.refs === 0)
      throw new IdentityError(`release of unclaimed identity ${slot.identity.id}`, {
        code: 'failed-precondition',
      });
    slot.refs--;
    if (slot.refs > 0) return false;
    this.#byId.delete(slot.identity.id);
    this.#byLabels.delete(slot.identity.labels.toString());
    this.#emit([{ type: 'removed', identity: slot.identity }]);
    return true;
  }

  /**
   * Registers a listener. With `replay`, the listener first receives every current identity as an
   * `added` batch. Returns an unsubscribe function.
   */
  subscribe(listener: IdentityListener, opts: { replay?: boolean } = {}): () => void {
    this.#listeners.add(listener);
    if (opts.replay) {
      listener(this.all().map((identity) => ({ type: 'added' as const, identity })));
    }
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** The numbering to persist: every non-reserved identity's number and labels, no reference counts. */
  export(): IdentityState {
    return {
      version: 2,
      clusterId: this.clusterId,
      nextCluster: this.#nextCluster,
      nextLocal: this.#nextLocal,
      identities: [...this.#byId.values()]
        .filter((s) => s.identity.scope !== 'reserved')
        .sort((a, b) => a.identity.id - b.identity.id)
        .map((s) => ({ id: s.identity.id, labels: s.identity.labels.toStrings() })),
    };
  }

  /**
   * Brings back persisted numbering into this allocator, which must hold no non-reserved
   * identities. Identities keep their numbers but come back unclaimed: owners take their references
   * again with allocate(), then releaseUnclaimed() frees the rest. Reference counts in old (v1)
   * state are ignored. Listeners get one `added` batch. Nothing is applied if the state is invalid.
   */
  restore(state: IdentityState | IdentityStateV1): void {
    const version: unknown = state.version;
    if (version !== 1 && version !== 2)
      throw new IdentityError(`unsupported identity state version ${String(version)}`);
    if (state.clusterId !== this.clusterId) {
      throw new IdentityError(`state is for cluster ID ${state.clusterId}, allocator has ${this.clusterId}`);
    }
    if (this.#byLabels.size > 0)
      throw new IdentityError('restore into a non-empty allocator', { code: 'failed-precondition' });
    const slots: Slot[] = [];
    const ids = new Set<number>();
    const keys = new Set<string>();
    for (const e of state.identities) {
      const labels = LabelSetClass.parse(e.labels);
      const scope = scopeForLabels(labels);
      if (isReservedIdentity(e.id) || (scope === 'local') !== isLocalIdentity(e.id)) {
        throw new IdentityError(`identity ${e.id} does not fit labels ${labels.toString()}`);
      }
      const key = labels.toString();
      if (ids.has(e.id) || keys.has(key)) throw new IdentityError(`duplicate identity ${e.id} in state`);
      ids.add(e.id);
      keys.add(key);
      slots.push({ identity: Object.freeze({ id: e.id, labels, scope }), refs: 0 });
    }
    for (const slot of slots) {
      this.#byId.set(slot.identity.id, slot);
      this.#byLabels.set(slot.identity.labels.toString(), slot);
    }
    this.#nextCluster = state.nextCluster;
    this.#nextLocal = state.nextLocal;
    if (slots.length > 0) this.#emit(slots.map((s) => ({ type: 'added', identity: s.identity })));
  }

  /** @deprecated Same as restore(): identities come back unclaimed, whatever counts the state holds. */
  import(state: IdentityState | IdentityStateV1): void {
    this.restore(state);
  }

  /** Restored identities no owner has claimed since. */
  unclaimed(): Identity[] {
    return [...this.#byLabels.values()].filter((s) => s.refs === 0).map((s) => s.identity);
  }

  /**
   * Frees every restored identity no owner claimed (call once the owners have re-allocated theirs
   * after a restart). Listeners get one `removed` batch. Returns the freed identities.
   */
  releaseUnclaimed(): Identity[] {
    const freed = this.unclaimed().sort((a, b) => a.id - b.id);
    for (const identity of freed) {
      this.#byId.delete(identity.id);
      this.#byLabels.delete(identity.labels.toString());
    }
    if (freed.length > 0) this.#emit(freed.map((identity) => ({ type: 'removed', identity })));
    return freed;
  }

  /** A new allocator with the state's numbering restored (identities unclaimed). */
  static fromState(state: IdentityState | IdentityStateV1): IdentityAllocator {
    const a = new IdentityAllocator({ clusterId: state.clusterId });
    a.restore(state);
    return a;
  }

  // Numbers are handed out by a cursor that moves forward and wraps, so a freed number is not
  // reused immediately (stale conntrack or ipcache entries would otherwise alias a new identity).
  #pickCluster(): number {
    const span = MAX_CLUSTER_LOCAL_ID - MIN_CLUSTER_LOCAL_ID + 1;
    for (let i = 0; i < span; i++) {
      const local = this.#nextCluster;
      this.#nextCluster = local >= MAX_CLUSTER_LOCAL_ID ? MIN_CLUSTER_LOCAL_ID : local + 1;
      const id = makeClusterIdentity(this.clusterId, local);
      if (!this.#byId.has(id)) return id;
    }
    throw new IdentityError('cluster identity space exhausted');
  }

  #pickLocal(): number {
    for (let i = 0; i < MAX_LOCAL_INDEX; i++) {
      const idx = this.#nextLocal;
      this.#nextLocal = idx >= MAX_LOCAL_INDEX ? 1 : idx + 1;
      const id = makeLocalIdentity(idx);
      if (!this.#byId.has(id)) return id;
    }
    throw new IdentityError('local identity space exhausted');
  }

  #emit(events: IdentityEvent[]): void {
    for (const l of [...this.#listeners]) l(events);
  }
}

export { LOCAL_IDENTITY_FLAG };
