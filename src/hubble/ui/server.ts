/**
 * The Hubble UI's backend: one follow stream of the Observer API (a node's Hubble server or the
 * relay) feeds the service map (model.ts) and a bounded store of recent flows; an HTTP server
 * serves the page's bundled assets, the map and flows as JSON, live updates as server-sent events,
 * and the policy view through a PolicySource (the agent's API). The API is documented in
 * docs/hubble-ui.md. Each browser's event stream carries its own filters, so the page only gets
 * the rows it shows; updates go out in batches (every BATCH_MS) whatever the flow rate.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { CiliumTsError } from '../../common/errors.js';
import { ObserverClient } from '../client.js';
import { UiError } from './errors.js';
import { explainEdge, type PolicySource, selectingPolicies, traceSide } from './explain.js';
import { ServiceMap, type UiFlow } from './model.js';
import { compileQuery, type FlowRow, flowRow, parseQuery } from './query.js';

export interface UiLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface UiServerOptions {
  /** `host:port` to serve on (port 0: a free one). */
  listen: string;
  /** The Observer API to read flows from: `unix:///path` or `host:port`. */
  server: string;
  /** Folder with index.html, app.js and app.css (built by scripts/build-ui.ts). */
  assetsDir: string;
  /** Flows held for the table (default 10,000); the map counts every flow seen. */
  maxFlows?: number;
  /**
   * How long the backend keeps reading flows after the last API request when no page holds an
   * event stream (default 30 s). Reading every flow costs the Hubble server a serialisation per
   * flow and this process its aggregation, so an unwatched UI reads nothing; when watched again it
   * catches up from the flows the Observer's ring still holds.
   */
  idleAfterMs?: number;
  policy?: PolicySource;
  logger?: UiLogger;
}

const BATCH_MS = 250;
const IDLE_AFTER_MS = 30_000;
/** How long an API request waits for the catch-up before answering with what is held. */
const CATCH_UP_WAIT_MS = 2_000;
/** Rows one batch sends a page at most; a page that falls further behind is told how many it missed. */
const MAX_ROWS_PER_BATCH = 2000;
const DEFAULT_LIMIT = 1000;
/** Every this many batches (2 s) the pages get the status again (connected, counts). */
const STATUS_EVERY = 8;
/** Bytes of events a page may leave unread before its stream is closed. */
const MAX_UNREAD_BYTES = 8 << 20;
const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/assets/app.js': 'app.js',
  '/assets/app.css': 'app.css',
  '/assets/elk-worker.js': 'elk-worker.js',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

interface Held {
  seq: number;
  flow: UiFlow;
  row: FlowRow;
}

/** Recent flows by sequence number, oldest overwritten first. */
export class FlowStore {
  private readonly buf: (Held | undefined)[];
  next = 0;

  constructor(readonly capacity: number) {
    this.buf = new Array(capacity);
  }

  push(h: Held): void {
    this.buf[h.seq % this.capacity] = h;
    this.next = h.seq + 1;
  }

  get(seq: number): Held | undefined {
    const h = this.buf[seq % this.capacity];
    return h?.seq === seq ? h : undefined;
  }

  get oldest(): number {
    return Math.max(0, this.next - this.capacity);
  }

  get size(): number {
    return this.next - this.oldest;
  }
}

interface EventClient {
  res: ServerResponse;
  namespace: string;
  match: (f: UiFlow, row: FlowRow) => boolean;
  lastSeq: number;
  mapVersion: number;
}

export interface UiStatus {
  source: string;
  connected: boolean;
  /** Whether flows are being read now: a page is open or the API was asked lately. */
  reading: boolean;
  error?: string;
  flowsSeen: number;
  flowsHeld: number;
  maxFlows: number;
  nodes: number;
  edges: number;
  /** Flows the map left out (limits reached). */
  mapOverflow: number;
  policy: boolean;
}

