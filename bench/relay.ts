/**
 * Hubble Relay throughput: three nodes' Hubble servers (one process: observers fed through their
 * ingest path, 4095-flow rings) produce flows at a fixed total rate, a relay process (the
 * `hubble relay` command) follows them through node1's Peer service, and this process follows the
 * relay, counting flows per node and loss notices. Each rate runs for a few seconds; the line
 * reports the highest rate whose flows all arrived (none lost in any ring) and, in the same run,
 * the highest with the three nodes followed directly (one stream each, no relay).
 *
 *   node dist/bench/relay.js [--seconds 3] [--rates 10000,20000,30000,40000,60000,80000]
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import { registerRelayCommands } from '../src/cli/relay.js';
import { HubbleServer, loadHubbleProtos, Observer, PeerList } from '../src/hubble/index.js';
import { responseMeta } from '../src/hubble/relay/wire.js';
import { PODS, packet, TCP_ACK, traceEvent, worldGetters } from '../test/unit/hubble/helpers/events.js';
import { request } from './helpers/ipc.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : def;
};
const SECONDS = Number(arg('--seconds', '3'));
const RATES = arg('--rates', '10000,20000,30000,40000,60000,80000').split(',').map(Number);
const NODES = 3;

// ---------- role: the nodes ----------

async function runNodes(dir: string): Promise<void> {
  const peers = new PeerList();
  const observers: Observer[] = [];
  const servers: HubbleServer[] = [];
  for (let i = 0; i < NODES; i++) {
    const observer = new Observer({ nodeName: `node${i + 1}`, ...worldGetters() });
    observers.push(observer);
    servers.push(await HubbleServer.start({ observer, unixSocket: join(dir, `node${i + 1}.sock`), peers }));
  }
  peers.set(servers.map((s, i) => ({ name: `node${i + 1}`, address: s.addresses.unix! })));
  const { tiefighter: tf, deathstar: ds } = PODS;
  const event = traceEvent({
    obsPoint: 0,
    source: ds.ep,
    srcLabel: tf.id,
    dstLabel: ds.id,
    reason: 1,
    ktimeNs: 0n,
    pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 40000, dport: 80, flags: TCP_ACK }),
  });
  const ktime = new DataView(event.buffer, 32, 8);
  process.on('message', (m: { produce?: { rate: number; ms: number }; stop?: boolean }) => {
    if (m.stop) {
      void Promise.all(servers.map((s) => s.stop(200))).then(() => process.exit(0));
      return;
    }
    if (!m.produce) return;
    const { rate, ms } = m.produce;
    const produced = new Array<number>(NODES).fill(0);
    const t0 = performance.now();
    const tick = () => {
      const elapsed = Math.min(performance.now() - t0, ms);
      const target = Math.floor(((rate / NODES) * elapsed) / 1000);
      for (let i = 0; i < NODES; i++) {
        while (produced[i]! < target) {
          ktime.setBigUint64(0, process.hrtime.bigint(), true);
          observers[i]!.ingest(event);
          produced[i]!++;
        }
      }
      if (elapsed < ms) setTimeout(tick, 2);
      else process.send!({ produced, elapsedMs: performance.now() - t0 });
    };
    tick();
  });
  process.send!({ ready: servers.map((s) => s.addresses.unix!) });
}

// ---------- role: the relay (the CLI command) ----------

async function runRelay(peerService: string): Promise<void> {
  const program = new Command('cilium-ts');
  registerRelayCommands(program);
  await program.parseAsync(
    ['hubble', 'relay', '--listen', '127.0.0.1:0', '--peer-service', peerService, '--retry-timeout', '200ms'],
    { from: 'user' },
  );
}

// ---------- the measuring client ----------

interface Count {
  perNode: Map<string, number>;
  lost: number;
  first: number;
  last: number;
}

/**
 * Follows `target` with GetFlows, counting flows per node (bytes scanned, not decoded) and loss notices.
 * `connected` resolves once the channel is up (the caller leaves the request time to arrive).
 */
function follow(target: string): { count: Count; cancel(): void; connected: Promise<void> } {
  const Ctor = (loadHubbleProtos().observer as grpc.GrpcObject).Observer as grpc.ServiceClientConstructor;
  const client = new Ctor(target, grpc.credentials.createInsecure());
  const def = Ctor.service.GetFlows!;
  const call = client.makeServerStreamRequest(
    def.path,
    def.requestSerialize as (r: object) => Buffer,
    (b: Buffer) => b,
    { follow: true },
  );
  const count: Count = { perNode: new Map(), lost: 0, first: 0, last: 0 };
  let resolveConnected: () => void;
  const connected = new Promise<void>((r) => {
    resolveConnected = r;
  });
  // the relay answers with a node status at once; a node's own server says nothing until flows come
  client.waitForReady(Date.now() + 10_000, () => resolveConnected());
  call.on('data', (buf: Buffer) => {
    const m = responseMeta(buf);
    if (m.kind === 'node_status') resolveConnected();
    if (m.kind === 'lost_events') count.lost++;
    if (m.kind !== 'flow') return;
    const now = performance.now();
    if (count.first === 0) count.first = now;
    count.last = now;
    count.perNode.set(m.nodeName ?? '?', (count.perNode.get(m.nodeName ?? '?') ?? 0) + 1);
  });
  call.on('error', () => {});
  return {
    count,
    connected,
    cancel: () => {
      call.cancel();
      client.close();
    },
  };
}

