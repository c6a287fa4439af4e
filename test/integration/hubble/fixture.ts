/** A running Observer + gRPC server on a temp unix socket and 127.0.0.1:0, fed with known events. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubbleMetrics, HubbleServer, Observer, type ObserverOptions } from '../../../src/hubble/index.js';
import {
  dropEvent,
  PODS,
  packet,
  TCP_ACK,
  TCP_SYN,
  traceEvent,
  verdictEvent,
  worldGetters,
} from '../../unit/hubble/helpers/events.js';

export const BOOT_SEC = 1700596862; // 2023-11-21T20:01:02Z
const { tiefighter: tf, deathstar: ds, coredns: dns, xwing } = PODS;

/** Events in ktime order: 1 s apart, so since/until can pick them. */
export function sampleEvents(): Uint8Array[] {
  const syn = packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 51234, dport: 80, flags: TCP_SYN });
  const s = (n: number) => BigInt(n) * 1_000_000_000n;
  return [
    verdictEvent({
      dir: 1,
      source: ds.ep,
      remoteLabel: tf.id,
      verdict: 0,
      dstPort: 80,
      proto: 6,
      matchType: 2,
      ktimeNs: s(0),
      pkt: syn,
    }),
    traceEvent({
      obsPoint: 0,
      source: ds.ep,
      srcLabel: tf.id,
      dstLabel: ds.id,
      dstId: ds.ep,
      reason: 0,
      ktimeNs: s(1),
      pkt: syn,
    }),
    traceEvent({
      obsPoint: 0,
      source: tf.ep,
      srcLabel: ds.id,
      dstLabel: tf.id,
      dstId: tf.ep,
      reason: 2,
      ktimeNs: s(2),
      pkt: packet({
        src: ds.ip,
        dst: tf.ip,
        proto: 'tcp',
        sport: 80,
        dport: 51234,
        flags: TCP_SYN | TCP_ACK,
      }),
    }),
    dropEvent({
      reason: 133,
      source: ds.ep,
      srcLabel: xwing.id,
      dstLabel: ds.id,
      ktimeNs: s(3),
      pkt: packet({ src: xwing.ip, dst: ds.ip, proto: 'tcp', sport: 40000, dport: 80, flags: TCP_SYN }),
    }),
    traceEvent({
      obsPoint: 5,
      source: tf.ep,
      srcLabel: tf.id,
      dstLabel: dns.id,
      reason: 0,
      ktimeNs: s(4),
      pkt: packet({ src: tf.ip6, dst: dns.ip6, proto: 'udp', sport: 33333, dport: 53 }),
    }),
    traceEvent({
      obsPoint: 3,
      source: tf.ep,
      srcLabel: tf.id,
      dstLabel: 2,
      reason: 0,
      ktimeNs: s(5),
      pkt: packet({ src: tf.ip, dst: '1.1.1.1', proto: 'icmp', icmpType: 8 }),
    }),
  ];
}

export interface Fixture {
  dir: string;
  socket: string;
  observer: Observer;
  metrics: HubbleMetrics;
  server: HubbleServer;
  close(): Promise<void>;
}

export async function startFixture(
  opts: {
    capacity?: number;
    ingest?: boolean;
    readerUp?: () => boolean;
    serviceByAddress?: ObserverOptions['serviceByAddress'];
  } = {},
): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'cts-hubble-'));
  const socket = join(dir, 'node1', 'hubble.sock');
  const metrics = new HubbleMetrics();
  const observer = new Observer({
    nodeName: 'node1',
    bootTime: { sec: BOOT_SEC, nsec: 0 },
    metrics,
    ...(opts.capacity ? { capacity: opts.capacity } : {}),
    ...(opts.readerUp ? { readerUp: opts.readerUp } : {}),
    ...(opts.serviceByAddress ? { serviceByAddress: opts.serviceByAddress } : {}),
    ...worldGetters(),
  });
  if (opts.ingest !== false) for (const ev of sampleEvents()) observer.ingest(ev);
  const server = await HubbleServer.start({ observer, unixSocket: socket, tcp: '127.0.0.1:0' });
  return {
    dir,
    socket,
    observer,
    metrics,
    server,
    close: async () => {
      await server.stop(500);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
