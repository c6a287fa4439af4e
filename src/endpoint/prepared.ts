/**
 * Endpoints begun ahead of their CNI ADD. An orchestrator tells the agent about a pod (its labels)
 * before the runtime calls the plugin; from that moment everything an endpoint's programs are
 * specialised with is known (addresses, MACs, endpoint ID, identity), so the agent starts the
 * identity and the programs' verification then, and the ADD finds them done or under way. Keyed by
 * pod; an entry nobody claims within `ttlMs` is dropped (its addresses, ID and identity given back).
 */
export interface PreparedOptions<T> {
  /** Begins the endpoint of a pod; throws when it cannot (e.g. no free address). */
  begin(namespace: string, name: string): T;
  /** Gives back what begin() took. */
  abort(value: T): void;
  /** How long an unclaimed entry is kept. */
  ttlMs: number;
  onError?(err: unknown, pod: string): void;
}

export class PreparedEndpoints<T> {
  readonly #byPod = new Map<string, { value: T; timer: NodeJS.Timeout }>();

  constructor(private readonly o: PreparedOptions<T>) {}

  get size(): number {
    return this.#byPod.size;
  }

  /** Begins the pod's endpoint unless one is prepared already; false when begin() failed. */
  prepare(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    if (this.#byPod.has(key)) return true;
    let value: T;
    try {
      value = this.o.begin(namespace, name);
    } catch (err) {
      this.o.onError?.(err, key);
      return false;
    }
    const timer = setTimeout(() => this.discard(namespace, name), this.o.ttlMs);
    timer.unref();
    this.#byPod.set(key, { value, timer });
    return true;
  }

  /** Takes the pod's prepared endpoint (the caller owns it from here). */
  claim(namespace: string, name: string): T | undefined {
    const key = `${namespace}/${name}`;
    const e = this.#byPod.get(key);
    if (!e) return undefined;
    clearTimeout(e.timer);
    this.#byPod.delete(key);
    return e.value;
  }

  /** Drops the pod's prepared endpoint (its labels changed, or it was deleted). */
  discard(namespace: string, name: string): void {
    const v = this.claim(namespace, name);
    if (v !== undefined) this.#abort(v, `${namespace}/${name}`);
  }

  /** Drops every prepared endpoint of a namespace (its labels are part of the identity). */
  discardNamespace(namespace: string): void {
    for (const key of [...this.#byPod.keys()])
      if (key.startsWith(`${namespace}/`)) this.discard(namespace, key.slice(namespace.length + 1));
  }

  /** Drops them all (the agent stops). */
  clear(): void {
    for (const key of [...this.#byPod.keys()]) {
      const i = key.indexOf('/');
      this.discard(key.slice(0, i), key.slice(i + 1));
    }
  }

  #abort(v: T, pod: string): void {
    try {
      this.o.abort(v);
    } catch (err) {
      this.o.onError?.(err, pod);
    }
  }
}