/** The relay's ServerStatus num_connected_nodes. */
function connectedNodes(address: string): Promise<number> {
  const Ctor = (loadHubbleProtos().observer as grpc.GrpcObject).Observer as grpc.ServiceClientConstructor;
  const c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    ServerStatus(
      r: object,
      cb: (e: unknown, res?: { num_connected_nodes?: { value?: number } }) => void,
    ): void;
  };
  return new Promise((resolve) => {
    c.ServerStatus({}, (_e, res) => {
      c.close();
      resolve(res?.num_connected_nodes?.value ?? 0);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  /** Flows received per node, `node1=n ...`. */
  perNode: string;
  produced: number;
  received: number;
  lost: number;
  /** From the end of production to the last flow received (ms). */
  lagMs: number;
}

/** Produce `rate` flows/s for SECONDS while following every target; wait for the stragglers. */
async function measure(nodes: ChildProcess, targets: string[], rate: number): Promise<Run> {
  const fs = targets.map(follow);
  await Promise.all(fs.map((f) => f.connected));
  await sleep(300);
  const r = await request(nodes, { produce: { rate, ms: SECONDS * 1000 } }, (m) =>
    m.produced ? (m as { produced: number[]; elapsedMs: number }) : undefined,
  );
  const producedAt = performance.now();
  const produced = r.produced.reduce((a, b) => a + b, 0);
  const perNode = new Map<string, number>();
  const total = () => {
    perNode.clear();
    for (const f of fs) for (const [n, c] of f.count.perNode) perNode.set(n, (perNode.get(n) ?? 0) + c);
    return [...perNode.values()].reduce((a, b) => a + b, 0);
  };
  // stragglers: until everything arrived or nothing moved for a second
  let seen = -1;
  for (let idle = 0; total() < produced && idle < 10; ) {
    await sleep(100);
    idle = total() === seen ? idle + 1 : 0;
    seen = total();
  }
  for (const f of fs) f.cancel();
  const received = total();
  return {
    perNode: [...perNode]
      .sort()
      .map(([n, c]) => `${n}=${c}`)
      .join(' '),
    produced,
    received,
    lost: fs.reduce((a, f) => a + f.count.lost, 0),
    lagMs: Math.max(0, Math.max(...fs.map((f) => f.count.last)) - producedAt),
  };
}

/** The highest rate of RATES whose flows all arrive through `targets` (after a warm-up run). */
async function highestWithoutLoss(
  label: string,
  nodes: ChildProcess,
  targets: string[],
): Promise<{ rate: number; run: Run } | undefined> {
  await measure(nodes, targets, RATES[0]!);
  let best: { rate: number; run: Run } | undefined;
  for (const rate of RATES) {
    const run = await measure(nodes, targets, rate);
    const ok = run.received === run.produced && run.lost === 0;
    process.stdout.write(
      `#   ${label}: ${rate.toLocaleString('en-US').padStart(8)} flows/s offered: ${run.received}/${run.produced} received (${run.perNode}), ${run.lost} loss notices${ok ? '' : '  (loss)'}\n`,
    );
    if (!ok) break;
    best = { rate, run };
  }
  return best;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const role = arg('--role', '');
  if (role === 'nodes') return runNodes(arg('--dir', ''));
  if (role === 'relay') return runRelay(arg('--peer-service', ''));

  const dir = mkdtempSync(join(tmpdir(), 'cts-bench-relay-'));
  const self = new URL(import.meta.url).pathname;
  const nodes = fork(self, ['--role', 'nodes', '--dir', dir], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let relay: ChildProcess | undefined;
  try {
    const sockets = await request(nodes, {}, (m) => m.ready as string[] | undefined);
    relay = fork(self, ['--role', 'relay', '--peer-service', `unix://${sockets[0]}`], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    const address = await new Promise<string>((resolve) => {
      let out = '';
      relay!.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on (127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]!);
      });
    });
    while ((await connectedNodes(address)) < NODES) await sleep(100);
    const relayBest = await highestWithoutLoss('relay', nodes, [address]);
    const directBest = await highestWithoutLoss(
      'direct',
      nodes,
      sockets.map((p) => `unix://${p}`),
    );
    const show = (b: typeof relayBest) =>
      b ? `${fmt(b.rate)} flows/s` : `less than ${fmt(RATES[0]!)} flows/s`;
    process.stdout.write(
      `relay: ${show(relayBest)} merged from ${NODES} nodes with no loss` +
        (relayBest
          ? ` (${fmt(relayBest.run.received)} flows in ${SECONDS} s, the last delivered ${fmt(relayBest.run.lagMs)} ms after production ended)`
          : '') +
        `; the same ${NODES} nodes followed directly (one stream each, same run): ${show(directBest)}` +
        (relayBest && directBest ? ` (ratio ${(relayBest.rate / directBest.rate).toFixed(2)})` : '') +
        `; rates tried ${RATES.map(fmt).join(', ')}\n`,
    );
  } finally {
    relay?.kill('SIGTERM');
    nodes.send({ stop: true });
    await sleep(500);
    if (nodes.exitCode === null) nodes.kill('SIGKILL');
    if (relay && relay.exitCode === null) relay.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
