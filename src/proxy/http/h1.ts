/**
 * The proxy's HTTP/1.1 path, on the sockets themselves rather than Node's http server and client:
 * a request head is parsed (./h1-wire.ts, strict), checked against the rules, and either answered
 * (403) or forwarded as a rewritten head (hop-by-hop headers dropped) followed by its body bytes as
 * they came; the response is handled the same way the other direction. Bodies are never buffered or
 * re-encoded: the framing (Content-Length or chunked) is only walked to know where a message ends,
 * and backpressure is passed on both ways. One request per client connection is in flight at a
 * time; a pipelined next one waits in the buffer.
 *
 * Upstream connections are pooled per client address, destination and identities (UpstreamPool), so
 * a pooled connection carries exactly what a new one would; one closed by its server while idle is
 * retried once on a new connection for a request without a body.
 */
import type { Socket } from 'node:net';
import type { RedirectInfo } from '../framework.js';
import {
  BodyFraming,
  HOP_BY_HOP,
  HttpWireError,
  headEnd,
  headerValue,
  MAX_HEAD_BYTES,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  type ResponseHead,
} from './h1-wire.js';
import type { HttpRequestView } from './rules.js';

export const DENIED_BODY = 'Access denied\r\n';

/**
 * How long a pooled upstream connection may stay idle: below the 5 s keep-alive timeout of Node's
 * (and many other) servers, so the proxy closes it before the server would mid-request.
 */
export const UPSTREAM_IDLE_MS = 4000;
/** How long a client connection may wait between requests (or send an incomplete head). */
export const CLIENT_IDLE_MS = 65_000;
/** Pipelined bytes held while a request is in flight before the client's socket is paused. */
const MAX_PIPELINED = 4 * MAX_HEAD_BYTES;

/** Hop-by-hop headers but Transfer-Encoding, which stays: bodies go as they were sent. */
const HOP = new Set([...HOP_BY_HOP].filter((h) => h !== 'transfer-encoding'));
/** Never dropped even when the Connection header lists them: the body's framing depends on them. */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'host']);

export type Headers = { key: string; value: string }[];

/** What the HTTP/1.1 path needs of the proxy. */
export interface H1Context {
  allowed(info: RedirectInfo, v: HttpRequestView): boolean;
  record(
    info: RedirectInfo,
    type: 'request' | 'response',
    verdict: 'forwarded' | 'denied' | 'error',
    method: string,
    url: string,
    protocol: string,
    headers: Headers,
    code?: number,
    start?: bigint,
  ): void;
  /** A new upstream connection for the redirected connection (may throw). */
  connect(info: RedirectInfo): Socket;
}

/** A head's headers for an L7 record (lower-cased names). */
function headerList(h: RequestHead | ResponseHead): Headers {
  const out: Headers = new Array(h.names.length);
  for (let i = 0; i < h.names.length; i++) out[i] = { key: h.names[i]!, value: h.values[i]! };
  return out;
}

/** The header lines of `h` to forward (as sent), without hop-by-hop ones and those Connection lists. */
function forwardLines(h: RequestHead | ResponseHead): string {
  let out = '';
  for (let i = 0; i < h.names.length; i++) {
    const n = h.names[i]!;
    if (HOP.has(n) || (h.connection.length > 0 && h.connection.includes(n) && !FRAMING.has(n))) continue;
    out += `${h.rawNames[i]}: ${h.values[i]}\r\n`;
  }
  return out;
}

function plainResponse(status: number, reason: string, body: string, close: boolean): string {
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
};

/** A pooled upstream connection; `owner` is the client connection whose request it carries. */
class Upstream {
  owner: ClientConnection | undefined;
  idleSince = 0;
  reused = false;
  closed = false;

  constructor(
    readonly sock: Socket,
    readonly key: string,
    pool: UpstreamPool,
  ) {
    sock.on('data', (c: Buffer) => {
      if (this.owner !== undefined) this.owner.upstreamData(this, c);
      else sock.destroy(); // bytes nobody asked for: the connection cannot be trusted again
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      pool.forget(this);
      this.owner?.upstreamClosed(this);
    });
  }
}

/**
 * Idle upstream connections per key, newest used first (the ones most likely still open). A key's
 * list stays while empty (a keep-alive client takes and gives back its connection per request: no
 * map entry made and dropped each time); the sweep drops empty ones.
 */
