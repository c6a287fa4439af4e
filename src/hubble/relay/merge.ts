/**
 * Merging the nodes' flow streams into one, ordered by time (pure; no I/O).
 *
 * Each node sends its flows oldest first, so while every open stream has something queued, the
 * oldest queued item is the oldest there will ever be: it goes out at once (a k-way merge). A
 * finished stream no longer holds the others back. When following, a quiet node would hold
 * everything back, so as upstream's relay does, items also go out once they are older than the
 * sort window (by flow time, or by how long they waited here), and the oldest goes out whenever
 * more than `maxLen` are queued. Nothing is ever dropped: "going out" only decides the order.
 */

export interface Timed {
  sec: number;
  nsec: number;
}

interface Entry<T> {
  item: T;
  source: string;
  seq: number;
  /** When it arrived here (ms, the caller's clock). */
  arrivedMs: number;
}

export interface MergerOptions {
  /** Queue bound: beyond it the oldest item goes out (default: none). */
  maxLen?: number;
  /** Follow mode: items older than this window (ms) go out without waiting for every stream. */
  windowMs?: number;
}

function before<T extends Timed>(a: Entry<T>, b: Entry<T>): boolean {
  if (a.item.sec !== b.item.sec) return a.item.sec < b.item.sec;
  if (a.item.nsec !== b.item.nsec) return a.item.nsec < b.item.nsec;
  return a.seq < b.seq;
}

export class FlowMerger<T extends Timed> {
  readonly #heap: Entry<T>[] = [];
  /** Queued items per open source. */
  readonly #open = new Map<string, number>();
  /** Queued items of sources that finished. */
  readonly #closed = new Map<string, number>();
  #emptyOpen = 0;
  #seq = 0;
  readonly #maxLen: number;
  readonly #windowMs: number | undefined;

  constructor(opts: MergerOptions = {}) {
    this.#maxLen = opts.maxLen ?? Number.POSITIVE_INFINITY;
    this.#windowMs = opts.windowMs;
  }

  get size(): number {
    return this.#heap.length;
  }

  /** Items queued from `source`. */
  queued(source: string): number {
    return this.#open.get(source) ?? this.#closed.get(source) ?? 0;
  }

  /** Open sources (added and not ended). */
  get openSources(): string[] {
    return [...this.#open.keys()];
  }

  /** A stream the merge waits for from now on (a no-op for one already open). */
  addSource(source: string): void {
    if (this.#open.has(source)) return;
    const queued = this.#closed.get(source) ?? 0;
    this.#closed.delete(source);
    this.#open.set(source, queued);
    if (queued === 0) this.#emptyOpen++;
  }

  /** The stream finished: the merge no longer waits for it. */
  end(source: string): void {
    const n = this.#open.get(source);
    if (n === undefined) return;
    this.#open.delete(source);
    if (n === 0) this.#emptyOpen--;
    else this.#closed.set(source, n);
  }

  push(source: string, item: T, nowMs: number): void {
    if (!this.#open.has(source)) this.addSource(source);
    const n = this.#open.get(source)!;
    if (n === 0) this.#emptyOpen--;
    this.#open.set(source, n + 1);
    const heap = this.#heap;
    heap.push({ item, source, seq: this.#seq++, arrivedMs: nowMs });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** Whether the oldest queued item may go out now. */
  #headReady(nowMs: number): boolean {
    const head = this.#heap[0];
    if (!head) return false;
    if (this.#emptyOpen === 0 || this.#heap.length > this.#maxLen) return true;
    if (this.#windowMs === undefined) return false;
    const cutoff = nowMs - this.#windowMs;
    return head.arrivedMs <= cutoff || head.item.sec * 1000 + head.item.nsec / 1e6 <= cutoff;
  }

  /** Takes the items that may go out now, oldest first. */
  ready(nowMs: number, limit = Number.POSITIVE_INFINITY): T[] {
    const out: T[] = [];
    while (out.length < limit && this.#headReady(nowMs)) out.push(this.#pop());
    return out;
  }

  /** Takes everything queued, oldest first (the streams are over). */
  drain(): T[] {
    const out: T[] = [];
    while (this.#heap.length > 0) out.push(this.#pop());
    return out;
  }

  #pop(): T {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    const open = this.#open.get(top.source);
    if (open !== undefined) {
      this.#open.set(top.source, open - 1);
      if (open === 1) this.#emptyOpen++;
    } else {
      const closed = this.#closed.get(top.source)! - 1;
      if (closed === 0) this.#closed.delete(top.source);
      else this.#closed.set(top.source, closed);
    }
    return top.item;
  }
}
