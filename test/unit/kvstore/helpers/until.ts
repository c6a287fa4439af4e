/** Waits until `cond()` holds (checked every millisecond), failing after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Collects a watch's batches in the background. */
export function collect<T>(it: AsyncIterable<T>): { items: T[]; done: Promise<unknown> } {
  const items: T[] = [];
  const done = (async () => {
    for await (const x of it) items.push(x);
  })().catch((e: unknown) => e);
  return { items, done };
}
