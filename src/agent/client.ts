/** Client of the agent's REST API over its unix socket (used by the CLI and the lab). */
import { request } from 'node:http';

export class AgentUnreachableError extends Error {}

export class AgentApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export class AgentClient {
  constructor(
    readonly socketPath: string,
    readonly timeoutMs = 30_000,
  ) {}

  get<T = unknown>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }
  put<T = unknown>(path: string, body: unknown, contentType = 'application/json'): Promise<T> {
    return this.call<T>('PUT', path, body, contentType);
  }
  post<T = unknown>(path: string, body: unknown, contentType = 'application/json'): Promise<T> {
    return this.call<T>('POST', path, body, contentType);
  }
  delete<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.call<T>('DELETE', path, body);
  }

  call<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          path,
          method,
          timeout: this.timeoutMs,
          headers:
            payload === undefined
              ? {}
              : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : {};
            } catch {
              json = { error: text };
            }
            if ((res.statusCode ?? 500) >= 400) {
              const j = json as { error?: string; details?: unknown };
              reject(
                new AgentApiError(res.statusCode ?? 500, j.error ?? `HTTP ${res.statusCode}`, j.details),
              );
            } else resolve(json as T);
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(
          new AgentUnreachableError(`agent at ${this.socketPath} did not answer within ${this.timeoutMs} ms`),
        ),
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof AgentUnreachableError) reject(e);
        else if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
          reject(
            new AgentUnreachableError(
              `cannot reach the agent at ${this.socketPath} (is it running? start a lab with 'cilium-ts lab up')`,
            ),
          );
        } else reject(e);
      });
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** Streams newline-delimited JSON from a GET endpoint until aborted. */
  stream(path: string, onLine: (obj: unknown) => void, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, path, method: 'GET', signal }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          let i = buf.indexOf('\n');
          while (i >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (line.trim()) onLine(JSON.parse(line));
            i = buf.indexOf('\n');
          }
        });
        res.on('end', () => resolve());
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e.name === 'AbortError') resolve();
        else if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED')
          reject(new AgentUnreachableError(`cannot reach the agent at ${this.socketPath}`));
        else reject(e);
      });
      req.end();
    });
  }
}
