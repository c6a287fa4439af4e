/** `cilium-ts lab ...`: the local cluster (nodes and pods are network namespaces). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError } from './errors.js';
import { printTable } from './output.js';

const log = (l: string) => process.stdout.write(`${l}\n`);

function labName(o: { name?: string; lab?: string }, cmd?: Command): string {
  const g = cmd?.optsWithGlobals<{ lab?: string }>() ?? {};
  return o.name ?? o.lab ?? g.lab ?? process.env.CILIUM_TS_LAB ?? 'default';
}

async function readManifests(files: string[]) {
  const { parseManifests, ManifestError } = await import('../k8s/objects.js');
  const merged = { namespaces: [], pods: [], policies: [], other: [] } as ReturnType<typeof parseManifests>;
  for (const f of files) {
    let text: string;
    try {
      text = f === '-' ? readFileSync(0, 'utf8') : readFileSync(f, 'utf8');
    } catch (e) {
      throw new CliError(
        `-f ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      );
    }
    try {
      const m = parseManifests(text, f);
      merged.namespaces.push(...m.namespaces);
      merged.pods.push(...m.pods);
      merged.policies.push(...m.policies);
      merged.other.push(...m.other);
    } catch (e) {
      if (e instanceof ManifestError) throw new CliError(e.message);
      throw e;
    }
  }
  return merged;
}

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description('a local cluster on this machine: nodes and pods are network namespaces');
  lab
    .command('up')
    .description('create (or resume) a lab: node namespaces with agents, an underlay, a world host')
    .option('--name <lab>', 'lab name')
    .option('--nodes <n>', 'number of nodes', '1')
    .option('-f, --filename <file...>', 'manifests to apply once the lab is up')
    .action(async (o: { name?: string; nodes: string; filename?: string[] }, cmd: Command) => {
      const l = await import('../lab/lab.js');
      const name = labName(o, cmd);
      await l.up({ name, nodes: Number(o.nodes), log });
      if (o.filename?.length) await l.apply(name, await readManifests(o.filename), log);
    });
  lab
    .command('down')
    .description('remove everything the lab made (also after a crash)')
    .option('--name <lab>', 'lab name')
    .action(async (o: { name?: string }, cmd: Command) => {
      const l = await import('../lab/lab.js');
      await l.down(labName(o, cmd), log);
    });
  lab
    .command('apply')
    .description(
      'apply Kubernetes-style manifests (Namespace, Pod, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy)',
    )
    .requiredOption('-f, --filename <file...>', 'manifest files (- for stdin)')
    .option('--name <lab>', 'lab name')
    .action(async (o: { name?: string; filename: string[] }, cmd: Command) => {
      const l = await import('../lab/lab.js');
      await l.apply(labName(o, cmd), await readManifests(o.filename), log);
    });
  lab
    .command('delete')
    .description('delete what the manifests describe')
    .requiredOption('-f, --filename <file...>', 'manifest files')
    .option('--name <lab>', 'lab name')
    .action(async (o: { name?: string; filename: string[] }, cmd: Command) => {
      const l = await import('../lab/lab.js');
      await l.deleteManifests(labName(o, cmd), await readManifests(o.filename), log);
    });
  lab
    .command('exec')
    .description('run a command inside a pod (like kubectl exec)')
    .option('-n, --namespace <ns>', 'pod namespace', 'default')
    .option('--name <lab>', 'lab name')
    .argument('<pod>')
    .argument('<command...>')
    .action(async (pod: string, argv: string[], o: { namespace: string; name?: string }, cmd: Command) => {
      const l = await import('../lab/lab.js');
      const s = l.requireLab(labName(o, cmd));
      process.exit(await l.exec(s, o.namespace, pod, argv));
    });
  lab
    .command('get')
    .description('list pods, nodes or policies')
    .argument('<what>', 'pods|nodes|policies|namespaces')
    .option('--name <lab>', 'lab name')
    .option('-o, --output <format>', 'table|json', 'table')
    .action(async (what: string, o: { name?: string; output?: string }, cmd: Command) => {
      o.output = cmd.optsWithGlobals<{ output?: string }>().output ?? 'table';
      const l = await import('../lab/lab.js');
      const { isRunning } = await import('../lab/process.js');
      const { AgentClient } = await import('../agent/client.js');
      const { agentSocketPath } = await import('../agent/config.js');
      const s = l.requireLab(labName(o, cmd));
      const kind = what.replace(/s$/, '');
      if (kind === 'pod' || kind === 'po') {
        const eps = new Map<string, { id: number; identity: number; state: string }>();
        for (const n of s.nodes) {
          const list = await new AgentClient(agentSocketPath(s.name, n.name))
            .get<{ id: number; identity: number; state: string; podNamespace: string; podName: string }[]>(
              '/v1/endpoint',
            )
            .catch(() => []);
          for (const e of list) eps.set(`${e.podNamespace}/${e.podName}`, e);
        }
        const rows = Object.values(s.pods).map((p) => {
          const e = eps.get(`${p.namespace}/${p.name}`);
          const running = p.containers.every((c) => isRunning(c));
          return {
            namespace: p.namespace,
            name: p.name,
            status: running ? 'Running' : 'Error',
            ip: p.ipv4 ?? '',
            node: p.node,
            endpoint: e?.id ?? '',
            identity: e?.identity ?? '',
            labels: Object.entries(p.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          };
        });
        if (o.output === 'json') return void log(JSON.stringify(rows, null, 2));
        printTable(rows, ['NAMESPACE', 'NAME', 'STATUS', 'IP', 'NODE', 'ENDPOINT', 'IDENTITY', 'LABELS']);
      } else if (kind === 'node' || kind === 'no') {
        const rows = s.nodes.map((n) => ({
          name: n.name,
          status: isRunning(l.agentRef(n)) ? 'Ready' : 'NotReady',
          underlay: n.underlayIp,
          podCidr: n.podCidrV4,
          agentPid: n.agentPid ?? '',
        }));
        if (o.output === 'json') return void log(JSON.stringify(rows, null, 2));
        printTable(rows, ['NAME', 'STATUS', 'UNDERLAY', 'POD-CIDR', 'AGENT-PID']);
      } else if (kind === 'policie' || kind === 'policy' || kind === 'cnp') {
        if (o.output === 'json') return void log(JSON.stringify(s.policies, null, 2));
        printTable(
          s.policies.map((p) => ({ kind: p.kind, namespace: p.namespace || '<cluster>', name: p.name })),
          ['KIND', 'NAMESPACE', 'NAME'],
        );
      } else if (kind === 'namespace' || kind === 'ns') {
        const rows = Object.entries(s.namespaces).map(([name, labels]) => ({
          name,
          labels: Object.entries(labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
        }));
        if (o.output === 'json') return void log(JSON.stringify(rows, null, 2));
        printTable(rows, ['NAME', 'LABELS']);
      } else throw new CliError(`get: unknown resource "${what}" (pods, nodes, policies, namespaces)`);
    });
}
