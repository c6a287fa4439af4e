/**
 * Node-local numbering of the load-balancer maps: rev-NAT indexes (u16) for frontends and backend
 * IDs (u32) for backend address:port/protocol. An ID stays with its key while the key lives (the
 * conntrack entries of established connections hold it); a released ID is handed out again only
 * after the rest of the space was tried (next-fit), so a stale conntrack entry does not meet a new
 * owner at once. At start the agent restores the IDs it finds in the pinned maps; restored IDs nobody
 * claims are freed with pruneRestored() once the desired state is complete. Pure.
 */
import { LbError } from './errors.js';

/**
 * Keys by ID as a list indexed by the ID: IDs are handed out from the lowest up, so the list is
 * dense, and writing 100,000 of them costs no hashing (a far ID, restored, makes it sparse: slower,
 * still right).
 */
class KeysById {
  readonly #keys: (string | undefined)[] = [];
  #count = 0;

  get size(): number {
    return this.#count;
  }

  get(id: number): string | undefined {
    return this.#keys[id];
  }

  has(id: number): boolean {
    return this.#keys[id] !== undefined;
  }

  set(id: number, key: string): void {
    if (this.#keys[id] === undefined) this.#count++;
    this.#keys[id] = key;
  }

  delete(id: number): void {
    if (this.#keys[id] === undefined) return;
    this.#keys[id] = undefined;
    this.#count--;
  }
}

export class IdAllocator {
  readonly #byKey = new Map<string, number>();
  readonly #byId = new KeysById();
  /** Restored from the maps, waiting for their key to come back. */
  readonly #restored = new Map<string, number>();
  #next: number;
  /** #next went past the highest ID once: from then on an ID is free only if no key holds it. */
  #wrapped = false;

  constructor(
    readonly what: string,
    readonly min: number,
    readonly max: number,
  ) {
    this.#next = min;
  }

  /** Number of IDs held (claimed or restored). */
  get size(): number {
    return this.#byId.size;
  }

  lookup(key: string): number | undefined {
    const id = this.#byKey.get(key);
    return id !== undefined || this.#restored.size === 0 ? id : this.#restored.get(key);
  }

  keyOf(id: number): string | undefined {
    return this.#byId.get(id);
  }

  /** The key's ID: the one it holds, the one restored for it, or the next free one. */
  acquire(key: string): number {
    const held = this.#byKey.get(key);
    if (held !== undefined) return held;
    const restored = this.#restored.size > 0 ? this.#restored.get(key) : undefined;
    if (restored !== undefined) {
      this.#restored.delete(key);
      this.#byKey.set(key, restored);
      return restored;
    }
    const span = this.max - this.min + 1;
    let id = this.#next;
    // Until the numbering wraps, every ID from #next on is free (restored IDs lie below it).
    for (let tries = 0; this.#wrapped && this.#byId.has(id); tries++) {
      if (tries >= span)
        throw new LbError(`${this.what} IDs exhausted: all ${span} are in use`, {
          code: 'resource-exhausted',
        });
      id = id >= this.max ? this.min : id + 1;
    }
    this.#byKey.set(key, id);
    this.#byId.set(id, key);
    this.#advancePast(id);
    return id;
  }

  /** Frees the key's ID; false when it held none. */
  release(key: string): boolean {
    const id = this.#byKey.get(key) ?? this.#restored.get(key);
    if (id === undefined) return false;
    this.#byKey.delete(key);
    this.#restored.delete(key);
    this.#byId.delete(id);
    return true;
  }

  /**
   * Reserves an ID found in the datapath for `key`, so the key gets it back when it is desired again.
   * New IDs are then given out after the highest restored one, as upstream does.
   */
  restore(key: string, id: number): void {
    if (!Number.isInteger(id) || id < this.min || id > this.max)
      throw new LbError(`${this.what} ID ${id} is out of range ${this.min}-${this.max}`);
    const holder = this.#byId.get(id);
    if (holder !== undefined && holder !== key)
      throw new LbError(`${this.what} ID ${id} is held by ${holder}, cannot restore it for ${key}`, {
        code: 'conflict',
      });
    if (this.lookup(key) !== undefined && this.lookup(key) !== id)
      throw new LbError(`${key} already holds ${this.what} ID ${this.lookup(key)}, cannot restore ${id}`, {
        code: 'conflict',
      });
    if (this.#byKey.has(key)) return;
    this.#restored.set(key, id);
    this.#byId.set(id, key);
    if (id >= this.#next) this.#advancePast(id);
  }

  /** The next ID to try is the one after `id`, the lowest after the highest. */
  #advancePast(id: number): void {
    if (id >= this.max) {
      this.#next = this.min;
      this.#wrapped = true;
    } else this.#next = id + 1;
  }

  /** Frees the restored IDs no key claimed; returns their keys. */
  pruneRestored(): string[] {
    const keys = [...this.#restored.keys()];
    for (const id of this.#restored.values()) this.#byId.delete(id);
    this.#restored.clear();
    return keys;
  }
}

/** rev-NAT indexes: u16, 0 reserved ("no service"). One per frontend (address, port, protocol, scope). */
export class ServiceIdAllocator extends IdAllocator {
  constructor(max = 0xffff) {
    super('rev-NAT', 1, max);
  }
}

/** Backend IDs: u32, 0 reserved. One per backend address:port/protocol, shared by every frontend using it. */
export class BackendIdAllocator extends IdAllocator {
  constructor(max = 0xffffffff) {
    super('backend', 1, max);
  }
}
