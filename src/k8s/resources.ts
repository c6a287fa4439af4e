/**
 * Resource sources: the cluster objects an agent acts on (pods, namespaces, policies), each as a
 * keyed collection that can be listed and watched, whoever feeds it. Today the lab feeds the
 * agent's REST routes, which write into a ResourceStore; a kvstore or Kubernetes API watcher can
 * feed the same store later without changing its readers.
 *
 * Keys are `namespace/name` for namespaced objects, `name` for cluster-scoped ones and
 * `Kind/namespace/name` (or `Kind/name`) for policies, whose kinds share one store. A watcher first
 * gets every current object (replay), then each change, in batches delivered synchronously after
 * the store changed. Stored objects are copies (or objects handed over: `upsert(..., { handOver })`),
 * never mutated by the store; readers must not mutate them either, so they are shared without
 * copying (events, export).
 */
import { CiliumTsError } from '../common/errors.js';

/** What the agent needs of a pod: identity labels, service account, container ports by name. */
export interface PodResource {
  labels: Record<string, string>;
  serviceAccount?: string;
  namedPorts: Record<string, { port: number; protocol: string }>;
  /** The node the pod runs on, when the feeder knows it. */
  nodeName?: string;
}

export interface NamespaceResource {
  labels: Record<string, string>;
}

/** A policy document as it was given, with the reference it is stored under. */
export interface PolicyResource {
  ref: { kind: string; namespace: string; name: string };
  doc: Record<string, unknown>;
}

export type ResourceEvent<T> =
  | { readonly type: 'upsert'; readonly key: string; readonly object: T; readonly before?: T }
  | { readonly type: 'delete'; readonly key: string; readonly object: T };

export type ResourceHandler<T> = (events: readonly ResourceEvent<T>[]) => void;

export interface Resource<T> {
  readonly kind: string;
  get(key: string): T | undefined;
  /** Every object, sorted by key. */
  list(): { key: string; object: T }[];
  /**
   * Calls `handler` with every current object as one batch of upserts (unless `replay: false`),
   * then with each change. Returns an unsubscribe function.
   */
  watch(handler: ResourceHandler<T>, opts?: { replay?: boolean }): () => void;
  /** Resolves once the feeder has delivered a complete view (markSynced or import). */
  synced(): Promise<void>;
}

export class ResourceError extends CiliumTsError {
  override readonly code = 'invalid-argument';
}

export type KeyShape = 'namespaced' | 'cluster' | 'policy';

const SHAPES: Record<KeyShape, { parts: number[]; what: string }> = {
  namespaced: { parts: [2], what: 'namespace/name' },
  cluster: { parts: [1], what: 'name' },
  policy: { parts: [2, 3], what: 'Kind/namespace/name or Kind/name' },
};

export function namespacedKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function policyKey(ref: { kind: string; namespace: string; name: string }): string {
  return ref.namespace ? `${ref.kind}/${ref.namespace}/${ref.name}` : `${ref.kind}/${ref.name}`;
}

