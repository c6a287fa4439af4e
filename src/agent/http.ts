/**
 * A small JSON router over node:http, for the agent's REST API on a unix socket. Handlers return the
 * response body or throw; a thrown error's code (src/common/errors.ts) picks the HTTP status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorBody, errorCodeOf, errorCodeOfStatus, HTTP_STATUS } from '../api/errors.js';
import type { PathParams, ResponseOf, RouteDef } from '../api/types.js';
import { CiliumTsError, type CiliumTsErrorOptions } from '../common/errors.js';

/** An error with an explicit HTTP status (its code follows from the status). */
export class ApiError extends CiliumTsError {
  constructor(
    readonly status: number,
    message: string,
    details?: unknown,
    options: Omit<CiliumTsErrorOptions, 'code' | 'details'> = {},
  ) {
    super(message, {
      ...options,
      code: errorCodeOfStatus(status),
      ...(details === undefined ? {} : { details }),
    });
  }
}

/** The HTTP status of a thrown value: ApiError's own, else its code's. */
export function httpStatusOf(err: unknown): number {
  return err instanceof ApiError ? err.status : HTTP_STATUS[errorCodeOf(err)];
}

export interface Request<Param extends string = string> {
  method: string;
  path: string;
  params: Record<Param, string>;
  query: URLSearchParams;
  body(): Promise<unknown>;
  text(): Promise<string>;
  raw: IncomingMessage;
  res: ServerResponse;
}

type Handler = (req: Request) => Promise<unknown> | unknown;

/**
 * What a handler of route R returns: its response body, or STREAMING for a stream route (typed
 * `symbol`: TypeScript widens a returned unique symbol).
 */
export type HandlerResult<R> = R extends { stream: true } ? symbol : ResponseOf<R>;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

/** Sentinel: the handler wrote the response itself (streaming). */
export const STREAMING = Symbol('streaming');

export class Router {
  private readonly routes: Route[] = [];

  on(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
    return this;
  }

  /** Serves a route of the API table (src/api/types.ts); the handler's result is checked against it. */
  route<R extends RouteDef<unknown, unknown, string>>(
    def: R,
    handler: (req: Request<PathParams<R['path']>>) => HandlerResult<R> | Promise<HandlerResult<R>>,
  ): this {
    return this.on(def.method, def.path, handler as Handler);
  }

  async handle(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(raw.url ?? '/', 'http://agent');
    const segs = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    let allowed = false;
    for (const r of this.routes) {
      const params = match(r.parts, segs);
      if (!params) continue;
      allowed = true;
      if (r.method !== raw.method) continue;
      let bodyText: Promise<string> | undefined;
      const text = () => (bodyText ??= readText(raw));
      const req: Request = {
        method: raw.method ?? 'GET',
        path: url.pathname,
        params,
        query: url.searchParams,
        text,
        body: async () => {
          const t = await text();
          if (!t) return {};
          try {
            return JSON.parse(t);
          } catch (e) {
            throw new ApiError(400, `request body is not valid JSON: ${(e as Error).message}`);
          }
        },
        raw,
        res,
      };
      try {
        const out = await r.handler(req);
        if (out === STREAMING) return;
        send(res, 200, out ?? {});
      } catch (err) {
        send(res, httpStatusOf(err), errorBody(err));
      }
      return;
    }
    if (allowed)
      send(res, 405, {
        error: `method ${raw.method} not allowed for ${url.pathname}`,
        code: 'invalid-argument',
      });
    else send(res, 404, { error: `no such API path ${url.pathname}`, code: 'not-found' });
  }
}

function match(parts: string[], segs: string[]): Record<string, string> | undefined {
  if (parts.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = segs[i]!;
    else if (p !== segs[i]) return undefined;
  }
  return params;
}

function readText(req: IncomingMessage, limit = 16 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) reject(new ApiError(413, 'request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
