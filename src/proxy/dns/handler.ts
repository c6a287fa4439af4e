/**
 * The DNS proxy's decision for one query, independent of how it arrived: decode (dns-packet),
 * check the name against the endpoint's DNS rules (matchName / matchPattern), answer REFUSED when
 * no rule allows it, else forward it to the server the pod asked and, before the answer goes back,
 * hand the answer's IPs to the FQDN subsystem and wait (bounded) until they are allowed. Malformed
 * input never throws out of `handle`: a packet shorter than a header or a response gets nothing, one
 * that does not decode or has not exactly one question gets FORMERR.
 */
import dnsPacket, { type Answer, type DecodedPacket, type Question } from 'dns-packet';
import type { HostPort } from '../../dns/address.js';
import type { Transport } from '../../dns/forward.js';
import { nameMatches, toFqdn } from '../../fqdn/match.js';
import type { RedirectInfo } from '../framework.js';
import { UpstreamClient } from './upstream.js';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const FLAG_RD = 1 << 8;

export interface DnsQueryContext {
  readonly transport: Transport;
  /** The pod that asked. */
  readonly source: { readonly host: string; readonly port: number };
  /** The server it asked (the original destination of the redirected packet). */
  readonly destination: HostPort;
  /** The datapath's record of the redirect, when the query was redirected (src/proxy/framework.ts). */
  readonly redirect?: RedirectInfo;
}

/** The DNS rules that apply to one query: who asked, and the patterns its rules allow. */
export interface DnsRuleMatch {
  readonly endpointId: number;
  /** Canonical patterns (src/fqdn/match.ts); a query is allowed when one matches. */
  readonly patterns: readonly string[];
}

export interface DnsAnswerInfo {
  readonly endpointId: number;
  /** The name asked, fully qualified and lower-cased. */
  readonly name: string;
  /** A/AAAA records of the answer with their TTLs (under the name asked or a CNAME of it). */
  readonly ips: readonly { ip: string; ttl: number }[];
  readonly cnames: readonly string[];
}

export type DnsVerdict = 'forwarded' | 'denied' | 'error';

/** What happened to a query, for Hubble: one event when asked, one when answered; one if refused. */
export interface DnsProxyEvent {
  readonly type: 'request' | 'response';
  readonly ctx: DnsQueryContext;
  readonly endpointId?: number;
  /** `name.` as asked (lower-cased). */
  readonly query: string;
  readonly qtypes: readonly string[];
  readonly verdict: DnsVerdict;
  /** Responses, and refused requests (REFUSED). */
  readonly rcode?: number;
  readonly ips?: readonly string[];
  readonly ttl?: number;
  readonly cnames?: readonly string[];
  readonly rrtypes?: readonly string[];
  /** Response only: from the query's arrival to the answer's release. */
  readonly latencyNs?: bigint;
}

export interface DnsHandlerOptions {
  /** The rules for a query; undefined (no endpoint, no DNS rule for that server and port) refuses it. */
  rules(ctx: DnsQueryContext): DnsRuleMatch | undefined;
  /** Called with the answer's IPs before it is released; awaited up to maxDelayMs. */
  onAnswer?(info: DnsAnswerInfo): Promise<void>;
  onEvent?(e: DnsProxyEvent): void;
  /** Per forwarded query (default 2000 ms). */
  upstreamTimeoutMs?: number;
  /** How long an answer waits for its IPs to be allowed before it is released anyway (default 1000 ms). */
  maxDelayMs?: number;
  log?(line: string): void;
}

export interface DnsHandlerStats {
  queries: number;
  forwarded: number;
  refused: number;
  malformed: number;
  upstreamFailures: number;
  /** Answers released before the FQDN subsystem confirmed (maxDelayMs passed or it failed). */
  releasedUnconfirmed: number;
}

export class DnsProxyHandler {
  readonly stats: DnsHandlerStats = {
    queries: 0,
    forwarded: 0,
    refused: 0,
    malformed: 0,
    upstreamFailures: 0,
    releasedUnconfirmed: 0,
  };
  readonly #timeout: number;
  readonly #maxDelay: number;
  readonly #upstream = new UpstreamClient();

  constructor(readonly o: DnsHandlerOptions) {
    this.#timeout = o.upstreamTimeoutMs ?? 2000;
    this.#maxDelay = o.maxDelayMs ?? 1000;
  }

  /** Closes the sockets to the servers (queries in flight get SERVFAIL). */
  close(): void {
    this.#upstream.close();
  }

