/**
 * A prober that lives inside a pod and probes on request (`cilium-ts workload prober --socket PATH`),
 * so a test can check a whole reachability matrix in about one probe timeout instead of spawning a
 * process per probe. It runs as one more container of the pod (same network namespace as the
 * servers) and listens on a unix socket on the shared filesystem: only the network namespace differs
 * between the pod and the test.
 *
 * Protocol: one request per connection, one JSON document per line.
 *   request   {"probes": [{"target": "10.200.0.5:80", "protocol": "tcp", "timeoutMs": 800}, ...]}
 *   response  {"results": [{"connected": true, "message": "connected to ...", "elapsedMs": 1.2}, ...]}
 * Probes run concurrently, each with the workload's own `connect()`. A malformed request gets
 * {"error": "..."}.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { CiliumTsError } from '../common/errors.js';
import { connect, type WorkloadProtocol } from './workload.js';

export interface ProbeRequest {
  /** "IP:PORT" or "[IPv6]:PORT". */
  readonly target: string;
  readonly protocol: WorkloadProtocol;
  /** Default 1000. */
  readonly timeoutMs?: number;
}

export interface ProbeResult {
  readonly connected: boolean;
  readonly message: string;
  readonly elapsedMs: number;
}

/** A bad prober request (not JSON, not a list of probes, bad target or protocol). */
export class ProbeRequestError extends CiliumTsError {
  override readonly name = 'ProbeRequestError';
  override readonly code = 'invalid-argument';
}

export interface ProberOptions {
  /** Unix socket path; its directory is created, a stale socket file is replaced. */
  readonly socket: string;
  /** Upper bound on probes per request (default 4096). */
  readonly maxProbes?: number;
  readonly log?: (line: string) => void;
}

export interface ProberServer {
  readonly socket: string;
  close(): Promise<void>;
}

// UDP source ports are handed out in sequence from a per-process range, so within one prober no
// probe repeats a recent 5-tuple (a conntrack entry of an earlier, allowed probe would let it pass).
const UDP_PORT_FIRST = 20000;
const UDP_PORT_LAST = 60999;

function validate(body: unknown, max: number): ProbeRequest[] {
  const probes = (body as { probes?: unknown } | null)?.probes;
  if (!Array.isArray(probes)) throw new ProbeRequestError('probes: expected a list');
  if (probes.length > max) throw new ProbeRequestError(`probes: at most ${max} per request`);
  return probes.map((p, i) => {
    const o = p as Partial<ProbeRequest> | null;
    if (typeof o?.target !== 'string') throw new ProbeRequestError(`probes[${i}].target: expected a string`);
    if (o.protocol !== 'tcp' && o.protocol !== 'udp' && o.protocol !== 'sctp')
      throw new ProbeRequestError(`probes[${i}].protocol: expected tcp, udp or sctp`);
    const t = o.timeoutMs ?? 1000;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > 60_000)
      throw new ProbeRequestError(`probes[${i}].timeoutMs: expected 1..60000`);
    return { target: o.target, protocol: o.protocol, timeoutMs: t };
  });
}

export async function startProber(opts: ProberOptions): Promise<ProberServer> {
  const max = opts.maxProbes ?? 4096;
  const log = opts.log ?? (() => {});
  let nextUdpPort = UDP_PORT_FIRST + Math.floor(Math.random() * (UDP_PORT_LAST - UDP_PORT_FIRST));
  const takeUdpPort = () => {
    const p = nextUdpPort;
    nextUdpPort = p >= UDP_PORT_LAST ? UDP_PORT_FIRST : p + 1;
    return p;
  };

  const runOne = async (p: ProbeRequest): Promise<ProbeResult> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await connect({
          target: p.target,
          protocol: p.protocol,
          timeout: p.timeoutMs ?? 1000,
          ...(p.protocol === 'udp' ? { localPort: takeUdpPort() } : {}),
        });
        // A source port still bound by something else: take the next one.
        if (r.exitCode !== 0 && /EADDRINUSE/.test(r.message) && attempt < 20) continue;
        return { connected: r.exitCode === 0, message: r.message, elapsedMs: r.elapsedMs };
      } catch (e) {
        return { connected: false, message: (e as Error).message, elapsedMs: 0 };
      }
    }
  };

  const handle = (sock: Socket) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      sock.removeAllListeners('data');
      void (async () => {
        let reply: unknown;
        try {
          const probes = validate(JSON.parse(line), max);
          const t0 = performance.now();
          const results = await Promise.all(probes.map(runOne));
          log(
            `${probes.length} probe(s), ${results.filter((r) => r.connected).length} connected, ${(performance.now() - t0).toFixed(0)} ms`,
          );
          reply = { results };
        } catch (e) {
          reply = {
            error: e instanceof SyntaxError ? `request is not JSON: ${e.message}` : (e as Error).message,
          };
        }
        sock.end(`${JSON.stringify(reply)}\n`);
      })();
    });
  };

  mkdirSync(dirname(opts.socket), { recursive: true });
  rmSync(opts.socket, { force: true });
  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socket, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  return {
    socket: opts.socket,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => {
          rmSync(opts.socket, { force: true });
          r();
        });
      }),
  };
}