export function splitNamespacedKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** A Resource fed by its owner through upsert/delete (or replace/import of a whole snapshot). */
export class ResourceStore<T> implements Resource<T> {
  readonly #objects = new Map<string, T>();
  /** `"key":object` JSON of the stored objects, made on the first exportJson() after each change. */
  readonly #json = new Map<string, Uint8Array>();
  readonly #handlers = new Set<ResourceHandler<T>>();
  readonly #shape: KeyShape;
  #markSynced!: () => void;
  readonly #synced = new Promise<void>((r) => {
    this.#markSynced = r;
  });

  constructor(
    readonly kind: string,
    shape: KeyShape,
  ) {
    this.#shape = shape;
  }

  get size(): number {
    return this.#objects.size;
  }

  get(key: string): T | undefined {
    return this.#objects.get(key);
  }

  list(): { key: string; object: T }[] {
    return [...this.#objects]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, object]) => ({ key, object }));
  }

  watch(handler: ResourceHandler<T>, opts: { replay?: boolean } = {}): () => void {
    this.#handlers.add(handler);
    if (opts.replay ?? true) {
      const current = this.list().map(({ key, object }) => ({ type: 'upsert' as const, key, object }));
      if (current.length) handler(current);
    }
    return () => {
      this.#handlers.delete(handler);
    };
  }

  synced(): Promise<void> {
    return this.#synced;
  }

  /** The feeder has delivered a complete view (e.g. after its initial listing). */
  markSynced(): void {
    this.#markSynced();
  }

  /**
   * Sets an object. Returns false (and tells nobody) if it equals the stored one. The store keeps a
   * copy, unless `handOver`: the caller gives the object away (a request body it just parsed) and
   * never touches it again, so it is stored as it is.
   */
  upsert(key: string, object: T, opts: { handOver?: boolean } = {}): boolean {
    this.#checkKey(key);
    const event = this.#set(key, object, opts.handOver === true);
    if (event) this.#emit([event]);
    return event !== undefined;
  }

  /** Deletes an object. Returns whether it existed. */
  delete(key: string): boolean {
    const object = this.#objects.get(key);
    if (object === undefined) return false;
    this.#objects.delete(key);
    this.#json.delete(key);
    this.#emit([{ type: 'delete', key, object }]);
    return true;
  }

  /**
   * Makes the store hold exactly `snapshot` (a feeder's fresh listing): watchers get the
   * difference as one batch. Every key is checked first; nothing is applied if one is bad.
   */
  replace(snapshot: Readonly<Record<string, T>>, opts: { handOver?: boolean } = {}): void {
    this.checkKeys(snapshot);
    const events: ResourceEvent<T>[] = [];
    for (const [key, object] of Object.entries(snapshot)) {
      const e = this.#set(key, object, opts.handOver === true);
      if (e) events.push(e);
    }
    for (const [key, object] of [...this.#objects]) {
      if (Object.hasOwn(snapshot, key)) continue;
      this.#objects.delete(key);
      this.#json.delete(key);
      events.push({ type: 'delete', key, object });
    }
    this.#emit(events);
  }

  /** Throws ResourceError naming the first key of `snapshot` this store cannot hold. */
  checkKeys(snapshot: Readonly<Record<string, unknown>>): void {
    for (const key of Object.keys(snapshot)) this.#checkKey(key);
  }

  /** Every object by key, for persistence (the stored objects themselves: read only). */
  export(): Record<string, T> {
    return Object.fromEntries(this.list().map(({ key, object }) => [key, object]));
  }

  /**
   * export() as JSON, in pieces: each `"key":object` is serialized once while the object is stored
   * (objects are immutable), so saving a large store after one change costs one object.
   */
  exportJson(): Uint8Array[] {
    const out: Uint8Array[] = [OPEN];
    for (const [key, object] of this.#objects) {
      let json = this.#json.get(key);
      if (json === undefined) {
        // Its own exact-size buffer: a Buffer.from view would keep a whole 8 KiB pool slab alive.
        json = UTF8.encode(`${JSON.stringify(key)}:${JSON.stringify(object)}`);
        this.#json.set(key, json);
      }
      if (out.length > 1) out.push(COMMA);
      out.push(json);
    }
    out.push(CLOSE);
    return out;
  }

  /** Restores an exported snapshot (as replace) and counts as a complete view. */
  import(snapshot: Readonly<Record<string, T>>, opts: { handOver?: boolean } = {}): void {
    this.replace(snapshot, opts);
    this.markSynced();
  }

  #set(key: string, object: T, handOver: boolean): ResourceEvent<T> | undefined {
    const before = this.#objects.get(key);
    if (before !== undefined && jsonEqual(before, object)) return undefined;
    const copy = handOver ? object : structuredClone(object);
    this.#objects.set(key, copy);
    this.#json.delete(key);
    return before === undefined
      ? { type: 'upsert', key, object: copy }
      : { type: 'upsert', key, object: copy, before };
  }

  #checkKey(key: string): void {
    const shape = SHAPES[this.#shape];
    const parts = typeof key === 'string' ? key.split('/') : [];
    if (!shape.parts.includes(parts.length) || parts.some((p) => p === '')) {
      throw new ResourceError(`${this.kind} key ${JSON.stringify(key)}: must be ${shape.what}`, {
        field: 'key',
      });
    }
  }

  #emit(events: ResourceEvent<T>[]): void {
    if (events.length === 0) return;
    for (const h of [...this.#handlers]) h(events);
  }
}

const UTF8 = new TextEncoder();
const OPEN = Buffer.from('{');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from('}');

/** Equality of JSON-like values (object key order does not matter). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(rb, k) && jsonEqual(ra[k], rb[k]));
}

/** Snapshot of every store, for the agent's state file. */
/** A Service or EndpointSlice as the orchestrator gave it (a Kubernetes object, validated by its reader). */
export type ObjectResource = Record<string, unknown>;

export interface ClusterResourcesState {
  version: 1;
  pods: Record<string, PodResource>;
  namespaces: Record<string, NamespaceResource>;
  policies: Record<string, PolicyResource>;
  services?: Record<string, ObjectResource>;
  endpointSlices?: Record<string, ObjectResource>;
}

/**
 * The resources one agent follows. Services and nodes join as further stores when the agent
 * handles them.
 */
export class ClusterResources {
  readonly pods = new ResourceStore<PodResource>('Pod', 'namespaced');
  readonly namespaces = new ResourceStore<NamespaceResource>('Namespace', 'cluster');
  readonly policies = new ResourceStore<PolicyResource>('Policy', 'policy');
  readonly services = new ResourceStore<ObjectResource>('Service', 'namespaced');
  readonly endpointSlices = new ResourceStore<ObjectResource>('EndpointSlice', 'namespaced');

  export(): ClusterResourcesState {
    return {
      version: 1,
      pods: this.pods.export(),
      namespaces: this.namespaces.export(),
      policies: this.policies.export(),
      services: this.services.export(),
      endpointSlices: this.endpointSlices.export(),
    };
  }

  /** export() as JSON in pieces (the stores' cached object texts, not joined). */
  exportJson(): Uint8Array[] {
    const field = (name: string) => Buffer.from(`"${name}":`);
    return [
      Buffer.from('{"version":1,'),
      field('pods'),
      ...this.pods.exportJson(),
      COMMA,
      field('namespaces'),
      ...this.namespaces.exportJson(),
      COMMA,
      field('policies'),
      ...this.policies.exportJson(),
      COMMA,
      field('services'),
      ...this.services.exportJson(),
      COMMA,
      field('endpointSlices'),
      ...this.endpointSlices.exportJson(),
      Buffer.from('}\n'),
    ];
  }

  /**
   * Restores a snapshot into every store; nothing is applied if any part is invalid. `handOver`:
   * the objects are given away (a state file just parsed), stored without copies.
   */
  import(state: ClusterResourcesState, opts: { handOver?: boolean } = {}): void {
    const version: unknown = state.version;
    if (version !== 1)
      throw new ResourceError(`unsupported resources state version ${String(version)}`, { field: 'version' });
    this.pods.checkKeys(state.pods);
    this.namespaces.checkKeys(state.namespaces);
    this.policies.checkKeys(state.policies);
    this.services.checkKeys(state.services ?? {});
    this.endpointSlices.checkKeys(state.endpointSlices ?? {});
    this.pods.import(state.pods, opts);
    this.namespaces.import(state.namespaces, opts);
    this.policies.import(state.policies, opts);
    this.services.import(state.services ?? {}, opts);
    this.endpointSlices.import(state.endpointSlices ?? {}, opts);
  }
}
