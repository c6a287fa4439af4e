/**
 * The kvstore on etcd v3: the KvStore interface with the semantics of MemoryKvStore, through the
 * `etcd3` client's connection pool (gRPC channels to every endpoint, failover between them) and its
 * raw RPCs. The client's high-level watcher and lease are not used: the watcher resumes after a
 * reconnect from the revision of its creation answer, which skips history not delivered yet, and
 * the lease declares itself lost after 2×TTL without contact although the server may have kept it.
 * Here:
 *
 * - Watches: one gRPC stream per watch. Batches are cut per revision; after a disconnect the watch
 *   is created again after the last revision it delivered, so nothing is lost or repeated. History
 *   that is compacted fails the watch with KvCompactedError (the consumer lists again), and so does
 *   a store whose revision went back (etcd started again without its data).
 * - The lease: granted on the first leased write, kept alive every TTL/3. It is lost only when etcd
 *   says so (keepalive answers TTL 0, or a write finds it gone): then a new lease is granted, and once
 *   it exists the onLeaseLost listeners run so that owners re-publish. An unreachable etcd loses
 *   nothing by itself: a restarted etcd renews every lease's TTL.
 * - Create-only is a transaction comparing createRevision = 0; conditional deletes compare value
 *   and/or modRevision.
 * - Requests fail fast with KvUnavailableError while etcd cannot be reached (each has a deadline;
 *   an endpoint that failed three times in a row is skipped for a second); callers that must wait
 *   retry (retryUnavailable).
 * - status() is kept by a periodic check of every endpoint (maintenance status, which names the
 *   leader) and of quorum (a linearizable read with a timeout):
 *   `etcd: 3/3 connected, has-quorum, leader http://192.168.211.241:2379`, or while down
 *   `etcd: 0/1 connected: <error>`.
 */
import {
  CompareResult,
  CompareTarget,
  castGrpcError,
  Etcd3,
  EtcdLeaseInvalidError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  type ICompare,
  type IDuplexStream,
  type IKeyValue,
  type IOptions,
  type IRangeRequest,
  type IWatchRequest,
  type IWatchResponse,
  isRecoverableError,
} from 'etcd3';
import { KvArgumentError, KvClosedError, KvCompactedError, KvStoreError } from './errors.js';
import { AsyncQueue } from './queue.js';
import { KvUnavailableError } from './retry.js';
import type {
  KvCondition,
  KvEvent,
  KvList,
  KvPair,
  KvPutOptions,
  KvStatus,
  KvStore,
  KvWatch,
  KvWatchBatch,
  KvWatchOptions,
} from './types.js';

export interface EtcdKvStoreOptions {
  /** Client URLs of the members, `http://host:port` (or `host:port`). */
  endpoints: readonly string[];
  /** TTL of this client's lease in seconds (default 15): leased keys outlive a dead client this long. */
  leaseTtlSeconds?: number;
  /** Deadline of each request in ms (default 5000). */
  requestTimeoutMs?: number;
  /** Period of the status check in ms (default 5000; also run after a request found etcd unreachable). */
  statusIntervalMs?: number;
  /** Deadline of the status check's quorum read in ms (default 2000). */
  quorumTimeoutMs?: number;
  /** Told about problems handled in the background: keepalives, watch reconnects, listeners that threw. */
  onError?: (err: unknown) => void;
}

/** One member as the status check saw it. */
export interface EtcdMemberStatus {
  readonly endpoint: string;
  readonly connected: boolean;
  /** This member is the cluster's leader. */
  readonly leader: boolean;
  readonly error?: string;
}

/** The store's status, with what the line is made of. */
export interface EtcdStatus extends KvStatus {
  /** A linearizable read succeeded (a majority of the members agree on a leader). */
  readonly quorum: boolean;
  readonly members: readonly EtcdMemberStatus[];
}

