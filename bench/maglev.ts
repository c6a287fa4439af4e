/**
 * Maglev and the service control plane, pure computation (no maps, no root):
 *   - Maglev table build time for 100 and 1,000 backends with M = 16381 and 65521, cold (every
 *     backend name hashed) and warm (offsets and skips cached, as after one backend changed);
 *   - entries that change backend when one of 100 backends leaves, other than the leaving
 *     backend's own (mean and worst over several choices of the leaving backend);
 *   - 10,000 ClusterIP services × 10 backends: parsing, then the LB desired state (every row of
 *     every LB map), then one endpoint change (a pod replaced in one slice) applied incrementally;
 *   - 1,000 LoadBalancer services × 10 backends with Maglev, as a heavier variant.
 * Targets (issue 10): 10,000 × 10 into the maps < 2 s (this part is the computation only), one
 * endpoint change < 10 ms. BENCH_SERVICES overrides the 10,000.
 */
import { loadavg } from 'node:os';
import { LbState } from '../src/service/lbstate.js';
import { Maglev, type MaglevBackend } from '../src/service/maglev.js';
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
  console.log('Maglev lookup table');
  new Maglev({ tableSize: 16381 }).table(backends(100)); // compile the code first
  for (const tableSize of [16381, 65521])
    for (const n of [100, 1000]) {
      const bes = backends(n);
      const ml = new Maglev({ tableSize });
      let t0 = performance.now();
      ml.table(bes);
      const cold = elapsed(t0);
      const runs = 5;
      t0 = performance.now();
      for (let i = 0; i < runs; i++) ml.table(bes);
      row(
        `build, ${n} backends, M = ${tableSize} (cold / warm)`,
        `${show(cold)} / ${show(elapsed(t0) / runs)}`,
      );
    }

  for (const tableSize of [16381, 65521]) {
    const ml = new Maglev({ tableSize });
    const bes = backends(100);
    const before = ml.table(bes);
    const fractions: number[] = [];
    for (let r = 0; r < 100; r += 5) {
      const leaving = bes[r]!.id;
      const after = ml.table(bes.filter((b) => b.id !== leaving));
      let moved = 0;
      for (let i = 0; i < tableSize; i++) if (before[i] !== leaving && before[i] !== after[i]) moved++;
      fractions.push(moved / tableSize);
    }
    const mean = fractions.reduce((a, b) => a + b, 0) / fractions.length;
    const pct = (f: number) => `${(f * 100).toFixed(2)}%`;
    row(
      `one of 100 leaves, M = ${tableSize}: other entries moved (mean / worst)`,
      `${pct(mean)} / ${pct(Math.max(...fractions))}`,
      '≤ 1%',
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
