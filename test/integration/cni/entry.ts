/** Runs a CNI plugin entry the way a runtime does: CNI_* environment, configuration on stdin. */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface Run {
  code: number | null;
  stdout: string;
  ms: number;
}

export function runEntry(argv: readonly string[], env: Record<string, string>, stdin: string): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, ms: performance.now() - t0 }));
    p.stdin.on('error', () => {});
    p.stdin.end(stdin);
  });
}
