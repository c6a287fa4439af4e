/** Client side of `cilium-ts workload prober`: ask a pod's prober to run probes from inside the pod. */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { runRoot } from '../../src/common/paths.js';
import type { ProbeRequest, ProbeResult } from '../../src/workload/index.js';

export type { ProbeRequest, ProbeResult };

/** Where a lab pod's prober listens: under the lab directory, so `lab down` removes it. */
export function proberSocket(lab: string, namespace: string, pod: string): string {
  return join(runRoot, lab, 'probe', `${namespace}_${pod}.sock`);
}

/** The container to add to a pod manifest (YAML, indented for `spec.containers`). */
export function proberContainer(lab: string, namespace: string, pod: string): string {
  return `  - name: prober
    command: ["cilium-ts", "workload", "prober", "-q", "--socket", "${proberSocket(lab, namespace, pod)}"]`;
}

/** Sends probes to a prober and returns one result per probe, in order. */
export function runProbes(
  socket: string,
  probes: readonly ProbeRequest[],
  timeoutMs = 30_000,
): Promise<ProbeResult[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(socket);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`prober ${socket}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify({ probes })}\n`));
    sock.on('data', (d: string) => {
      buf += d;
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`prober ${socket}: ${e.message}`));
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        const r = JSON.parse(buf) as { results?: ProbeResult[]; error?: string };
        if (r.error !== undefined || r.results === undefined)
          reject(new Error(`prober ${socket}: ${r.error}`));
        else resolve(r.results);
      } catch (e) {
        reject(new Error(`prober ${socket}: bad answer ${JSON.stringify(buf)}: ${(e as Error).message}`));
      }
    });
  });
}

/** Waits until every socket exists and answers an empty request. */
export async function waitForProbers(sockets: readonly string[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const s of sockets) {
    for (;;) {
      try {
        if (existsSync(s)) {
          await runProbes(s, [], 2000);
          break;
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`prober ${s} did not come up in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
