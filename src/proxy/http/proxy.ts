/**
 * The HTTP proxy: HTTP/1.1 and HTTP/2 (cleartext, prior knowledge: gRPC) on one transparent
 * listener. Upstream connections carry the client's address (ProxyHost.connectUpstream); HTTP/1.1
 * ones are kept alive and pooled per client address, destination and identities (as upstream's
 * original-source pools do), so a client opening a connection per request does not cost an upstream
 * connect and close each time. HTTP/1.1 runs on the sockets directly (./h1.ts: no http server or
 * client objects per request), HTTP/2 on Node's http2. Each request is checked against the
 * endpoint's HTTP rules (./rules.ts) and either forwarded, streaming both bodies, or answered by the
 * proxy:
 *   HTTP/1.1 and HTTP/2: 403 with body `Access denied\r\n` (the connection stays usable);
 *   gRPC (content-type application/grpc): HTTP 200 with grpc-status 7 (PERMISSION_DENIED).
 * Upgrades (Upgrade header, CONNECT) are tunnelled only when the rules allow the request; else 403.
 * Malformed input gets 400 naming the problem and the connection closes; nothing a client sends
 * stops the proxy.
 */
import {
  type ClientHttp2Session,
  createServer as createHttp2Server,
  type IncomingHttpHeaders as Http2Headers,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  constants as h2,
  connect as http2Connect,
} from 'node:http2';
import type { Server, Socket } from 'node:net';
import type { L7Proxy, L7Record, ProxyHost, RedirectInfo } from '../framework.js';
import { listenTcp } from '../framework.js';
import {
  CLIENT_IDLE_MS,
  ClientConnection,
  DENIED_BODY,
  type H1Context,
  UPSTREAM_IDLE_MS,
  UpstreamPool,
} from './h1.js';
import { HOP_BY_HOP } from './h1-wire.js';
import { type HttpRequestView, httpAllowed } from './rules.js';

export { DENIED_BODY, UPSTREAM_IDLE_MS };

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const GRPC_PERMISSION_DENIED = 7;

function headerList(h: Http2Headers): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(':')) continue;
    for (const x of Array.isArray(v) ? v : [String(v)]) out.push({ key: k, value: x });
  }
  return out;
}

function view(method: string, path: string, host: string, h: Http2Headers): HttpRequestView {
  return { method, path, host, header: (n) => h[n] as string | string[] | undefined };
}

interface ConnState {
  readonly info: RedirectInfo;
  /** HTTP/2: this client connection's upstream session. */
  session?: ClientHttp2Session;
}

