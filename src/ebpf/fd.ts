/**
 * An owned file descriptor. Closed explicitly (close / `using`), or when garbage-collected as a
 * last resort, so a forgotten object cannot pin kernel memory for the life of the process.
 */
import { close as sysClose } from './sys/libc.js';

const finalizer = new FinalizationRegistry<number>((fd) => sysClose(fd));
let open = 0;

export class Fd implements Disposable {
  #fd: number;
  constructor(fd: number) {
    if (fd < 0) throw new RangeError(`invalid fd ${fd}`);
    this.#fd = fd;
    open++;
    finalizer.register(this, fd, this);
  }
  get value(): number {
    if (this.#fd < 0) throw new Error('use of closed fd');
    return this.#fd;
  }
  get closed(): boolean {
    return this.#fd < 0;
  }
  close(): void {
    if (this.#fd < 0) return;
    finalizer.unregister(this);
    sysClose(this.#fd);
    this.#fd = -1;
    open--;
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Number of Fd objects not yet closed; tests compare it before and after to catch leaks. */
export function openFdCount(): number {
  return open;
}
