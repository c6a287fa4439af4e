/**
 * The HTTP/1.1 wire parser of the proxy: heads parsed from bytes, strict refusals that name what
 * is wrong (request smuggling shapes among them), and body framing walked across arbitrary splits.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  BodyFraming,
  HttpWireError,
  headEnd,
  headerValue,
  MAX_HEAD_BYTES,
  parseRequestHead,
  parseResponseHead,
} from '../../../src/proxy/http/h1-wire.js';

const req = (s: string) => {
  const b = Buffer.from(s, 'latin1');
  const end = headEnd(b, 'request');
  assert.ok(end > 0, 'head complete');
  return parseRequestHead(b, end);
};

const refused = (s: string, status: number, why: RegExp) =>
  assert.throws(
    () => req(s),
    (e: unknown) => e instanceof HttpWireError && e.status === status && why.test(e.message),
    s,
  );

describe('HTTP/1.1 heads', () => {
  it('parses a request head: method, target, version, headers in order, framing', () => {
    const wire =
      'POST /v1/request-landing?x=1 HTTP/1.1\r\nHost: deathstar\r\nX-Rank:  captain \r\nX-Rank: ensign\r\nContent-Length: 12\r\nConnection: keep-alive, X-Drop\r\n\r\nbody...';
    const h = req(wire);
    assert.equal(h.method, 'POST');
    assert.equal(h.target, '/v1/request-landing?x=1');
    assert.equal(h.minor, 1);
    assert.deepEqual(h.names, ['host', 'x-rank', 'x-rank', 'content-length', 'connection']);
    assert.deepEqual(h.rawNames.slice(0, 2), ['Host', 'X-Rank']);
    assert.equal(h.values[1], 'captain');
    assert.equal(headerValue(h, 'x-rank'), 'captain, ensign');
    assert.equal(headerValue(h, 'absent'), undefined);
    assert.equal(h.contentLength, 12);
    assert.equal(h.chunked, false);
    assert.deepEqual(h.connection, ['keep-alive', 'x-drop']);
    assert.equal(h.size, wire.indexOf('body...'));
    const c = req('GET / HTTP/1.0\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n');
    assert.equal(c.minor, 0);
    assert.equal(c.chunked, true);
    assert.equal(c.contentLength, -1);
    // empty lines a keep-alive client left after a body are skipped
    assert.equal(req('\r\n\r\nGET /a HTTP/1.1\r\n\r\n').target, '/a');
  });

  it('refuses malformed and ambiguous requests, naming the problem', () => {
    refused('GET / HTTP/2.0\r\n\r\n', 400, /request line/);
    refused('GET  / HTTP/1.1\r\n\r\n', 400, /request line/);
    refused('GET /a b HTTP/1.1\r\n\r\n', 400, /request line/);
    refused('G(T / HTTP/1.1\r\n\r\n', 400, /request line/);
    refused('GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400, /line 2 has whitespace before a header colon/);
    refused('GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n', 400, /line 3 has a folded header line/);
    refused('GET / HTTP/1.1\r\nNoColon\r\n\r\n', 400, /without a colon/);
    refused('GET / HTTP/1.1\r\nBad[name]: 1\r\n\r\n', 400, /invalid header name/);
    refused('GET / HTTP/1.1\r\nX: a\nb\r\n\r\n', 400, /control character/);
    refused('GET / HTTP/1.1\r\nX: a\rb\r\n\r\n', 400, /control character/);
    refused('GET / HTTP/1.1\r\nX: a\0b\r\n\r\n', 400, /control character/);
    refused('GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 400, /invalid Content-Length "-1"/);
    refused('GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n', 400, /invalid Content-Length/);
    refused('GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400, /differing/);
    refused('GET / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n', 400, /differing/);
    refused(
      'POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n',
      400,
      /both Content-Length and Transfer-Encoding/,
    );
    refused('POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400, /does not end in chunked/);
    // the same Content-Length twice is one value
    assert.equal(req('GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n').contentLength, 3);
  });

  it('waits for a whole head and refuses one larger than the limit', () => {
    assert.equal(headEnd(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n'), 'request'), -1);
    const big = Buffer.from(`GET /${'a'.repeat(MAX_HEAD_BYTES)} HTTP/1.1\r\n`);
    assert.throws(
      () => headEnd(big, 'request'),
      (e: unknown) => e instanceof HttpWireError && e.status === 431,
    );
  });

  it('parses response heads; a Transfer-Encoding overrides Content-Length; bad ones are 502', () => {
    const b = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok');
    const r = parseResponseHead(b, headEnd(b, 'response'));
    assert.equal(r.status, 200);
    assert.equal(r.reason, 'OK');
    assert.equal(r.contentLength, 2);
    const n = Buffer.from('HTTP/1.1 204\r\n\r\n');
    assert.equal(parseResponseHead(n, n.length).reason, '');
    const t = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n');
    const tr = parseResponseHead(t, t.length);
    assert.equal(tr.chunked, true);
    assert.equal(tr.contentLength, -1);
    for (const line of [
      'HTTP/1.1 2000 OK',
      'HTTP/1.2 200 OK',
      'HTTP/1.1 200\tOK',
      'HTTP/1.1 200 O\x01K',
      'HTTP/1.1 20',
    ]) {
      const w = Buffer.from(`${line}\r\n\r\n`, 'latin1');
      assert.throws(
        () => parseResponseHead(w, w.length),
        (e: unknown) => e instanceof HttpWireError && e.status === 502 && /status line/.test(e.message),
        line,
      );
    }
    // values keep tabs inside and obs-text bytes, lose the blanks around them; names are lower-cased
    const v = Buffer.from('HTTP/1.0 404 Not Found\r\nX-Note: \ta\tb\xe9 \t\r\nEMPTY:\r\n\r\n', 'latin1');
    const vr = parseResponseHead(v, headEnd(v, 'response'));
    assert.deepEqual([vr.status, vr.reason, vr.minor], [404, 'Not Found', 0]);
    assert.deepEqual(vr.names, ['x-note', 'empty']);
    assert.deepEqual(vr.values, ['a\tb\xe9', '']);
    const bad = Buffer.from('HTTP/1.1 99 Weird\r\n\r\n');
    assert.throws(
      () => parseResponseHead(bad, bad.length),
      (e: unknown) => e instanceof HttpWireError && e.status === 502 && /status line/.test(e.message),
    );
  });
});

describe('HTTP/1.1 body framing', () => {
  /** Feeds `wire` in pieces of random sizes; returns the body length found and what is left after it. */
  const walk = (f: BodyFraming, wire: Buffer) => {
    let at = 0;
    while (at < wire.length && !f.done) {
      const piece = wire.subarray(at, Math.min(wire.length, at + 1 + Math.floor(Math.random() * 9)));
      const n = f.take(piece, 0);
      at += n;
      if (n < piece.length) break;
    }
    return { body: at, rest: wire.subarray(at).toString() };
  };

  it('Content-Length: exactly n bytes, the rest is the next message', () => {
    const f = BodyFraming.length(5);
    assert.deepEqual(walk(f, Buffer.from('hellonext')), { body: 5, rest: 'next' });
    assert.equal(f.done, true);
    assert.equal(BodyFraming.length(0).done, true);
  });

  it('chunked: sizes, extensions, data, trailers, across any split', () => {
    const body = randomBytes(3000);
    const wire = Buffer.concat([
      Buffer.from('a;name=value\r\n'),
      body.subarray(0, 10),
      Buffer.from('\r\nbAe\r\n'),
      body.subarray(10),
      Buffer.from('\r\n0\r\nX-Trailer: 1\r\n\r\nGET /next'),
    ]);
    for (let i = 0; i < 20; i++) {
      const f = BodyFraming.chunked();
      assert.deepEqual(walk(f, wire), { body: wire.length - 'GET /next'.length, rest: 'GET /next' });
      assert.equal(f.done, true);
    }
  });

  it('chunked: malformed framing is refused with a reason', () => {
    for (const [wire, why] of [
      ['ZZZ\r\n', /no hex digits/],
      ['5\nhello', /CRLF/],
      ['5\r\nhelloX', /not followed by CRLF/],
      ['FFFFFFFFFFFFFF\r\n', /too large/],
      ['5 x\x01\r\n', /extension/],
      ['0\r\nbad\nline\r\n', /trailer/],
    ] as const) {
      const f = BodyFraming.chunked();
      assert.throws(
        () => f.take(Buffer.from(wire), 0),
        (e: unknown) => e instanceof HttpWireError && e.status === 400 && why.test(e.message),
        wire,
      );
    }
  });

  it('to the connection end: everything is body', () => {
    const f = BodyFraming.untilClose();
    assert.equal(f.take(Buffer.from('abc'), 1), 2);
    assert.equal(f.done, false);
    assert.equal(f.untilClose, true);
  });
});
