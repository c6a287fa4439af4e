/**
 * An unbounded async queue that is its own async iterator: producers push synchronously, one
 * consumer awaits. Used for watch streams, whose producer (a store write) must never block.
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  #items: T[] = [];
  #waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  #ended = false;
  #error: unknown;
  #hasError = false;

  get ended(): boolean {
    return this.#ended;
  }

  push(item: T): void {
    if (this.#ended) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve({ value: item, done: false });
    } else this.#items.push(item);
  }

  /** Ends the stream after the queued items. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#waiter && this.#items.length === 0) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  /** Ends the stream with an error, thrown to the consumer after the queued items. */
  fail(err: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#waiter) {
      // A waiting consumer means nothing is queued: it gets the error now.
      const w = this.#waiter;
      this.#waiter = undefined;
      w.reject(err);
      return;
    }
    this.#error = err;
    this.#hasError = true;
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.#ended) {
      if (this.#hasError) {
        this.#hasError = false;
        return Promise.reject(this.#error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Called by `break` in a for-await loop: drops what is queued and ends the stream. */
  return(): Promise<IteratorResult<T>> {
    this.#items = [];
    this.#hasError = false;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
