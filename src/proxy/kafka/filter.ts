/**
 * The Kafka filter of one proxied connection, as a state machine over the two byte streams:
 * requests are cut into frames (int32 size), decoded and checked against the port's rules; an allowed
 * request goes to the broker, a denied one is answered by the proxy with TOPIC_AUTHORIZATION_FAILED in
 * the shape of that request's response. Kafka answers the requests of a connection in order, so the
 * filter keeps the outstanding requests in a queue and slips each proxy answer in after the broker's
 * answers to the requests sent before it. Responses stream through (only their header is looked at),
 * except ApiVersions answers, whose version ranges are capped to what the filter decodes, and small
 * Produce answers, whose error code goes to the L7 record.
 *
 * Bad input never throws out of the filter: a frame that does not decode, a size over the limit or a
 * response that answers nothing outstanding gives `close` with the reason, and the owner closes both
 * sides (fail closed: nothing undecided reaches the broker).
 */
import { ApiKey, apiKeyName, KafkaError } from './apikeys.js';
import { decodeRequest, expectsResponse, type KafkaRequest } from './request.js';
import { buildErrorResponse, capApiVersions } from './response.js';
import { type KafkaRule, kafkaAllowed } from './rules.js';
import { Reader } from './wire.js';

/** Kafka's default socket.request.max.bytes. */
export const DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024;
/**
 * Requests a connection may have outstanding (broker and proxy answers): far beyond what clients
 * pipeline (Kafka clients default to 5 in flight), a bound on what one connection can make the proxy
 * hold while the broker takes its time.
 */
export const MAX_OUTSTANDING = 1024;
/** Produce answers up to this size are read whole for their error code; larger ones stream. */
const SMALL_RESPONSE = 64 * 1024;

/** One L7 event: a request decided, or the answer to it. */
export interface KafkaRecord {
  readonly type: 'request' | 'response';
  readonly verdict: 'forwarded' | 'denied';
  readonly apiKey: string;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  readonly topic: string;
  readonly errorCode: number;
  /** Response only: nanoseconds since the request was decided. */
  readonly latencyNs?: bigint;
}

export interface KafkaFilterOptions {
  /** The port's rules, or a function asked at every request (a policy change applies at once). */
  readonly rules: readonly KafkaRule[] | (() => readonly KafkaRule[]);
  readonly onRecord?: (r: KafkaRecord) => void;
  readonly maxRequestBytes?: number;
}

/** What the owner does after feeding bytes: write these, and close both sides if `close` is set. */
export interface FilterOutput {
  readonly toServer: Buffer[];
  readonly toClient: Buffer[];
  close?: string;
}

interface Pending {
  readonly req: KafkaRequest;
  readonly started: bigint;
  /** Set for a denied request: the proxy's answer, written when its turn comes. */
  readonly local: Buffer | null;
}

