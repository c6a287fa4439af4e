/**
 * Conntrack GC bench: a real LRU hash with the datapath's CT layout and size (cilium_ct4_global,
 * 262,144 entries), filled to the brim, then swept by ConntrackGC (one batched read, one batched
 * delete) with none, half and all of the entries expired, and an endpoint flush. Baseline, in the
 * same run: the datapath wrapper's ConntrackMaps.gc() (decodes each entry, deletes key by key).
 * The GC runs on the agent's thread, so wall time is also how long the event loop is held.
 * Figures only. Run as root: node dist/bench/conntrack-gc.js
 */
import { ConntrackGC } from '../src/conntrack/index.js';
import { ConntrackMaps, layouts, MAPS, mapSpecOf, monotonicNs } from '../src/datapath/index.js';
import { BpfMap } from '../src/ebpf/index.js';

const D = MAPS.cilium_ct4_global;
const N = D.maxEntries;
const ENDPOINT = [10, 77, 0, 1];

function line(name: string, value: string, note = ''): void {
  console.log(`${name.padEnd(44)} ${value.padStart(22)}  ${note}`);
}

/** Fills `m` with N entries; entry i is expired when expired(i). Every 100th starts at ENDPOINT. */
function fill(m: BpfMap, expired: (i: number) => boolean): number {
  const now = monotonicNs();
  const K = layouts.ctKey.fields;
  const LIFETIME = layouts.ctEntry.fields.lifetimeNs!.offset;
  const B = 16384;
  const keys = new Uint8Array(B * D.keySize);
  const values = new Uint8Array(B * D.valueSize);
  const kv = new DataView(keys.buffer);
  const vv = new DataView(values.buffer);
  for (let base = 0; base < N; base += B) {
    const n = Math.min(B, N - base);
    keys.fill(0);
    for (let j = 0; j < n; j++) {
      const i = base + j;
      const k = j * D.keySize;
      keys.set(i % 100 === 0 ? ENDPOINT : [10, 1, (i >> 8) & 255, i & 255], k + K.saddr4!.offset);
      keys.set([192, 0, 2, (i >> 16) & 255], k + K.daddr4!.offset);
      kv.setUint16(k + K.sport!.offset, i & 0xffff);
      kv.setUint16(k + K.dport!.offset, 80);
      keys[k + K.nexthdr!.offset] = 6;
      vv.setBigUint64(
        j * D.valueSize + LIFETIME,
        expired(i) ? now - 1_000_000_000n : now + 3_600_000_000_000n,
        true,
      );
    }
    m.updateBatch(keys, values, n);
  }
  return m.lookupBatch(16384).count;
}

interface Figures {
  wallMs: number;
  cpuMs: number;
  deleted: number;
}

function measure(fn: () => number): Figures {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const deleted = fn();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  return { wallMs, cpuMs: (c.user + c.system) / 1000, deleted };
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

function main(): void {
  const m = BpfMap.create({ ...mapSpecOf(D), pinning: 'none' });
  const empty6 = BpfMap.create({ ...mapSpecOf(MAPS.cilium_ct6_global), pinning: 'none' });
  try {
    const gc = new ConntrackGC({ maps: { ct4: m } });
    const baseline = new ConntrackMaps(m, empty6);
    const none = () => false;
    const half = (i: number) => i % 2 === 0;
    const scenarios: { name: string; expired: (i: number) => boolean; run: () => number }[] = [
      { name: 'GC, none expired', expired: none, run: () => gc.runOnce().deleted },
      { name: 'GC, half expired', expired: half, run: () => gc.runOnce().deleted },
      { name: 'baseline ConntrackMaps.gc(), half expired', expired: half, run: () => baseline.gc() },
      { name: 'GC, all expired', expired: () => true, run: () => gc.runOnce().deleted },
      {
        name: 'endpoint flush (1 entry in 100 is its)',
        expired: none,
        run: () => gc.flushEndpoint([ENDPOINT.join('.')]).deleted,
      },
      { name: 'flush (bpf ct flush)', expired: none, run: () => gc.flush().deleted },
    ];
    console.log(
      `# conntrack GC bench: LRU hash ${D.name} (${N} max entries, key ${D.keySize} B, value ${D.valueSize} B), ` +
        `filled before each run; median of ${ROUNDS} rounds; wall = time the agent's event loop is held`,
    );
    const results = scenarios.map(() => ({
      wall: [] as number[],
      cpu: [] as number[],
      held: [] as number[],
      deleted: [] as number[],
    }));
    for (let r = 0; r < ROUNDS; r++) {
      scenarios.forEach((sc, i) => {
        const held = fill(m, sc.expired);
        const f = measure(sc.run);
        results[i]!.wall.push(f.wallMs);
        results[i]!.cpu.push(f.cpuMs);
        results[i]!.held.push(held);
        results[i]!.deleted.push(f.deleted);
      });
    }
    const ours = median(results[1]!.wall);
    scenarios.forEach((sc, i) => {
      const x = results[i]!;
      const wall = median(x.wall);
      const held = median(x.held);
      const note =
        i === 2
          ? `ours (GC, half expired) x${(wall / ours).toFixed(1)} faster`
          : `${median(x.deleted)} of ${held} deleted, ${(((held / wall) * 1000) / 1e6).toFixed(2)}M entries/s`;
      line(sc.name, `${wall.toFixed(0)} ms (cpu ${median(x.cpu).toFixed(0)} ms)`, note);
    });
  } finally {
    m.close();
    empty6.close();
  }
}

main();
