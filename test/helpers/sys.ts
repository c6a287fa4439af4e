/**
 * Helpers for privileged tests: private bpffs mounts, throwaway network namespaces and veths,
 * each with a unique name prefix, and cleanup that runs even when the test fails.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A short random prefix for names that must not collide across concurrent runs (≤ 15-char ifnames). */
export function uniquePrefix(tag: string): string {
  return `${tag}${randomBytes(3).toString('hex')}`;
}

export interface Cleanup {
  add(fn: () => void | Promise<void>): void;
  run(): Promise<void>;
}

/** Collects cleanup steps and runs them in reverse order, continuing past failures. */
export function cleanupStack(): Cleanup {
  const fns: (() => void | Promise<void>)[] = [];
  return {
    add: (fn) => fns.push(fn),
    run: async () => {
      while (fns.length) {
        const fn = fns.pop()!;
        try {
          await fn();
        } catch {
          // best effort: keep cleaning the rest
        }
      }
    },
  };
}

/** Mounts a private bpffs in a temp directory. */
export function privateBpffs(cleanup: Cleanup): string {
  const dir = mkdtempSync(join(tmpdir(), 'cts-bpffs-'));
  sh('mount', ['-t', 'bpf', 'bpf', dir]);
  cleanup.add(() => {
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

export interface VethPair {
  nsA: string;
  nsB: string;
  pathA: string;
  pathB: string;
  ifA: string;
  ifB: string;
  ipA: string;
  ipB: string;
}

/** Two namespaces joined by a veth pair, addresses 10.<x>.<y>.1/.2 /24. */
export function vethPair(prefix: string, cleanup: Cleanup): VethPair {
  const nsA = `${prefix}a`;
  const nsB = `${prefix}b`;
  const ifA = `${prefix}va`;
  const ifB = `${prefix}vb`;
  const oct = 100 + (randomBytes(1)[0]! % 100);
  const oct2 = randomBytes(1)[0]! % 250;
  const ipA = `10.${oct}.${oct2}.1`;
  const ipB = `10.${oct}.${oct2}.2`;
  sh('ip', ['netns', 'add', nsA]);
  cleanup.add(() => void spawnSync('ip', ['netns', 'del', nsA]));
  sh('ip', ['netns', 'add', nsB]);
  cleanup.add(() => void spawnSync('ip', ['netns', 'del', nsB]));
  sh('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
  for (const [ns, ifn, ip] of [
    [nsA, ifA, ipA],
    [nsB, ifB, ipB],
  ] as const) {
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', ifn]);
    sh('ip', ['-n', ns, 'link', 'set', ifn, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  return { nsA, nsB, pathA: `/run/netns/${nsA}`, pathB: `/run/netns/${nsB}`, ifA, ifB, ipA, ipB };
}

/** Runs a node script inside a network namespace (nsenter keeps /sys and bpffs visible). */
export function nodeInNetns(netnsPath: string, script: string, args: string[] = []): ChildProcess {
  return spawn(
    'nsenter',
    [`--net=${netnsPath}`, process.execPath, '--input-type=module', '-e', script, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

/** A TCP server echoing "ok" inside a namespace; resolves once listening. */
export async function tcpServer(netnsPath: string, port: number, cleanup: Cleanup): Promise<ChildProcess> {
  const script = `
    import net from 'node:net';
    const s = net.createServer((c) => { c.on('error', () => {}); c.on('data', (d) => c.write(d)); c.write('ok\\n'); });
    s.listen(${port}, '0.0.0.0', () => console.log('listening'));`;
  const p = nodeInNetns(netnsPath, script);
  cleanup.add(() => void p.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    p.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return p;
}

/** Tries a TCP connection from a namespace; true when it got the server's banner in time. */
export async function tcpConnects(
  netnsPath: string,
  host: string,
  port: number,
  timeoutMs = 1000,
): Promise<boolean> {
  const script = `
    import net from 'node:net';
    const c = net.connect({ host: '${host}', port: ${port} });
    const t = setTimeout(() => process.exit(1), ${timeoutMs});
    c.on('data', () => { clearTimeout(t); process.exit(0); });
    c.on('error', () => process.exit(2));`;
  const p = nodeInNetns(netnsPath, script);
  const code = await new Promise<number>((resolve) => p.on('exit', (c) => resolve(c ?? 3)));
  return code === 0;
}

/** A long-lived TCP client that sends a line every `intervalMs` and reports echoes. */
export function tcpStream(netnsPath: string, host: string, port: number, intervalMs = 50): ChildProcess {
  const script = `
    import net from 'node:net';
    const c = net.connect({ host: '${host}', port: ${port} });
    let n = 0;
    c.on('data', (d) => process.stdout.write('echo ' + d.length + '\\n'));
    c.on('error', (e) => { console.log('error ' + e.code); process.exit(2); });
    c.on('close', () => process.exit(3));
    setInterval(() => c.write('ping ' + (n++) + '\\n'), ${intervalMs});`;
  return nodeInNetns(netnsPath, script);
}
