/**
 * Built-in test server and prober (`cilium-ts workload serve|connect`), so lab pods need no images.
 * serve: TCP answers one banner line then echoes (or HTTP 200 with --http), UDP replies to every datagram.
 * connect: exit code 0 = connected (and got an answer), 1 = refused / unreachable / timeout,
 * 2 = not supported (SCTP: Node.js has no SCTP sockets).
 */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  request as httpRequest,
} from 'node:http';
import {
  createServer as createTcpServer,
  isIP,
  isIPv6,
  type Server as TcpServer,
  connect as tcpConnect,
} from 'node:net';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { CiliumTsError } from '../common/errors.js';

export type WorkloadProtocol = 'tcp' | 'udp' | 'sctp';

/** A bad argument (port list, target, duration). */
export class WorkloadUsageError extends CiliumTsError {
  override readonly name = 'WorkloadUsageError';
  override readonly code = 'invalid-argument';
}

/** The requested protocol cannot be served/probed by this implementation. */
export class WorkloadNotSupportedError extends CiliumTsError {
  override readonly name = 'WorkloadNotSupportedError';
  override readonly code = 'not-supported';
  constructor(readonly protocol: WorkloadProtocol) {
    super(`${protocol}: not supported (Node.js has no ${protocol.toUpperCase()} sockets)`);
  }
}

/** A listener could not be opened (port in use, permission, ...). */
export class WorkloadListenError extends CiliumTsError {
  override readonly name = 'WorkloadListenError';
  override readonly code = 'unavailable';
  constructor(
    readonly protocol: WorkloadProtocol,
    readonly port: number,
    readonly errno: string | undefined,
    message: string,
  ) {
    super(`listen ${protocol}/${port}: ${message}`);
  }
}

// ---- argument parsing ----

