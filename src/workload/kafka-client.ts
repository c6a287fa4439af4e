/**
 * A Kafka client workload for lab pods, on kafkajs (a development dependency: it is loaded only when
 * this script runs). One JSON line on stdout says what happened, and the exit code is 0 on success:
 *   node kafka-client.js produce --brokers HOST:PORT --topic T [--count N] [--size BYTES]
 *   node kafka-client.js consume --brokers HOST:PORT --topic T [--count N] [--group G] [--timeout MS]
 *   node kafka-client.js bench --brokers HOST:PORT --topic T [--seconds S] [--size BYTES] [--batch N]
 *                              [--inflight N]   (produce as fast as acks=-1 allows; prints msgsPerSec)
 * A Kafka error is reported with its protocol name and code, e.g.
 *   {"ok":false,"error":"TOPIC_AUTHORIZATION_FAILED","code":29,"message":"..."}
 */
import type { Kafka, Producer } from 'kafkajs';

export interface KafkaClientResult {
  readonly ok: boolean;
  readonly produced?: number;
  readonly consumed?: string[];
  readonly msgsPerSec?: number;
  readonly error?: string;
  readonly code?: number;
  readonly message?: string;
}

export interface KafkaClientOptions {
  readonly brokers: string[];
  readonly topic: string;
  readonly count?: number;
  readonly size?: number;
  readonly group?: string;
  readonly timeoutMs?: number;
  readonly clientId?: string;
  readonly seconds?: number;
  readonly batch?: number;
  readonly inflight?: number;
}

export async function newKafka(brokers: string[], clientId = 'cilium-ts-client'): Promise<Kafka> {
  const { Kafka, logLevel } = await import('kafkajs');
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 3000,
    requestTimeout: 10000,
  });
}

/** The Kafka error in a kafkajs failure (possibly wrapped), as protocol name and code. */
export function kafkaErrorOf(e: unknown): KafkaClientResult {
  let cur = e as { type?: string; code?: number; message?: string; cause?: unknown; originalError?: unknown };
  for (let i = 0; i < 5 && cur; i++) {
    if (typeof cur.type === 'string' && typeof cur.code === 'number')
      return { ok: false, error: cur.type, code: cur.code, message: String(cur.message) };
    cur = (cur.originalError ?? cur.cause) as typeof cur;
  }
  return { ok: false, error: 'CLIENT_ERROR', message: String((e as Error)?.message ?? e) };
}

export async function produce(o: KafkaClientOptions): Promise<KafkaClientResult> {
  const kafka = await newKafka(o.brokers, o.clientId);
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  try {
    await producer.connect();
    const count = o.count ?? 1;
    const value = 'x'.repeat(o.size ?? 16);
    await producer.send({
      topic: o.topic,
      messages: Array.from({ length: count }, (_, i) => ({ value: `${i}:${value}` })),
    });
    return { ok: true, produced: count };
  } catch (e) {
    return kafkaErrorOf(e);
  } finally {
    await producer.disconnect().catch(() => {});
  }
}

