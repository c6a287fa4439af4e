/**
 * For socket-LB tests: a throwaway cgroup v2 directory, and a client process that joins it before
 * opening any socket and then runs socket operations sent as JSON lines on its stdin, answering one
 * JSON line each (what connect, getpeername and recvfrom reported, or the error code). Servers that
 * name themselves in every answer tell which backend a connection reached.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Mount } from '../../../src/datapath/linux/index.js';
import type { Cleanup } from '../../helpers/sys.js';
import { uniquePrefix } from '../../helpers/sys.js';
import { LineClient, SERVE_OPS } from './line-client.js';

/** A new empty cgroup directly under the cgroup2 root; removed on cleanup (its processes killed first). */
export function throwawayCgroup(tag: string, cleanup: Cleanup): string {
  const dir = join(cgroup2Mount(), uniquePrefix(tag));
  mkdirSync(dir);
  cleanup.add(() => {
    for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
      spawnSync('kill', ['-9', pid]);
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(dir);
        return;
      } catch {
        spawnSync('sleep', ['0.05']);
      }
    }
  });
  return dir;
}

/** Node script for the servers: TCP and UDP on each address, every answer names the server. */
const SERVERS = `
import net from 'node:net';
import dgram from 'node:dgram';
const [tcp, udp, ...addrs] = process.argv.slice(1);
let pending = 0;
const up = () => { if (--pending === 0) console.log('ready'); };
for (const a of addrs) {
  const name = a.includes(':') ? '[' + a + ']' : a;
  pending += 2;
  net.createServer((c) => { c.on('error', () => {}); c.write(name + ':' + tcp + '\\n'); c.on('data', () => {}); })
    .listen(Number(tcp), a, up);
  const u = dgram.createSocket(a.includes(':') ? 'udp6' : 'udp4');
  u.on('message', (m, r) => u.send(name + ':' + udp, r.port, r.address));
  u.bind(Number(udp), a, up);
}`;

/** Starts TCP and UDP servers on every address (inside `netns`); resolves when all listen. */
export async function startServers(
  netns: string,
  tcpPort: number,
  udpPort: number,
  addrs: readonly string[],
  cleanup: Cleanup,
): Promise<void> {
  const p = spawn(
    'nsenter',
    [
      `--net=${netns}`,
      process.execPath,
      '--input-type=module',
      '-e',
      SERVERS,
      String(tcpPort),
      String(udpPort),
      ...addrs,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  cleanup.add(() => void p.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    p.on('exit', (code) => reject(new Error(`servers exited ${code}: ${err}`)));
  });
}

/** What a TCP connect reported. */
export interface TcpResult {
  /** The server's name line, when connected. */
  server?: string;
  /** getpeername() as Node reports it. */
  peer?: string;
  error?: string;
  ms: number;
}

export interface UdpResult {
  /** Per datagram: the server that answered and the address recvfrom() reported. */
  replies: { server: string; from: string }[];
  error?: string;
  /** getpeername() of a connected socket. */
  peer?: string;
}

const CLIENT = `
import net from 'node:net';
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
const held = new Map();
const hp = (a, p) => (a.includes(':') ? '[' + a + ']' : a) + ':' + p;
function tcp(host, port) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = net.connect({ host, port });
    let buf = '';
    // generous: a loaded machine can stall a connection for seconds; no test waits for this to fire
    const timer = setTimeout(() => { c.destroy(); resolve({ error: 'TIMEOUT', ms: performance.now() - t0 }); }, 10000);
    c.on('data', (d) => {
      buf += d;
      if (!buf.includes('\\n')) return;
      clearTimeout(timer);
      resolve({ server: buf.trim(), peer: hp(c.remoteAddress, c.remotePort), ms: performance.now() - t0, sock: c });
    });
    c.on('error', (e) => { clearTimeout(timer); resolve({ error: e.code, ms: performance.now() - t0 }); });
  });
}
function udp(host, port, n, connected) {
  return new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const replies = [];
    const done = (extra) => { clearTimeout(timer); try { s.close(); } catch {} resolve({ replies, ...extra }); };
    const timer = setTimeout(() => done({ error: 'TIMEOUT' }), 3000);
    s.on('error', (e) => done({ error: e.code }));
    s.on('message', (m, r) => {
      replies.push({ server: String(m), from: hp(r.address, r.port) });
      if (replies.length === n) done(connected ? { peer: hp(s.remoteAddress().address, s.remoteAddress().port) } : {});
      else send();
    });
    const send = () => connected ? s.send('x') : s.send('x', port, host, (e) => e && done({ error: e.code }));
    if (connected) s.connect(port, host, (e) => e ? done({ error: e.code }) : send());
    else send();
  });
}
const ops = {
  async tcp({ host, port, n = 1 }) {
    const out = [];
    for (let i = 0; i < n; i++) { const r = await tcp(host, port); r.sock?.destroy(); delete r.sock; out.push(r); }
    return out;
  },
  async udp({ host, port, n = 1, sockets = 1, connected = false }) {
    const out = [];
    for (let i = 0; i < sockets; i++) out.push(await udp(host, port, n, connected));
    return out;
  },
  async hold({ host, port, id }) { const r = await tcp(host, port); if (r.sock) held.set(id, r.sock); delete r.sock; return r; },
  // net.Socket caches its first getpeername(); drop the cache to ask the kernel again.
  async peer({ id }) { const c = held.get(id); c._peername = undefined; return { peer: hp(c.remoteAddress, c.remotePort) }; },
  async drop({ id }) { const c = held.get(id); held.delete(id); await new Promise((r) => { c.once('close', r); c.destroy(); }); return {}; },
};
${SERVE_OPS}`;

/** A client process in `cgroup` and `netns`, driven over its stdin. */
export class CgroupClient extends LineClient {
  private constructor(p: ChildProcess, cleanup: Cleanup) {
    super(p, cleanup, 60_000);
  }

  /** The shell writes its own PID into the cgroup, then becomes the client: every socket it opens is
   * in the cgroup from the start. */
  static start(cgroup: string, netns: string, cleanup: Cleanup): CgroupClient {
    const p = spawn(
      'sh',
      [
        '-c',
        `echo $$ > ${join(cgroup, 'cgroup.procs')} && exec nsenter --net=${netns} ${process.execPath} --input-type=module -e "$0"`,
        CLIENT,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    return new CgroupClient(p, cleanup);
  }

  get pid(): number {
    return this.p.pid!;
  }

  /** `n` TCP connections one after the other, each closed after the server's name line. */
  tcp(host: string, port: number, n = 1): Promise<TcpResult[]> {
    return this.call({ op: 'tcp', host, port, n });
  }

  /** `sockets` UDP sockets one after the other, each sending `n` datagrams (one after each answer). */
  udp(
    host: string,
    port: number,
    opts: { n?: number; sockets?: number; connected?: boolean } = {},
  ): Promise<UdpResult[]> {
    return this.call({ op: 'udp', host, port, ...opts });
  }

  /** Closes the connection kept as `id`; resolves once its socket is closed. */
  drop(id: string): Promise<Record<string, never>> {
    return this.call({ op: 'drop', id });
  }

  /** Opens a TCP connection and keeps it as `id`. */
  hold(id: string, host: string, port: number): Promise<TcpResult> {
    return this.call({ op: 'hold', id, host, port });
  }

  /** getpeername() of a held connection now. */
  peer(id: string): Promise<{ peer: string }> {
    return this.call({ op: 'peer', id });
  }
}
