/**
 * The identity allocator as the agent uses it: asynchronous, because a cluster-wide allocator asks
 * the kvstore, while lookups stay synchronous, answered from a local cache that follows every
 * identity the cluster knows (the policy engine and Hubble resolve numbers on hot paths).
 *
 * Two implementations: LocalIdentityAllocator (one node; wraps the synchronous IdentityAllocator)
 * and KvstoreIdentityAllocator (identities shared by every node through the kvstore).
 */
import type { LabelSet } from '../labels/index.js';
import type { Identity, IdentityAllocator, IdentityListener } from './allocator.js';

export interface AllocationResult {
  readonly identity: Identity;
  /** The identity did not exist before this call (anywhere in the cluster, for a cluster allocator). */
  readonly isNew: boolean;
}

export interface AsyncIdentityAllocator {
  /**
   * Takes one reference of this node on the identity of `labels`, allocating it if needed. Reserved
   * label sets resolve to their reserved identity (no reference). Waits for the kvstore if needed.
   */
  allocate(labels: LabelSet): Promise<AllocationResult>;
  /**
   * Drops one reference of this node. Returns true when this node's last reference went (the
   * identity is freed, or no longer used by this node in a cluster). Reserved: no-op, false.
   * Unknown or unheld identities throw.
   */
  release(idOrLabels: number | LabelSet): Promise<boolean>;
  /** Every identity known to this node, reserved ones included, ordered by number. */
  all(): Identity[];
  lookup(id: number): Identity | undefined;
  lookupByLabels(labels: LabelSet): Identity | undefined;
  /** This node's references on an identity (0 for reserved, unknown or unheld). */
  refCount(id: number): number;
  /**
   * Listener for identities appearing and disappearing (from this node or, for a cluster allocator,
   * any node). With `replay`, it first receives every current identity as one `added` batch.
   */
  subscribe(listener: IdentityListener, opts?: { replay?: boolean }): () => void;
  /** Stops following the cluster. References stay with the store session (its lease). */
  close(): Promise<void>;
}

/** Single-node identities: the synchronous allocator behind the asynchronous interface. */
export class LocalIdentityAllocator implements AsyncIdentityAllocator {
  /** The synchronous allocator, for restore / releaseUnclaimed / export of its numbering. */
  constructor(readonly allocator: IdentityAllocator) {}

  async allocate(labels: LabelSet): Promise<AllocationResult> {
    return this.allocator.allocate(labels);
  }

  async release(idOrLabels: number | LabelSet): Promise<boolean> {
    return this.allocator.release(idOrLabels);
  }

  all(): Identity[] {
    return this.allocator.all();
  }

  lookup(id: number): Identity | undefined {
    return this.allocator.lookup(id);
  }

  lookupByLabels(labels: LabelSet): Identity | undefined {
    return this.allocator.lookupByLabels(labels);
  }

  refCount(id: number): number {
    return this.allocator.refCount(id);
  }

  subscribe(listener: IdentityListener, opts: { replay?: boolean } = {}): () => void {
    return this.allocator.subscribe(listener, opts);
  }

  async close(): Promise<void> {}
}
