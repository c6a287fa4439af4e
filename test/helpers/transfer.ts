/**
 * Bulk TCP between two pods of a lab, counted at the receiver, and the counters that tell which
 * way its packets went through a node (the overlay and native-routing tests).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { run } from '../../src/datapath/linux/index.js';
import { waitFor } from './wait.js';

const SINK = `
  import net from 'node:net';
  net.createServer((c) => { let n = 0; c.on('data', (d) => (n += d.length));
    c.on('end', () => { console.log('received ' + n); process.exit(0); }); })
    .listen(5301, '0.0.0.0', () => console.log('listening'));`;
const SOURCE = `
  import net from 'node:net';
  const [host, bytes] = [process.argv[1], Number(process.argv[2])];
  const c = net.connect({ host, port: 5301 }, () => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    let left = bytes;
    const pump = () => { while (left > 0) { const n = Math.min(left, chunk.length); left -= n;
      if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return c.once('drain', pump); }
      c.end(); };
    pump(); });
  c.on('close', () => process.exit(0));
  c.on('error', (e) => { console.error(e.message); process.exit(1); });`;

/** A node script in netns `netns` with `args`; its exit code. */
function runScript(netns: string, script: string, args: string[]): Promise<number | null> {
  const p = spawn(
    'nsenter',
    [`--net=/run/netns/${netns}`, process.execPath, '--input-type=module', '-e', script, ...args],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return new Promise((r) => p.on('exit', r));
}

/**
 * `body` with a server script running in netns `netns` (once it printed `listening`), given what
 * the server printed so far; the server is killed after.
 */
async function withServer<T>(
  netns: string,
  script: string,
  what: string,
  body: (out: () => string) => Promise<T>,
): Promise<T> {
  const server = spawn(
    'nsenter',
    [`--net=/run/netns/${netns}`, process.execPath, '--input-type=module', '-e', script],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    let out = '';
    server.stdout!.on('data', (d) => (out += d));
    await waitFor(`the ${what} to listen`, () => out.includes('listening'));
    return await body(() => out);
  } finally {
    server.kill('SIGKILL');
  }
}

/**
 * Sends `bytes` over one TCP connection from the pod in netns `from` to a sink on port 5301 in
 * netns `to` (address `toIp`); returns what the sink counted once the sender closed.
 */
export function tcpTransfer(from: string, to: string, toIp: string, bytes: number): Promise<number> {
  return withServer(to, SINK, 'sink', async (out) => {
    assert.equal(await runScript(from, SOURCE, [toIp, String(bytes)]), 0, 'the sender wrote everything');
    return Number(await waitFor('the sink to count', () => /received (\d+)/.exec(out())?.[1], 20_000));
  });
}

const ECHO = `
  import net from 'node:net';
  net.createServer((c) => { c.setNoDelay(true); c.on('data', (d) => c.write(d)); c.on('error', () => {}); })
    .listen(5302, '0.0.0.0', () => console.log('listening'));`;
const ASKER = `
  import net from 'node:net';
  const [host, rounds] = [process.argv[1], Number(process.argv[2])];
  const msg = Buffer.alloc(32, 1);
  let left = rounds, got = 0;
  const c = net.connect({ host, port: 5302 }, () => { c.setNoDelay(true); c.write(msg); });
  c.on('data', (d) => { got += d.length; while (got >= msg.length) { got -= msg.length;
    if (--left === 0) { console.log('done'); c.end(); } else c.write(msg); } });
  c.on('close', () => process.exit(left === 0 ? 0 : 1));
  c.on('error', (e) => { console.error(e.message); process.exit(1); });`;

/**
 * `rounds` request/response exchanges of 32 bytes, one at a time, over one TCP connection from the
 * pod in netns `from` to an echo server on port 5302 in netns `to` (address `toIp`): small packets,
 * one in flight. Resolves once every answer came back.
 */
export function tcpPingPong(from: string, to: string, toIp: string, rounds: number): Promise<void> {
  return withServer(to, ECHO, 'echo server', async () => {
    assert.equal(await runScript(from, ASKER, [toIp, String(rounds)]), 0, 'every request was answered');
  });
}

interface LinkStats {
  ifindex: number;
  link_index?: number;
  stats64: { rx: { packets: number; bytes: number }; tx: { packets: number } };
}

async function links(netns: string, dev?: string): Promise<LinkStats[]> {
  const { stdout } = await run(['ip', '-n', netns, '-s', '-j', 'link', 'show', ...(dev ? [dev] : [])]);
  return JSON.parse(stdout) as LinkStats[];
}

/**
 * Packets (and bytes) the pod in `podNetns` received on its eth0, and packets its host-side veth in the node's
 * `nodeNetns` sent: the way through the node's stack or the pod's to-container program (what the
 * datapath delivers straight into the pod skips it).
 */
export async function podPackets(
  nodeNetns: string,
  podNetns: string,
): Promise<{ podRx: number; podRxBytes: number; hostTx: number }> {
  const [eth0] = await links(podNetns, 'eth0');
  const host = (await links(nodeNetns)).find((l) => l.ifindex === eth0!.link_index);
  assert.ok(host, `the host-side veth of ${podNetns} in ${nodeNetns}`);
  return {
    podRx: eth0!.stats64.rx.packets,
    podRxBytes: eth0!.stats64.rx.bytes,
    hostTx: host.stats64.tx.packets,
  };
}

/** Datagrams the stack of network namespace `netns` forwarded so far (Ip: ForwDatagrams). */
export async function forwardedDatagrams(netns: string): Promise<number> {
  const { stdout } = await run(['nsenter', `--net=/run/netns/${netns}`, 'cat', '/proc/net/snmp']);
  const [names, values] = stdout.split('\n').filter((l) => l.startsWith('Ip:'));
  const i = names!.split(/\s+/).indexOf('ForwDatagrams');
  return Number(values!.split(/\s+/)[i]);
}
