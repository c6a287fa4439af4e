/**
 * The flow ring: a bounded buffer of the most recent Hubble events (flows and
 * loss notices), like upstream's container.Ring. The producer never waits:
 * writing overwrites the oldest entry. Followers keep only a cursor (a sequence
 * number); a follower that falls more than `capacity` events behind learns how
 * many it missed through a HUBBLE_RING_BUFFER LostEvent and resumes at the
 * oldest entry still held. Memory is bounded by the capacity alone.
 */
import type { HubbleEvent } from './types.js';

/** Upstream's default ring size (hubble-event-buffer-capacity): 2^12 - 1. */
export const DEFAULT_RING_CAPACITY = 4095;

export interface FollowOptions {
  /** Sequence number to start at (default: the next event written). */
  from?: number;
  /** Ends the iteration (also while it is waiting for new events). */
  signal?: AbortSignal;
}

export class FlowRing {
  private readonly buf: (HubbleEvent | undefined)[];
  private seq = 0;
  private waiters: (() => void)[] = [];
  /** Events followers missed because the ring overwrote them first (sum over followers). */
  followerLost = 0;

  constructor(readonly capacity: number = DEFAULT_RING_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`ring capacity must be ≥ 1, got ${capacity}`);
    this.buf = new Array(capacity);
  }

  /** Events held now. */
  get size(): number {
    return Math.min(this.seq, this.capacity);
  }

  /** Events ever written (the next sequence number). */
  get written(): number {
    return this.seq;
  }

  /** Sequence number of the oldest event still held. */
  get oldestSeq(): number {
    return this.seq > this.capacity ? this.seq - this.capacity : 0;
  }

  /** Append; O(1), never blocks. Wakes waiting followers. */
  push(ev: HubbleEvent): void {
    this.buf[this.seq % this.capacity] = ev;
    this.seq++;
    if (this.waiters.length > 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const wake of w) wake();
    }
  }

  /** The event with this sequence number, if still held. */
  at(seq: number): HubbleEvent | undefined {
    if (seq < this.oldestSeq || seq >= this.seq) return undefined;
    return this.buf[seq % this.capacity];
  }

  /** Held events, newest first. */
  *newestFirst(): IterableIterator<HubbleEvent> {
    const oldest = this.oldestSeq;
    for (let s = this.seq - 1; s >= oldest; s--) yield this.buf[s % this.capacity]!;
  }

  /** Held events, oldest first. */
  *oldestFirst(): IterableIterator<HubbleEvent> {
    for (let s = this.oldestSeq; s < this.seq; s++) yield this.buf[s % this.capacity]!;
  }

  /** Resolves when something is written or the signal aborts. */
  waitForWrite(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const onAbort = () => resolve();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /**
   * Live events from `from` on. The caller's pace never slows the producer:
   * when the cursor has been overwritten, a HUBBLE_RING_BUFFER loss notice is
   * yielded first and reading resumes at the oldest held event.
   */
  async *follow(opts: FollowOptions = {}): AsyncGenerator<HubbleEvent, void, undefined> {
    let cursor = opts.from ?? this.seq;
    const signal = opts.signal;
    while (!signal?.aborted) {
      if (cursor >= this.seq) {
        await this.waitForWrite(signal);
        continue;
      }
      const oldest = this.oldestSeq;
      if (cursor < oldest) {
        const missed = oldest - cursor;
        this.followerLost += missed;
        cursor = oldest;
        const now = new Date();
        const ms = now.getTime();
        yield {
          timeMs: ms,
          sec: Math.floor(ms / 1000),
          nsec: (ms % 1000) * 1e6,
          lost: {
            source: 'HUBBLE_RING_BUFFER',
            num_events_lost: missed,
            first: now.toISOString(),
            last: now.toISOString(),
          },
        };
        continue;
      }
      const ev = this.buf[cursor % this.capacity]!;
      cursor++;
      yield ev;
    }
  }
}
