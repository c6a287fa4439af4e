/**
 * Kafka produce throughput through the Kafka proxy filter vs straight to the broker, in one run.
 * Broker workloads (src/workload/kafka-broker.ts) and the proxy (src/proxy/kafka, a plain TCP proxy
 * with a `role: produce, topic: bench` rule, every request decoded and checked) each run in their
 * own process on loopback; the client is kafkajs in this process, acks=-1, batches of
 * BENCH_KAFKA_BATCH messages, 1 send in flight (latency-bound) or 4 (pipelined on one connection). Direct and
 * proxied rounds alternate so both see the same machine load; the figure is the median of the
 * rounds, and the ratio proxied/direct; and the proxy process's CPU time per batch (its cost, which
 * the shared machine's load moves least). Needs no privileges.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Producer } from 'kafkajs';
import { newKafka } from '../src/workload/kafka-client.js';

const ROUNDS = Number(process.env.BENCH_KAFKA_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_KAFKA_SECONDS ?? 2);
const BATCH = Number(process.env.BENCH_KAFKA_BATCH ?? 100);
const SIZES = [100, 10_000];

const brokerJs = fileURLToPath(new URL('../src/workload/kafka-broker.js', import.meta.url));
const proxyJs = fileURLToPath(new URL('../src/proxy/kafka/tcp-proxy.js', import.meta.url));
const rulesJs = fileURLToPath(new URL('../src/proxy/kafka/rules.js', import.meta.url));

const children: ChildProcess[] = [];

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
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
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

async function startProxy(listen: number, upstream: number): Promise<ChildProcess> {
  const script = `
    import { startKafkaTcpProxy } from ${JSON.stringify(proxyJs)};
    import { compileKafkaRules } from ${JSON.stringify(rulesJs)};
    await startKafkaTcpProxy({ port: ${listen}, upstream: { host: '127.0.0.1', port: ${upstream} },
      rules: compileKafkaRules([{ role: 'produce', topic: 'bench' }]) });
    console.log('ready');`;
  return start(['--input-type=module', '-e', script]);
}

let batches = 0;

/** Messages per second produced in `seconds`, `inflight` batches outstanding at a time. */
async function run(producer: Producer, size: number, inflight: number, seconds: number): Promise<number> {
  const value = Buffer.alloc(size, 'k');
  const messages = Array.from({ length: BATCH }, () => ({ value }));
  const end = performance.now() + seconds * 1000;
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (performance.now() < end) {
        await producer.send({ topic: 'bench', acks: -1, messages });
        sent += BATCH;
        batches++;
      }
    }),
  );
  return sent / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const directPort = await freePort();
  const proxiedBrokerPort = await freePort();
  const proxyPort = await freePort();
  await start([brokerJs, '--host', '127.0.0.1', '--port', String(directPort)]);
  await start([
    brokerJs,
    '--host',
    '127.0.0.1',
    '--port',
    String(proxiedBrokerPort),
    '--advertise',
    `127.0.0.1:${proxyPort}`,
  ]);
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
    `# kafka: produce through the Kafka proxy filter vs direct (loopback, acks=-1, ${BATCH} messages a batch, ` +
      `${ROUNDS} alternating rounds of ${SECONDS} s, median)`,
  );
  console.log(
    `  ${'size, in flight'.padEnd(18)}${'direct msg/s'.padStart(14)}${'proxy msg/s'.padStart(14)}` +
      `${'direct MB/s'.padStart(13)}${'proxy MB/s'.padStart(12)}${'ratio'.padStart(8)}` +
      `${'proxy CPU µs/batch'.padStart(20)}`,
  );
  for (const [size, inflight] of SIZES.flatMap((s) => [1, 4].map((f) => [s, f] as const))) {
    await run(producers.direct, size, inflight, 0.5);
    await run(producers.proxy, size, inflight, 0.5);
    const d: number[] = [];
    const p: number[] = [];
    let proxyCpu = 0;
    let proxyBatches = 0;
    for (let i = 0; i < ROUNDS; i++) {
      d.push(await run(producers.direct, size, inflight, SECONDS));
      const cpu0 = cpuSeconds(proxy.pid as number);
      const b0 = batches;
      p.push(await run(producers.proxy, size, inflight, SECONDS));
      proxyCpu += cpuSeconds(proxy.pid as number) - cpu0;
      proxyBatches += batches - b0;
    }
    const md = median(d);
    const mp = median(p);
    const mbs = (n: number) => ((n * size) / 1e6).toFixed(1);
    console.log(
      `  ${`${size} B, ${inflight}`.padEnd(18)}${md.toFixed(0).padStart(14)}${mp.toFixed(0).padStart(14)}` +
        `${mbs(md).padStart(13)}${mbs(mp).padStart(12)}${(mp / md).toFixed(2).padStart(8)}` +
        `${((proxyCpu / proxyBatches) * 1e6).toFixed(0).padStart(20)}`,
    );
  }
  for (const p of Object.values(producers)) await p.disconnect();
}

main()
  .catch((e: Error) => {
    console.error(`bench kafka: ${e.message}`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) c.kill('SIGTERM');
  });
