/** Test fixture: uniquely named namespaces and processes inside them, always cleaned up. */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createNetns, deleteNetns } from '../../../src/datapath/linux/netns.js';

export const isRoot = process.getuid?.() === 0;

export function uniquePrefix(): string {
  return `cnC${randomBytes(3).toString('hex')}`;
}

export class NetnsFixture {
  readonly prefix = uniquePrefix();
  private readonly names: string[] = [];
  private readonly procs: ChildProcess[] = [];

  /** Create `<prefix>-<suffix>`; returns its path. */
  async netns(suffix: string): Promise<string> {
    const name = `${this.prefix}-${suffix}`;
    this.names.push(name);
    return createNetns(name, { ifMissing: false });
  }

  /** Spawn argv inside the namespace at `path`; killed on cleanup. */
  spawnIn(path: string, argv: string[], env: Record<string, string> = {}): ChildProcess {
    const p = spawn('nsenter', [`--net=${path}`, '--', ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.procs.push(p);
    return p;
  }

  /** Resolve with the first stdout line of `p` that starts with `prefix`. */
  waitLine(p: ChildProcess, prefix: string, timeoutMs = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      let buf = '';
      let err = '';
      const t = setTimeout(
        () => reject(new Error(`timeout waiting for "${prefix}" (stderr: ${err})`)),
        timeoutMs,
      );
      p.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
      });
      p.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        for (const line of buf.split('\n')) {
          if (line.startsWith(prefix)) {
            clearTimeout(t);
            resolve(line);
          }
        }
      });
      p.on('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`process exited (${code}) before "${prefix}": ${err}`));
      });
    });
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await exited;
      }
    }
    for (const n of this.names.reverse()) await deleteNetns(n).catch(() => {});
  }
}
