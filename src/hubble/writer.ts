/**
 * Writing a server stream's messages without waiting for each to be flushed.
 *
 * grpc-js's server stream (a Writable) hands HTTP/2 one message at a time and takes the next only
 * once the previous one is flushed, which caps a stream at about one message per turn of the event
 * loop (a few thousand flows a second). StreamWriter keeps up to `high` messages in flight on the
 * grpc-js call underneath instead: HTTP/2 keeps their order, its flow control still holds them back
 * from a slow client, and write() answers false (wait for ready()) while `high` are in flight, until
 * no more than `low` are. When that call is not there (another grpc-js), it uses the stream's own
 * write() and 'drain'.
 */
import type * as grpc from '@grpc/grpc-js';

/** The grpc-js call under a server stream. */
interface RawServerCall {
  sendMessage(message: unknown, callback: () => void): void;
}

export class StreamWriter<T> {
  readonly #call: grpc.ServerWritableStream<unknown, T>;
  readonly #raw: RawServerCall | undefined;
  readonly #high: number;
  readonly #low: number;
  #inFlight = 0;
  #blocked = false;
  readonly #waiters = new Set<() => void>();

  constructor(call: grpc.ServerWritableStream<unknown, T>, opts: { high?: number; low?: number } = {}) {
    this.#call = call;
    const raw = (call as unknown as { call?: RawServerCall }).call;
    this.#raw = typeof raw?.sendMessage === 'function' ? raw : undefined;
    this.#high = opts.high ?? 256;
    this.#low = opts.low ?? Math.floor(this.#high / 4);
    call.on('drain', () => this.#unblock());
  }

  /** Messages handed to HTTP/2 and not flushed yet. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Whether the caller should wait for ready() before writing more. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** Queues a message; false when the caller should wait for ready(). */
  write(message: T): boolean {
    if (!this.#raw) {
      if (!this.#call.write(message)) this.#blocked = true;
      return !this.#blocked;
    }
    this.#inFlight++;
    this.#raw.sendMessage(message, () => {
      this.#inFlight--;
      if (this.#blocked && this.#inFlight <= this.#low) this.#unblock();
    });
    if (this.#inFlight >= this.#high) this.#blocked = true;
    return !this.#blocked;
  }

  /** Calls `fn` once the writer takes messages again (at once when it does now). */
  onReady(fn: () => void): void {
    if (!this.#blocked) fn();
    else this.#waiters.add(fn);
  }

  /** Resolves once the writer takes messages again, or the signal aborts. */
  ready(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#blocked || signal?.aborted) return resolve();
      const done = () => {
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  #unblock(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    const ws = [...this.#waiters];
    this.#waiters.clear();
    for (const w of ws) w();
  }
}
