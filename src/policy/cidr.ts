/**
 * Keeps CIDR identities in step with the prefixes policies reference. The agent calls `sync()` with
 * `PolicyRepository.cidrPrefixes()` after policy changes and applies the returned ipcache changes
 * (prefix → identity upserts, prefix deletes). Identities are allocated and released through the
 * IdentityAllocator, so the selector cache sees them and CIDR selectors pick them up.
 */
import type { IdentityAllocator } from '../identity/index.js';
import { formatPrefix, type Prefix } from '../labels/index.js';

export interface IpcacheChanges {
  readonly upserts: readonly { prefix: Prefix; identity: number }[];
  readonly deletes: readonly Prefix[];
}

export class CidrIdentitySync {
  readonly #held = new Map<string, { prefix: Prefix; identity: number }>();
  /** The list last synced: PolicyRepository.cidrPrefixes() returns the same array while nothing changed. */
  #last: readonly Prefix[] | undefined;

  constructor(readonly allocator: IdentityAllocator) {}

  sync(prefixes: readonly Prefix[]): IpcacheChanges {
    if (prefixes === this.#last) return { upserts: [], deletes: [] };
    const want = new Map(prefixes.map((p) => [formatPrefix(p), p]));
    const upserts: { prefix: Prefix; identity: number }[] = [];
    const deletes: Prefix[] = [];
    for (const [k, p] of want) {
      if (this.#held.has(k)) continue;
      const { identity } = this.allocator.allocateCidr(p);
      this.#held.set(k, { prefix: p, identity: identity.id });
      upserts.push({ prefix: p, identity: identity.id });
    }
    for (const [k, h] of this.#held) {
      if (want.has(k)) continue;
      this.allocator.release(h.identity);
      this.#held.delete(k);
      deletes.push(h.prefix);
    }
    this.#last = prefixes;
    return { upserts, deletes };
  }

  /** Current prefix → identity mapping held by this sync. */
  entries(): { prefix: Prefix; identity: number }[] {
    return [...this.#held.values()];
  }
}
