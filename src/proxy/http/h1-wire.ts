/**
 * HTTP/1.1 on the wire, as strict as the proxy needs it (RFC 9112): request and response heads
 * parsed from bytes, and the framing of a message body (Content-Length or chunked) found without
 * copying it, so the proxy forwards bodies byte for byte and knows where the next message starts.
 *
 * Strict on purpose: a request that two parsers could read differently (request smuggling) is
 * refused rather than guessed at: both Content-Length and Transfer-Encoding, differing
 * Content-Lengths, a Transfer-Encoding not ending in chunked, bare CR or LF, folded header lines,
 * control characters, whitespace before a header's colon. Every refusal names what was wrong.
 */

/** A request or response the proxy refuses: the HTTP status to answer with and why. */
export class HttpWireError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpWireError';
  }
}

/** Largest request or response head (request line and headers): as Node's default. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded from one connection to the next. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
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

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** token (RFC 9110 §5.6.2): a method or a header name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** The bytes of a token, as a table: heads are scanned character by character, not by regular expressions. */
const TOKEN_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TOKEN_CHAR[c.charCodeAt(0)] = 1;
/** A character a field value or reason phrase may not hold: controls but tab (bare CR and LF among them). */
const isCtl = (c: number) => (c < 0x20 && c !== 0x09) || c === 0x7f;
const isBlank = (c: number) => c === 0x20 || c === 0x09;

/** Why a header line is malformed (the slow path: only for a line the scan refused). */
function whyMalformed(line: string): string {
  return line.startsWith(' ') || line.startsWith('\t')
    ? 'a folded header line (obs-fold)'
    : /^[^:]*[ \t]:/.test(line)
      ? 'whitespace before a header colon'
      : !line.includes(':')
        ? 'a header line without a colon'
        : !TOKEN.test(line.slice(0, line.indexOf(':')))
          ? `an invalid header name ${JSON.stringify(line.slice(0, Math.min(40, line.indexOf(':'))))}`
          : 'a control character (or bare CR/LF) in a header value';
}

/**
 * Header names most heads carry, as sent in their usual spellings, each with its lower-cased form:
 * a head's names are these shared strings rather than new ones per request (the L7 flows the ring
 * holds keep them).
 */
const COMMON_NAMES = new Map<string, readonly [raw: string, name: string]>();
for (const n of [
  'Host',
  'Connection',
  'Keep-Alive',
  'Content-Length',
  'Content-Type',
  'Transfer-Encoding',
  'Date',
  'User-Agent',
  'Accept',
  'Accept-Encoding',
  'Accept-Language',
  'Cache-Control',
  'Authorization',
  'Cookie',
  'Set-Cookie',
  'Server',
  'Location',
  'Expect',
  'Upgrade',
  'ETag',
  'Last-Modified',
  'Vary',
]) {
  const lower = n.toLowerCase();
  COMMON_NAMES.set(n, [n, lower]);
  COMMON_NAMES.set(lower, [lower, lower]);
}