export async function consume(o: KafkaClientOptions): Promise<KafkaClientResult> {
  const kafka = await newKafka(o.brokers, o.clientId);
  const consumer = kafka.consumer({
    groupId: o.group ?? 'cilium-ts-consumer',
    maxWaitTimeInMs: 200,
    retry: { retries: 0 },
  });
  const want = o.count ?? 1;
  const got: string[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    let crashed: unknown;
    consumer.on(consumer.events.CRASH, (ev) => {
      crashed = ev.payload.error;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(crashed ?? new Error(`timed out with ${got.length}/${want} messages`)),
        o.timeoutMs ?? 10000,
      );
      consumer
        .run({
          eachMessage: async ({ message }) => {
            got.push(message.value?.toString() ?? '');
            if (got.length >= want) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch((e: unknown) => {
          clearTimeout(timer);
          reject(e);
        });
      const poll = setInterval(() => {
        if (crashed) {
          clearInterval(poll);
          clearTimeout(timer);
          reject(crashed);
        }
      }, 50);
      timer.unref();
      poll.unref();
    });
    return { ok: true, consumed: got };
  } catch (e) {
    return kafkaErrorOf(e);
  } finally {
    await consumer.disconnect().catch(() => {});
  }
}

export interface ProduceLoad {
  readonly topic: string;
  readonly size: number;
  readonly batch: number;
  readonly inflight: number;
  readonly seconds: number;
}

/**
 * Produces batches of `batch` messages of `size` bytes (acks=-1) for `seconds`, `inflight` batches
 * outstanding at a time on the producer's connection.
 */
export async function produceFor(
  producer: Producer,
  load: ProduceLoad,
): Promise<{ messages: number; msgsPerSec: number }> {
  const value = Buffer.alloc(load.size, 'k');
  const messages = Array.from({ length: load.batch }, () => ({ value }));
  const t0 = performance.now();
  const end = t0 + load.seconds * 1000;
  let sent = 0;
  await Promise.all(
    Array.from({ length: load.inflight }, async () => {
      while (performance.now() < end) {
        await producer.send({ topic: load.topic, acks: -1, messages });
        sent += load.batch;
      }
    }),
  );
  return { messages: sent, msgsPerSec: sent / ((performance.now() - t0) / 1000) };
}

export async function bench(o: KafkaClientOptions): Promise<KafkaClientResult> {
  const producer = (await newKafka(o.brokers, o.clientId)).producer({ allowAutoTopicCreation: true });
  try {
    await producer.connect();
    const load = {
      topic: o.topic,
      size: o.size ?? 100,
      batch: o.batch ?? 100,
      inflight: o.inflight ?? 1,
    };
    await produceFor(producer, { ...load, seconds: 0.3 }); // warm-up: connection, metadata, JIT
    const { msgsPerSec } = await produceFor(producer, { ...load, seconds: o.seconds ?? 2 });
    return { ok: true, msgsPerSec: Math.round(msgsPerSec) };
  } catch (e) {
    return kafkaErrorOf(e);
  } finally {
    await producer.disconnect().catch(() => {});
  }
}

function parse(argv: readonly string[]): { cmd: string; opts: KafkaClientOptions } {
  const get = (n: string) => {
    const i = argv.indexOf(n);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (n: string): number | undefined => {
    const s = get(n);
    if (s === undefined) return undefined;
    const v = Number(s);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${n}: expected a non-negative integer, got ${s}`);
    return v;
  };
  const brokers = get('--brokers');
  const topic = get('--topic');
  if (!brokers || !topic) throw new Error('--brokers and --topic are required');
  const count = num('--count');
  const size = num('--size');
  const timeoutMs = num('--timeout');
  const seconds = num('--seconds');
  const batch = num('--batch');
  const inflight = num('--inflight');
  const group = get('--group');
  const clientId = get('--client-id');
  return {
    cmd: argv[0] ?? '',
    opts: {
      brokers: brokers.split(','),
      topic,
      ...(count !== undefined ? { count } : {}),
      ...(size !== undefined ? { size } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(group !== undefined ? { group } : {}),
      ...(clientId !== undefined ? { clientId } : {}),
      ...(seconds !== undefined ? { seconds } : {}),
      ...(batch !== undefined ? { batch } : {}),
      ...(inflight !== undefined ? { inflight } : {}),
    },
  };
}

async function main(): Promise<void> {
  const { cmd, opts } = parse(process.argv.slice(2));
  let res: KafkaClientResult;
  if (cmd === 'produce') res = await produce(opts);
  else if (cmd === 'consume') res = await consume(opts);
  else if (cmd === 'bench') res = await bench(opts);
  else throw new Error(`unknown command ${JSON.stringify(cmd)}: produce, consume or bench`);
  process.stdout.write(`${JSON.stringify(res)}\n`);
  process.exit(res.ok ? 0 : 1);
}

if (process.argv[1]?.endsWith('kafka-client.js')) {
  main().catch((e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  });
}