export class HttpProxy implements L7Proxy {
  readonly parser = 'http' as const;
  #host?: ProxyHost;
  #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #state = new WeakMap<Socket, ConnState>();
  readonly #h2 = createHttp2Server({});
  readonly #h2State = new WeakMap<Http2Session, ConnState>();
  #handing: ConnState | undefined;
  /** HTTP/1.1: idle upstream connections, and the client connections (for their idle timeout). */
  readonly #pool = new UpstreamPool();
  readonly #h1Conns = new Set<ClientConnection>();
  readonly #h1: H1Context = {
    allowed: (info, v) => this.#allowed(info, v),
    record: (...a) => this.#record(...a),
    connect: (info) => this.#host!.connectUpstream(info),
  };
  #sweep?: NodeJS.Timeout;

  /** `transparent` false: a plain listener (tests and benches that connect to it directly). */
  constructor(readonly opts: { transparent?: boolean } = {}) {
    this.#h2.on('request', (req, res) => this.#onH2(req, res));
    this.#h2.on('sessionError', () => {});
    // 'session' fires inside emit('connection'): the connection being handed over is its own
    this.#h2.on('session', (session) => {
      if (this.#handing !== undefined) this.#h2State.set(session, this.#handing);
    });
  }

  connections(): number {
    return this.#sockets.size;
  }

  /** Idle HTTP/1.1 upstream connections kept for reuse. */
  pooled(): number {
    return this.#pool.idle();
  }

  /** Where it listens (the first listener's port: the one asked for, or the one given for 0). */
  get port(): number {
    const a = this.#servers[0]?.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  async start(host: ProxyHost, port: number): Promise<void> {
    this.#host = host;
    this.#servers = await listenTcp(
      host,
      port,
      (sock, info) => this.#accept(sock, info),
      this.opts.transparent !== false,
    );
    // closes pooled upstream connections before they reach UPSTREAM_IDLE_MS, and idle clients
    this.#sweep = setInterval(() => this.#sweepIdle(), 500).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#sweep);
    for (const s of this.#sockets) s.destroy();
    this.#pool.destroy();
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.#servers = [];
  }

  /** A redirected client connection: HTTP/2 when it opens with the preface, else HTTP/1.1. */
  #accept(sock: Socket, info: RedirectInfo): void {
    this.#sockets.add(sock);
    const state: ConnState = { info };
    this.#state.set(sock, state);
    sock.on('error', () => {});
    sock.once('close', () => {
      this.#sockets.delete(sock);
      state.session?.destroy();
    });
    sock.once('readable', () => {
      const first = sock.read() as Buffer | null;
      if (first === null) {
        sock.destroy();
        return;
      }
      sock.unshift(first);
      const n = Math.min(first.length, H2_PREFACE.length);
      if (first.subarray(0, n).equals(H2_PREFACE.subarray(0, n)) && n === H2_PREFACE.length) {
        this.#handing = state;
        this.#h2.emit('connection', sock);
        this.#handing = undefined;
      } else {
        const conn = new ClientConnection(sock, info, this.#h1, this.#pool);
        this.#h1Conns.add(conn);
        sock.once('close', () => this.#h1Conns.delete(conn));
      }
    });
  }

  #sweepIdle(): void {
    const now = Date.now();
    this.#pool.sweep(now, UPSTREAM_IDLE_MS - 500);
    for (const c of this.#h1Conns) if (c.idle && now - c.idleSince > CLIENT_IDLE_MS) c.sock.destroy();
  }

  /** One L7 record for Hubble, built in place (two per request: no spreads, no copies). */
  #record(
    info: RedirectInfo,
    type: 'request' | 'response',
    verdict: L7Record['verdict'],
    method: string,
    url: string,
    protocol: string,
    headers: { key: string; value: string }[],
    code?: number,
    start?: bigint,
  ): void {
    if (this.#host === undefined) return;
    const http: { -readonly [K in keyof NonNullable<L7Record['http']>]: NonNullable<L7Record['http']>[K] } = {
      method,
      url,
      protocol,
      headers,
    };
    if (code !== undefined) http.code = code;
    const r: { -readonly [K in keyof L7Record]: L7Record[K] } = {
      type,
      info,
      verdict,
      time: new Date(),
      http,
    };
    if (start !== undefined) r.latencyNs = process.hrtime.bigint() - start;
    this.#host.emit(r);
  }

  #allowed(info: RedirectInfo, v: HttpRequestView): boolean {
    return this.#host !== undefined && httpAllowed(this.#host.rules(info), v);
  }

  #onH2(req: Http2ServerRequest, res: Http2ServerResponse): void {
    const start = process.hrtime.bigint();
    const session = req.stream.session;
    const state = session === undefined ? undefined : this.#h2State.get(session);
    if (state === undefined) {
      res.stream.close(h2.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const info = state.info;
    const h = req.headers;
    const method = String(h[':method'] ?? 'GET');
    const path = String(h[':path'] ?? '/');
    const authority = String(h[':authority'] ?? h.host ?? '');
    const url = `http://${authority}${path}`;
    const grpc = String(h['content-type'] ?? '').startsWith('application/grpc');
    const hdrs = headerList(h);
    if (!this.#allowed(info, view(method, path, authority, h))) {
      this.#record(info, 'request', 'denied', method, url, 'HTTP/2', hdrs);
      req.resume();
      if (grpc) {
        res.writeHead(200, { 'content-type': 'application/grpc' });
        res.addTrailers({ 'grpc-status': String(GRPC_PERMISSION_DENIED), 'grpc-message': 'Access denied' });
        res.end();
        this.#record(info, 'response', 'denied', method, url, 'HTTP/2', [], 200, start);
      } else {
        res.writeHead(403, { 'content-type': 'text/plain', 'content-length': DENIED_BODY.length });
        res.end(DENIED_BODY);
        this.#record(info, 'response', 'denied', method, url, 'HTTP/2', [], 403, start);
      }
      return;
    }
    this.#record(info, 'request', 'forwarded', method, url, 'HTTP/2', hdrs);
    if (state.session === undefined || state.session.destroyed || state.session.closed) {
      const session = http2Connect(`http://${authority || info.original.address}`, {
        createConnection: () => this.#host!.connectUpstream(info),
      });
      session.on('error', () => {});
      state.session = session;
    }
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(h)) {
      if (v === undefined || HOP_BY_HOP.has(k) || k === 'host') continue;
      out[k] = v as string | string[];
    }
    if (h.te === 'trailers') out.te = 'trailers'; // the one TE HTTP/2 allows; gRPC requires it
    const up = state.session.request(out, { endStream: false });
    up.on('response', (uh) => {
      const code = Number(uh[':status'] ?? 502);
      this.#record(info, 'response', 'forwarded', method, url, 'HTTP/2', headerList(uh), code, start);
      const rh: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(uh))
        if (v !== undefined && !HOP_BY_HOP.has(k) && !k.startsWith(':')) rh[k] = v as string | string[];
      res.writeHead(code, rh);
      up.pipe(res);
    });
    // trailers (gRPC's status) arrive before the upstream stream ends: the response sends them last
    up.on('trailers', (t) => {
      const tr: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(t))
        if (v !== undefined && !k.startsWith(':')) tr[k] = v as string | string[];
      res.addTrailers(tr);
    });
    up.on('error', () => {
      this.#record(info, 'response', 'error', method, url, 'HTTP/2', [], 503, start);
      if (!res.stream.headersSent) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('upstream connect error\r\n');
      } else res.stream.close(h2.NGHTTP2_CANCEL);
    });
    req.pipe(up);
    res.stream.on('close', () => {
      if (!up.closed) up.close(h2.NGHTTP2_CANCEL);
    });
  }
}
