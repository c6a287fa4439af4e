/**
 * A test client process driven over its stdin: one JSON request per line, one JSON answer per line,
 * in order. The client scripts (netns-client.ts, cgroup-client.ts) end with SERVE_OPS, which runs
 * their `ops` table; LineClient is the caller's side.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import type { Cleanup } from '../../helpers/sys.js';

/** The end of a client script: answers each stdin line with `ops[req.op](req)` or `{failed}`. */
export const SERVE_OPS = `
for await (const line of createInterface({ input: process.stdin })) {
  const req = JSON.parse(line);
  try { console.log(JSON.stringify(await ops[req.op](req))); }
  catch (e) { console.log(JSON.stringify({ failed: String(e) })); }
}`;

export class LineClient {
  private readonly lines: Interface;
  private readonly waiting: ((line: string) => void)[] = [];

  /** `p` is killed on cleanup; a request without an answer for `timeoutMs` fails. */
  protected constructor(
    protected readonly p: ChildProcess,
    cleanup: Cleanup,
    private readonly timeoutMs: number,
  ) {
    cleanup.add(() => void p.kill('SIGKILL'));
    this.lines = createInterface({ input: p.stdout! });
    this.lines.on('line', (l) => this.waiting.shift()?.(l));
  }

  protected call<T>(req: Record<string, unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`client: no answer to ${JSON.stringify(req)}`)),
        this.timeoutMs,
      );
      this.waiting.push((line) => {
        clearTimeout(timer);
        const v = JSON.parse(line) as T & { failed?: string };
        if (v.failed) reject(new Error(`client: ${v.failed}`));
        else resolve(v);
      });
      this.p.stdin!.write(`${JSON.stringify(req)}\n`);
    });
  }
}
