/**
 * The HTTP proxy with real clients and servers on loopback (no datapath: a plain listener, the
 * connection's redirect record given by the test): each rule kind, denied and allowed requests on
 * one keep-alive connection, chunked and large bodies streamed both ways, upgrades refused unless
 * allowed, HTTP/2 and gRPC (grpc-status 7 PERMISSION_DENIED), L7 records for Hubble, and fuzzed
 * random / truncated input that must neither crash nor stall the proxy. HTTP/1.1 on the wire against
 * a raw upstream: pipelining, hop-by-hop headers, upstream reuse and retry, HTTP/1.0, 100 Continue,
 * malformed requests (400 naming the problem) and upstream answers (502), upstream down (503).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  Agent,
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
} from 'node:http';
import { createServer as createH2Server, type Http2Server, connect as h2connect } from 'node:http2';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { HttpRule, L7Decision } from '../../../src/policy/l7.js';
import type { L7Record, ProxyHost, RedirectInfo } from '../../../src/proxy/framework.js';
import { DENIED_BODY, HttpProxy } from '../../../src/proxy/http/proxy.js';

const rule = (r: Partial<HttpRule>): HttpRule => ({ headers: [], ...r });

interface Harness {
  proxy: HttpProxy;
  records: L7Record[];
  setRules(rules: HttpRule[] | 'allow-all'): void;
  close(): Promise<void>;
}

/** The proxy in front of `upstreamPort` on 127.0.0.1, enforcing the rules set last. */
async function harness(upstreamPort: () => number): Promise<Harness> {
  let decision: L7Decision = { kind: 'deny' };
  const records: L7Record[] = [];
  const info = (client: { address: string; port: number }): RedirectInfo => ({
    protocol: 'tcp',
    client,
    original: { address: '127.0.0.1', port: upstreamPort() },
    endpointId: 7,
    egress: false,
    srcIdentity: 1001,
    dstIdentity: 1002,
    proxyPort: 0,
  });
  const host: ProxyHost = {
    redirect: (_p, client) => info(client),
    rules: () => decision,
    connectUpstream: (i) => connect(i.original.port, i.original.address),
    emit: (r) => records.push(r),
  };
  const proxy = new HttpProxy({ transparent: false });
  await proxy.start(host, 0);
  return {
    proxy,
    records,
    setRules: (rules) => {
      decision =
        rules === 'allow-all'
          ? { kind: 'allow-all' }
          : { kind: 'rules', rules: [{ parser: 'http', http: rules }] };
    },
    close: () => proxy.stop(),
  };
}

interface Reply {
  status: number;
  body: string;
  localPort: number;
  headers: IncomingMessage['headers'];
}