/** Splits a byte stream into whole length-prefixed frames. */
export class FrameSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  constructor(readonly maxFrame: number) {}

  get pendingBytes(): number {
    return this.buffered;
  }

  /** Adds bytes; returns complete frames (without size) or throws RangeError on a bad size. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const size = this.peekSize();
      if (size < 0 || size > this.maxFrame)
        throw new RangeError(`frame size ${size} outside 0..${this.maxFrame}`);
      if (this.buffered < 4 + size) break;
      const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
      out.push(all.subarray(4, 4 + size));
      const rest = all.subarray(4 + size);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
    }
    return out;
  }

  private peekSize(): number {
    const first = this.chunks[0] as Buffer;
    if (first.length >= 4) return first.readInt32BE(0);
    const head = Buffer.concat(this.chunks).subarray(0, 4);
    this.chunks = [Buffer.concat(this.chunks)];
    return head.readInt32BE(0);
  }
}

export class KafkaFilter {
  private readonly requests: FrameSplitter;
  private readonly pending: Pending[] = [];
  /** Response side: bytes of the current response still to pass through unread. */
  private streamLeft = 0;
  private respHead: Buffer[] = [];
  private respHeadLen = 0;
  /** A response read whole (ApiVersions, small Produce): its total size, or 0. */
  private wholeSize = 0;
  private closed: string | undefined;

  constructor(private readonly opts: KafkaFilterOptions) {
    this.requests = new FrameSplitter(opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES);
  }

  /** Requests the filter is waiting for the broker to answer (its own answers included). */
  get outstanding(): number {
    return this.pending.length;
  }

  /** Bytes from the client. */
  onRequestData(chunk: Buffer): FilterOutput {
    const out: FilterOutput = { toServer: [], toClient: [] };
    if (this.closed !== undefined) return { ...out, close: this.closed };
    let frames: Buffer[];
    try {
      frames = this.requests.push(chunk);
    } catch (e) {
      return this.fail(out, `request ${(e as Error).message}`);
    }
    for (const frame of frames) {
      if (this.pending.length >= MAX_OUTSTANDING)
        return this.fail(out, `more than ${MAX_OUTSTANDING} requests outstanding`);
      let req: KafkaRequest;
      try {
        req = decodeRequest(frame);
      } catch (e) {
        return this.fail(out, `malformed request: ${(e as Error).message}`);
      }
      const started = process.hrtime.bigint();
      const rules = typeof this.opts.rules === 'function' ? this.opts.rules() : this.opts.rules;
      if (kafkaAllowed(rules, req)) {
        this.record('request', 'forwarded', req, KafkaError.None);
        out.toServer.push(sizePrefix(frame), frame);
        if (expectsResponse(req)) this.pending.push({ req, started, local: null });
        continue;
      }
      this.record('request', 'denied', req, KafkaError.TopicAuthorizationFailed);
      if (!expectsResponse(req)) continue;
      const answer = buildErrorResponse(req, KafkaError.TopicAuthorizationFailed);
      if (answer === null)
        return this.fail(
          out,
          `denied ${apiKeyName(req.apiKey)} v${req.apiVersion}: no error response for this version`,
        );
      this.pending.push({ req, started, local: answer });
      this.flushLocal(out);
    }
    return out;
  }

  /** Bytes from the broker. */
  onResponseData(chunk: Buffer): FilterOutput {
    const out: FilterOutput = { toServer: [], toClient: [] };
    if (this.closed !== undefined) return { ...out, close: this.closed };
    let data = chunk;
    while (data.length > 0) {
      if (this.streamLeft > 0) {
        const n = Math.min(this.streamLeft, data.length);
        out.toClient.push(data.subarray(0, n));
        this.streamLeft -= n;
        data = data.subarray(n);
        if (this.streamLeft === 0) this.responseDone(out, null);
        continue;
      }
      // Collect the 8-byte header (size, correlation id), or the whole frame when reading it whole.
      const want = this.wholeSize > 0 ? this.wholeSize : 8;
      const n = Math.min(want - this.respHeadLen, data.length);
      this.respHead.push(data.subarray(0, n));
      this.respHeadLen += n;
      data = data.subarray(n);
      if (this.respHeadLen < want) break;
      const head = Buffer.concat(this.respHead);
      if (this.wholeSize > 0) {
        this.resetHead();
        this.wholeSize = 0;
        this.responseDone(out, head);
        if (this.closed !== undefined) return { ...out, close: this.closed };
        continue;
      }
      const size = head.readInt32BE(0);
      const corr = head.readInt32BE(4);
      const next = this.pending[0];
      if (size < 4 || next === undefined || next.local !== null || next.req.correlationId !== corr)
        return this.fail(out, `response with correlation id ${corr} answers no outstanding request`);
      const key = next.req.apiKey;
      if (key === ApiKey.ApiVersions && size + 4 > SMALL_RESPONSE)
        return this.fail(out, `ApiVersions response of ${size} bytes`);
      if (key === ApiKey.ApiVersions || (key === ApiKey.Produce && size + 4 <= SMALL_RESPONSE)) {
        this.wholeSize = size + 4;
        continue;
      }
      this.resetHead();
      out.toClient.push(head);
      this.streamLeft = size - 4;
      if (this.streamLeft === 0) this.responseDone(out, null);
    }
    return out;
  }

  private resetHead(): void {
    this.respHead = [];
    this.respHeadLen = 0;
  }

  /** A broker response finished; `whole` is the complete frame when it was read whole. */
  private responseDone(out: FilterOutput, whole: Buffer | null): void {
    const p = this.pending.shift() as Pending;
    let errorCode: number = KafkaError.None;
    if (whole !== null) {
      const body = whole.subarray(4);
      try {
        if (p.req.apiKey === ApiKey.ApiVersions) capApiVersions(body, p.req.apiVersion);
        else errorCode = produceErrorCode(body, p.req.apiVersion);
      } catch (e) {
        this.fail(out, `malformed ${apiKeyName(p.req.apiKey)} response: ${(e as Error).message}`);
        return;
      }
      out.toClient.push(whole);
    }
    this.record('response', 'forwarded', p.req, errorCode, process.hrtime.bigint() - p.started);
    this.flushLocal(out);
  }

  /** Writes the proxy's answers now at the head of the queue. */
  private flushLocal(out: FilterOutput): void {
    while (this.pending[0]?.local) {
      const p = this.pending.shift() as Pending;
      out.toClient.push(p.local as Buffer);
      this.record(
        'response',
        'denied',
        p.req,
        KafkaError.TopicAuthorizationFailed,
        process.hrtime.bigint() - p.started,
      );
    }
  }

  private fail(out: FilterOutput, reason: string): FilterOutput {
    this.closed = reason;
    out.close = reason;
    return out;
  }

  private record(
    type: KafkaRecord['type'],
    verdict: KafkaRecord['verdict'],
    req: KafkaRequest,
    errorCode: number,
    latencyNs?: bigint,
  ): void {
    if (!this.opts.onRecord) return;
    this.opts.onRecord({
      type,
      verdict,
      apiKey: apiKeyName(req.apiKey),
      apiVersion: req.apiVersion,
      correlationId: req.correlationId,
      clientId: req.clientId,
      topic: (req.topics ?? []).join(','),
      errorCode,
      ...(latencyNs !== undefined ? { latencyNs } : {}),
    });
  }
}

function sizePrefix(frame: Buffer): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(frame.length, 0);
  return b;
}

/** The first non-zero partition error of a Produce response (v0-v8), or 0. */
function produceErrorCode(body: Buffer, v: number): number {
  if (v > 8) return 0;
  const r = new Reader(body);
  r.int32(); // correlation id
  let first = 0;
  r.array(() => {
    r.string();
    r.array(() => {
      r.int32();
      const err = r.int16();
      if (first === 0) first = err;
      r.int64();
      if (v >= 2) r.int64();
      if (v >= 5) r.int64();
      if (v >= 8) {
        r.array(() => {
          r.int32();
          r.nullableString();
        }, 6);
        r.nullableString();
      }
    }, 14);
  }, 6);
  return first;
}
