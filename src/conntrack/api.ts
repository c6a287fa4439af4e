/**
 * REST routes of the conntrack GC, for the agent's router (anything with `on(method, path, handler)`):
 *   DELETE /v1/bpf/ct[?family=ipv4|ipv6]   `bpf ct flush`: delete every entry (of one family) → FlushResult
 *   GET    /v1/bpf/ct/gc                   GC status: runs, interval, next run, last run's counts
 *   POST   /v1/bpf/ct/gc                   run the GC now → GcRun
 * A bad family is a ConntrackArgumentError (code invalid-argument, field `family`).
 */
import type { ConntrackGC } from './gc.js';

export interface ConntrackRouteRequest {
  query: URLSearchParams;
}

export interface ConntrackRouter {
  on(method: string, path: string, handler: (req: ConntrackRouteRequest) => unknown): unknown;
}

export function registerConntrackRoutes(r: ConntrackRouter, gc: ConntrackGC): void {
  r.on('DELETE', '/v1/bpf/ct', (q) => {
    const family = q.query.get('family');
    return gc.flush(family === null ? {} : { family });
  });
  r.on('GET', '/v1/bpf/ct/gc', () => gc.status());
  r.on('POST', '/v1/bpf/ct/gc', () => gc.runOnce());
}
