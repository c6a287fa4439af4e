/**
 * A reachability prober that runs in a network namespace for a whole bench phase: given an
 * address, it connects to `port` every 2 ms (a try given up after 20 ms) until the address's own
 * stack answers (a connection, or a refusal from a port nobody listens on), and reports when that
 * was. Unlike a tool spawned per try, no process start lies between the pod becoming reachable and
 * the answer.
 */
import { spawn } from 'node:child_process';

const PROBER = `
const net = require('node:net');
const port = Number(process.argv[1]);
require('node:readline').createInterface({ input: process.stdin }).on('line', (ip) => {
  let done = false;
  const answered = () => {
    if (done) return;
    done = true;
    console.log(ip, performance.timeOrigin + performance.now());
  };
  const attempt = () => {
    if (done) return;
    const s = net.connect({ host: ip, port });
    const retry = () => { s.destroy(); setTimeout(attempt, 2); };
    const timer = setTimeout(retry, 20);
    s.on('connect', () => { clearTimeout(timer); s.destroy(); answered(); });
    s.on('error', (e) => { clearTimeout(timer); if (e.code === 'ECONNREFUSED') answered(); else retry(); });
  };
  attempt();
});`;

export interface ReachProber {
  /** When `ip` first answered (epoch ms, fractional); rejects after `timeoutMs`. */
  probe(ip: string, timeoutMs?: number): Promise<number>;
  stop(): void;
}

/** Starts a prober in the namespace at `netnsPath` (/run/netns/NAME), probing `port`. */
export function startReachProber(netnsPath: string, port: number): ReachProber {
  const p = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', PROBER, String(port)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting = new Map<string, (epochMs: number) => void>();
  let buf = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const [ip, at] = buf.slice(0, i).split(' ');
      buf = buf.slice(i + 1);
      waiting.get(ip!)?.(Number(at));
      waiting.delete(ip!);
    }
  });
  return {
    probe: (ip, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiting.delete(ip);
          reject(new Error(`${ip} not reachable in ${timeoutMs / 1000} s`));
        }, timeoutMs);
        waiting.set(ip, (epochMs) => {
          clearTimeout(t);
          resolve(epochMs);
        });
        p.stdin.write(`${ip}\n`);
      }),
    stop: () => void p.kill('SIGKILL'),
  };
}
