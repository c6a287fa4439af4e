/** Minimal JSON-over-HTTP client for the agent's unix socket (node:http only; used by the CNI plugin). */
import { request } from 'node:http';
import { CiliumTsError } from '../common/errors.js';

export interface AgentResponse {
  status: number;
  body: unknown;
}

/** Transport failure kinds (no HTTP answer at all). */
export class AgentTransportError extends CiliumTsError {
  override readonly name = 'AgentTransportError';
  constructor(
    readonly kind: 'unreachable' | 'timeout' | 'protocol',
    message: string,
    readonly errno?: string,
  ) {
    super(message, {
      code: kind === 'unreachable' ? 'unavailable' : kind === 'timeout' ? 'timeout' : 'internal',
    });
  }
}

export type AgentPost = (path: string, body: unknown) => Promise<AgentResponse>;

/** POST `body` as JSON to `path` on the agent's unix socket; resolves with status and parsed JSON body. */
export function postJson(
  socketPath: string,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<AgentResponse> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': payload.length,
          connection: 'close',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(new AgentTransportError('protocol', e.message)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text.trim() === '' ? {} : JSON.parse(text);
          } catch {
            reject(
              new AgentTransportError('protocol', `agent answered HTTP ${res.statusCode} with non-JSON body`),
            );
            return;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy(
        new AgentTransportError('timeout', `no answer from agent at ${socketPath} within ${timeoutMs} ms`),
      );
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof AgentTransportError) reject(e);
      else if (
        e.code === 'ENOENT' ||
        e.code === 'ECONNREFUSED' ||
        e.code === 'EACCES' ||
        e.code === 'ENOTSOCK'
      ) {
        reject(new AgentTransportError('unreachable', `agent socket ${socketPath}: ${e.code}`, e.code));
      } else reject(new AgentTransportError('protocol', `agent socket ${socketPath}: ${e.message}`, e.code));
    });
    req.end(payload);
  });
}