  /** The bytes to send back to the pod, or undefined when nothing is due. Never throws. */
  async handle(msg: Buffer, ctx: DnsQueryContext): Promise<Buffer | undefined> {
    try {
      return await this.#handle(msg, ctx);
    } catch (e) {
      this.o.log?.(`dns proxy: ${ctx.source.host}:${ctx.source.port}: ${(e as Error).message}`);
      return msg.length >= 12 ? errorResponse(msg, RCODE.SERVFAIL) : undefined;
    }
  }

  async #handle(msg: Buffer, ctx: DnsQueryContext): Promise<Buffer | undefined> {
    const start = process.hrtime.bigint();
    if (msg.length < 12 || (msg[2]! & 0x80) !== 0) {
      this.stats.malformed++;
      return undefined;
    }
    this.stats.queries++;
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      this.stats.malformed++;
      return errorResponse(msg, RCODE.FORMERR);
    }
    const questions = query.questions ?? [];
    if (questions.length !== 1 || typeof questions[0]!.name !== 'string') {
      this.stats.malformed++;
      return errorResponse(msg, RCODE.FORMERR);
    }
    const q = questions[0]!;
    const name = toFqdn(q.name);
    const qtypes = [String(q.type)];
    const match = this.o.rules(ctx);
    const endpointId = match?.endpointId;
    const base = { ctx, query: name, qtypes, ...(endpointId !== undefined ? { endpointId } : {}) };
    if (match === undefined || !match.patterns.some((p) => nameMatches(p, name))) {
      this.stats.refused++;
      // One event for a refused query, as upstream's access log has one Denied record.
      this.o.onEvent?.({ type: 'request', ...base, verdict: 'denied', rcode: RCODE.REFUSED });
      return errorResponse(msg, RCODE.REFUSED, questions);
    }
    this.o.onEvent?.({ type: 'request', ...base, verdict: 'forwarded' });
    const answer = await this.#upstream.exchange(msg, ctx.destination, ctx.transport, this.#timeout);
    if (answer === undefined) {
      this.stats.upstreamFailures++;
      this.o.onEvent?.({
        type: 'response',
        ...base,
        verdict: 'error',
        rcode: RCODE.SERVFAIL,
        latencyNs: process.hrtime.bigint() - start,
      });
      return errorResponse(msg, RCODE.SERVFAIL, questions);
    }
    let decoded: DecodedPacket | undefined;
    try {
      decoded = dnsPacket.decode(answer);
    } catch {
      decoded = undefined;
    }
    const rcode = decoded ? (decoded.flags ?? 0) & 0xf : RCODE.SERVFAIL;
    const records = decoded?.answers ?? [];
    const ips = addressRecords(records);
    const cnames = records
      .filter((a) => a.type === 'CNAME')
      .map((a) => toFqdn(String((a as { data: unknown }).data)));
    if (ips.length > 0 && this.o.onAnswer !== undefined && match !== undefined) {
      const confirmed = await withTimeout(
        this.o.onAnswer({ endpointId: match.endpointId, name, ips, cnames }),
        this.#maxDelay,
      );
      if (!confirmed) this.stats.releasedUnconfirmed++;
    }
    this.stats.forwarded++;
    this.o.onEvent?.({
      type: 'response',
      ...base,
      verdict: 'forwarded',
      rcode,
      ips: ips.map((i) => i.ip),
      ttl: ips.length > 0 ? Math.min(...ips.map((i) => i.ttl)) : 0,
      cnames,
      rrtypes: [...new Set(records.map((a) => String(a.type)))],
      latencyNs: process.hrtime.bigint() - start,
    });
    return answer;
  }
}

/** A/AAAA answers as IP + TTL. */
export function addressRecords(answers: readonly Answer[]): { ip: string; ttl: number }[] {
  const out: { ip: string; ttl: number }[] = [];
  for (const a of answers) {
    if ((a.type === 'A' || a.type === 'AAAA') && typeof a.data === 'string')
      out.push({ ip: a.data, ttl: a.ttl ?? 0 });
  }
  return out;
}

/**
 * A response with only a header and (when given) the question: the query's ID, opcode and RD
 * copied, QR set, the rcode given. Built by hand when the question could not be decoded.
 */
export function errorResponse(msg: Buffer, rcode: number, questions?: readonly Question[]): Buffer {
  const id = msg.readUInt16BE(0);
  const opcode = (msg[2]! >> 3) & 0xf;
  const flags = (opcode << 11) | (msg.readUInt16BE(2) & FLAG_RD) | rcode;
  if (questions !== undefined) {
    try {
      return dnsPacket.encode({ type: 'response', id, flags, questions: [...questions] });
    } catch {
      // fall through to a bare header
    }
  }
  const out = Buffer.alloc(12);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(0x8000 | flags, 2);
  return out;
}

/** True when `p` settled successfully within `ms`. */
async function withTimeout(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true).catch(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
