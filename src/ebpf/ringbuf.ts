/**
 * Reader for BPF_MAP_TYPE_RINGBUF. The consumer page is mapped read-write, the producer page and
 * the data area read-only; the kernel maps the data area twice back to back, so a record that
 * wraps around the end is still contiguous and is handed out as one zero-copy view.
 * Wake-ups come from epoll on the map fd, waited for on a worker thread.
 */
import { writeSync } from 'node:fs';
import { EbpfError } from './errors.js';
import type { BpfMap } from './map.js';
import { MapType } from './sys/constants.js';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EPOLLIN,
  epollAdd,
  epollCreate,
  epollWaitAsync,
  eventfd,
  MAP_SHARED,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
  pageSize,
  close as sysClose,
  view,
} from './sys/libc.js';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const HDR = 8;

export interface RingBufStats {
  /** Records handed to the reader. */
  records: number;
  /** Records the producer reserved and then discarded. */
  discarded: number;
  bytes: number;
}

export class RingBufReader implements AsyncIterable<Uint8Array>, Disposable {
  readonly size: number;
  readonly stats: RingBufStats = { records: 0, discarded: 0, bytes: 0 };
  private readonly consPtr: unknown;
  private readonly prodPtr: unknown;
  private readonly cons: BigUint64Array;
  private readonly prod: BigUint64Array;
  private readonly hdr: Uint32Array;
  private readonly data: Uint8Array;
  private readonly mask: number;
  private readonly epfd: number;
  private readonly wakefd: number;
  private readonly events = Buffer.alloc(12 * 2);
  private closed = false;
  private consumer: number;
  /** Position after the last record handed out by the async iterator (may be ahead of `consumer`). */
  private readPos = 0;

  constructor(readonly map: BpfMap) {
    if (map.type !== MapType.RINGBUF) throw new EbpfError(`map ${map.name} is not a ring buffer`);
    this.size = map.maxEntries;
    this.mask = this.size - 1;
    this.consPtr = mmap(pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd.value, 0);
    this.prodPtr = mmap(pageSize + 2 * this.size, PROT_READ, MAP_SHARED, map.fd.value, pageSize);
    this.cons = new BigUint64Array(view(this.consPtr, pageSize), 0, 1);
    const prodBuf = view(this.prodPtr, pageSize + 2 * this.size);
    this.prod = new BigUint64Array(prodBuf, 0, 1);
    this.data = new Uint8Array(prodBuf, pageSize, 2 * this.size);
    // Record headers are 8-byte aligned, so a Uint32Array over the data reads them directly.
    this.hdr = new Uint32Array(prodBuf, pageSize, (2 * this.size) / 4);
    this.consumer = Number(this.cons[0]);
    this.epfd = epollCreate();
    this.wakefd = eventfd(EFD_CLOEXEC | EFD_NONBLOCK);
    epollAdd(this.epfd, map.fd.value, EPOLLIN, 0);
    epollAdd(this.epfd, this.wakefd, EPOLLIN, 1);
  }

  /** Bytes written by the producer and not yet handed to the reader. */
  pending(): number {
    return Number(this.prod[0]) - Math.max(this.consumer, this.readPos);
  }

  /**
   * Hands every available record to `cb` (views valid only during the call), up to `max`.
   * Returns the number of records read. Never blocks.
   */
  poll(cb: (record: Uint8Array) => void, max = Number.POSITIVE_INFINITY): number {
    let n = 0;
    const cons = this.#scan(this.consumer, max, (rec, end) => {
      this.stats.records++;
      this.stats.bytes += rec.length;
      n++;
      cb(rec);
      // Publish progress now and then so the producer regains space during long drains.
      if ((n & 63) === 0) this.commit(end);
    });
    this.commit(cons);
    return n;
  }

  /**
   * Walks the records written since `cons` without releasing them: calls `visit` with each
   * submitted record and the position after it; discarded records are counted and skipped. Stops
   * at the producer position, at a record still being written, or after `max` records. Returns
   * the position reached.
   */
  #scan(cons: number, max: number, visit: (record: Uint8Array, end: number) => void): number {
    let prod = Number(this.prod[0]);
    let n = 0;
    while (n < max) {
      if (cons >= prod) {
        prod = Number(this.prod[0]);
        if (cons >= prod) break;
      }
      const off = cons & this.mask;
      const h = this.hdr[off >>> 2]!;
      if (h & BUSY) break; // producer still writing this record
      const len = h & 0x3fffffff;
      cons += (len + HDR + 7) & ~7;
      if (h & DISCARD) this.stats.discarded++;
      else {
        n++;
        visit(this.data.subarray(off + HDR, off + HDR + len), cons);
      }
    }
    return cons;
  }

  /** Waits until data is available, the timeout passes, or the reader is closed. */
  async wait(timeoutMs = -1): Promise<boolean> {
    if (this.pending() > 0) return true;
    if (this.closed) return false;
    await epollWaitAsync(this.epfd, this.events, 2, timeoutMs);
    return !this.closed && this.pending() > 0;
  }

  /**
   * Async iteration over records. Each yielded view is valid until the loop asks for the next
   * record (its space is released then, or when the loop exits), so decode or copy in the body.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    let handed = this.consumer; // end of the last record handed out
    try {
      while (!this.closed) {
        // Peek a batch without releasing; release once the consumer has seen it.
        const batch: { rec: Uint8Array; end: number }[] = [];
        const cons = this.#scan(this.consumer, 256, (rec, end) => batch.push({ rec, end }));
        if (cons === this.consumer) {
          await this.wait(1000);
          continue;
        }
        for (const { rec, end } of batch) {
          this.stats.records++;
          this.stats.bytes += rec.length;
          this.readPos = end;
          handed = end;
          yield rec;
        }
        this.commit(cons);
        handed = cons;
      }
    } finally {
      if (!this.closed) this.commit(handed);
    }
  }

  /** Stops iteration and waiting; unmaps the ring. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    try {
      writeSync(this.wakefd, one);
    } catch {
      // already woken
    }
    // Give a pending epoll_wait on the worker a moment to return before closing its fds.
    setTimeout(() => {
      sysClose(this.epfd);
      sysClose(this.wakefd);
      munmap(this.consPtr, pageSize);
      munmap(this.prodPtr, pageSize + 2 * this.size);
    }, 50).unref();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private commit(cons: number): void {
    if (cons !== this.consumer) {
      this.consumer = cons;
      this.cons[0] = BigInt(cons);
    }
  }
}
