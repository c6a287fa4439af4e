/**
 * Maglev and the service control plane, pure computation (no maps, no root):
 *   - Maglev table build time for 100 and 1,000 backends with M = 16381 and 65521, cold (every
 *     backend name hashed) and warm (hashes cached, as after one backend changed), for both fills;
 *   - flows that change backend when one of 100 backends leaves (1,000,000 flows hashed as the
 *     datapath hashes them): in total, those that were on the leaving backend (they must move),
 *     and the collateral ones (their backend is still there), as % of all and of the surviving
 *     flows, mean and worst over 20 choices of the leaving backend; and the table entries moved;
 *   - 10,000 ClusterIP services × 10 backends: parsing, then the LB desired state (every row of
 *     every LB map), then one endpoint change (a pod replaced in one slice) applied incrementally;
 *   - 1,000 LoadBalancer services × 10 backends with Maglev, as a heavier variant.
 * Targets (issue 10): 10,000 × 10 into the maps < 2 s (this part is the computation only), one
 * endpoint change < 10 ms. BENCH_SERVICES overrides the 10,000.
 */
import { loadavg } from 'node:os';
import { getOrInsert } from '../src/common/collections.js';
import { jhash3Words } from '../src/datapath/flow-hash.js';
import { LbState } from '../src/service/lbstate.js';
import { MAGLEV_FILLS, Maglev, type MaglevBackend, maglevConfig } from '../src/service/maglev.js';
import type { EndpointSlice, Service } from '../src/service/types.js';
import { parseEndpointSlice, parseService } from '../src/service/validate.js';

const N_SERVICES = Number(process.env.BENCH_SERVICES ?? 10_000);
const BACKENDS_PER_SERVICE = 10;

const elapsed = (t0: number) => performance.now() - t0;
const show = (ms: number) => `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`;

function row(label: string, value: string, target?: string): void {
  const t = target === undefined ? '' : `   target ${target}`;
  console.log(`  ${label.padEnd(60)}${value.padStart(14)}${t}`);
}

function backends(n: number): MaglevBackend[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8080,
    protocol: 'TCP' as const,
  }));
}

function maglevFigures(): void {
  console.log("Maglev lookup table (stable fill, the default; permutation: upstream's fill)");
  for (const fill of MAGLEV_FILLS) new Maglev({ tableSize: 16381, fill }).table(backends(100)); // compile first
  for (const fill of MAGLEV_FILLS)
    for (const tableSize of [16381, 65521])
      for (const n of [100, 1000]) {
        const bes = backends(n);
        const ml = new Maglev({ tableSize, fill });
        let t0 = performance.now();
        ml.table(bes);
        const cold = elapsed(t0);
        const runs = 5;
        t0 = performance.now();
        for (let i = 0; i < runs; i++) ml.table(bes);
        row(
          `build, ${fill}, ${n} backends, M = ${tableSize} (cold / warm)`,
          `${show(cold)} / ${show(elapsed(t0) / runs)}`,
        );
      }

  flowsMoved();
}

const FLOWS = Number(process.env.BENCH_MAGLEV_FLOWS ?? 1_000_000);
/** HASH_INIT4_SEED of the default Maglev seed: the datapath's flow hash as every node runs it. */
const FLOW_SEED = maglevConfig().seedJhash0;

/**
 * Table entries of FLOWS random TCP flows to one frontend (port 80): the datapath's own flow hash
 * (jhash of client address, ports and protocol, src/datapath/flow-hash.ts) modulo M.
 */