const ENDPOINT = /^(http:\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;
/** Keys per page when listing (pages are read at one revision, so a listing is one snapshot). */
const LIST_PAGE = 1000;
/** The key the quorum check reads (upstream's heartbeat key; it need not exist). */
const QUORUM_KEY = 'cilium/.heartbeat';
/** Consecutive failures after which an endpoint is skipped, and for how long. */
const BREAKER_FAILURES = 3;
const BREAKER_OPEN_MS = 1000;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2000;
const RECHECK_DOWN_MS = 1000;

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** Marks an endpoint that is being skipped (the pool then tries the next one). */
class EndpointSkippedError extends Error {}

/**
 * Per-endpoint policy of the pool: after BREAKER_FAILURES consecutive failures the endpoint is
 * skipped for BREAKER_OPEN_MS, then tried again. (The pool's default breaker waits five seconds, too
 * long after a restarted etcd is back.)
 */
function endpointBreaker(endpoint: string, failures: number): Policy {
  let failed = 0;
  let openUntil = 0;
  const policy = {
    async execute<T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> {
      if (Date.now() < openUntil)
        throw new EndpointSkippedError(`${endpoint} failed ${failed} times in a row`);
      try {
        const r = await fn({ signal: new AbortController().signal });
        failed = 0;
        return r;
      } catch (err) {
        // Only a failed connection counts: the pool also reports streams this client cancelled.
        if (err instanceof GRPCUnavailableError && ++failed >= failures)
          openUntil = Date.now() + BREAKER_OPEN_MS;
        throw err;
      }
    },
  };
  // The pool calls execute() only; the rest of cockatiel's policy interface is events nobody reads.
  return policy as unknown as Policy;
}

/** The pool's global policy: one attempt (this class retries where a retry is safe). */
const ONCE = endpointBreaker('', Number.POSITIVE_INFINITY);

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The range of every key starting with `prefix` (the empty prefix: every key). */
function prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
  if (prefix === '') return { key: Buffer.from([0]), range_end: Buffer.from([0]) };
  const key = enc(prefix);
  const end = Buffer.from(key);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return { key, range_end: end.subarray(0, i + 1) };
    }
  }
  return { key, range_end: Buffer.from([0]) };
}

function pairOf(kv: IKeyValue): KvPair {
  return {
    key: kv.key.toString('utf8'),
    value: kv.value.toString('utf8'),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    leased: kv.lease !== '0' && kv.lease !== '',
  };
}

function requireKey(key: unknown, field = 'key'): string {
  if (typeof key === 'string' && key.length > 0) return key;
  throw new KvArgumentError(field, key, 'must be a non-empty string');
}