function send(
  port: number,
  opts: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: Buffer | string;
    agent?: Agent;
  },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: opts.agent ?? new Agent({ keepAlive: false }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        const localPort = res.socket.localPort ?? 0;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            localPort,
            headers: res.headers,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('HTTP proxy (HTTP/1.1)', () => {
  let upstream: Server;
  let h: Harness;
  let upstreamPort = 0;

  before(async () => {
    upstream = createHttpServer((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
      });
      req.on('end', () => {
        if (req.url === '/big') {
          // 32 MiB in 64 KiB chunks, chunked encoding
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          let left = 512;
          const chunk = Buffer.alloc(65536, 7);
          const pump = () => {
            while (left > 0) {
              left--;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            res.end();
          };
          pump();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'yes' });
        res.end(
          `${req.method} ${req.url} host=${req.headers.host} got=${n} te=${req.headers['transfer-encoding'] ?? ''}`,
        );
      });
    });
    upstream.on('upgrade', (_req, sock: Socket) => {
      sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
      sock.pipe(sock);
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamPort = (upstream.address() as AddressInfo).port;
    h = await harness(() => upstreamPort);
  });

  after(async () => {
    await h.close();
    upstream.close();
  });

  it('denies with 403 Access denied and serves the next request on the same connection', async () => {
    h.setRules([rule({ method: 'GET', path: '/public' })]);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const a = await send(h.proxy.port, { path: '/public', agent });
    const d = await send(h.proxy.port, { method: 'PUT', path: '/public', agent });
    const b = await send(h.proxy.port, { path: '/public', agent });
    agent.destroy();
    assert.equal(a.status, 200);
    assert.match(a.body, /^GET \/public host=127\.0\.0\.1:\d+ got=0/);
    assert.equal(a.headers['x-upstream'], 'yes');
    assert.equal(d.status, 403);
    assert.equal(d.body, DENIED_BODY);
    assert.equal(DENIED_BODY, 'Access denied\r\n');
    assert.equal(b.status, 200);
    assert.equal(a.localPort, d.localPort);
    assert.equal(d.localPort, b.localPort);
  });

  it('matches method, path, host as full regular expressions and headers by presence or value', async () => {
    const cases: [HttpRule, Parameters<typeof send>[1], number][] = [
      [rule({ path: '/public' }), { path: '/public/x' }, 403], // full match
      [rule({ path: '/public.*' }), { path: '/public/x?y=1' }, 200], // query string is part of the path
      [rule({ path: '/a' }), { path: '/a?x=1' }, 403],
      [rule({ method: 'GET|HEAD' }), { method: 'HEAD' }, 200],
      [rule({ method: 'GE' }), { method: 'GET' }, 403],
      [
        rule({ host: 'deathstar\\.default\\.svc(:80)?' }),
        { headers: { host: 'deathstar.default.svc' } },
        200,
      ],
      [rule({ host: 'deathstar' }), { headers: { host: 'deathstar.evil' } }, 403],
      [rule({ headers: [{ name: 'X-Has-Force' }] }), { headers: { 'x-has-force': 'anything' } }, 200],
      [rule({ headers: [{ name: 'X-Has-Force' }] }), {}, 403],
      [rule({ headers: [{ name: 'X-Rank', value: 'captain' }] }), { headers: { 'x-rank': 'captain' } }, 200],
      [rule({ headers: [{ name: 'X-Rank', value: 'captain' }] }), { headers: { 'x-rank': 'ensign' } }, 403],
      // fields ANDed
      [rule({ method: 'POST', path: '/land' }), { method: 'GET', path: '/land' }, 403],
      [rule({ method: 'POST', path: '/land' }), { method: 'POST', path: '/land' }, 200],
      // an empty rule allows all
      [rule({}), { method: 'DELETE', path: '/anything' }, 200],
    ];
    for (const [r, req, want] of cases) {
      h.setRules([r]);
      const got = await send(h.proxy.port, req);
      assert.equal(got.status, want, `${JSON.stringify(r)} ${JSON.stringify(req)}`);
    }
    // rules ORed
    h.setRules([rule({ path: '/a' }), rule({ path: '/b' })]);
    assert.equal((await send(h.proxy.port, { path: '/b' })).status, 200);
    assert.equal((await send(h.proxy.port, { path: '/c' })).status, 403);
    // an L4-only allow on the port: everything
    h.setRules('allow-all');
    assert.equal((await send(h.proxy.port, { method: 'PATCH', path: '/c' })).status, 200);
  });

  it('streams a chunked request body and a large response', async () => {
    h.setRules([rule({})]);
    const body = randomBytes(3 * 1024 * 1024);
    const up = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: h.proxy.port, method: 'POST', path: '/upload', agent: new Agent() },
        (res) => {
          let s = '';
          res.on('data', (c) => {
            s += c;
          });
          res.on('end', () => resolve(s));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < body.length; i += 100_000) req.write(body.subarray(i, i + 100_000));
      req.end();
    });
    assert.match(up, new RegExp(`got=${body.length} te=chunked`));
    const big = await new Promise<number>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: h.proxy.port, path: '/big', agent: new Agent() }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
        });
        res.on('end', () => resolve(n));
      })
        .on('error', reject)
        .end();
    });
    assert.equal(big, 512 * 65536);
  });

  it('refuses an upgrade the rules deny and tunnels one they allow', async () => {
    const upgrade = async () => {
      const s = connect(h.proxy.port, '127.0.0.1');
      await once(s, 'connect');
      s.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
      let text = '';
      s.on('data', (c) => {
        text += c;
        if (text.includes('\r\n\r\n') && text.startsWith('HTTP/1.1 101')) s.write('ping');
      });
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (text.includes('ping') || s.destroyed || text.includes('Access denied')) {
            clearInterval(t);
            resolve();
          }
        }, 10);
      });
      s.destroy();
      return text;
    };
    h.setRules([rule({ path: '/other' })]);
    const refused = await upgrade();
    assert.match(refused, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(refused, /Access denied/);
    h.setRules([rule({ path: '/ws' })]);
    const ok = await upgrade();
    assert.match(ok, /^HTTP\/1\.1 101/);
    assert.match(ok, /ping$/);
  });

  it('reports requests and responses for Hubble, denied ones as denied', async () => {
    h.records.length = 0;
    h.setRules([rule({ method: 'POST' })]);
    await send(h.proxy.port, { method: 'POST', path: '/v1/request-landing', headers: { host: 'deathstar' } });
    await send(h.proxy.port, { method: 'PUT', path: '/v1/exhaust-port', headers: { host: 'deathstar' } });
    const brief = h.records.map(
      (r) => `${r.type} ${r.verdict} ${r.http?.method} ${r.http?.url} ${r.http?.code ?? ''}`,
    );
    assert.deepEqual(brief, [
      'request forwarded POST http://deathstar/v1/request-landing ',
      'response forwarded POST http://deathstar/v1/request-landing 200',
      'request denied PUT http://deathstar/v1/exhaust-port ',
      'response denied PUT http://deathstar/v1/exhaust-port 403',
    ]);
    assert.ok(h.records[1]!.latencyNs! > 0n);
    assert.equal(h.records[0]!.http!.protocol, 'HTTP/1.1');
    assert.equal(h.records[0]!.info.srcIdentity, 1001);
  });

  it('survives random and truncated input: every connection ends, the proxy keeps serving', async () => {
    h.setRules([rule({})]);
    const valid = Buffer.from(
      'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    const inputs: Buffer[] = [];
    for (let i = 0; i < 60; i++) inputs.push(randomBytes(1 + Math.floor(Math.random() * 600)));
    for (let i = 1; i < valid.length; i += 7) inputs.push(valid.subarray(0, i)); // truncated
    inputs.push(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n'));
    inputs.push(Buffer.from(`GET /${'a'.repeat(100_000)} HTTP/1.1\r\n\r\n`));
    inputs.push(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n'));
    inputs.push(Buffer.from('\0\0\0\0PRI * HTTP/2.0\r\n'));
    inputs.push(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff'));
    await Promise.all(
      inputs.map(async (buf) => {
        const s = connect(h.proxy.port, '127.0.0.1');
        s.on('error', () => {});
        s.resume();
        await once(s, 'connect');
        s.end(buf);
        const closed = once(s, 'close');
        const timer = new Promise((_, reject) =>
          setTimeout(
            () => reject(new Error(`stalled on ${JSON.stringify(buf.subarray(0, 40).toString('latin1'))}`)),
            10_000,
          ),
        );
        await Promise.race([closed, timer]);
      }),
    );
    const after = await send(h.proxy.port, { path: '/still-here' });
    assert.equal(after.status, 200);
    for (let i = 0; i < 100 && h.proxy.connections() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.proxy.connections(), 0);
  });
});

describe('HTTP proxy (HTTP/1.1 on the wire)', () => {
  /** A raw upstream: each accepted connection is handed to `serve` (what the test wants it to do). */
  let serve: (s: Socket, n: number) => void = () => {};
  let accepted = 0;
  let upstream: ReturnType<typeof createNetServer>;
  let h: Harness;
  let upstreamPort = 0;
  const open = new Set<Socket>();

  // each test starts without pooled upstream connections: its requests reach the server it sets
  beforeEach(async () => {
    for (const s of open) s.destroy();
    for (let i = 0; i < 250 && h.proxy.pooled() > 0; i++) await new Promise((r) => setTimeout(r, 20));
  });

  before(async () => {
    upstream = createNetServer((s) => {
      s.on('error', () => {});
      open.add(s);
      s.on('close', () => open.delete(s));
      serve(s, accepted++);
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamPort = (upstream.address() as AddressInfo).port;
    h = await harness(() => upstreamPort);
  });

  after(async () => {
    await h.close();
    upstream.close();
  });

  /** Answers each request head with 200 and `<n>:<request line>|<headers seen>`. */
  const echo = (s: Socket, n: number) => {
    let buf = '';
    s.on('data', (c) => {
      buf += c;
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, i).split('\r\n');
        buf = buf.slice(i + 4);
        const body = `${n}:${head[0]}|${head.slice(1).join(';')}`;
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`);
      }
    });
  };

  /** Writes `wire` on a new connection and collects what comes back until the proxy closes it or `until` matches. */
  const exchange = async (wire: string | string[], until?: RegExp) => {
    const s = connect(h.proxy.port, '127.0.0.1');
    s.on('error', () => {});
    await once(s, 'connect');
    let got = '';
    s.on('data', (c) => {
      got += c;
    });
    for (const w of Array.isArray(wire) ? wire : [wire]) {
      s.write(w);
      await new Promise((r) => setTimeout(r, 20));
    }
    for (let i = 0; i < 500 && !s.destroyed && !(until?.test(got) ?? false); i++)
      await new Promise((r) => setTimeout(r, 20));
    const closed = s.destroyed || s.readableEnded;
    s.destroy();
    return { got, closed };
  };

  it('answers pipelined requests in order, denied ones with 403, on one connection', async () => {
    serve = echo;
    h.setRules([rule({ method: 'GET' })]);
    const r = await exchange(
      'GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\n\r\n',
      /GET \/c HTTP/,
    );
    const statuses = [...r.got.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '403', '200']);
    assert.match(r.got, /:GET \/a HTTP\/1\.1\|[\s\S]*Access denied\r\n[\s\S]*:GET \/c HTTP\/1\.1\|/);
    assert.equal(r.closed, false);
  });

  it('drops hop-by-hop headers and those Connection lists, keeps the rest as sent', async () => {
    serve = echo;
    h.setRules('allow-all');
    const r = await exchange(
      'GET /h HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Keep: Yes\r\n\r\n',
      /X-Keep/,
    );
    assert.match(r.got, /\|Host: x;X-Keep: Yes$/);
  });

  it('reuses an upstream connection across requests and client connections', async () => {
    serve = echo;
    h.setRules('allow-all');
    const first = Number(/\r\n\r\n(\d+):/.exec((await exchange('GET /1 HTTP/1.1\r\n\r\n', /:GET/)).got)?.[1]);
    const again = await exchange(['GET /2 HTTP/1.1\r\n\r\n', 'GET /3 HTTP/1.1\r\n\r\n'], /:GET \/3/);
    assert.deepEqual(
      [...again.got.matchAll(/\r\n\r\n(\d+):/g)].map((m) => Number(m[1])),
      [first, first],
    );
  });

  it('an HTTP/1.0 request is answered and its connection closes', async () => {
    serve = (s) =>
      s.once('data', (c) => {
        assert.match(String(c), /^GET \/old HTTP\/1\.0\r\n/);
        s.end('HTTP/1.0 200 OK\r\n\r\nold style body, ends with the connection');
      });
    h.setRules('allow-all');
    const r = await exchange('GET /old HTTP/1.0\r\n\r\n');
    assert.match(
      r.got,
      /^HTTP\/1\.1 200 OK\r\n[\s\S]*connection: close\r\n\r\nold style body, ends with the connection$/,
    );
    assert.equal(r.closed, true);
  });

  it('passes 100 Continue through before the body is sent', async () => {
    serve = (s) => {
      let buf = '';
      s.on('data', (c) => {
        buf += c;
        if (buf.endsWith('\r\n\r\n') && !buf.includes('hello')) s.write('HTTP/1.1 100 Continue\r\n\r\n');
        if (buf.endsWith('hello')) s.write('HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
      });
    };
    h.setRules('allow-all');
    const s = connect(h.proxy.port, '127.0.0.1');
    await once(s, 'connect');
    s.write('PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    let got = '';
    s.on('data', (c) => {
      got += c;
      if (got === 'HTTP/1.1 100 Continue\r\n\r\n') s.write('hello');
    });
    for (let i = 0; i < 500 && !got.endsWith('ok'); i++) await new Promise((r) => setTimeout(r, 20));
    s.destroy();
    assert.match(got, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 Created\r\n[\s\S]*\r\n\r\nok$/);
  });

  it('retries once on a new connection when a pooled one was closed by its server', async () => {
    // the first connection answers one request and then closes on the next one unanswered; later
    // connections answer everything
    serve = (s) => {
      serve = echo;
      let answered = false;
      s.on('data', () => {
        if (!answered) {
          answered = true;
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst`);
        } else s.destroy();
      });
    };
    h.setRules('allow-all');
    const a = await exchange('GET /one HTTP/1.1\r\n\r\n', /first/);
    assert.match(a.got, /first$/);
    const b = await exchange('GET /two HTTP/1.1\r\n\r\n', /:GET \/two/);
    assert.match(b.got, /^HTTP\/1\.1 200 OK\r\n[\s\S]*:GET \/two HTTP\/1\.1/);
  });

  it('refuses malformed requests with 400 naming the problem, and closes', async () => {
    serve = echo;
    h.setRules('allow-all');
    const cases: [string, RegExp][] = [
      [
        'POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n',
        /both Content-Length and Transfer-Encoding/,
      ],
      ['GET / HTTP/1.1\r\nHost : x\r\n\r\n', /whitespace before a header colon/],
      ['GET /\r\n\r\n', /malformed request line/],
      ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnope\r\n', /invalid chunk size/],
    ];
    for (const [wire, why] of cases) {
      const r = await exchange(wire);
      assert.match(r.got, /^HTTP\/1\.1 400 Bad Request\r\n/, wire);
      assert.match(r.got, why, wire);
      assert.equal(r.closed, true, wire);
    }
  });

  it('a malformed upstream answer is 502, an upstream that refuses connections 503', async () => {
    serve = (s) => s.once('data', () => s.end('HTTP/1.1 OK\r\n\r\n'));
    h.setRules('allow-all');
    h.records.length = 0;
    const bad = await exchange('GET /bad HTTP/1.1\r\n\r\n');
    assert.match(bad.got, /^HTTP\/1\.1 502 Bad Gateway\r\n[\s\S]*malformed upstream status line/);
    const closed = createNetServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    const saved = upstreamPort;
    upstreamPort = port;
    try {
      const down = await exchange('GET /down HTTP/1.1\r\n\r\n');
      assert.match(down.got, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*upstream connect error/);
      assert.equal(down.closed, true);
    } finally {
      upstreamPort = saved;
    }
    assert.deepEqual(
      h.records.filter((x) => x.type === 'response').map((x) => `${x.verdict} ${x.http?.code}`),
      ['error 502', 'error 503'],
    );
  });
});