function flowSlots(tableSize: number): Uint32Array {
  let x = 0x2545f491;
  const rand = () => {
    // xorshift32: the same flows every run
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const wire = (port: number) => ((port & 0xff) << 8) | (port >>> 8);
  const slots = new Uint32Array(FLOWS);
  for (let f = 0; f < FLOWS; f++) {
    const saddr = rand();
    const sport = 1024 + (rand() % 64512);
    slots[f] = jhash3Words(saddr, ((wire(80) << 16) | wire(sport)) >>> 0, 6, FLOW_SEED) % tableSize;
  }
  return slots;
}

/**
 * One of 100 backends leaves (20 choices of which): of FLOWS flows, how many change backend. The
 * flows of the leaving backend must move (≈ 1/N); any other move is collateral: the flow's
 * backend is still there but the rebuilt table sends it elsewhere (it breaks a connection not
 * tracked by conntrack, and spreads affinity). Both fills give every backend ⌊M/N⌋ or ⌈M/N⌉
 * entries; collateral shrinks as M/N grows, and the stable fill has about half of upstream's.
 */
function flowsMoved(): void {
  const pct = (n: number, of: number) => `${((n / of) * 100).toFixed(2)}%`;
  console.log(
    `flows that change backend when one of 100 backends leaves (${FLOWS.toLocaleString('en')} flows, ` +
      `the datapath's flow hash; mean and worst of 20 choices of the leaving backend)`,
  );
  // the flows' entries depend on M only: hashed once per M, for both fills
  const slotsBySize = new Map<number, Uint32Array>();
  for (const fill of MAGLEV_FILLS)
    for (const tableSize of [16381, 65521]) {
      const ml = new Maglev({ tableSize, fill });
      const bes = backends(100);
      const before = ml.table(bes);
      const slots = getOrInsert(slotsBySize, tableSize, () => flowSlots(tableSize));
      const runs: { total: number; own: number; collateral: number; entries: number }[] = [];
      for (let r = 0; r < 100; r += 5) {
        const leaving = bes[r]!.id;
        const after = ml.table(bes.filter((b) => b.id !== leaving));
        let own = 0;
        let collateral = 0;
        for (let f = 0; f < FLOWS; f++) {
          const s = slots[f]!;
          if (before[s] === leaving) own++;
          else if (before[s] !== after[s]) collateral++;
        }
        let entries = 0;
        for (let i = 0; i < tableSize; i++) if (before[i] !== leaving && before[i] !== after[i]) entries++;
        runs.push({ total: own + collateral, own, collateral, entries });
      }
      const mean = (f: (x: (typeof runs)[number]) => number) =>
        runs.reduce((a, x) => a + f(x), 0) / runs.length;
      const worst = (f: (x: (typeof runs)[number]) => number) => Math.max(...runs.map(f));
      const both = (f: (x: (typeof runs)[number]) => number, of: (x: (typeof runs)[number]) => number) =>
        `${pct(mean(f), mean(of))} / ${pct(
          worst((x) => f(x) / of(x)),
          1,
        )}`;
      const all = () => FLOWS;
      console.log(`  ${fill} fill, M = ${tableSize} (${(tableSize / 100).toFixed(0)} × N)`);
      row(
        '  flows moved, total (% of all flows)',
        both((x) => x.total, all),
      );
      row(
        '  flows that were on the leaving backend (must move)',
        both((x) => x.own, all),
      );
      row(
        '  collateral: backend still there, flow moved (% of all)',
        both((x) => x.collateral, all),
        '≤ 1%',
      );
      row(
        '  collateral as % of the surviving flows',
        both(
          (x) => x.collateral,
          (x) => FLOWS - x.own,
        ),
      );
      row(
        "  table entries moved, leaving backend's aside (% of M)",
        both(
          (x) => x.entries,
          () => tableSize,
        ),
      );
    }
}

function serviceDoc(i: number, type: 'ClusterIP' | 'LoadBalancer'): unknown {
  const doc: Record<string, unknown> = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: `ns-${i % 50}` },
    spec: {
      type,
      clusterIP: `10.96.${(i >> 8) & 255}.${i & 255}`,
      selector: { app: `svc-${i}` },
      ports: [
        {
          name: 'http',
          port: 80,
          targetPort: 8080,
          ...(type === 'LoadBalancer' ? { nodePort: 30000 + i } : {}),
        },
      ],
    },
  };
  if (type === 'LoadBalancer')
    doc.status = { loadBalancer: { ingress: [{ ip: `172.18.${(i >> 8) & 255}.${i & 255}` }] } };
  return doc;
}

