/**
 * The cluster key-value store as the agent sees it: one interface over an in-memory backend (single
 * node, tests) and etcd v3 (a cluster). It carries what cluster state needs: reads with revisions,
 * prefix watches that resume from a revision, create-only writes for allocation, conditional
 * deletes, and keys bound to the client's lease so that they vanish with their owner.
 *
 * Keys and values are strings. Keys are stored raw (no encoding), as upstream does with etcd; callers
 * JSON-encode structured values. Binary data, if ever needed, is base64-encoded by its caller.
 *
 * Revisions follow etcd: the store has one revision counter; every write (a put, a delete, a delete of
 * a prefix, a lease expiry) raises it by one and stamps the keys it touched. A watch started "after
 * revision R" first delivers every change made after R (from history), then live changes, so a client
 * that lists at R and watches after R misses nothing, and one that lost its connection resumes from
 * the last revision it saw.
 */

/** One stored key. */
export interface KvPair {
  readonly key: string;
  readonly value: string;
  /** Revision that created the key (unchanged by later puts). */
  readonly createRevision: number;
  /** Revision of the last put of the key. */
  readonly modRevision: number;
  /** Bound to the lease of the client that wrote it: deleted when that client's session ends. */
  readonly leased: boolean;
}

/** A prefix listing and the store revision it was read at (start a watch after it). */
export interface KvList {
  readonly pairs: readonly KvPair[];
  readonly revision: number;
}

export type KvEvent =
  | {
      readonly type: 'put';
      readonly key: string;
      readonly value: string;
      readonly createRevision: number;
      readonly modRevision: number;
    }
  | {
      readonly type: 'delete';
      readonly key: string;
      /** Revision of the deletion. */
      readonly modRevision: number;
    };

/** The changes one store revision made under a watched prefix (a lease expiry may delete many keys). */
export interface KvWatchBatch {
  readonly revision: number;
  readonly events: readonly KvEvent[];
}

export interface KvWatchOptions {
  /**
   * Deliver every change made after this revision first (history), then live changes. Omitted:
   * only changes from now on. A revision older than the store's history fails the watch with
   * KvCompactedError: list again and watch after the new list's revision.
   */
  afterRevision?: number;
}

/**
 * A running watch: iterate it for batches in revision order. Iteration ends when the watch or its
 * store is closed, and throws KvCompactedError when the requested history is gone. A backend that
 * reconnects (etcd) resumes the watch after the last delivered revision by itself.
 */
export interface KvWatch extends AsyncIterable<KvWatchBatch> {
  close(): void;
}

export interface KvPutOptions {
  /**
   * Bind the key to this client's lease: it is deleted when the client closes, dies or loses its
   * lease. A put without it makes the key permanent (as etcd, a put replaces the lease).
   */
  lease?: boolean;
}

/** Condition of a conditional write: every given field must match the stored key. */
export interface KvCondition {
  value?: string;
  modRevision?: number;
}

export interface KvStatus {
  /** False when the store cannot serve requests (no quorum, disconnected, closed). */
  readonly ok: boolean;
  /** One human line, e.g. `memory: ok` or `etcd: 1/1 connected, has-quorum`. */
  readonly line: string;
}

export interface KvStore {
  get(key: string): Promise<KvPair | undefined>;
  /** Every key starting with `prefix`, sorted by key, with the revision they were read at. */
  list(prefix: string): Promise<KvList>;
  /** The store's current revision. */
  revision(): Promise<number>;
  watch(prefix: string, opts?: KvWatchOptions): KvWatch;
  /** Writes a key; returns the revision of the write. */
  put(key: string, value: string, opts?: KvPutOptions): Promise<number>;
  /** Writes a key only if it does not exist (the allocation primitive). Returns whether it wrote. */
  create(key: string, value: string, opts?: KvPutOptions): Promise<boolean>;
  /** Deletes a key if it exists. Returns whether it existed. */
  delete(key: string): Promise<boolean>;
  /** Deletes a key only if it matches `cond`. Returns whether it deleted. */
  deleteIf(key: string, cond: KvCondition): Promise<boolean>;
  /** Deletes every key starting with `prefix`. Returns how many were deleted. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Registers a listener for the loss of this client's lease (it expired while the store could not
   * be reached): keys written with `lease: true` are gone and later leased writes use a new lease.
   * Owners re-publish what they own. Returns an unsubscribe function.
   */
  onLeaseLost(listener: () => void): () => void;
  status(): KvStatus;
  /** Ends this client: its watches end and its leased keys are deleted. */
  close(): Promise<void>;
}
