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
/**
 * A header line: name, colon, value without leading blanks (trailing ones are cut after: a lazy
 * pattern would try the end of the line at every character); no control characters but tab.
 */
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)$/;

/** `v` without trailing blanks (SP, HTAB: the optional whitespace around a field value). */
function trimBlanks(v: string): string {
  let n = v.length;
  while (n > 0) {
    const c = v.charCodeAt(n - 1);
    if (c !== 0x20 && c !== 0x09) break;
    n--;
  }
  return n === v.length ? v : v.slice(0, n);
}
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
const DIGITS = /^\d{1,15}$/;

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

/** Header lines of a head (after its first line); fills names/values and the framing fields. */
function parseHeaders(
  lines: string[],
  what: 'request' | 'response',
  status: number,
): Omit<Head, 'minor' | 'size'> {
  const names: string[] = [];
  const rawNames: string[] = [];
  const values: string[] = [];
  let contentLength = -1;
  let te: string | undefined;
  let connection: string[] = [];
  // lines[0] is the start line, the last two are the empty strings after the final CRLFCRLF
  for (let i = 1; i < lines.length - 2; i++) {
    const line = lines[i]!;
    const m = HEADER_LINE.exec(line);
    if (m === null) {
      const why =
        line.startsWith(' ') || line.startsWith('\t')
          ? 'a folded header line (obs-fold)'
          : /^[^:]*[ \t]:/.test(line)
            ? 'whitespace before a header colon'
            : !line.includes(':')
              ? 'a header line without a colon'
              : /^[^:]*:/.test(line) && !TOKEN.test(line.slice(0, line.indexOf(':')))
                ? `an invalid header name ${JSON.stringify(line.slice(0, Math.min(40, line.indexOf(':'))))}`
                : 'a control character (or bare CR/LF) in a header value';
      throw new HttpWireError(status, `malformed ${what} head: line ${i + 1} has ${why}`);
    }
    const raw = m[1]!;
    const name = raw.toLowerCase();
    const value = trimBlanks(m[2]!);
    names.push(name);
    rawNames.push(raw);
    values.push(value);
    if (name === 'content-length') {
      for (const part of value.split(',')) {
        const v = part.trim();
        if (!DIGITS.test(v))
          throw new HttpWireError(
            status,
            `malformed ${what} head: invalid Content-Length ${JSON.stringify(v)}`,
          );
        const n = Number(v);
        if (contentLength !== -1 && n !== contentLength)
          throw new HttpWireError(status, `malformed ${what} head: differing Content-Length values`);
        contentLength = n;
      }
    } else if (name === 'transfer-encoding') te = te === undefined ? value : `${te}, ${value}`;
    else if (name === 'connection')
      connection = connection.concat(
        value
          .split(',')
          .map((s) => s.trim().toLowerCase())
          .filter((s) => s !== ''),
      );
  }
  let chunked = false;
  if (te !== undefined) {
    const codings = te
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== '');
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

/** The request head that `buf` starts with, `end` from headEnd. Leading empty lines are skipped. */
export function parseRequestHead(buf: Buffer, end: number): RequestHead {
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  let first = 0;
  while (lines[first] === '' && first < lines.length - 2) first++;
  const start = lines[first]!;
  const m = REQUEST_LINE.exec(start);
  if (m === null)
    throw new HttpWireError(
      400,
      `malformed request line ${JSON.stringify(start.slice(0, 60))}: want METHOD SP target SP HTTP/1.x`,
    );
  const h = parseHeaders(first === 0 ? lines : lines.slice(first), 'request', 400);
  // built field by field: spreading the parsed headers into a literal copies them slowly
  return {
    method: m[1]!,
    target: m[2]!,
    minor: m[3] === '1' ? 1 : 0,
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
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const m = STATUS_LINE.exec(lines[0]!);
  if (m === null)
    throw new HttpWireError(502, `malformed upstream status line ${JSON.stringify(lines[0]!.slice(0, 60))}`);
  const h = parseHeaders(lines, 'response', 502);
  return {
    status: Number(m[2]),
    reason: m[3] ?? '',
    minor: m[1] === '1' ? 1 : 0,
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
