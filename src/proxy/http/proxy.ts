/**
 * The HTTP proxy: HTTP/1.1 and HTTP/2 (cleartext, prior knowledge: gRPC) on one transparent
 * listener. Upstream connections carry the client's address (ProxyHost.connectUpstream); HTTP/1.1
 * ones are kept alive and pooled per client address, destination and identities (as upstream's
 * original-source pools do), so a client opening a connection per request does not cost an upstream
 * connect and close each time; each request is checked against the endpoint's HTTP rules
 * (./rules.ts) and either forwarded, streaming both bodies, or answered by the proxy:
 *   HTTP/1.1 and HTTP/2: 403 with body `Access denied\r\n` (the connection stays usable);
 *   gRPC (content-type application/grpc): HTTP 200 with grpc-status 7 (PERMISSION_DENIED).
 * Upgrades (Upgrade header, CONNECT) are tunnelled only when the rules allow the request; else 403.
 * Malformed input gets 400 and the connection closes; nothing a client sends stops the proxy.
 */
import {
  Agent,
  createServer as createHttpServer,
  type Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
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
import { type HttpRequestView, httpAllowed } from './rules.js';

export const DENIED_BODY = 'Access denied\r\n';
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const GRPC_PERMISSION_DENIED = 7;

/** Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded. */
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

function forwardHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = new Set(
    String(h.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
  );
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP.has(k) || listed.has(k) || k.startsWith(':')) continue;
    out[k] = v;
  }
  return out;
}

function headerList(h: IncomingHttpHeaders | Http2Headers): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(':')) continue;
    for (const x of Array.isArray(v) ? v : [String(v)]) out.push({ key: k, value: x });
  }
  return out;
}

function view(
  method: string,
  path: string,
  host: string,
  h: IncomingHttpHeaders | Http2Headers,
): HttpRequestView {
  return { method, path, host, header: (n) => h[n] as string | string[] | undefined };
}

/**
 * How long a pooled HTTP/1.1 upstream connection may stay idle: below the 5 s keep-alive timeout of
 * Node's (and many other) servers, so the proxy closes it before the server would mid-request.
 */
