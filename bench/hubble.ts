/**
 * Hubble throughput on one core: datapath events decoded into flows, filtered,
 * and (full path) stored in the ring with metrics. Baseline in the same run: a
 * header-only decode of the same events. Also CPU and memory at 10k flows/s.
 *
 *   node dist/bench/hubble.js [--seconds 2]
 */
import {
  compileFilters,
  HubbleMetrics,
  Observer,
  type ParserContext,
  parseEvent,
} from '../src/hubble/index.js';
import {
  dropEvent,
  PODS,
  packet,
  TCP_ACK,
  TCP_SYN,
  traceEvent,
  verdictEvent,
  worldGetters,
} from '../test/unit/hubble/helpers/events.js';

const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 2;

const { tiefighter: tf, deathstar: ds, coredns: dns, xwing } = PODS;
const events: Uint8Array[] = [];
for (let i = 0; i < 256; i++) {
  const k = BigInt(i) * 1000n;
  switch (i % 4) {
    case 0:
      events.push(
        traceEvent({
          obsPoint: 0,
          source: ds.ep,
          srcLabel: tf.id,
          dstLabel: ds.id,
          reason: 1,
          ktimeNs: k,
          pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 40000 + i, dport: 80, flags: TCP_ACK }),
        }),
      );
      break;
    case 1:
      events.push(
        traceEvent({
          obsPoint: 5,
          source: tf.ep,
          srcLabel: tf.id,
          dstLabel: dns.id,
          reason: 0,
          ktimeNs: k,
          pkt: packet({ src: tf.ip6, dst: dns.ip6, proto: 'udp', sport: 30000 + i, dport: 53 }),
        }),
      );
      break;
    case 2:
      events.push(
        dropEvent({
          reason: 133,
          source: ds.ep,
          srcLabel: xwing.id,
          dstLabel: ds.id,
          ktimeNs: k,
          pkt: packet({
            src: xwing.ip,
            dst: ds.ip,
            proto: 'tcp',
            sport: 50000 + i,
            dport: 80,
            flags: TCP_SYN,
          }),
        }),
      );
      break;
    default:
      events.push(
        verdictEvent({
          dir: 1,
          source: ds.ep,
          remoteLabel: tf.id,
          verdict: 0,
          dstPort: 80,
          proto: 6,
          matchType: 2,
          ktimeNs: k,
          pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 40000 + i, dport: 80, flags: TCP_SYN }),
        }),
      );
  }
}

const ctx: ParserContext = {
  nodeName: 'node1',
  bootTime: { sec: 1_700_000_000, nsec: 0 },
  ...worldGetters(),
};

function run(name: string, body: (ev: Uint8Array) => void): number {
  // warm up, then measure for SECONDS
  for (let i = 0; i < 50_000; i++) body(events[i & 255]!);
  let n = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 4096; i++) body(events[(n + i) & 255]!);
    n += 4096;
  }
  const rate = (n / (performance.now() - t0)) * 1000;
  process.stdout.write(
    `${name.padEnd(46)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} events/s\n`,
  );
  return rate;
}

let sink = 0;
const baseline = run('baseline: header-only decode', (ev) => {
  const dv = new DataView(ev.buffer, ev.byteOffset, ev.byteLength);
  sink += ev[0]! + dv.getUint16(2, true) + dv.getUint32(16, true);
});
const parse = run('decode → flow (parseEvent)', (ev) => {
  sink += parseEvent(ev, ctx) ? 1 : 0;
});
const noUuid = { ...ctx, uuid: false };
const parseNoUuid = run('decode → flow, no uuid', (ev) => {
  sink += parseEvent(ev, noUuid) ? 1 : 0;
});
const pred = compileFilters(
  [
    { source_pod: ['default/'], verdict: ['FORWARDED'] },
    { destination_pod: ['default/'], verdict: ['FORWARDED'] },
  ],
  [{ destination_port: ['53'] }],
);
const filtered = run('decode → flow → filter (pod+verdict, blacklist)', (ev) => {
  const f = parseEvent(ev, ctx);
  if (f && pred(f)) sink++;
});
const obs = new Observer({ nodeName: 'node1', metrics: new HubbleMetrics(), ...worldGetters() });
const ingest = run('Observer.ingest (decode, ring, 5 metrics)', (ev) => {
  obs.ingest(ev);
});

process.stdout.write(
  `ratios vs baseline: parse ${(parse / baseline).toFixed(3)}, parse (no uuid) ${(parseNoUuid / baseline).toFixed(3)}, parse+filter ${(filtered / baseline).toFixed(3)}, ingest ${(ingest / baseline).toFixed(3)}\n`,
);
process.stdout.write(
  `target ≥ 200,000 flows/s decoded+filtered on one core: ${filtered >= 200_000 ? 'met' : 'NOT met'}\n`,
);

// CPU and memory at a steady 10k flows/s (100 events every 10 ms) for SECONDS*2
async function steady(): Promise<void> {
  const o = new Observer({ nodeName: 'node1', metrics: new HubbleMetrics(), ...worldGetters() });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let i = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      for (let k = 0; k < 100; k++) o.ingest(events[i++ & 255]!);
      if (performance.now() - t0 >= SECONDS * 2000) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuPct = ((cpu.user + cpu.system) / 1000 / wall) * 100;
  const mem = process.memoryUsage();
  process.stdout.write(
    `steady ${Math.round((i / wall) * 1000).toLocaleString('en-US')} flows/s: CPU ${cpuPct.toFixed(1)}% of one core, RSS ${(mem.rss / 1e6).toFixed(0)} MB, heap ${(mem.heapUsed / 1e6).toFixed(0)} MB (ring ${o.ring.size} flows)\n`,
  );
}
await steady();
if (sink === -1) process.stdout.write('');
