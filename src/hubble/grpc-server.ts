/**
 * gRPC plumbing the node's Hubble server and the relay share: service definitions from proto/,
 * binding, shutdown with a grace period, and the grpc.health.v1 Check.
 */
import * as grpc from '@grpc/grpc-js';
import { loadHubbleProtos } from './proto.js';

/** A service of our protos by its full name (`observer.Observer`, `grpc.health.v1.Health`). */
export function serviceDefinition(path: string): grpc.ServiceDefinition {
  let o: unknown = loadHubbleProtos();
  for (const p of path.split('.')) o = (o as Record<string, unknown>)[p];
  return (o as grpc.ServiceClientConstructor).service;
}

/** Binds `addr` (`host:port`, port 0 for a free one, or `unix:///path`); resolves with the port. */
export function bindServer(server: grpc.Server, addr: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    );
  });
}

/** Shuts down, letting calls finish for graceMs, then forcing. */
export function shutdownServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Service names the health check answers for: the whole server, upstream's observer name, ours. */
const HEALTH_SERVICES = new Set(['', 'hubble.server.Observer', 'observer.Observer']);

/** grpc.health.v1.Health/Check: SERVING while `serving()`, else NOT_SERVING; unknown services NOT_FOUND. */
export function healthImplementation(serving: () => boolean): grpc.UntypedServiceImplementation {
  return {
    Check: (call: grpc.ServerUnaryCall<{ service?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const name = call.request.service ?? '';
      if (!HEALTH_SERVICES.has(name)) {
        cb({ code: grpc.status.NOT_FOUND, details: `unknown service "${name}"` });
        return;
      }
      cb(null, { status: serving() ? 'SERVING' : 'NOT_SERVING' });
    },
  };
}
