/** Drives the project through its CLI, as a user would, for end-to-end tests. */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath } from '../../src/common/paths.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(
  args: string[],
  opts: { lab?: string; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...(opts.lab ? { CILIUM_TS_LAB: opts.lab } : {}) };
    const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like cli() but throws with the output when the command fails. */
export async function cliOk(args: string[], opts: { lab?: string; input?: string } = {}): Promise<string> {
  const r = await cli(args, opts);
  if (r.code !== 0)
    throw new Error(`cilium-ts ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export function cliSync(args: string[], lab: string): CliResult {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    env: { ...process.env, CILIUM_TS_LAB: lab },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

let manifestDir: string | undefined;

/** This process's folder for manifests, removed when the process exits (also on failure or ^C). */
function manifests(): string {
  if (manifestDir) return manifestDir;
  const dir = mkdtempSync(join(tmpdir(), 'cts-manifests-'));
  manifestDir = dir;
  const remove = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      remove();
      process.kill(process.pid, sig); // then die of the signal as we would have
    });
  }
  return dir;
}

/** Writes a manifest to a temporary file and returns its path; the file is removed at exit. */
export function manifest(text: string): string {
  const p = join(manifests(), `${randomBytes(4).toString('hex')}.yaml`);
  writeFileSync(p, text);
  return p;
}

/**
 * A Pod manifest pinned to `node`: `labels` is the body of a YAML flow map ("app: a, tier: x"),
 * `command` a YAML list ('["sleep", "infinity"]').
 */
export function pinnedPod(
  name: string,
  node: string,
  labels: string,
  command: string,
  ns = 'default',
): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {${labels}}}
spec:
  nodeName: ${node}
  containers: [{name: c, command: ${command}}]
`;
}

/** A lab name unique to this run (labs name their namespaces after it). */
export function labName(tag: string): string {
  return `${tag}${randomBytes(2).toString('hex')}`;
}

/** Probe from a pod: returns true when connected (exit 0). */
export async function probe(
  lab: string,
  pod: string,
  target: string,
  protocol = 'tcp',
  ns = 'default',
  timeout = '700ms',
): Promise<boolean> {
  const r = await cli(
    [
      'lab',
      'exec',
      '-n',
      ns,
      pod,
      '--',
      'cilium-ts',
      'workload',
      'connect',
      target,
      '--protocol',
      protocol,
      '--timeout',
      timeout,
    ],
    { lab },
  );
  return r.code === 0;
}

export async function ping(lab: string, pod: string, ip: string, ns = 'default'): Promise<boolean> {
  const r = await cli(['lab', 'exec', '-n', ns, pod, '--', 'ping', '-c', '1', '-W', '1', ip], { lab });
  return r.code === 0;
}

export interface PodRow {
  namespace: string;
  name: string;
  ip: string;
  endpoint: number;
  identity: number;
  status: string;
}

/** Every pod of a lab with its endpoint and identity (`lab get pods -A` and `lab get cep -A`). */
export async function pods(lab: string): Promise<Map<string, PodRow>> {
  type List<T> = { items: T[] };
  const podList = JSON.parse(await cliOk(['lab', 'get', 'pods', '-A', '-o', 'json'], { lab })) as List<{
    metadata: { namespace: string; name: string };
    status: { phase: string; podIP?: string };
  }>;
  const cepList = JSON.parse(await cliOk(['lab', 'get', 'cep', '-A', '-o', 'json'], { lab })) as List<{
    metadata: { namespace: string; name: string };
    status: { id: number; identity: { id: number } };
  }>;
  const ceps = new Map(cepList.items.map((c) => [`${c.metadata.namespace}/${c.metadata.name}`, c.status]));
  return new Map(
    podList.items.map((p) => {
      const key = `${p.metadata.namespace}/${p.metadata.name}`;
      const row: PodRow = {
        namespace: p.metadata.namespace,
        name: p.metadata.name,
        ip: p.status.podIP ?? '',
        endpoint: ceps.get(key)?.id ?? 0,
        identity: ceps.get(key)?.identity.id ?? 0,
        status: p.status.phase,
      };
      return [key, row];
    }),
  );
}