export class UiServer {
  readonly map = new ServiceMap();
  readonly store: FlowStore;
  private readonly http: Server;
  private readonly clients = new Set<EventClient>();
  private readonly abort = new AbortController();
  private readonly assets = new Map<string, Buffer>();
  private timer: NodeJS.Timeout | undefined;
  private reader: Promise<void> | undefined;
  /** Ends the current read (idle, or stop()); undefined while not reading. */
  private reading: AbortController | undefined;
  /** Settles when the current read has taken in the history the Observer held at its start. */
  private caughtUp: Promise<void> = Promise.resolve();
  private lastRequest = 0;
  private connected = false;
  private lastError: string | undefined;
  private lastTime = '';
  flowsSeen = 0;
  private batches = 0;
  /** The address it serves on, `http://host:port/`. */
  url = '';

  private constructor(private readonly opts: UiServerOptions) {
    this.store = new FlowStore(opts.maxFlows ?? 10_000);
    for (const file of new Set(Object.values(ASSETS))) {
      try {
        this.assets.set(file, readFileSync(join(opts.assetsDir, file)));
      } catch (err) {
        throw new UiError(
          `hubble ui: asset ${file} missing in ${opts.assetsDir} (npm run build makes it): ${(err as Error).message}`,
          undefined,
          'failed-precondition',
        );
      }
    }
    this.http = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => sendError(res, err));
    });
  }

  static async start(opts: UiServerOptions): Promise<UiServer> {
    const i = opts.listen.lastIndexOf(':');
    const host = opts.listen.slice(0, i);
    const port = Number(opts.listen.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
      throw new UiError(`--listen: "${opts.listen}" is not HOST:PORT`, '--listen');
    if (opts.maxFlows !== undefined && !(Number.isInteger(opts.maxFlows) && opts.maxFlows > 0))
      throw new UiError(`--max-flows: must be a positive integer, got ${opts.maxFlows}`, '--max-flows');
    const s = new UiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.http.once('error', reject);
      s.http.listen(port, host, () => resolve());
    });
    const addr = s.http.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    s.url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`;
    s.timer = setInterval(() => s.flush(), BATCH_MS);
    return s;
  }

  status(): UiStatus {
    const st: UiStatus = {
      source: this.opts.server,
      connected: this.connected,
      reading: this.reading !== undefined,
      flowsSeen: this.flowsSeen,
      flowsHeld: this.store.size,
      maxFlows: this.store.capacity,
      ...this.map.size,
      mapOverflow: this.map.overflow,
      policy: this.opts.policy !== undefined,
    };
    if (this.lastError !== undefined) st.error = this.lastError;
    return st;
  }

  /** Aggregates one flow and holds it for the table (what the Observer stream calls for each flow). */
  ingest(flow: UiFlow): void {
    const place = this.map.add(flow);
    const seq = this.store.next;
    this.store.push({ seq, flow, row: flowRow(seq, flow, place) });
    this.flowsSeen++;
    if (flow.time > this.lastTime) this.lastTime = flow.time;
  }

  /**
   * Marks the UI as watched (what every API request does) and starts reading flows if it was idle.
   * Settles once the flows the Observer held are taken in, or after CATCH_UP_WAIT_MS.
   */
  watch(): Promise<void> {
    this.lastRequest = Date.now();
    if (!this.reading && !this.abort.signal.aborted) {
      const reading = new AbortController();
      this.reading = reading;
      let done!: () => void;
      this.caughtUp = new Promise((r) => {
        done = r;
      });
      this.reader = this.read(reading.signal, done).finally(() => {
        if (this.reading === reading) this.reading = undefined;
        done();
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((r) => {
      timer = setTimeout(r, CATCH_UP_WAIT_MS);
    });
    return Promise.race([this.caughtUp, waited]).finally(() => clearTimeout(timer));
  }

  /**
   * Reads the Observer API until `signal` (idle or stop): first the history it holds (since the
   * last flow read before, or its last `maxFlows`), which ends the catch-up, then live flows;
   * reconnects with a growing delay, from where it left off.
   */
  private async read(signal: AbortSignal, caughtUp: () => void): Promise<void> {
    let delay = 500;
    const stopped = AbortSignal.any([signal, this.abort.signal]);
    /** The server answered (a flow, or the end of its history): reset the retry state once. */
    const answered = () => {
      if (this.connected) return;
      this.connected = true;
      this.lastError = undefined;
      delay = 500;
      this.opts.logger?.info(`hubble ui: reading flows from ${this.opts.server}`);
    };
    while (!stopped.aborted) {
      const client = new ObserverClient(this.opts.server);
      try {
        for (const follow of [false, true]) {
          const resumeAfter = this.lastTime;
          const req = resumeAfter
            ? { follow, since: toProtoTime(resumeAfter) }
            : { follow, number: this.store.capacity };
          for await (const res of client.getFlows(req, stopped)) {
            answered();
            const f = res.flow as UiFlow | undefined;
            if (!f || (resumeAfter && f.time <= resumeAfter)) continue;
            this.ingest(f);
          }
          if (!follow) {
            answered();
            caughtUp();
          }
        }
        if (!stopped.aborted) this.lastError = 'the flow stream ended';
      } catch (err) {
        if (!stopped.aborted) this.lastError = (err as Error).message;
      } finally {
        client.close();
      }
      if (stopped.aborted) break;
      if (this.connected || delay === 500)
        this.opts.logger?.warn(`hubble ui: flows from ${this.opts.server}: ${this.lastError}; retrying`);
      this.connected = false;
      caughtUp(); // answer with what is held rather than wait for a server that is down
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
    if (signal.aborted && !this.abort.signal.aborted)
      this.opts.logger?.info(`hubble ui: no page open for ${this.idleAfterMs / 1000} s; reading paused`);
    this.connected = false;
  }

  private get idleAfterMs(): number {
    return this.opts.idleAfterMs ?? IDLE_AFTER_MS;
  }

  /** One batch of live updates to every event stream: new matching rows and the map's changes. */
  private flush(): void {
    if (this.reading && this.clients.size === 0 && Date.now() - this.lastRequest > this.idleAfterMs) {
      this.reading.abort();
      this.reading = undefined;
    }
    const status = ++this.batches % STATUS_EVERY === 0 ? this.status() : undefined;
    for (const c of this.clients) {
      // A page that does not read its stream is dropped rather than buffered for without end;
      // its EventSource reconnects and catches up from the flows still held.
      if (c.res.writableLength > MAX_UNREAD_BYTES) {
        this.clients.delete(c);
        c.res.end();
        continue;
      }
      const rows: FlowRow[] = [];
      let missed = 0;
      const from = Math.max(c.lastSeq + 1, this.store.oldest);
      if (from > c.lastSeq + 1) missed += from - (c.lastSeq + 1);
      for (let seq = from; seq < this.store.next; seq++) {
        const h = this.store.get(seq)!;
        if (c.match(h.flow, h.row)) rows.push(h.row);
      }
      c.lastSeq = this.store.next - 1;
      if (rows.length > MAX_ROWS_PER_BATCH) missed += rows.splice(0, rows.length - MAX_ROWS_PER_BATCH).length;
      if (rows.length > 0 || missed > 0) sse(c.res, 'flows', { rows, missed, lastSeq: c.lastSeq });
      if (status) sse(c.res, 'status', status);
      if (this.map.version > c.mapVersion) {
        const delta = this.map.view(c.namespace, c.mapVersion);
        c.mapVersion = delta.version;
        if (delta.nodes.length > 0 || delta.edges.length > 0) sse(c.res, 'map', delta);
      }
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://ui');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new UiError(`${req.method} ${path}: only GET is served`, undefined, 'not-supported');
    const asset = ASSETS[path];
    if (asset) {
      res.writeHead(200, {
        'content-type': TYPES[asset.split('.').pop()!]!,
        'cache-control': 'no-cache',
      });
      res.end(this.assets.get(asset));
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    const p = url.searchParams;
    if (path.startsWith('/api/')) await this.watch();
    switch (path) {
      case '/api/status':
        return sendJson(res, this.status());
      case '/api/namespaces':
        return sendJson(res, { namespaces: this.map.namespaces() });
      case '/api/map':
        return sendJson(res, this.map.view(p.get('namespace') ?? ''));
      case '/api/flows':
        return sendJson(res, this.flows(p));
      case '/api/events':
        return this.events(p, req, res);
      case '/api/policy/node':
        return sendJson(res, await this.policyOfNode(required(p, 'id')));
      case '/api/policy/edge':
        return sendJson(res, await this.policyOfEdge(required(p, 'id')));
    }
    const m = /^\/api\/flows\/(\d+)$/.exec(path);
    if (m) {
      const h = this.store.get(Number(m[1]));
      if (!h) throw new UiError(`flow ${m[1]} is no longer held`, 'seq', 'not-found');
      return sendJson(res, h.flow);
    }
    throw new UiError(`${path}: not found`, undefined, 'not-found');
  }

  /** The newest held flows matching the query, oldest first (`limit`, default 1000). */
  flows(p: URLSearchParams): { rows: FlowRow[]; lastSeq: number; version: number } {
    const match = compileQuery(parseQuery(p));
    const limitText = p.get('limit') ?? String(DEFAULT_LIMIT);
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1)
      throw new UiError(`limit: "${limitText}" is not a positive integer`, 'limit');
    const rows: FlowRow[] = [];
    for (let seq = this.store.next - 1; seq >= this.store.oldest && rows.length < limit; seq--) {
      const h = this.store.get(seq)!;
      if (match(h.flow, h.row)) rows.push(h.row);
    }
    return { rows: rows.reverse(), lastSeq: this.store.next - 1, version: this.map.version };
  }

  private events(p: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const match = compileQuery(parseQuery(p));
    const since = Number(p.get('since') ?? this.store.next - 1);
    const version = Number(p.get('version') ?? this.map.version);
    if (!Number.isInteger(since) || !Number.isInteger(version))
      throw new UiError('since, version: integers expected', 'since');
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write('retry: 1000\n\n');
    const c: EventClient = {
      res,
      namespace: p.get('namespace') ?? '',
      match,
      lastSeq: since,
      mapVersion: version,
    };
    this.clients.add(c);
    sse(res, 'status', this.status());
    req.on('close', () => {
      this.clients.delete(c);
      this.lastRequest = Date.now(); // a page reloading keeps the reading going
    });
  }

  private policySource(): PolicySource {
    if (!this.opts.policy)
      throw new UiError(
        'no agent to ask: the policy view needs the agent API (--agent)',
        undefined,
        'unavailable',
      );
    return this.opts.policy;
  }

  async policyOfNode(id: string) {
    const n = this.map.node(id);
    if (!n) throw new UiError(`id: no map node "${id}"`, 'id', 'not-found');
    const src = this.policySource();
    const side = traceSide(n);
    const [trace, list] = await Promise.all([
      src.trace({ src: side, dst: side, dport: 0, protocol: 'TCP' }),
      src.list(),
    ]);
    return {
      node: n,
      ingressEnforced: trace.ingress.enforced,
      egressEnforced: trace.egress.enforced,
      policies: selectingPolicies(trace, list),
    };
  }

  async policyOfEdge(id: string) {
    const e = this.map.edge(id);
    if (!e) throw new UiError(`id: no map edge "${id}"`, 'id', 'not-found');
    const src = this.map.node(e.source)!;
    const dst = this.map.node(e.target)!;
    const protocol = e.protocol === 'ICMPv4' ? 'ICMP' : e.protocol;
    const trace = await this.policySource().trace({
      src: traceSide(src),
      dst: traceSide(dst),
      dport: e.port,
      protocol,
    });
    return { ...explainEdge(e, src, dst, trace), trace };
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.reading?.abort();
    if (this.timer) clearInterval(this.timer);
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
    await this.reader;
  }
}

function required(p: URLSearchParams, key: string): string {
  const v = p.get(key);
  if (!v) throw new UiError(`${key}: required`, key);
  return v;
}

function toProtoTime(rfc3339: string): { seconds: number; nanos: number } {
  const ms = Date.parse(rfc3339);
  const frac = /\.(\d+)Z$/.exec(rfc3339)?.[1] ?? '';
  return { seconds: Math.floor(ms / 1000), nanos: Number(frac.padEnd(9, '0').slice(0, 9)) };
}

function sse(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function sendJson(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
  res.end(JSON.stringify(body));
}

const STATUS: Record<string, number> = {
  'invalid-argument': 400,
  'not-found': 404,
  'not-supported': 405,
  unavailable: 503,
  'failed-precondition': 412,
  timeout: 504,
};

function sendError(res: ServerResponse, err: unknown): void {
  const e = err as CiliumTsError & { details?: unknown };
  const code = err instanceof CiliumTsError ? e.code : 'unavailable';
  const status = STATUS[code] ?? 500;
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: e.message, code, ...(e.field ? { field: e.field } : {}) }));
}