/** Slice of service i; `generation` replaces its first pod with a new address. */
function sliceDoc(i: number, generation = 0): unknown {
  const base = (i * BACKENDS_PER_SERVICE) & 0xfffff;
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `svc-${i}-abcde`,
      namespace: `ns-${i % 50}`,
      labels: { 'kubernetes.io/service-name': `svc-${i}` },
    },
    addressType: 'IPv4',
    endpoints: Array.from({ length: BACKENDS_PER_SERVICE }, (_, j) => {
      const n = j === 0 && generation > 0 ? 0x100000 + generation : base + j;
      return {
        addresses: [`10.${16 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`],
        conditions: { ready: true },
        nodeName: `node-${n % 3}`,
        targetRef: { kind: 'Pod', namespace: `ns-${i % 50}`, name: `svc-${i}-${j}` },
      };
    }),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

/** Wall and CPU time of fn (CPU counts every thread of the process: GC helpers too). */
function timed(fn: () => void): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const c = process.cpuUsage(c0);
  return { wall: elapsed(t0), cpu: (c.user + c.system) / 1000 };
}

const both = (t: { wall: number; cpu: number }) => `${show(t.wall)} (cpu ${show(t.cpu)})`;

function controlPlane(n: number, type: 'ClusterIP' | 'LoadBalancer'): void {
  const algorithm = type === 'LoadBalancer' ? 'maglev' : 'random';
  console.log(`${n.toLocaleString('en')} ${type} services × ${BACKENDS_PER_SERVICE} backends (${algorithm})`);
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  const parse = timed(() => {
    for (let i = 0; i < n; i++) {
      services.push(parseService(serviceDoc(i, type)));
      slices.push(parseEndpointSlice(sliceDoc(i)));
    }
  });
  row('parse and validate services + slices', both(parse));

  const node = { nodeName: 'node-0', nodeIPs: ['192.168.10.1'] };
  const build = (lb: LbState) =>
    timed(() =>
      lb.update(() => {
        for (let i = 0; i < n; i++) {
          lb.upsertService(services[i]!);
          lb.upsertEndpointSlice(slices[i]!);
        }
      }),
    );
  const lb = new LbState(node, { algorithm });
  row(
    'LB desired state, all at once (update()), first run',
    both(build(lb)),
    type === 'ClusterIP' ? '< 2 s with map writes' : undefined,
  );
  row('  the same into a fresh state, code warm', both(build(new LbState(node, { algorithm }))));
  const oneByOne = new LbState(node, { algorithm });
  const single = timed(() => {
    for (let i = 0; i < n; i++) {
      oneByOne.upsertService(services[i]!);
      oneByOne.upsertEndpointSlice(slices[i]!);
    }
  });
  row('  one event at a time (service, then its slice)', both(single));
  const t = lb.tables;
  row(
    '  rows: services / backends / rev-NAT / Maglev',
    `${t.services.size} / ${t.backends.size} / ${t.revNat.size} / ${t.maglev.size}`,
  );

  const changes = 100;
  const times: number[] = [];
  let rowsTouched = 0;
  for (const tbl of Object.values(t))
    tbl.watch((cs: readonly unknown[]) => {
      rowsTouched += cs.length;
    });
  for (let g = 1; g <= changes; g++) {
    const slice = parseEndpointSlice(sliceDoc((g * 97) % n, g));
    const t0 = performance.now();
    lb.upsertEndpointSlice(slice);
    times.push(elapsed(t0));
  }
  times.sort((a, b) => a - b);
  row(
    'one endpoint change → rows (median / p95 / max of 100)',
    `${show(times[changes >> 1]!)} / ${show(times[Math.floor(changes * 0.95)]!)} / ${show(times[changes - 1]!)}`,
    '< 10 ms to the maps',
  );
  row('  rows written per change', `${(rowsTouched / changes).toFixed(1)}`);
  row('process RSS', `${(process.memoryUsage().rss / 1048576).toFixed(0)} MB`);
}

const load = loadavg()[0]!.toFixed(1);
console.log(
  `# service control plane and Maglev (node ${process.version}, load average ${load} on this machine)`,
);
maglevFigures();
controlPlane(N_SERVICES, 'ClusterIP');
controlPlane(Math.min(1000, N_SERVICES), 'LoadBalancer');
