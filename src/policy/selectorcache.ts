/**
 * Selector cache: every distinct selector (by canonical key) is evaluated once against every
 * identity, then kept up to date incrementally as identities come and go (subscribe it to the
 * IdentityAllocator). Users hold references on selectors; listeners learn which selections changed.
 *
 * The host identity is seen with this node's labels added (`node:<key>=<value>`), as upstream's host
 * identity carries its node's labels: that is what node selectors (`fromNodes`, `toNodes`) match.
 */
import type { Identity, IdentityEvent } from '../identity/index.js';
import { type LabelSet, LabelSource, nodeIdentityLabels, ReservedName } from '../labels/index.js';
import type { Selector } from './selector.js';

export interface SelectionChange {
  readonly selector: Selector;
  readonly added: readonly number[];
  readonly removed: readonly number[];
}

export type SelectionListener = (changes: readonly SelectionChange[]) => void;

interface Entry {
  selector: Selector;
  selections: Set<number>;
  users: number;
}

/** Anything with the allocator's subscribe signature. */
export interface IdentitySource {
  subscribe(listener: (events: readonly IdentityEvent[]) => void, opts?: { replay?: boolean }): () => void;
}

export interface SelectorCacheOptions {
  /** Kubernetes labels of the node this cache serves; given to the host identity (see setNodeLabels). */
  nodeLabels?: Readonly<Record<string, string>>;
}

function isHost(labels: LabelSet): boolean {
  return labels.has(ReservedName.Host, LabelSource.Reserved);
}

export class SelectorCache {
  readonly #identities = new Map<number, LabelSet>();
  #nodeLabels: Readonly<Record<string, string>>;
  readonly #selectors = new Map<string, Entry>();
  readonly #listeners = new Set<SelectionListener>();
  /** Selections of selectors nobody holds yet, evaluated by selections(); valid until identities change. */
  readonly #unheld = new Map<string, Set<number>>();
  #unsubscribe: (() => void) | undefined;

  constructor(opts: SelectorCacheOptions = {}) {
    this.#nodeLabels = { ...(opts.nodeLabels ?? {}) };
  }

  /**
   * Sets this node's labels: the host identity is re-evaluated against every selector and listeners
   * learn the selections that changed (a node relabelled in or out of a `fromNodes` selector).
   */
  setNodeLabels(nodeLabels: Readonly<Record<string, string>>): void {
    this.#nodeLabels = { ...nodeLabels };
    this.#unheld.clear();
    const changes: SelectionChange[] = [];
    for (const [id, labels] of this.#identities) {
      if (!isHost(labels)) continue;
      const relabelled = this.#withNodeLabels(labels.filter((l) => l.source !== LabelSource.Node));
      this.#identities.set(id, relabelled);
      for (const e of this.#selectors.values()) {
        const was = e.selections.has(id);
        const is = e.selector.matches(relabelled);
        if (was === is) continue;
        if (is) e.selections.add(id);
        else e.selections.delete(id);
        changes.push({ selector: e.selector, added: is ? [id] : [], removed: is ? [] : [id] });
      }
    }
    if (changes.length > 0) for (const l of [...this.#listeners]) l(changes);
  }

  /** The host identity's labels plus the node's; a node label never replaces a label the identity has. */
  #withNodeLabels(labels: LabelSet): LabelSet {
    if (!isHost(labels)) return labels;
    return labels.merge(nodeIdentityLabels(this.#nodeLabels).filter((l) => labels.get(l.key) === undefined));
  }

  /** Follows an identity source (replaying its current identities). */
  attach(source: IdentitySource): void {
    this.#unsubscribe?.();
    this.#unsubscribe = source.subscribe((events) => this.applyIdentityEvents(events), { replay: true });
  }

  detach(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** The labels selectors see for an identity (the host's include the node's labels). */
  identityLabels(id: number): LabelSet | undefined {
    return this.#identities.get(id);
  }

  identities(): ReadonlyMap<number, LabelSet> {
    return this.#identities;
  }

  /** Applies identity additions/removals; notifies listeners of the selections that changed. */
  applyIdentityEvents(events: readonly IdentityEvent[]): void {
    this.#unheld.clear();
    const changes = new Map<string, { selector: Selector; added: number[]; removed: number[] }>();
    const note = (e: Entry, id: number, added: boolean) => {
      let c = changes.get(e.selector.key);
      if (c === undefined) {
        c = { selector: e.selector, added: [], removed: [] };
        changes.set(e.selector.key, c);
      }
      (added ? c.added : c.removed).push(id);
    };
    for (const ev of events) {
      const { id } = ev.identity;
      if (ev.type === 'added') {
        const labels = this.#withNodeLabels(ev.identity.labels);
        this.#identities.set(id, labels);
        for (const e of this.#selectors.values()) {
          if (!e.selections.has(id) && e.selector.matches(labels)) {
            e.selections.add(id);
            note(e, id, true);
          }
        }
      } else {
        this.#identities.delete(id);
        for (const e of this.#selectors.values()) {
          if (e.selections.delete(id)) note(e, id, false);
        }
      }
    }
    if (changes.size > 0) {
      const list = [...changes.values()];
      for (const l of [...this.#listeners]) l(list);
    }
  }

  /** Convenience for tests and callers without an allocator. */
  addIdentity(identity: Identity): void {
    this.applyIdentityEvents([{ type: 'added', identity }]);
  }

  removeIdentity(identity: Identity): void {
    this.applyIdentityEvents([{ type: 'removed', identity }]);
  }

  /** Takes a reference on a selector (evaluating it on first use) and returns its selections. */
  add(selector: Selector): ReadonlySet<number> {
    let e = this.#selectors.get(selector.key);
    if (e === undefined) {
      let selections = this.#unheld.get(selector.key);
      this.#unheld.delete(selector.key);
      if (selections === undefined) {
        selections = new Set<number>();
        for (const [id, labels] of this.#identities) if (selector.matches(labels)) selections.add(id);
      }
      e = { selector, selections, users: 0 };
      this.#selectors.set(selector.key, e);
    }
    e.users++;
    return e.selections;
  }

  /** Drops a reference; the selector is forgotten when unused. */
  remove(selector: Selector): void {
    const e = this.#selectors.get(selector.key);
    if (e === undefined) return;
    e.users--;
    if (e.users <= 0) this.#selectors.delete(selector.key);
  }

  /** Current selections of a cached selector (evaluated on the fly, uncached, if not held). */
  selections(selector: Selector): ReadonlySet<number> {
    const e = this.#selectors.get(selector.key);
    if (e !== undefined) return e.selections;
    let out = this.#unheld.get(selector.key);
    if (out === undefined) {
      out = new Set<number>();
      for (const [id, labels] of this.#identities) if (selector.matches(labels)) out.add(id);
      if (this.#unheld.size > 10_000) this.#unheld.clear();
      this.#unheld.set(selector.key, out);
    }
    return out;
  }

  get size(): number {
    return this.#selectors.size;
  }

  subscribe(listener: SelectionListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }
}