function requireString(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  throw new KvArgumentError(field, v, 'must be a string');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class EtcdKvStore implements KvStore {
  readonly endpoints: readonly string[];
  readonly leaseTtlSeconds: number;
  readonly #requestTimeoutMs: number;
  readonly #quorumTimeoutMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #client: Etcd3;
  /** One client per endpoint for the status check (which must ask each member itself). */
  readonly #probes: Etcd3[];
  #closed = false;
  #lease: string | undefined;
  #granting: Promise<string> | undefined;
  #regranting = false;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  #keepaliveInFlight = false;
  readonly #leaseLost = new Set<() => void>();
  readonly #watches = new Set<EtcdWatch>();
  #status: EtcdStatus;
  readonly #statusTimer: NodeJS.Timeout;
  #statusCheck: Promise<void> | undefined;

  constructor(opts: EtcdKvStoreOptions) {
    if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0)
      throw new KvArgumentError('endpoints', opts.endpoints, 'give at least one etcd client URL');
    for (const e of opts.endpoints) {
      const m = typeof e === 'string' ? ENDPOINT.exec(e) : null;
      if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535)
        throw new KvArgumentError('endpoints', e, 'must be http://host:port (TLS is not supported)');
    }
    const ttl = opts.leaseTtlSeconds ?? 15;
    if (!Number.isInteger(ttl) || ttl < 2 || ttl > 86400)
      throw new KvArgumentError('leaseTtlSeconds', ttl, 'must be an integer from 2 to 86400');
    const positive = (field: string, v: number | undefined, dflt: number) => {
      const n = v ?? dflt;
      if (!Number.isInteger(n) || n < 1) throw new KvArgumentError(field, v, 'must be a positive integer');
      return n;
    };
    this.#requestTimeoutMs = positive('requestTimeoutMs', opts.requestTimeoutMs, 5000);
    this.#quorumTimeoutMs = positive('quorumTimeoutMs', opts.quorumTimeoutMs, 2000);
    const statusMs = positive('statusIntervalMs', opts.statusIntervalMs, 5000);
    this.endpoints = opts.endpoints.map((e) => (e.startsWith('http://') ? e : `http://${e}`));
    this.leaseTtlSeconds = ttl;
    this.#onError = opts.onError ?? (() => {});
    this.#client = this.#connect(this.endpoints, BREAKER_FAILURES);
    this.#probes = this.endpoints.map((e) => this.#connect([e], Number.POSITIVE_INFINITY));
    this.#status = {
      ok: false,
      quorum: false,
      members: [],
      line: `etcd: 0/${this.endpoints.length} connected: not checked yet`,
    };
    this.#statusTimer = setInterval(() => void this.#checkStatus(), statusMs).unref();
    void this.#checkStatus();
  }

  #connect(hosts: readonly string[], failures: number): Etcd3 {
    return new Etcd3({
      hosts: [...hosts],
      // Unary requests get a deadline; streams (watch, keepalive) live until cancelled.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.#requestTimeoutMs }),
      faultHandling: { global: ONCE, host: (h) => endpointBreaker(h, failures) },
      grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
    });
  }

  /** The ID of this client's current lease (diagnostics, tests), if one was granted. */
  get leaseId(): string | undefined {
    return this.#lease;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async get(key: string): Promise<KvPair | undefined> {
    requireKey(key);
    const res = await this.#call(`get ${key}`, () => this.#client.kv.range({ key: enc(key) }));
    const kv = res.kvs[0];
    return kv ? pairOf(kv) : undefined;
  }

  async list(prefix: string): Promise<KvList> {
    requireString(prefix, 'prefix');
    const range = prefixRange(prefix);
    const pairs: KvPair[] = [];
    let revision = 0;
    let req: IRangeRequest = { ...range, limit: LIST_PAGE };
    for (;;) {
      const page = req;
      const res = await this.#call(`list ${prefix}`, () => this.#client.kv.range(page));
      if (revision === 0) revision = Number(res.header.revision);
      for (const kv of res.kvs) pairs.push(pairOf(kv));
      const last = res.kvs.at(-1);
      if (!res.more || !last) break;
      // The next page starts right after the last key, at the first page's revision.
      req = { ...range, key: Buffer.concat([last.key, Buffer.from([0])]), limit: LIST_PAGE, revision };
    }
    return { pairs, revision };
  }

  async revision(): Promise<number> {
    const res = await this.#call('revision', () =>
      this.#client.kv.range({ key: Buffer.from([0]), count_only: true }),
    );
    return Number(res.header.revision);
  }

  watch(prefix: string, opts: KvWatchOptions = {}): KvWatch {
    requireString(prefix, 'prefix');
    const after = opts.afterRevision;
    if (after !== undefined && (!Number.isSafeInteger(after) || after < 0))
      throw new KvArgumentError('afterRevision', after, 'must be a non-negative integer');
    const w = new EtcdWatch(this.#client, prefix, after, {
      timeoutMs: this.#requestTimeoutMs,
      onError: this.#onError,
      onUnreachable: () => this.#kickStatus(),
      onEnd: () => this.#watches.delete(w),
    });
    if (this.#closed) w.fail(new KvClosedError());
    else {
      this.#watches.add(w);
      w.start();
    }
    return w;
  }

  async put(key: string, value: string, opts: KvPutOptions = {}): Promise<number> {
    requireKey(key);
    requireString(value, 'value');
    const res = await this.#leased(`put ${key}`, opts.lease === true, (lease) =>
      this.#client.kv.put({ key: enc(key), value: enc(value), lease }),
    );
    return Number(res.header.revision);
  }

  async create(key: string, value: string, opts: KvPutOptions = {}): Promise<boolean> {
    requireKey(key);
    requireString(value, 'value');
    let attempts = 0;
    let used = '0';
    const res = await this.#leased(`create ${key}`, opts.lease === true, (lease) => {
      attempts++;
      used = lease;
      return this.#client.kv.txn({
        compare: [
          { key: enc(key), target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 },
        ],
        success: [{ request_put: { key: enc(key), value: enc(value), lease } }],
        failure: [{ request_range: { key: enc(key) } }],
      });
    });
    if (res.succeeded) return true;
    // After a retry the key may be this call's own earlier attempt whose answer was lost.
    const kv = res.responses[0]?.response_range?.kvs[0];
    return attempts > 1 && kv !== undefined && kv.value.toString('utf8') === value && kv.lease === used;
  }

  async delete(key: string): Promise<boolean> {
    requireKey(key);
    const res = await this.#call(`delete ${key}`, () => this.#client.kv.deleteRange({ key: enc(key) }));
    return Number(res.deleted) > 0;
  }

  async deleteIf(key: string, cond: KvCondition): Promise<boolean> {
    requireKey(key);
    if (
      typeof cond !== 'object' ||
      cond === null ||
      (cond.value === undefined && cond.modRevision === undefined)
    )
      throw new KvArgumentError('cond', cond, 'give value or modRevision');
    if (cond.value !== undefined) requireString(cond.value, 'cond.value');
    if (cond.modRevision !== undefined && (!Number.isSafeInteger(cond.modRevision) || cond.modRevision < 1))
      throw new KvArgumentError('cond.modRevision', cond.modRevision, 'must be a positive integer');
    const k = enc(key);
    const compare: ICompare[] = [];
    if (cond.value !== undefined)
      compare.push({
        key: k,
        target: CompareTarget.Value,
        result: CompareResult.Equal,
        value: enc(cond.value),
      });
    if (cond.modRevision !== undefined)
      compare.push({
        key: k,
        target: CompareTarget.Mod,
        result: CompareResult.Equal,
        mod_revision: cond.modRevision,
      });
    const res = await this.#call(`delete ${key} if it matches`, () =>
      this.#client.kv.txn({ compare, success: [{ request_delete_range: { key: k } }] }),
    );
    return res.succeeded && Number(res.responses[0]?.response_delete_range?.deleted ?? 0) > 0;
  }

  async deletePrefix(prefix: string): Promise<number> {
    requireKey(prefix, 'prefix');
    const res = await this.#call(`delete prefix ${prefix}`, () =>
      this.#client.kv.deleteRange(prefixRange(prefix)),
    );
    return Number(res.deleted);
  }

  onLeaseLost(listener: () => void): () => void {
    this.#leaseLost.add(listener);
    return () => {
      this.#leaseLost.delete(listener);
    };
  }

  status(): EtcdStatus {
    return this.#closed ? { ok: false, quorum: false, members: [], line: 'etcd: closed' } : this.#status;
  }

  /** Runs the status check now (it also runs every statusIntervalMs) and returns its result. */
  async checkStatus(): Promise<EtcdStatus> {
    await this.#checkStatus();
    return this.status();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#statusTimer);
    clearInterval(this.#keepaliveTimer);
    for (const w of [...this.#watches]) w.close();
    this.#leaseLost.clear();
    const lease = this.#lease ?? (await this.#granting?.catch(() => undefined));
    this.#lease = undefined;
    if (lease !== undefined) {
      // Revoking deletes this client's leased keys now instead of a TTL later.
      await this.#client.leaseClient.leaseRevoke({ ID: lease }).catch((err: unknown) => this.#onError(err));
    }
    this.#client.close();
    for (const p of this.#probes) p.close();
  }

  // ---- requests ----

  /**
   * Runs one request, on another endpoint when one cannot be reached. Every request here may run
   * twice: reads and deletes are idempotent, a put writes the same again, create tells its own
   * earlier attempt, and a lease granted twice leaves one unused lease that expires.
   */
  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (this.#closed) throw new KvClosedError();
      try {
        return await fn();
      } catch (err) {
        if (this.#closed) throw new KvClosedError();
        const wrapped = this.#wrap(what, err);
        if (!(wrapped instanceof KvUnavailableError)) throw wrapped;
        this.#kickStatus();
        if (attempt > this.endpoints.length || err instanceof EndpointSkippedError) throw wrapped;
      }
    }
  }

  /**
   * A write that may carry this client's lease. When etcd no longer knows the lease (it expired),
   * the lease is lost: a new one is granted, the write is done again with it, and the listeners run.
   */
  async #leased<T>(what: string, leased: boolean, fn: (lease: string) => Promise<T>): Promise<T> {
    if (!leased) return this.#call(what, () => fn('0'));
    const lease = await this.#leaseId();
    try {
      return await this.#call(what, () => fn(lease));
    } catch (err) {
      if (!(err instanceof KvStoreError && err.cause instanceof EtcdLeaseInvalidError)) throw err;
      this.#onLost(lease);
      const again = await this.#leaseId();
      return this.#call(what, () => fn(again));
    }
  }

  #wrap(what: string, err: unknown): Error {
    if (err instanceof KvStoreError) return err;
    const detail = errorText(err);
    if (err instanceof GRPCDeadlineExceededError)
      return new KvUnavailableError(`etcd ${what}: no answer within ${this.#requestTimeoutMs} ms`, {
        timeout: true,
        cause: err,
      });
    if (err instanceof EndpointSkippedError || (err instanceof Error && isRecoverableError(err)))
      return new KvUnavailableError(`etcd ${what}: ${this.endpoints.join(',')} unavailable: ${detail}`, {
        cause: err,
      });
    return new KvStoreError(`etcd ${what}: ${detail}`, { cause: err });
  }

  // ---- the lease ----

  /** The current lease, granted first if there is none. */
  #leaseId(): Promise<string> {
    if (this.#closed) return Promise.reject(new KvClosedError());
    if (this.#lease !== undefined) return Promise.resolve(this.#lease);
    this.#granting ??= this.#call('lease grant', () =>
      this.#client.leaseClient.leaseGrant({ TTL: this.leaseTtlSeconds }),
    )
      .then((res) => {
        if (this.#closed) {
          void this.#client.leaseClient.leaseRevoke({ ID: res.ID }).catch(() => {});
          throw new KvClosedError();
        }
        this.#lease = res.ID;
        clearInterval(this.#keepaliveTimer);
        this.#keepaliveTimer = setInterval(
          () => void this.#keepalive(),
          (this.leaseTtlSeconds * 1000) / 3,
        ).unref();
        return res.ID;
      })
      .finally(() => {
        this.#granting = undefined;
      });
    return this.#granting;
  }

  /** One keepalive of the current lease; etcd answering TTL 0 means the lease is gone. */
  async #keepalive(): Promise<void> {
    const lease = this.#lease;
    if (lease === undefined || this.#keepaliveInFlight || this.#closed) return;
    this.#keepaliveInFlight = true;
    let stream: IDuplexStream<{ ID: string }, { TTL: string }> | undefined;
    try {
      stream = await this.#client.leaseClient.leaseKeepAlive();
      const s = stream;
      const ttl = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new GRPCDeadlineExceededError('keepalive not answered')),
          this.#requestTimeoutMs,
        );
        s.on('data', (res) => {
          clearTimeout(timer);
          resolve(res.TTL);
        });
        s.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        s.write({ ID: lease });
      });
      if (Number(ttl) <= 0) this.#onLost(lease);
    } catch (err) {
      if (castGrpcError(err as Error) instanceof EtcdLeaseInvalidError) {
        this.#onLost(lease);
        return;
      }
      this.#onError(this.#wrap(`keepalive of lease ${lease}`, err));
      this.#kickStatus();
    } finally {
      this.#keepaliveInFlight = false;
      stream?.cancel();
    }
  }

  /** etcd lost `lease`: forget it, get a new one (retrying while etcd is away), then tell the owners. */
  #onLost(lease: string): void {
    if (this.#lease !== lease) return;
    this.#lease = undefined;
    clearInterval(this.#keepaliveTimer);
    if (this.#regranting) return;
    this.#regranting = true;
    void (async () => {
      for (let wait = RECONNECT_MIN_MS; !this.#closed; wait = Math.min(wait * 2, RECONNECT_MAX_MS)) {
        try {
          await this.#leaseId();
          break;
        } catch (err) {
          this.#onError(err);
          await delay(wait);
        }
      }
      this.#regranting = false;
      if (this.#closed) return;
      for (const l of [...this.#leaseLost]) {
        try {
          l();
        } catch (err) {
          this.#onError(err);
        }
      }
    })();
  }

  // ---- status ----

  #kickStatus(): void {
    if (!this.#closed) void this.#checkStatus();
  }

  #checkStatus(): Promise<void> {
    this.#statusCheck ??= this.#runStatusCheck().finally(() => {
      this.#statusCheck = undefined;
    });
    return this.#statusCheck;
  }

  async #runStatusCheck(): Promise<void> {
    const deadline = () => ({ deadline: Date.now() + this.#quorumTimeoutMs });
    const answers = await Promise.all(
      this.#probes.map(async (p) => {
        try {
          const s = await p.maintenance.status(deadline());
          return { id: s.header.member_id, leader: s.leader };
        } catch (err) {
          return { error: errorText(err) };
        }
      }),
    );
    const leaderId = answers.find((a) => a.leader !== undefined && a.leader !== '0')?.leader;
    const members: EtcdMemberStatus[] = answers.map((a, i) => ({
      endpoint: this.endpoints[i]!,
      connected: a.error === undefined,
      leader: a.id !== undefined && a.id === leaderId,
      ...(a.error === undefined ? {} : { error: a.error }),
    }));
    // A linearizable read answers only when a majority agrees on a leader; asked of every member
    // that answered (at once), so a stopped member cannot make a healthy cluster look without quorum.
    let quorumError: string | undefined;
    const live = this.#probes.filter((_, i) => members[i]!.connected);
    if (live.length > 0) {
      try {
        await Promise.any(
          live.map((p) => p.kv.range({ key: enc(QUORUM_KEY), count_only: true }, deadline())),
        );
      } catch (err) {
        quorumError = errorText((err as AggregateError).errors?.[0] ?? err);
      }
    }
    if (this.#closed) return;
    this.#status = statusOf(members, leaderId, quorumError);
    // While down, look again soon rather than at the next period.
    if (!this.#status.ok) setTimeout(() => this.#kickStatus(), RECHECK_DOWN_MS).unref();
  }
}

/** The status line: `etcd: 2/3 connected, has-quorum, leader <endpoint> (<endpoint>: <error>)`. */
function statusOf(
  members: EtcdMemberStatus[],
  leaderId: string | undefined,
  quorumError?: string,
): EtcdStatus {
  const up = members.filter((m) => m.connected).length;
  const head = `etcd: ${up}/${members.length} connected`;
  const failures = members.filter((m) => !m.connected).map((m) => `${m.endpoint}: ${m.error}`);
  if (up === 0)
    return { ok: false, quorum: false, members, line: `${head}: ${failures[0] ?? 'no endpoint'}` };
  const leaderEndpoint = members.find((m) => m.leader)?.endpoint;
  const leader =
    leaderId === undefined
      ? 'no leader'
      : `leader ${leaderEndpoint ?? `member ${BigInt(leaderId).toString(16)}`}`;
  const tail = failures.length > 0 ? ` (${failures.join('; ')})` : '';
  return quorumError === undefined
    ? { ok: true, quorum: true, members, line: `${head}, has-quorum, ${leader}${tail}` }
    : { ok: false, quorum: false, members, line: `${head}, no-quorum: ${quorumError}${tail}` };
}

interface EtcdWatchHooks {
  timeoutMs: number;
  onError: (err: unknown) => void;
  onUnreachable: () => void;
  onEnd: () => void;
}

/**
 * One watch: a gRPC Watch stream carrying one watcher. It is created again after a disconnect,
 * starting after the last revision delivered.
 */
class EtcdWatch implements KvWatch {
  readonly #queue = new AsyncQueue<KvWatchBatch>();
  readonly #range: { key: Buffer; range_end: Buffer };
  /** Last revision delivered (or the start point); undefined: "from now", not known yet. */
  #last: number | undefined;
  /** The highest revision etcd's answers to this watch carried (a start point may be in the future). */
  #seen = 0;
  #stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  #ended = false;
  #wait = RECONNECT_MIN_MS;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    after: number | undefined,
    private readonly hooks: EtcdWatchHooks,
  ) {
    this.#range = prefixRange(prefix);
    this.#last = after;
  }

  start(): void {
    void this.#connect();
  }

  close(): void {
    this.#finish();
    this.#queue.end();
  }

  fail(err: unknown): void {
    this.#finish();
    this.#queue.fail(err);
  }

  [Symbol.asyncIterator](): AsyncIterator<KvWatchBatch> {
    return {
      next: () => this.#queue.next(),
      return: () => {
        this.close();
        return this.#queue.return();
      },
    };
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stream?.cancel();
    this.#stream = undefined;
    this.hooks.onEnd();
  }

  async #connect(): Promise<void> {
    if (this.#ended) return;
    if (this.#seen > 0) {
      // A reconnect. A store whose revision (read through quorum) is behind one it answered before
      // lost its history (etcd started from an empty or older data directory): resuming would skip
      // its revisions up to the last one delivered here, so the consumer must list again.
      let now: number;
      try {
        const res = await this.client.kv.range(
          { key: Buffer.from([0]), count_only: true },
          { deadline: Date.now() + this.hooks.timeoutMs },
        );
        now = Number(res.header.revision);
      } catch (err) {
        this.#retry(stream0Error(this.prefix, err));
        return;
      }
      if (this.#ended) return;
      if (now < this.#seen) {
        this.fail(new KvCompactedError(this.#last ?? this.#seen, now));
        return;
      }
    }
    let stream: IDuplexStream<IWatchRequest, IWatchResponse>;
    try {
      stream = await this.client.watchClient.watch();
    } catch (err) {
      this.#retry(stream0Error(this.prefix, err));
      return;
    }
    if (this.#ended) {
      stream.cancel();
      return;
    }
    this.#stream = stream;
    let created = false;
    let over = false;
    const timer = setTimeout(
      () => lost(new Error(`watch of ${this.prefix} not created in time`)),
      this.hooks.timeoutMs,
    );
    const lost = (err: unknown) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      stream.cancel();
      if (this.#stream === stream) this.#stream = undefined;
      this.#retry(err);
    };
    stream.on('error', lost);
    stream.on('end', () => lost(new Error(`watch stream of ${this.prefix} ended`)));
    stream.on('data', (res: IWatchResponse) => {
      if (over) return;
      if (res.canceled) {
        over = true;
        clearTimeout(timer);
        stream.cancel();
        const compacted = Number(res.compact_revision);
        this.fail(
          compacted > 0
            ? new KvCompactedError(this.#last ?? 0, compacted)
            : new KvStoreError(
                `etcd watch of ${this.prefix} cancelled: ${res.cancel_reason || 'no reason given'}`,
              ),
        );
        return;
      }
      this.#seen = Math.max(this.#seen, Number(res.header?.revision ?? 0));
      if (res.created) {
        created = true;
        clearTimeout(timer);
        this.#wait = RECONNECT_MIN_MS;
        // "From now": the creation answer's revision is where this watch starts.
        this.#last ??= Number(res.header.revision);
      }
      if (created) this.#deliver(res.events);
    });
    const create: IWatchRequest['create_request'] = { ...this.#range };
    // Starting at the last revision seen (its events are skipped as delivered), not after it: etcd
    // compacted at C still starts a watch at C although C's deletions are gone, and refuses one
    // that starts before C. (Revision 0 would mean "now".)
    if (this.#last !== undefined) create.start_revision = Math.max(this.#last, 1);
    stream.write({ create_request: create });
  }

  /** Cuts the events of one answer into per-revision batches, skipping anything delivered already. */
  #deliver(events: IWatchResponse['events']): void {
    let batch: { revision: number; events: KvEvent[] } | undefined;
    const flush = () => {
      if (batch) this.#queue.push(batch);
      batch = undefined;
    };
    const seen = this.#last;
    for (const ev of events) {
      const rev = Number(ev.kv.mod_revision);
      if (seen !== undefined && rev <= seen) continue;
      if (batch && batch.revision !== rev) flush();
      batch ??= { revision: rev, events: [] };
      const key = ev.kv.key.toString('utf8');
      batch.events.push(
        ev.type === 'Delete'
          ? { type: 'delete', key, modRevision: rev }
          : {
              type: 'put',
              key,
              value: ev.kv.value.toString('utf8'),
              createRevision: Number(ev.kv.create_revision),
              modRevision: rev,
            },
      );
      this.#last = rev;
    }
    flush();
  }

  #retry(err: unknown): void {
    if (this.#ended) return;
    this.hooks.onError(err);
    this.hooks.onUnreachable();
    const wait = this.#wait;
    this.#wait = Math.min(wait * 2, RECONNECT_MAX_MS);
    setTimeout(() => void this.#connect(), wait);
  }
}

function stream0Error(prefix: string, err: unknown): Error {
  return new KvUnavailableError(`etcd watch of ${prefix}: ${errorText(err)}`, { cause: err });
}
