/**
 * Kafka produce throughput through the Kafka proxy vs without it, in one run. Two parts:
 *
 * 1. Filter: broker workloads (src/workload/kafka-broker.ts) and the Kafka filter as a plain TCP
 *    proxy (`role: produce, topic: bench`, every request decoded and checked) each in their own
 *    process on loopback; the client is kafkajs in this process. Also the proxy process's CPU time
 *    per batch, the figure the shared machine's load moves least.
 * 2. Lab (root; `--no-lab` skips it): the real path. A client pod produces (kafkajs, the client
 *    workload's `bench` command) to two broker pods on the same node: one allowed by an L4 rule on
 *    9092 (no redirect), one by a Kafka rule (the datapath redirects to the node's Kafka proxy).
 *
 * acks=-1, batches of BENCH_KAFKA_BATCH messages, 1 batch in flight (latency-bound) or 4 (pipelined
 * on one connection). Direct and proxied rounds alternate (which goes first swaps every round) so
 * both see the same machine load; the figures are medians of the rounds, and the ratio
 * proxied/direct. On a shared machine two identical brokers differ by up to 2x from one round to
 * the next: many short rounds (BENCH_KAFKA_ROUNDS, BENCH_KAFKA_SECONDS) steady the medians.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Producer } from 'kafkajs';
import { cliPath } from '../src/common/paths.js';
import { newKafka, produceFor } from '../src/workload/kafka-client.js';

const ROUNDS = Number(process.env.BENCH_KAFKA_ROUNDS ?? 11);
const SECONDS = Number(process.env.BENCH_KAFKA_SECONDS ?? 1);
const LAB_ROUNDS = Number(process.env.BENCH_KAFKA_LAB_ROUNDS ?? 5);
const LAB_SECONDS = Number(process.env.BENCH_KAFKA_LAB_SECONDS ?? 2);
const BATCH = Number(process.env.BENCH_KAFKA_BATCH ?? 100);
const ROWS = [100, 10_000].flatMap((size) => [1, 4].map((inflight) => ({ size, inflight })));

const brokerJs = fileURLToPath(new URL('../src/workload/kafka-broker.js', import.meta.url));
const clientJs = fileURLToPath(new URL('../src/workload/kafka-client.js', import.meta.url));
const proxyJs = fileURLToPath(new URL('../src/proxy/kafka/tcp-proxy.js', import.meta.url));
const rulesJs = fileURLToPath(new URL('../src/proxy/kafka/rules.js', import.meta.url));

const children: ChildProcess[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const HEADER =
  `  ${'size, in flight'.padEnd(18)}${'direct msg/s'.padStart(14)}${'proxy msg/s'.padStart(14)}` +
  `${'direct MB/s'.padStart(13)}${'proxy MB/s'.padStart(12)}${'ratio'.padStart(8)}`;

function row(size: number, inflight: number, d: number, p: number): string {
  const mbs = (n: number) => ((n * size) / 1e6).toFixed(1);
  return (
    `  ${`${size} B, ${inflight}`.padEnd(18)}${d.toFixed(0).padStart(14)}${p.toFixed(0).padStart(14)}` +
    `${mbs(d).padStart(13)}${mbs(p).padStart(12)}${(p / d).toFixed(2).padStart(8)}`
  );
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** CPU seconds (user + system) a child process has used so far (Linux /proc, 100 Hz ticks). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Starts a node process and waits for its `ready` line. */
function start(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve(child);
    });
    child.once('exit', (c) => reject(new Error(`${args[0]} exited with ${c}`)));
  });
}

function startProxy(listen: number, upstream: number): Promise<ChildProcess> {
  const script = `
    import { startKafkaTcpProxy } from ${JSON.stringify(proxyJs)};
    import { compileKafkaRules } from ${JSON.stringify(rulesJs)};
    await startKafkaTcpProxy({ port: ${listen}, upstream: { host: '127.0.0.1', port: ${upstream} },
      rules: compileKafkaRules([{ role: 'produce', topic: 'bench' }]) });
    console.log('ready');`;
  return start(['--input-type=module', '-e', script]);
}