/** `s` as a Content-Length value: 1 to 15 digits, else -1. */
function digits(s: string): number {
  if (s.length === 0 || s.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** The comma-separated tokens of a list header, trimmed, lower-cased, empty ones left out. */
function listTokens(value: string): string[] {
  if (!value.includes(',')) {
    const v = value.trim().toLowerCase();
    return v === '' ? [] : [v];
  }
  return value
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter((x) => x !== '');
}

/** What both heads carry. */
interface Head {
  /** 0 (HTTP/1.0) or 1 (HTTP/1.1). */
  readonly minor: 0 | 1;
  /** Header names, lower-cased, in order (a repeated header appears repeatedly). */
  readonly names: string[];
  /** Header names as sent. */
  readonly rawNames: string[];
  readonly values: string[];
  /** Content-Length, or -1 when none. */
  readonly contentLength: number;
  /** Transfer-Encoding present and ending in chunked. */
  readonly chunked: boolean;
  /** Transfer-Encoding present (chunked or not). */
  readonly transferEncoding: boolean;
  /** Tokens of the Connection header, lower-cased. */
  readonly connection: string[];
  /** Bytes the head took, its final empty line included. */
  readonly size: number;
}

export interface RequestHead extends Head {
  readonly method: string;
  readonly target: string;
}

export interface ResponseHead extends Head {
  readonly status: number;
  readonly reason: string;
}

/**
 * The end of a head in `buf` (the offset after its empty line), -1 when it is not complete yet.
 * Throws 431 when more than MAX_HEAD_BYTES arrived without one.
 */
export function headEnd(buf: Buffer, what: 'request' | 'response'): number {
  let from = 0; // empty lines before a request line are ignored (RFC 9112 §2.2)
  while (buf[from] === 0x0d && buf[from + 1] === 0x0a) from += 2;
  const i = buf.indexOf(CRLFCRLF, from);
  if (i >= 0 && i + 4 <= MAX_HEAD_BYTES) return i + 4;
  if (i >= 0 || buf.length > MAX_HEAD_BYTES)
    throw new HttpWireError(
      what === 'request' ? 431 : 502,
      `${what} head larger than ${MAX_HEAD_BYTES} bytes`,
    );
  return -1;
}

/**
 * The header lines of the head in `s` from `at` (the start of the line after the start line) to
 * its empty line; fills names/values and the framing fields. `line` is the start line's number.
 */
function parseHeaders(
  s: string,
  at: number,
  what: 'request' | 'response',
  status: number,
): Omit<Head, 'minor' | 'size'> {
  const names: string[] = [];
  const rawNames: string[] = [];
  const values: string[] = [];
  let contentLength = -1;
  let te: string | undefined;
  let connection: string[] = [];
  let i = at;
  for (let line = 2; ; line++) {
    const eol = s.indexOf('\r\n', i);
    if (eol === i) break; // the empty line ending the head (headEnd found it)
    // name: token characters up to the colon; value: after blanks, no controls, trailing blanks cut
    let j = i;
    let upper = false;
    for (; j < eol; j++) {
      const c = s.charCodeAt(j);
      if (TOKEN_CHAR[c] !== 1) break;
      if (c >= 0x41 && c <= 0x5a) upper = true;
    }
    if (j === i || j === eol || s.charCodeAt(j) !== 0x3a)
      throw new HttpWireError(
        status,
        `malformed ${what} head: line ${line} has ${whyMalformed(s.slice(i, eol))}`,
      );
    let v = j + 1;
    while (v < eol && isBlank(s.charCodeAt(v))) v++;
    let ve = eol;
    for (let k = v; k < eol; k++)
      if (isCtl(s.charCodeAt(k)))
        throw new HttpWireError(
          status,
          `malformed ${what} head: line ${line} has ${whyMalformed(s.slice(i, eol))}`,
        );
    while (ve > v && isBlank(s.charCodeAt(ve - 1))) ve--;
    let raw = s.slice(i, j);
    let name: string;
    const common = COMMON_NAMES.get(raw);
    if (common !== undefined) {
      raw = common[0];
      name = common[1];
    } else name = upper ? raw.toLowerCase() : raw;
    const value = s.slice(v, ve);
    names.push(name);
    rawNames.push(raw);
    values.push(value);
    i = eol + 2;
    if (name === 'content-length') {
      for (const part of value.includes(',') ? value.split(',') : [value]) {
        const p = part.trim();
        const n = digits(p);
        if (n < 0)
          throw new HttpWireError(
            status,
            `malformed ${what} head: invalid Content-Length ${JSON.stringify(p)}`,
          );
        if (contentLength !== -1 && n !== contentLength)
          throw new HttpWireError(status, `malformed ${what} head: differing Content-Length values`);
        contentLength = n;
      }
    } else if (name === 'transfer-encoding') te = te === undefined ? value : `${te}, ${value}`;
    else if (name === 'connection') {
      const tokens = listTokens(value);
      connection = connection.length === 0 ? tokens : connection.concat(tokens);
    }
  }
  let chunked = false;
  if (te !== undefined) {
    const codings = listTokens(te);
    chunked = codings[codings.length - 1] === 'chunked';
    if (what === 'request' && !chunked)
      throw new HttpWireError(
        400,
        `malformed request head: Transfer-Encoding ${JSON.stringify(te)} does not end in chunked`,
      );
    if (what === 'request' && contentLength !== -1)
      throw new HttpWireError(400, 'malformed request head: both Content-Length and Transfer-Encoding');
    if (chunked) contentLength = -1; // a response's Transfer-Encoding overrides its Content-Length
  }
  return { names, rawNames, values, contentLength, chunked, transferEncoding: te !== undefined, connection };
}

/**
 * The request line at `from` in `s` (ending at `eol`): METHOD SP target SP HTTP/1.x, scanned
 * rather than matched; undefined when it is not one.
 */
function requestLine(
  s: string,
  from: number,
  eol: number,
): { method: string; target: string; minor: 0 | 1 } | undefined {
  let i = from;
  while (i < eol && TOKEN_CHAR[s.charCodeAt(i)] === 1) i++;
  if (i === from || s.charCodeAt(i) !== 0x20) return undefined;
  const t = i + 1;
  let j = t;
  for (; j < eol; j++) {
    const c = s.charCodeAt(j);
    if (c < 0x21 || c > 0x7e) break;
  }
  // the version: exactly " HTTP/1.0" or " HTTP/1.1" to the end of the line
  if (j === t || eol - j !== 9 || !s.startsWith(' HTTP/1.', j)) return undefined;
  const minor = s.charCodeAt(eol - 1);
  if (minor !== 0x30 && minor !== 0x31) return undefined;
  return { method: s.slice(from, i), target: s.slice(t, j), minor: minor === 0x31 ? 1 : 0 };
}

/** The request head that `buf` starts with, `end` from headEnd. Leading empty lines are skipped. */
export function parseRequestHead(buf: Buffer, end: number): RequestHead {
  const s = buf.toString('latin1', 0, end);
  let from = 0;
  while (s.startsWith('\r\n', from) && from + 4 < end) from += 2;
  const eol = s.indexOf('\r\n', from);
  const line = requestLine(s, from, eol);
  if (line === undefined)
    throw new HttpWireError(
      400,
      `malformed request line ${JSON.stringify(s.slice(from, Math.min(eol, from + 60)))}: want METHOD SP target SP HTTP/1.x`,
    );
  const h = parseHeaders(s, eol + 2, 'request', 400);
  // built field by field: spreading the parsed headers into a literal copies them slowly
  return {
    method: line.method,
    target: line.target,
    minor: line.minor,
    names: h.names,
    rawNames: h.rawNames,
    values: h.values,
    contentLength: h.contentLength,
    chunked: h.chunked,
    transferEncoding: h.transferEncoding,
    connection: h.connection,
    size: end,
  };
}

/** The response head that `buf` starts with (an upstream's answer; malformed: 502 to the client). */
export function parseResponseHead(buf: Buffer, end: number): ResponseHead {
  const s = buf.toString('latin1', 0, end);
  const eol = s.indexOf('\r\n');
  // HTTP/1.x SP 3-digit status (not 0xx) [SP reason]
  let ok = eol >= 12 && s.startsWith('HTTP/1.') && s.charCodeAt(8) === 0x20;
  const minor = s.charCodeAt(7);
  ok &&= minor === 0x30 || minor === 0x31;
  let status = 0;
  for (let k = 9; ok && k < 12; k++) {
    const d = s.charCodeAt(k) - 0x30;
    ok = d >= 0 && d <= 9 && (k > 9 || d > 0);
    status = status * 10 + d;
  }
  ok &&= eol === 12 || s.charCodeAt(12) === 0x20;
  for (let k = 13; ok && k < eol; k++) ok = !isCtl(s.charCodeAt(k));
  if (!ok)
    throw new HttpWireError(
      502,
      `malformed upstream status line ${JSON.stringify(s.slice(0, Math.min(Math.max(eol, 0), 60)))}`,
    );
  const h = parseHeaders(s, eol + 2, 'response', 502);
  return {
    status,
    reason: eol > 13 ? s.slice(13, eol) : '',
    minor: minor === 0x31 ? 1 : 0,
    names: h.names,
    rawNames: h.rawNames,
    values: h.values,
    contentLength: h.contentLength,
    chunked: h.chunked,
    transferEncoding: h.transferEncoding,
    connection: h.connection,
    size: end,
  };
}

/** The value of a header (repeated ones joined with ", ", as one field), undefined when absent. */
export function headerValue(h: Head, name: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < h.names.length; i++)
    if (h.names[i] === name) out = out === undefined ? h.values[i]! : `${out}, ${h.values[i]}`;
  return out;
}

enum Chunk {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
  Done,
}

const MAX_CHUNK_LINE = 4096;

/**
 * Where a message body ends: `take(buf, from)` returns how many of the bytes from `from` belong to
 * the body; `done` once its last byte has been taken. Content-Length (n bytes), chunked (chunk
 * sizes, data, CRLFs and the trailer section are walked, not copied), or to the connection's close.
 */
export class BodyFraming {
  done: boolean;
  #left: number;
  readonly #chunked: boolean;
  readonly #untilClose: boolean;
  #state = Chunk.Size;
  #size = 0;
  #digits = 0;
  #lineLen = 0;

  private constructor(kind: 'length' | 'chunked' | 'close', length: number) {
    this.#chunked = kind === 'chunked';
    this.#untilClose = kind === 'close';
    this.#left = length;
    this.done = kind === 'length' && length === 0;
  }

  static length(n: number): BodyFraming {
    return new BodyFraming('length', n);
  }
  static chunked(): BodyFraming {
    return new BodyFraming('chunked', 0);
  }
  static untilClose(): BodyFraming {
    return new BodyFraming('close', 0);
  }

  get untilClose(): boolean {
    return this.#untilClose;
  }

  take(buf: Buffer, from: number): number {
    if (this.done) return 0;
    const avail = buf.length - from;
    if (this.#untilClose) return avail;
    if (!this.#chunked) {
      const n = Math.min(avail, this.#left);
      this.#left -= n;
      if (this.#left === 0) this.done = true;
      return n;
    }
    let i = from;
    while (i < buf.length && !this.done) {
      switch (this.#state) {
        case Chunk.Data: {
          const n = Math.min(buf.length - i, this.#left);
          i += n;
          this.#left -= n;
          if (this.#left === 0) this.#state = Chunk.DataCr;
          continue;
        }
        case Chunk.Size: {
          const c = buf[i]!;
          const d =
            c >= 0x30 && c <= 0x39
              ? c - 0x30
              : (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66
                ? (c | 0x20) - 87
                : -1;
          if (d >= 0) {
            if (++this.#digits > 13) throw new HttpWireError(400, 'chunk size too large');
            this.#size = this.#size * 16 + d;
          } else if (this.#digits === 0) throw new HttpWireError(400, 'invalid chunk size: no hex digits');
          else if (c === 0x0d) this.#state = Chunk.SizeLf;
          else if (c === 0x0a) throw new HttpWireError(400, 'chunk size line not ended by CRLF');
          else if (c === 0x3b || c === 0x20 || c === 0x09) {
            this.#state = Chunk.Ext;
            this.#lineLen = 0;
          } else throw new HttpWireError(400, `invalid chunk size: byte 0x${c.toString(16)}`);
          break;
        }
        case Chunk.Ext: {
          const c = buf[i]!;
          if (c === 0x0d) this.#state = Chunk.SizeLf;
          else if ((c < 0x20 && c !== 0x09) || c === 0x7f || ++this.#lineLen > MAX_CHUNK_LINE)
            throw new HttpWireError(400, 'invalid chunk extension');
          break;
        }
        case Chunk.SizeLf:
          if (buf[i] !== 0x0a) throw new HttpWireError(400, 'chunk size line not ended by CRLF');
          if (this.#size === 0) {
            this.#state = Chunk.Trailer;
            this.#lineLen = 0;
          } else {
            this.#state = Chunk.Data;
            this.#left = this.#size;
          }
          this.#size = 0;
          this.#digits = 0;
          break;
        case Chunk.DataCr:
          if (buf[i] !== 0x0d) throw new HttpWireError(400, 'chunk data not followed by CRLF');
          this.#state = Chunk.DataLf;
          break;
        case Chunk.DataLf:
          if (buf[i] !== 0x0a) throw new HttpWireError(400, 'chunk data not followed by CRLF');
          this.#state = Chunk.Size;
          break;
        case Chunk.Trailer: {
          // trailer lines until an empty one; only their length and line ends are checked
          const c = buf[i]!;
          if (c === 0x0d) this.#state = Chunk.TrailerLf;
          else if ((c < 0x20 && c !== 0x09) || ++this.#lineLen > MAX_CHUNK_LINE)
            throw new HttpWireError(400, 'invalid trailer line');
          break;
        }
        case Chunk.TrailerLf:
          if (buf[i] !== 0x0a) throw new HttpWireError(400, 'trailer line not ended by CRLF');
          if (this.#lineLen === 0) this.done = true;
          else {
            this.#state = Chunk.Trailer;
            this.#lineLen = 0;
          }
          break;
        default:
          break;
      }
      i++;
    }
    return i - from;
  }
}