/** "80,81,8000-8002" → [80, 81, 8000, 8001, 8002]. */
export function parsePorts(s: string | readonly (number | string)[]): number[] {
  const items = typeof s === 'string' ? s.split(',') : s.map(String);
  const out: number[] = [];
  for (const raw of items) {
    const it = raw.trim();
    if (it === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(it);
    if (!m) throw new WorkloadUsageError(`invalid port ${JSON.stringify(it)}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b > 65535 || b < a || b - a > 1024)
      throw new WorkloadUsageError(`invalid port range ${JSON.stringify(it)}`);
    for (let p = a; p <= b; p++) if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** "1s", "500ms", "1.5s", "2m", "3" (seconds), or a number of milliseconds. */
export function parseDuration(d: string | number): number {
  if (typeof d === 'number') return d;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(d.trim());
  if (!m) throw new WorkloadUsageError(`invalid duration ${JSON.stringify(d)} (use e.g. 1s, 500ms)`);
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

/** "10.0.0.1:80", "[fd00::1]:80", "name:80" → host and port. */
export function parseTarget(s: string): { host: string; port: number } {
  let host: string;
  let portText: string;
  const br = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (br) {
    host = br[1]!;
    portText = br[2]!;
  } else {
    const i = s.lastIndexOf(':');
    if (i <= 0)
      throw new WorkloadUsageError(`invalid target ${JSON.stringify(s)} (want HOST:PORT or [IPv6]:PORT)`);
    host = s.slice(0, i);
    portText = s.slice(i + 1);
    if (host.includes(':'))
      throw new WorkloadUsageError(`invalid target ${JSON.stringify(s)}: put IPv6 addresses in brackets`);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
    throw new WorkloadUsageError(`invalid port in ${JSON.stringify(s)}`);
  return { host, port };
}

function fmtTarget(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---- serve ----

export interface ServeOptions {
  tcp?: number[] | string;
  udp?: number[] | string;
  sctp?: number[] | string;
  /** TCP ports speak HTTP/1.1: any request gets 200 and a one-line body. */
  http?: boolean;
  /** Bind address; default "::" (dual stack), falling back to 0.0.0.0 when IPv6 is unavailable. */
  host?: string;
  /** Name in replies; default $POD_NAME, else the host name. */
  name?: string;
  /** Called with one line per event (connection, datagram). */
  log?: (line: string) => void;
}

export interface WorkloadServer {
  name: string;
  tcp: number[];
  udp: number[];
  /** Stop listening and close open connections. */
  close(): Promise<void>;
}

export function banner(name: string, port: number, proto: WorkloadProtocol): string {
  return `hello from ${name} port ${port}/${proto}`;
}

/** Start listeners; resolves once all are bound. On failure, already-open listeners are closed. */
export async function serve(opts: ServeOptions): Promise<WorkloadServer> {
  const tcp = parsePorts(opts.tcp ?? []);
  const udp = parsePorts(opts.udp ?? []);
  const sctp = parsePorts(opts.sctp ?? []);
  if (sctp.length > 0) throw new WorkloadNotSupportedError('sctp');
  if (tcp.length + udp.length === 0)
    throw new WorkloadUsageError('nothing to serve: give --tcp and/or --udp ports');
  const name = opts.name ?? process.env.POD_NAME ?? hostname();
  const log = opts.log ?? (() => {});
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    await Promise.all(closers.map((c) => c().catch(() => {})));
  };
  try {
    for (const port of tcp) closers.push(await listenTcp(port, name, !!opts.http, opts.host, log));
    for (const port of udp) closers.push(await listenUdp(port, name, opts.host, log));
  } catch (e) {
    await close();
    throw e;
  }
  return { name, tcp, udp, close };
}

async function bindWithFallback<T>(host: string | undefined, bind: (h: string) => Promise<T>): Promise<T> {
  if (host) return bind(host);
  try {
    return await bind('::');
  } catch (e) {
    const code = (e as WorkloadListenError).errno;
    if (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL') return bind('0.0.0.0');
    throw e;
  }
}

/** The Star Wars demo's deathstar API, as upstream's deathstar image answers it. */
const DEATHSTAR_API: Readonly<Record<string, string>> = {
  'POST /v1/request-landing': 'Ship landed',
  'PUT /v1/exhaust-port': 'Panic: deathstar exploded',
};

function listenTcp(
  port: number,
  name: string,
  http: boolean,
  host: string | undefined,
  log: (l: string) => void,
): Promise<() => Promise<void>> {
  return bindWithFallback(host, (h) => {
    const server: TcpServer | HttpServer = http
      ? createHttpServer((req, res) => {
          log(`http ${req.socket.remoteAddress} ${req.method} ${req.url} port ${port}`);
          // upstream's deathstar (Star Wars demo) answers its API with these lines
          const deathstar = DEATHSTAR_API[`${req.method} ${req.url}`];
          const body =
            deathstar !== undefined
              ? `${deathstar}\n`
              : `${banner(name, port, 'tcp')} ${req.method} ${req.url}\n`;
          res.writeHead(200, {
            'content-type': 'text/plain',
            'content-length': Buffer.byteLength(body),
            connection: 'close',
          });
          res.end(body);
        })
      : createTcpServer((sock) => {
          log(`tcp ${sock.remoteAddress}:${sock.remotePort} → port ${port}`);
          sock.on('error', () => {});
          // A banner line, then echo: long-lived connections can be kept open and watched.
          sock.write(`${banner(name, port, 'tcp')}\n`);
          sock.pipe(sock);
        });
    const sockets = new Set<import('node:net').Socket>();
    server.on('connection', (s: import('node:net').Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new WorkloadListenError('tcp', port, e.code, e.message)),
      );
      server.listen({ port, host: h, ipv6Only: false }, () => {
        resolve(
          () =>
            new Promise<void>((r) => {
              for (const s of sockets) s.destroy();
              server.close(() => r());
            }),
        );
      });
    });
  });
}

function listenUdp(
  port: number,
  name: string,
  host: string | undefined,
  log: (l: string) => void,
): Promise<() => Promise<void>> {
  return bindWithFallback(host, (h) => {
    const sock: DgramSocket = createSocket({ type: isIP(h) === 4 ? 'udp4' : 'udp6', ipv6Only: false });
    sock.on('message', (msg, rinfo) => {
      log(`udp ${rinfo.address}:${rinfo.port} → port ${port} (${msg.length} bytes)`);
      sock.send(`${banner(name, port, 'udp')}\n`, rinfo.port, rinfo.address);
    });
    return new Promise((resolve, reject) => {
      sock.once('error', (e: NodeJS.ErrnoException) =>
        reject(new WorkloadListenError('udp', port, e.code, e.message)),
      );
      sock.bind({ port, address: h }, () => {
        sock.removeAllListeners('error');
        sock.on('error', () => {});
        resolve(() => new Promise<void>((r) => sock.close(() => r())));
      });
    });
  });
}

// ---- connect ----

export interface ConnectOptions {
  /** "HOST:PORT" or "[IPv6]:PORT". */
  target: string;
  protocol?: WorkloadProtocol;
  /** Overall deadline: "1s", "500ms" or milliseconds. Default 1s. */
  timeout?: string | number;
  /** TCP only: send `GET path` and require a 2xx answer. */
  http?: boolean;
  /** HTTP path, default "/". */
  path?: string;
  /**
   * UDP only: bind this local port. Probers that open many short-lived flows set it so that a new
   * probe never repeats the 5-tuple of a recent one (which a conntrack entry may still remember).
   */
  localPort?: number;
}

export interface ConnectResult {
  /** 0 connected, 1 refused/unreachable/timeout (or non-2xx with http), 2 not supported. */
  exitCode: 0 | 1 | 2;
  /** One line for the user. */
  message: string;
  /** The server's answer (banner line, HTTP body first line, UDP reply). */
  reply?: string;
  /** For http: the status code. */
  status?: number;
  elapsedMs: number;
}

/** Probe a target; never throws for network outcomes (only for bad arguments). */
export async function connect(opts: ConnectOptions): Promise<ConnectResult> {
  const proto = opts.protocol ?? 'tcp';
  const { host, port } = parseTarget(opts.target);
  const timeoutMs = parseDuration(opts.timeout ?? '1s');
  const where = `${fmtTarget(host, port)}/${proto}`;
  const t0 = performance.now();
  const done = (exitCode: 0 | 1 | 2, message: string, extra: Partial<ConnectResult> = {}): ConnectResult => ({
    exitCode,
    message,
    ...extra,
    elapsedMs: Math.round((performance.now() - t0) * 10) / 10,
  });
  if (proto === 'sctp') return done(2, `${where}: ${new WorkloadNotSupportedError('sctp').message}`);
  if (proto !== 'tcp' && proto !== 'udp')
    throw new WorkloadUsageError(`unknown protocol ${JSON.stringify(proto)}`);
  if (proto === 'udp') return connectUdp(host, port, timeoutMs, where, done, opts.localPort);
  if (opts.http) return connectHttp(host, port, opts.path ?? '/', timeoutMs, where, done);
  return connectTcp(host, port, timeoutMs, where, done);
}

type Done = (exitCode: 0 | 1 | 2, message: string, extra?: Partial<ConnectResult>) => ConnectResult;

function failure(where: string, e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return `${where}: connection refused`;
    case 'EHOSTUNREACH':
      return `${where}: host unreachable`;
    case 'ENETUNREACH':
      return `${where}: network unreachable`;
    case 'ECONNRESET':
      return `${where}: connection reset`;
    default:
      return `${where}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' ');
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

function connectTcp(
  host: string,
  port: number,
  timeoutMs: number,
  where: string,
  done: Done,
): Promise<ConnectResult> {
  return new Promise((resolve) => {
    let connected = false;
    let data = '';
    let settled = false;
    const sock = tcpConnect({ host, port });
    const finish = (r: ConnectResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => {
      if (connected) finish(done(0, `connected to ${where} (no reply within ${timeoutMs} ms)`));
      else finish(done(1, `${where}: timeout after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      connected = true;
    });
    sock.on('data', (d: string) => {
      data += d;
      if (data.includes('\n'))
        finish(done(0, `connected to ${where}: ${firstLine(data)}`, { reply: firstLine(data) }));
    });
    sock.on('end', () => {
      const r = firstLine(data);
      finish(done(0, r ? `connected to ${where}: ${r}` : `connected to ${where}`, r ? { reply: r } : {}));
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (connected && e.code === 'ECONNRESET' && data)
        finish(done(0, `connected to ${where}: ${firstLine(data)}`));
      else finish(done(1, failure(where, e)));
    });
  });
}

function connectHttp(
  host: string,
  port: number,
  path: string,
  timeoutMs: number,
  where: string,
  done: Done,
): Promise<ConnectResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: ConnectResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = httpRequest({ host, port, path, method: 'GET', headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const line = `HTTP ${status}${body ? `: ${firstLine(body)}` : ''}`;
        const ok = status >= 200 && status < 300;
        finish(
          done(ok ? 0 : 1, `${ok ? 'connected to ' : ''}${where} GET ${path}: ${line}`, {
            status,
            reply: firstLine(body),
          }),
        );
      });
      res.on('error', (e: NodeJS.ErrnoException) => finish(done(1, failure(where, e))));
    });
    const timer = setTimeout(
      () => finish(done(1, `${where} GET ${path}: timeout after ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (e: NodeJS.ErrnoException) => finish(done(1, failure(where, e))));
    req.end();
  });
}

function connectUdp(
  host: string,
  port: number,
  timeoutMs: number,
  where: string,
  done: Done,
  localPort?: number,
): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const fam = isIP(host);
    const sock = createSocket(fam === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const finish = (r: ConnectResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(r);
    };
    const timer = setTimeout(() => finish(done(1, `${where}: no reply within ${timeoutMs} ms`)), timeoutMs);
    sock.on('message', (msg) => {
      const r = firstLine(msg.toString('utf8'));
      finish(done(0, `connected to ${where}: ${r}`, { reply: r }));
    });
    // On a connected UDP socket, ICMP port-unreachable surfaces as ECONNREFUSED.
    sock.on('error', (e: NodeJS.ErrnoException) => finish(done(1, failure(where, e))));
    const go = () =>
      sock.connect(port, host, () => {
        sock.send('ping\n', (err) => {
          if (err) finish(done(1, failure(where, err as NodeJS.ErrnoException)));
        });
      });
    if (localPort === undefined) go();
    else sock.bind(localPort, go);
  });
}