export const UPSTREAM_IDLE_MS = 4000;

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
  readonly #h1 = createHttpServer({ keepAliveTimeout: 65_000, requestTimeout: 0 });
  readonly #h2 = createHttp2Server({});
  readonly #h2State = new WeakMap<Http2Session, ConnState>();
  #handing: ConnState | undefined;
  /** HTTP/1.1 upstream pools by poolKey; swept when they hold no connection. */
  readonly #pools = new Map<string, HttpAgent>();
  #sweep?: NodeJS.Timeout;

  /** `transparent` false: a plain listener (tests and benches that connect to it directly). */
  constructor(readonly opts: { transparent?: boolean } = {}) {
    this.#h1.on('request', (req, res) => this.#onH1(req, res));
    this.#h1.on('upgrade', (req, sock: Socket, head: Buffer) => this.#onTunnel(req, sock, head));
    this.#h1.on('connect', (req, sock: Socket, head: Buffer) => this.#onTunnel(req, sock, head));
    this.#h1.on('clientError', (_err, sock: Socket) => {
      if (sock.writable)
        sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      sock.destroy();
    });
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
    this.#sweep = setInterval(() => this.#sweepPools(), 10_000).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#sweep);
    for (const s of this.#sockets) s.destroy();
    for (const a of this.#pools.values()) a.destroy();
    this.#pools.clear();
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
      } else this.#h1.emit('connection', sock);
    });
  }

  /**
   * The upstream pool of a redirected connection: one per client address, destination, direction
   * and identities (an address reused by a pod of another identity gets fresh connections), so a
   * pooled connection carries exactly what a new one would.
   */
  #pool(info: RedirectInfo): HttpAgent {
    const key = `${info.client.address} ${info.original.address} ${info.original.port} ${info.egress} ${info.endpointId} ${info.srcIdentity} ${info.dstIdentity}`;
    let agent = this.#pools.get(key);
    if (agent === undefined) {
      agent = new Agent({ keepAlive: true, timeout: UPSTREAM_IDLE_MS, scheduling: 'lifo' });
      (agent as unknown as { createConnection: () => Socket }).createConnection = () =>
        this.#host!.connectUpstream(info);
      this.#pools.set(key, agent);
    }
    return agent;
  }

  #sweepPools(): void {
    for (const [key, a] of this.#pools)
      if (
        Object.keys(a.sockets).length === 0 &&
        Object.keys(a.freeSockets).length === 0 &&
        Object.keys(a.requests).length === 0
      )
        this.#pools.delete(key);
  }

  #emit(r: Omit<L7Record, 'time'>): void {
    this.#host?.emit({ ...r, time: new Date() });
  }

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
    this.#emit({
      type,
      info,
      verdict,
      ...(start !== undefined ? { latencyNs: process.hrtime.bigint() - start } : {}),
      http: { method, url, protocol, headers, ...(code !== undefined ? { code } : {}) },
    });
  }

  #allowed(info: RedirectInfo, v: HttpRequestView): boolean {
    return this.#host !== undefined && httpAllowed(this.#host.rules(info), v);
  }

  #onH1(req: IncomingMessage, res: ServerResponse): void {
    const start = process.hrtime.bigint();
    const state = this.#state.get(req.socket)!;
    const info = state.info;
    const host = req.headers.host ?? '';
    const url = `http://${host}${req.url ?? '/'}`;
    const method = req.method ?? 'GET';
    const protocol = `HTTP/${req.httpVersion}`;
    const hdrs = headerList(req.headers);
    if (!this.#allowed(info, view(method, req.url ?? '/', host, req.headers))) {
      this.#record(info, 'request', 'denied', method, url, protocol, hdrs);
      req.resume();
      res.writeHead(403, { 'content-type': 'text/plain', 'content-length': DENIED_BODY.length });
      res.end(DENIED_BODY);
      this.#record(info, 'response', 'denied', method, url, protocol, [], 403, start);
      return;
    }
    this.#record(info, 'request', 'forwarded', method, url, protocol, hdrs);
    const up = httpRequest({
      agent: this.#pool(info),
      host: info.original.address,
      port: info.original.port,
      method,
      path: req.url ?? '/',
      headers: forwardHeaders(req.headers),
      setHost: false,
    });
    up.on('response', (ur) => {
      this.#record(
        info,
        'response',
        'forwarded',
        method,
        url,
        protocol,
        headerList(ur.headers),
        ur.statusCode,
        start,
      );
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, forwardHeaders(ur.headers));
      ur.pipe(res);
      ur.on('error', () => res.destroy());
    });
    up.on('error', () => {
      this.#record(info, 'response', 'error', method, url, protocol, [], 503, start);
      if (!res.headersSent) {
        res.writeHead(503, { 'content-type': 'text/plain', connection: 'close' });
        res.end('upstream connect error\r\n');
      } else res.destroy();
    });
    // a request without Content-Length or Transfer-Encoding has no body (RFC 9112 §6.3)
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
      req.resume();
      up.end();
    } else req.pipe(up);
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
  }

  /** Upgrade / CONNECT: a raw tunnel to the destination when the rules allow the request. */
  #onTunnel(req: IncomingMessage, sock: Socket, head: Buffer): void {
    const info = this.#state.get(req.socket)!.info;
    const host = req.headers.host ?? '';
    const method = req.method ?? 'GET';
    const url = `http://${host}${req.url ?? '/'}`;
    const protocol = `HTTP/${req.httpVersion}`;
    if (!this.#allowed(info, view(method, req.url ?? '/', host, req.headers))) {
      this.#record(info, 'request', 'denied', method, url, protocol, headerList(req.headers));
      sock.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${DENIED_BODY.length}\r\nConnection: close\r\n\r\n${DENIED_BODY}`,
      );
      return;
    }
    this.#record(info, 'request', 'forwarded', method, url, protocol, headerList(req.headers));
    const up = this.#host!.connectUpstream(info);
    const lines = [`${method} ${req.url} HTTP/${req.httpVersion}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    up.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) up.write(head);
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
    up.pipe(sock);
    sock.pipe(up);
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
      if (v === undefined || HOP.has(k) || k === 'host') continue;
      out[k] = v as string | string[];
    }
    if (h.te === 'trailers') out.te = 'trailers'; // the one TE HTTP/2 allows; gRPC requires it
    const up = state.session.request(out, { endStream: false });
    up.on('response', (uh) => {
      const code = Number(uh[':status'] ?? 502);
      this.#record(info, 'response', 'forwarded', method, url, 'HTTP/2', headerList(uh), code, start);
      const rh: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(uh))
        if (v !== undefined && !HOP.has(k) && !k.startsWith(':')) rh[k] = v as string | string[];
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