export class UpstreamPool {
  readonly #idle = new Map<string, Upstream[]>();

  acquire(key: string): Upstream | undefined {
    const up = this.#idle.get(key)?.pop();
    if (up === undefined) return undefined;
    up.reused = true;
    return up;
  }

  add(sock: Socket, key: string): Upstream {
    return new Upstream(sock, key, this);
  }

  release(up: Upstream): void {
    if (up.closed) return;
    up.owner = undefined;
    up.idleSince = Date.now();
    let list = this.#idle.get(up.key);
    if (list === undefined) {
      list = [];
      this.#idle.set(up.key, list);
    }
    list.push(up);
  }

  forget(up: Upstream): void {
    const list = this.#idle.get(up.key);
    if (list === undefined) return;
    const i = list.indexOf(up);
    if (i >= 0) list.splice(i, 1);
  }

  /** Closes connections idle for longer than `idleMs`; drops the keys left without any. */
  sweep(now: number, idleMs: number): void {
    for (const [key, list] of [...this.#idle]) {
      for (const up of [...list]) if (now - up.idleSince >= idleMs) up.sock.destroy();
      if (list.length === 0) this.#idle.delete(key);
    }
  }

  idle(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  destroy(): void {
    for (const list of [...this.#idle.values()]) for (const up of [...list]) up.sock.destroy();
    this.#idle.clear();
  }
}

/**
 * The pool key of a redirected connection: client address, destination, direction, identities (an
 * address reused by a pod of another identity gets fresh connections).
 */
function poolKey(info: RedirectInfo): string {
  return `${info.client.address} ${info.original.address} ${info.original.port} ${info.egress} ${info.endpointId} ${info.srcIdentity} ${info.dstIdentity}`;
}

/** The request in flight as the rules see it: one per connection, filled in per request. */
class RequestView implements HttpRequestView {
  method = '';
  path = '';
  host = '';
  head: RequestHead | undefined;

  header(name: string): string | undefined {
    return this.head === undefined ? undefined : headerValue(this.head, name);
  }
}

/**
 * A response head and the body bytes that came with it go out in one buffer (one plain write) up
 * to this size; a larger body follows its head in a corked write.
 */
const ONE_WRITE_MAX = 16 * 1024;

enum Phase {
  Head,
  Body,
  Wait,
  Tunnel,
  Closing,
}

/** One client connection speaking HTTP/1.x. */
export class ClientConnection {
  idleSince = Date.now();
  #phase = Phase.Head;
  #buf: Buffer | undefined;
  #pumping = false;
  readonly #key: string;
  readonly #onData = (c: Buffer) => this.#data(c);
  readonly #view = new RequestView();
  // the request in flight
  #keepAlive = true;
  #reqBody: BodyFraming | undefined;
  #requestDone = true;
  #responseDone = true;
  #up: Upstream | undefined;
  #upHead = '';
  #reqHadBody = false;
  #retried = false;
  #method = '';
  #url = '';
  #protocol = '';
  #start = 0n;
  #isHead = false;
  // its response
  #resBuf: Buffer | undefined;
  #resBody: BodyFraming | undefined;
  #resSent = false;
  #upReusable = false;
  #tunnel: Socket | undefined;

  constructor(
    readonly sock: Socket,
    readonly info: RedirectInfo,
    readonly ctx: H1Context,
    readonly pool: UpstreamPool,
  ) {
    this.#key = poolKey(info);
    sock.on('data', this.#onData);
    sock.once('close', () => {
      this.#phase = Phase.Closing;
      if (this.#up !== undefined) {
        this.#up.owner = undefined;
        this.#up.sock.destroy();
        this.#up = undefined;
      }
      this.#tunnel?.destroy();
    });
  }

  /** Waiting for a next request (timed out by the proxy's sweep after CLIENT_IDLE_MS). */
  get idle(): boolean {
    return this.#phase === Phase.Head;
  }

  #data(chunk: Buffer): void {
    this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#pump();
  }

  /** Works through the buffered client bytes: heads, bodies, pipelined requests. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        const buf = this.#buf;
        if (buf === undefined) return;
        if (this.#phase === Phase.Head) {
          const end = headEnd(buf, 'request');
          if (end < 0) return;
          const head = parseRequestHead(buf, end);
          this.#buf = end === buf.length ? undefined : buf.subarray(end);
          this.#request(head, buf.subarray(0, end));
        } else if (this.#phase === Phase.Body) {
          const n = this.#reqBody!.take(buf, 0);
          this.#buf = n === buf.length ? undefined : buf.subarray(n);
          if (n > 0 && this.#up !== undefined) this.#toUpstream(n === buf.length ? buf : buf.subarray(0, n));
          if (!this.#reqBody!.done) return;
          this.#reqBody = undefined;
          this.#requestDone = true;
          this.#phase = Phase.Wait;
          if (this.#responseDone) this.#next();
        } else {
          if (this.#phase === Phase.Wait && buf.length > MAX_PIPELINED) this.sock.pause();
          return;
        }
      }
    } catch (err) {
      this.#refuse(err);
    } finally {
      this.#pumping = false;
    }
  }

  /** Malformed client input: 400 (or 431) naming the problem when no response has begun, and close. */
  #refuse(err: unknown): void {
    const e = err instanceof HttpWireError ? err : new HttpWireError(400, String(err));
    if (this.#up !== undefined) {
      this.#up.owner = undefined;
      this.#up.sock.destroy();
      this.#up = undefined;
    }
    if (this.#resSent) this.sock.destroy();
    else this.#close(plainResponse(e.status, REASONS[e.status] ?? 'Bad Request', `${e.message}\r\n`, true));
  }

  #request(head: RequestHead, raw: Buffer): void {
    this.#start = process.hrtime.bigint();
    const host = headerValue(head, 'host') ?? '';
    const method = head.method;
    this.#method = method;
    this.#url = `http://${host}${head.target}`;
    this.#protocol = head.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0';
    this.#isHead = method === 'HEAD';
    this.#keepAlive = head.minor === 1 && !head.connection.includes('close');
    this.#retried = false;
    this.#resSent = false;
    this.#resBuf = undefined;
    this.#resBody = undefined;
    const view = this.#view;
    view.method = method;
    view.path = head.target;
    view.host = host;
    view.head = head;
    const allowed = this.ctx.allowed(this.info, view);
    const upgrade =
      method === 'CONNECT' || (head.connection.includes('upgrade') && head.names.includes('upgrade'));
    if (upgrade) {
      this.#upgrade(head, raw, allowed);
      return;
    }
    this.#reqBody = head.chunked
      ? BodyFraming.chunked()
      : head.contentLength > 0
        ? BodyFraming.length(head.contentLength)
        : undefined;
    this.#requestDone = this.#reqBody === undefined;
    this.#reqHadBody = !this.#requestDone;
    this.#phase = this.#requestDone ? Phase.Wait : Phase.Body;
    if (!allowed) {
      this.#recordRequest('denied', headerList(head));
      // a client waiting for 100-continue may never send the body we would have to skip
      if (!this.#requestDone && headerValue(head, 'expect')?.toLowerCase() === '100-continue')
        this.#keepAlive = false;
      this.#responseDone = true;
      this.#resSent = true;
      this.sock.write(plainResponse(403, 'Forbidden', DENIED_BODY, !this.#keepAlive));
      this.#recordResponse('denied', 403);
      if (!this.#keepAlive) this.#close();
      else if (this.#requestDone) this.#next();
      return;
    }
    this.#recordRequest('forwarded', headerList(head));
    this.#responseDone = false;
    // an HTTP/1.0 client's request goes as HTTP/1.0 (its answer must not be chunked); its connection
    // is not pooled
    this.#upHead = `${method} ${head.target} HTTP/1.${head.minor}\r\n${forwardLines(head)}\r\n`;
    const up = this.pool.acquire(this.#key);
    this.#sendHead(up);
  }

  /** Writes the request head on `up` (a pooled connection) or a new one. */
  #sendHead(pooled: Upstream | undefined): void {
    let up = pooled;
    if (up === undefined) {
      let sock: Socket;
      try {
        sock = this.ctx.connect(this.info);
      } catch {
        this.#upstreamFailed();
        return;
      }
      up = this.pool.add(sock, this.#key);
    }
    up.owner = this;
    this.#up = up;
    const body = this.#phase === Phase.Body && this.#buf !== undefined;
    if (body) up.sock.cork();
    up.sock.write(this.#upHead, 'latin1');
    if (body) {
      // the body bytes that came with the head go in the same write
      const buf = this.#buf!;
      const n = this.#reqBody!.take(buf, 0);
      this.#buf = n === buf.length ? undefined : buf.subarray(n);
      if (n > 0) this.#toUpstream(n === buf.length ? buf : buf.subarray(0, n));
      up.sock.uncork();
      if (this.#reqBody!.done) {
        this.#reqBody = undefined;
        this.#requestDone = true;
        this.#phase = Phase.Wait;
      }
    }
  }

  #toUpstream(chunk: Buffer): void {
    const up = this.#up!;
    if (!up.sock.write(chunk)) {
      this.sock.pause();
      up.sock.once('drain', () => {
        if (this.#phase !== Phase.Closing) this.sock.resume();
      });
    }
  }

  /** Response bytes from the upstream connection carrying this connection's request. */
  upstreamData(up: Upstream, chunk: Buffer): void {
    if (up !== this.#up) return;
    try {
      if (this.#resBody === undefined) {
        const buf = this.#resBuf === undefined ? chunk : Buffer.concat([this.#resBuf, chunk]);
        this.#resBuf = buf;
        let at = 0;
        for (;;) {
          const rest = at === 0 ? buf : buf.subarray(at);
          const end = headEnd(rest, 'response');
          if (end < 0) {
            this.#resBuf = rest;
            return;
          }
          const head = parseResponseHead(rest, end);
          if (head.status >= 200) {
            this.#resBuf = undefined;
            this.#responseHead(head, rest, end);
            return;
          }
          if (head.status === 101) throw new HttpWireError(502, 'upstream switched protocols unasked');
          this.sock.write(rest.subarray(0, end)); // 100 Continue and other interim answers pass as sent
          at += end;
          if (at === buf.length) {
            this.#resBuf = undefined;
            return;
          }
        }
      }
      this.#responseBody(chunk);
    } catch (err) {
      // a malformed answer: 502 when nothing was sent yet, else the client connection ends
      const e = err instanceof HttpWireError ? err : new HttpWireError(502, String(err));
      this.#recordResponse('error', 502);
      up.owner = undefined;
      up.sock.destroy();
      this.#up = undefined;
      if (this.#resSent) this.sock.destroy();
      else this.#close(plainResponse(502, 'Bad Gateway', `${e.message}\r\n`, true));
    }
  }

  #responseHead(head: ResponseHead, buf: Buffer, end: number): void {
    const noBody = this.#isHead || head.status === 204 || head.status === 304;
    this.#resBody = noBody
      ? BodyFraming.length(0)
      : head.chunked
        ? BodyFraming.chunked()
        : head.contentLength >= 0 && !head.transferEncoding
          ? BodyFraming.length(head.contentLength)
          : BodyFraming.untilClose();
    this.#upReusable =
      head.minor === 1 && this.#protocol === 'HTTP/1.1' && !head.connection.includes('close');
    if (this.#resBody.untilClose) {
      this.#upReusable = false;
      this.#keepAlive = false;
    }
    this.#recordResponse('forwarded', head.status, headerList(head));
    const out = `HTTP/1.1 ${head.status} ${head.reason}\r\n${forwardLines(head)}${this.#keepAlive ? '' : 'connection: close\r\n'}\r\n`;
    this.#resSent = true;
    if (end === buf.length) {
      this.sock.write(out, 'latin1');
      if (this.#resBody.done) this.#responseComplete();
    } else if (buf.length - end <= ONE_WRITE_MAX) this.#responseBody(buf, end, out);
    else {
      this.sock.cork();
      this.sock.write(out, 'latin1');
      this.#responseBody(buf, end);
      this.sock.uncork();
    }
  }

  /** The response's body bytes in `chunk` from `from`, after `head` (written with them) if given. */
  #responseBody(chunk: Buffer, from = 0, head?: string): void {
    const framing = this.#resBody!;
    const n = framing.take(chunk, from);
    if (from + n < chunk.length) this.#upReusable = false; // bytes after the response: not a clean connection
    let out: Buffer | undefined;
    if (head !== undefined) {
      out = Buffer.allocUnsafe(head.length + n);
      out.write(head, 0, 'latin1');
      chunk.copy(out, head.length, from, from + n);
    } else if (n > 0) out = n === chunk.length ? chunk : chunk.subarray(from, from + n);
    if (out !== undefined && !this.sock.write(out)) {
      const up = this.#up!.sock;
      up.pause();
      this.sock.once('drain', () => up.resume());
    }
    if (framing.done) this.#responseComplete();
  }

  #responseComplete(): void {
    this.#responseDone = true;
    const up = this.#up!;
    this.#up = undefined;
    if (!this.#requestDone) {
      // answered before the whole request arrived: the upstream connection is mid-request
      this.#upReusable = false;
      this.#keepAlive = false;
    }
    if (this.#upReusable) {
      up.sock.resume();
      this.pool.release(up);
    } else {
      up.owner = undefined;
      up.sock.destroy();
    }
    if (!this.#keepAlive) this.#close();
    else if (this.#requestDone) this.#next();
  }

  /** The upstream connection closed (or failed) under this connection's request. */
  upstreamClosed(up: Upstream): void {
    if (up !== this.#up || this.#responseDone) return;
    const framing = this.#resBody;
    if (framing?.untilClose) {
      framing.done = true;
      this.#responseComplete();
      return;
    }
    this.#up = undefined;
    if (
      framing === undefined &&
      up.reused &&
      !this.#retried &&
      this.#resBuf === undefined &&
      !this.#reqHadBody
    ) {
      // a pooled connection the server had closed: once more on a new one
      this.#retried = true;
      this.#sendHead(undefined);
      return;
    }
    if (this.#resSent) {
      this.sock.destroy();
      return;
    }
    this.#upstreamFailed();
  }

  /** The request in flight as an L7 record. */
  #recordRequest(verdict: 'forwarded' | 'denied', headers: Headers): void {
    this.ctx.record(this.info, 'request', verdict, this.#method, this.#url, this.#protocol, headers);
  }

  /** The answer to the request in flight (the upstream's, or the proxy's own 403 / 502 / 503) as an L7 record. */
  #recordResponse(verdict: 'forwarded' | 'denied' | 'error', code: number, headers: Headers = []): void {
    this.ctx.record(
      this.info,
      'response',
      verdict,
      this.#method,
      this.#url,
      this.#protocol,
      headers,
      code,
      this.#start,
    );
  }

  /** No upstream answer: 503 as upstream's proxy does, and the client connection closes. */
  #upstreamFailed(): void {
    this.#responseDone = true;
    this.#recordResponse('error', 503);
    this.#resSent = true;
    this.#close(plainResponse(503, 'Service Unavailable', 'upstream connect error\r\n', true));
  }

  /** Ready for the next request: what the client pipelined meanwhile is parsed now. */
  #next(): void {
    this.#phase = Phase.Head;
    this.idleSince = Date.now();
    if (this.sock.isPaused()) this.sock.resume();
    this.#pump();
  }

  /** The client connection ends once `last` and what was written before have gone out. */
  #close(last?: string): void {
    this.#phase = Phase.Closing;
    this.#buf = undefined;
    this.sock.removeListener('data', this.#onData);
    const done = () => this.sock.destroy();
    if (last === undefined) this.sock.end(done);
    else this.sock.end(last, 'latin1', done);
  }

  /** Upgrade / CONNECT: a raw tunnel to the destination when the rules allow the request. */
  #upgrade(head: RequestHead, raw: Buffer, allowed: boolean): void {
    const headers = headerList(head);
    if (!allowed) {
      this.#recordRequest('denied', headers);
      this.#close(plainResponse(403, 'Forbidden', DENIED_BODY, true));
      return;
    }
    this.#phase = Phase.Tunnel;
    this.sock.removeListener('data', this.#onData);
    this.#recordRequest('forwarded', headers);
    let up: Socket;
    try {
      up = this.ctx.connect(this.info);
    } catch {
      this.#upstreamFailed();
      return;
    }
    this.#tunnel = up;
    up.write(raw);
    if (this.#buf !== undefined) up.write(this.#buf);
    this.#buf = undefined;
    up.on('error', () => this.sock.destroy());
    up.on('close', () => this.sock.destroy());
    this.sock.on('error', () => up.destroy());
    up.pipe(this.sock);
    this.sock.pipe(up);
  }
}