describe('HTTP proxy (HTTP/2 and gRPC)', () => {
  let h2: Http2Server;
  let grpcServer: grpc.Server;
  let h2Port = 0;
  let grpcPort = 0;
  let target = 0;
  let h: Harness;

  const passthrough = (b: Buffer) => b;
  const def: grpc.ServiceDefinition = {
    Land: {
      path: '/empire.Deathstar/Land',
      requestStream: false,
      responseStream: false,
      requestSerialize: passthrough,
      requestDeserialize: passthrough,
      responseSerialize: passthrough,
      responseDeserialize: passthrough,
    },
    ExhaustPort: {
      path: '/empire.Deathstar/ExhaustPort',
      requestStream: false,
      responseStream: false,
      requestSerialize: passthrough,
      requestDeserialize: passthrough,
      responseSerialize: passthrough,
      responseDeserialize: passthrough,
    },
  };

  before(async () => {
    h2 = createH2Server();
    h2.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`h2 ${headers[':method']} ${headers[':path']}`);
    });
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    h2Port = (h2.address() as AddressInfo).port;
    grpcServer = new grpc.Server();
    const reply =
      (text: string) => (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
        cb(null, Buffer.concat([Buffer.from(text), call.request]));
    grpcServer.addService(def, { Land: reply('landed:'), ExhaustPort: reply('boom:') });
    grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    h = await harness(() => target);
  });

  after(async () => {
    await h.close();
    h2.close();
    grpcServer.forceShutdown();
  });

  it('HTTP/2: allowed and denied streams on one session', async () => {
    target = h2Port;
    h.setRules([rule({ method: 'GET', path: '/allowed' })]);
    const session = h2connect(`http://127.0.0.1:${h.proxy.port}`);
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = session.request({ ':method': 'GET', ':path': path });
        let status = 0;
        let body = '';
        s.on('response', (hd) => {
          status = Number(hd[':status']);
        });
        s.on('data', (c) => {
          body += c;
        });
        s.on('end', () => resolve({ status, body }));
        s.on('error', reject);
        s.end();
      });
    const a = await get('/allowed');
    const d = await get('/secret');
    const b = await get('/allowed');
    session.close();
    assert.deepEqual(a, { status: 200, body: 'h2 GET /allowed' });
    assert.deepEqual(d, { status: 403, body: DENIED_BODY });
    assert.deepEqual(b, a);
  });

  it('gRPC: an allowed method is served, a denied one gets PERMISSION_DENIED', async () => {
    target = grpcPort;
    h.setRules([rule({ method: 'POST', path: '/empire\\.Deathstar/Land' })]);
    const Client = grpc.makeGenericClientConstructor(def, 'Deathstar');
    const client = new Client(`127.0.0.1:${h.proxy.port}`, grpc.credentials.createInsecure());
    const call = (m: 'Land' | 'ExhaustPort') =>
      new Promise<{ err: grpc.ServiceError | null; res?: Buffer }>((resolve) =>
        (
          client as unknown as Record<
            string,
            (b: Buffer, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void
          >
        )[m]!(Buffer.from('tie-1'), (err, res) => resolve(res === undefined ? { err } : { err, res })),
      );
    const ok = await call('Land');
    const denied = await call('ExhaustPort');
    const again = await call('Land');
    client.close();
    assert.equal(ok.err, null);
    assert.equal(ok.res?.toString(), 'landed:tie-1');
    assert.equal(denied.err?.code, grpc.status.PERMISSION_DENIED);
    assert.equal(again.res?.toString(), 'landed:tie-1');
    const grpcRecords = h.records.filter((r) => r.http?.url.includes('empire.Deathstar'));
    assert.ok(grpcRecords.some((r) => r.verdict === 'denied' && r.http?.protocol === 'HTTP/2'));
  });
});
