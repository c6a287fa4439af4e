/** A small JSON router over node:http, for the agent's REST API on a unix socket. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export interface Request {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body(): Promise<unknown>;
  text(): Promise<string>;
  raw: IncomingMessage;
  res: ServerResponse;
}

type Handler = (req: Request) => Promise<unknown> | unknown;

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
        if (err instanceof ApiError)
          send(res, err.status, { error: err.message, ...(err.details ? { details: err.details } : {}) });
        else send(res, 500, { error: err instanceof Error ? err.message : String(err) });
      }
      return;
    }
    send(res, allowed ? 405 : 404, {
      error: allowed
        ? `method ${raw.method} not allowed for ${url.pathname}`
        : `no such API path ${url.pathname}`,
    });
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
