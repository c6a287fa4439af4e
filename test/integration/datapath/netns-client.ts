/**
 * For the NodePort tests: servers that tell who they are and whom they see, and a client process
 * in a network namespace driven over its stdin (one JSON line per operation, one answer each).
 *
 * Server (one process per namespace, on 0.0.0.0): a TCP connection first gets the line
 * `<name> <peer address>:<peer port>` (the source the server sees: SNAT or not), then every line it
 * sends comes back prefixed with the name, but `bye`, on which the server closes the connection
 * first; a UDP datagram is answered the same way.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Cleanup } from '../../helpers/sys.js';
import { LineClient, SERVE_OPS } from './line-client.js';

const SERVER = `
import net from 'node:net';
import dgram from 'node:dgram';
const [name, tcp, udp] = process.argv.slice(1);
let pending = 2;
const up = () => { if (--pending === 0) console.log('ready'); };
net.createServer((c) => {
  c.on('error', () => {});
  c.write(name + ' ' + c.remoteAddress + ':' + c.remotePort + '\\n');
  let buf = '';
  c.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'bye') c.end(); else c.write(name + ' ' + line + '\\n');
    }
  });
}).listen(Number(tcp), '0.0.0.0', up);
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send(name + ' ' + r.address + ':' + r.port, r.port, r.address));
u.bind(Number(udp), '0.0.0.0', up);`;

/** Starts a named TCP + UDP server in `netns`; resolves when it listens. */
export async function startNamedServer(
  netns: string,
  name: string,
  tcpPort: number,
  udpPort: number,
  cleanup: Cleanup,
): Promise<ChildProcess> {
  const p = spawn(
    'nsenter',
    [
      `--net=${netns}`,
      process.execPath,
      '--input-type=module',
      '-e',
      SERVER,
      name,
      String(tcpPort),
      String(udpPort),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  cleanup.add(() => void p.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    p.on('exit', (code) => reject(new Error(`server ${name} exited ${code}: ${err}`)));
  });
  return p;
}

/** One TCP connection: the server that answered and the source it saw. */
export interface Conn {
  /** The server's name. */
  server?: string;
  /** `address:port` the server saw as the client. */
  seenAs?: string;
  /** The client's own port. */
  localPort?: number;
  error?: string;
  ms: number;
}

export interface Datagram {
  server?: string;
  seenAs?: string;
  /** The address the reply came from, as recvfrom() reports it. */
  from?: string;
  error?: string;
}

const CLIENT = `
import net from 'node:net';
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
const held = new Map();
function lines(c, onLine) {
  let buf = '';
  c.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); onLine(l); }
  });
}
function tcp(host, port, o) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const opts = { host, port };
    if (o.localAddress) opts.localAddress = o.localAddress;
    if (o.localPort) opts.localPort = o.localPort;
    const c = net.connect(opts);
    const timer = setTimeout(() => { c.destroy(); resolve({ error: 'TIMEOUT', ms: performance.now() - t0 }); }, o.timeoutMs ?? 3000);
    let first = true;
    lines(c, (l) => {
      if (!first) { c.emit('reply', l); return; }
      first = false;
      clearTimeout(timer);
      const [server, seenAs] = l.split(' ');
      const r = { server, seenAs, localPort: c.localPort, ms: performance.now() - t0, sock: c };
      if (!o.serverCloses) { resolve(r); return; }
      c.on('close', () => { delete r.sock; resolve(r); });
      c.write('bye\\n');
    });
    c.on('error', (e) => { clearTimeout(timer); resolve({ error: e.code, ms: performance.now() - t0 }); });
  });
}
function udp(host, port, o) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (r) => { clearTimeout(timer); try { s.close(); } catch {} resolve(r); };
    const timer = setTimeout(() => done({ error: 'TIMEOUT' }), o.timeoutMs ?? 2000);
    s.on('error', (e) => done({ error: e.code }));
    s.on('message', (m, r) => { const [server, seenAs] = String(m).split(' '); done({ server, seenAs, from: r.address + ':' + r.port }); });
    const send = () => s.send('x', port, host, (e) => e && done({ error: e.code }));
    if (o.localAddress) s.bind(0, o.localAddress, send); else send();
  });
}
const ops = {
  async tcp(r) {
    const out = [];
    for (let i = 0; i < (r.n ?? 1); i++) {
      const x = await tcp(r.host, r.port, { ...r, localPort: r.localPort ? r.localPort + i : undefined });
      x.sock?.destroy(); delete x.sock; out.push(x);
    }
    return out;
  },
  async udp(r) {
    const out = [];
    for (let i = 0; i < (r.n ?? 1); i++) out.push(await udp(r.host, r.port, r));
    return out;
  },
  async open(r) {
    const x = await tcp(r.host, r.port, r);
    if (x.sock) held.set(r.id, x.sock);
    delete x.sock;
    return x;
  },
  async send(r) {
    const c = held.get(r.id);
    if (!c) return { error: 'NOCONN' };
    return new Promise((resolve) => {
      const timer = setTimeout(() => { c.off('reply', on); resolve({ error: 'TIMEOUT' }); }, r.timeoutMs ?? 2000);
      const on = (l) => { clearTimeout(timer); c.off('reply', on); const [server, ...rest] = l.split(' '); resolve({ server, text: rest.join(' ') }); };
      c.on('reply', on);
      c.write(r.text + '\\n');
    });
  },
  async close(r) { held.get(r.id)?.destroy(); held.delete(r.id); return {}; },
};
${SERVE_OPS}`;

/** A client process in a network namespace. */
export class NetnsClient extends LineClient {
  private constructor(p: ChildProcess, cleanup: Cleanup) {
    super(p, cleanup, 120_000);
  }

  static start(netns: string, cleanup: Cleanup): NetnsClient {
    const p = spawn('nsenter', [`--net=${netns}`, process.execPath, '--input-type=module', '-e', CLIENT], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    return new NetnsClient(p, cleanup);
  }

  /** `n` TCP connections one after the other, each closed after the server's first line. With
   * `localPort`, connection i uses localPort + i. */
  tcp(
    host: string,
    port: number,
    opts: {
      n?: number;
      localAddress?: string;
      localPort?: number;
      timeoutMs?: number;
      /** The server closes first (asked to with `bye`): it keeps the TIME_WAIT state. */
      serverCloses?: boolean;
    } = {},
  ): Promise<Conn[]> {
    return this.call({ op: 'tcp', host, port, ...opts });
  }

  /** `n` UDP sockets one after the other, each sending one datagram and waiting for the answer. */
  udp(host: string, port: number, opts: { n?: number; localAddress?: string; timeoutMs?: number } = {}) {
    return this.call<Datagram[]>({ op: 'udp', host, port, ...opts });
  }

  /** Opens a TCP connection and keeps it as `id`. */
  open(id: string, host: string, port: number, opts: { localAddress?: string } = {}): Promise<Conn> {
    return this.call({ op: 'open', id, host, port, ...opts });
  }

  /** Sends a line on a held connection: which server echoed it. */
  send(id: string, text: string): Promise<{ server?: string; text?: string; error?: string }> {
    return this.call({ op: 'send', id, text });
  }

  close(id: string): Promise<unknown> {
    return this.call({ op: 'close', id });
  }
}