async function filterPart(): Promise<void> {
  const directPort = await freePort();
  const proxiedBrokerPort = await freePort();
  const proxyPort = await freePort();
  await start([brokerJs, '--host', '127.0.0.1', '--port', String(directPort)]);
  const brokerArgs = ['--host', '127.0.0.1', '--port', String(proxiedBrokerPort)];
  await start([brokerJs, ...brokerArgs, '--advertise', `127.0.0.1:${proxyPort}`]);
  const proxy = await startProxy(proxyPort, proxiedBrokerPort);

  const producers: Record<'direct' | 'proxy', Producer> = {
    direct: (await newKafka([`127.0.0.1:${directPort}`], 'bench')).producer({ allowAutoTopicCreation: true }),
    proxy: (await newKafka([`127.0.0.1:${proxyPort}`], 'bench')).producer({ allowAutoTopicCreation: true }),
  };
  for (const p of Object.values(producers)) {
    await p.connect();
    await p.send({ topic: 'bench', messages: [{ value: 'warm-up' }] });
  }
  console.log(
    `# kafka filter: produce through the Kafka proxy filter (TCP proxy process) vs straight to the broker ` +
      `(loopback, acks=-1, ${BATCH} messages a batch, ${ROUNDS} alternating rounds of ${SECONDS} s, median)`,
  );
  console.log(`${HEADER}${'proxy CPU µs/batch'.padStart(20)}`);
  for (const { size, inflight } of ROWS) {
    const load = { topic: 'bench', size, batch: BATCH, inflight };
    await produceFor(producers.direct, { ...load, seconds: 0.5 });
    await produceFor(producers.proxy, { ...load, seconds: 0.5 });
    const d: number[] = [];
    const p: number[] = [];
    let proxyCpu = 0;
    let proxyBatches = 0;
    const direct = async () => {
      d.push((await produceFor(producers.direct, { ...load, seconds: SECONDS })).msgsPerSec);
    };
    const proxied = async () => {
      const cpu0 = cpuSeconds(proxy.pid as number);
      const r = await produceFor(producers.proxy, { ...load, seconds: SECONDS });
      proxyCpu += cpuSeconds(proxy.pid as number) - cpu0;
      proxyBatches += r.messages / BATCH;
      p.push(r.msgsPerSec);
    };
    for (let i = 0; i < ROUNDS; i++) {
      for (const f of i % 2 === 0 ? [direct, proxied] : [proxied, direct]) await f();
    }
    console.log(
      `${row(size, inflight, median(d), median(p))}${((proxyCpu / proxyBatches) * 1e6).toFixed(0).padStart(20)}`,
    );
  }
  for (const p of Object.values(producers)) await p.disconnect();
}

const LAB_MANIFEST = (node: string) => {
  const pod = (name: string, app: string, command: string[]) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {app: ${app}}}
spec:
  containers: [{name: c, command: ${JSON.stringify(command)}}]
`;
  const policy = (app: string, rules: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${app}}
spec:
  endpointSelector: {matchLabels: {app: ${app}}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: producer}}]
    toPorts:
    - ports: [{port: "9092", protocol: TCP}]
${rules}`;
  return [
    pod('broker-l4', 'broker-l4', [node, brokerJs, '--port', '9092']),
    pod('broker-l7', 'broker-l7', [node, brokerJs, '--port', '9092']),
    pod('producer', 'producer', ['sleep', 'infinity']),
    policy('broker-l4', ''),
    policy('broker-l7', '      rules:\n        kafka:\n        - {role: produce, topic: bench}\n'),
  ].join('---\n');
};

async function labPart(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('# kafka lab: skipped (a lab needs root)');
    return;
  }
  const lab = `kb${randomBytes(2).toString('hex')}`;
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [cliPath, ...args], {
      encoding: 'utf8',
      timeout: 600_000,
      env: { ...process.env, CILIUM_TS_LAB: lab },
    });
    if (r.status !== 0) throw new Error(`cilium-ts ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const dir = mkdtempSync(join(tmpdir(), 'cts-bench-kafka-'));
  try {
    writeFileSync(join(dir, 'lab.yaml'), LAB_MANIFEST(process.execPath));
    cli(['lab', 'up', '--name', lab, '-f', join(dir, 'lab.yaml')]);
    const pods = JSON.parse(cli(['lab', 'get', 'pods', '-o', 'json'])) as {
      items: { metadata: { name: string }; status: { podIP: string } }[];
    };
    const ip = (name: string) => pods.items.find((p) => p.metadata.name === name)?.status.podIP as string;
    const produce = (broker: string, size: number, inflight: number): number => {
      const out = cli([
        'lab',
        'exec',
        'producer',
        '--',
        process.execPath,
        clientJs,
        'bench',
        '--brokers',
        `${ip(broker)}:9092`,
        '--topic',
        'bench',
        '--seconds',
        String(LAB_SECONDS),
        '--size',
        String(size),
        '--batch',
        String(BATCH),
        '--inflight',
        String(inflight),
      ]);
      const r = JSON.parse(out.trim().split('\n').pop() as string) as { ok: boolean; msgsPerSec?: number };
      if (!r.ok || r.msgsPerSec === undefined) throw new Error(`bench client: ${out}`);
      return r.msgsPerSec;
    };
    console.log(
      `# kafka lab: a pod producing to a broker pod on the same node, allowed by an L4 rule (direct) or by a ` +
        `Kafka rule (datapath redirect to the node's Kafka proxy); ${LAB_ROUNDS} alternating rounds of ${LAB_SECONDS} s, median`,
    );
    console.log(HEADER);
    for (const { size, inflight } of ROWS) {
      const d: number[] = [];
      const p: number[] = [];
      for (let i = 0; i < LAB_ROUNDS; i++) {
        const direct = () => d.push(produce('broker-l4', size, inflight));
        const proxied = () => p.push(produce('broker-l7', size, inflight));
        for (const f of i % 2 === 0 ? [direct, proxied] : [proxied, direct]) f();
      }
      console.log(row(size, inflight, median(d), median(p)));
    }
  } finally {
    spawnSync(process.execPath, [cliPath, 'lab', 'down', '--name', lab], {
      stdio: 'ignore',
      timeout: 300_000,
    });
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  try {
    await filterPart();
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }
  if (!process.argv.includes('--no-lab')) await labPart();
}

main().catch((e: Error) => {
  console.error(`bench kafka: ${e.message}`);
  process.exitCode = 1;
});
