/** `cilium-ts lab ...`: the local cluster (nodes and pods are network namespaces). */
import type { Command } from 'commander';
import type { ManifestFile } from '../lab/apply-protocol.js';
import { CliError } from './errors.js';
import { applyThroughController, readManifestFiles } from './lab-apply-client.js';

const log = (l: string) => process.stdout.write(`${l}\n`);

function labName(o: { name?: string; lab?: string }, cmd?: Command): string {
  const g = cmd?.optsWithGlobals<{ lab?: string }>() ?? {};
  return o.name ?? o.lab ?? g.lab ?? process.env.CILIUM_TS_LAB ?? 'default';
}

async function readManifests(files: string[]) {
  const { parseManifestFiles, ManifestError } = await import('../k8s/objects.js');
  let texts: ManifestFile[];
  try {
    texts = readManifestFiles(files);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  try {
    return parseManifestFiles(texts);
  } catch (e) {
    if (e instanceof ManifestError) throw new CliError(e.message);
    throw e;
  }
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
    .option('--dns', 'cluster DNS: a system pod behind the kube-dns Service on 10.96.0.10')
    .option('--etcd-members <n>', "members of the lab's etcd with 2 or more nodes: 1 or 3 (default 1)")
    .option(
      '--kvstore-lease-ttl <seconds>',
      "TTL of the agents' etcd leases: a dead agent's keys go after it",
    )
    .option(
      '--routing-mode <mode>',
      "how nodes reach other nodes' pods with 2 or more nodes: vxlan (default: the overlay) or native",
    )
    .option(
      '--ipv6 [bool]',
      'dual stack, the default for a new lab: IPv6 pod CIDRs and pod addresses beside IPv4 (--ipv6=false: IPv4 only)',
    )
    .option('-f, --filename <file...>', 'manifests to apply once the lab is up')
    .action(async (o: UpFlags, cmd: Command) => {
      const l = await import('../lab/lab.js');
      const name = labName(o, cmd);
      if (!/^\d+$/.test(o.nodes)) throw new CliError(`--nodes: "${o.nodes}" is not a number`);
      if (o.etcdMembers !== undefined && !/^\d+$/.test(o.etcdMembers))
        throw new CliError(`--etcd-members: "${o.etcdMembers}" is not a number`);
      if (o.kvstoreLeaseTtl !== undefined && !/^\d+$/.test(o.kvstoreLeaseTtl))
        throw new CliError(`--kvstore-lease-ttl: "${o.kvstoreLeaseTtl}" is not a number of seconds`);
      if (o.ipv6 !== undefined && o.ipv6 !== true && o.ipv6 !== 'true' && o.ipv6 !== 'false')
        throw new CliError(`--ipv6: "${o.ipv6}"; give true or false`);
      await l.up({
        name,
        nodes: Number(o.nodes),
        dns: o.dns === true,
        ...(o.etcdMembers !== undefined ? { etcdMembers: Number(o.etcdMembers) } : {}),
        ...(o.kvstoreLeaseTtl !== undefined ? { kvstoreLeaseTtl: Number(o.kvstoreLeaseTtl) } : {}),
        ...(o.routingMode !== undefined ? { routingMode: o.routingMode } : {}),
        ...(o.ipv6 !== undefined ? { ipv6: o.ipv6 !== 'false' } : {}),
        log,
      });
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
      'apply Kubernetes-style manifests (Namespace, Pod, Deployment, Service, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy)',
    )
    .requiredOption('-f, --filename <file...>', 'manifest files (- for stdin)')
    .option('--name <lab>', 'lab name')
    .action(async (o: { name?: string; filename: string[] }, cmd: Command) => {
      const name = labName(o, cmd);
      // the lab's controller applies it when it runs (as the installed CLI's fast path does)
      const code = await applyThroughController(name, o.filename);
      if (code !== undefined) {
        process.exitCode = code;
        return;
      }
      const l = await import('../lab/lab.js');
      await l.apply(name, await readManifests(o.filename), log);
    });
  lab
    .command('delete')
    .description('delete what the manifests describe')
    .requiredOption('-f, --filename <file...>', 'manifest files')
    .option('--grace-period <seconds>', "pods' time between SIGTERM and SIGKILL (default: the pod's, 30 s)")
    .option('--no-wait', 'return once deletion is requested instead of when the pods are gone')
    .option('--name <lab>', 'lab name')
    .action(
      async (o: { name?: string; filename: string[]; gracePeriod?: string; wait: boolean }, cmd: Command) => {
        const l = await import('../lab/lab.js');
        const grace = o.gracePeriod === undefined ? undefined : Number(o.gracePeriod);
        if (grace !== undefined && !(Number.isInteger(grace) && grace >= 0))
          throw new CliError(`--grace-period: "${o.gracePeriod}" must be a non-negative integer`);
        await l.deleteManifests(labName(o, cmd), await readManifests(o.filename), log, {
          ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
          wait: o.wait,
        });
      },
    );
  lab
    .command('scale')
    .description('set the replicas of a deployment (like kubectl scale)')
    .argument('<type>', 'deployment (or deployment/NAME)')
    .argument('[name]', 'the deployment')
    .requiredOption('--replicas <n>', 'replicas wanted')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('--name <lab>', 'lab name')
    .action(
      async (
        type: string,
        name: string | undefined,
        o: { replicas: string; namespace: string; name?: string },
        cmd: Command,
      ) => {
        const [t, n] = type.includes('/') ? type.split('/', 2) : [type, name];
        if (!['deployment', 'deployments', 'deploy', 'deployment.apps', 'deployments.apps'].includes(t!))
          throw new CliError(`scale: "${t}": only deployments can be scaled in the lab`);
        if (!n) throw new CliError('scale: give the deployment: lab scale deployment NAME --replicas N');
        if (!/^\d+$/.test(o.replicas))
          throw new CliError(`--replicas: "${o.replicas}" must be a non-negative integer`);
        const l = await import('../lab/lab.js');
        await l.scale(labName(o, cmd), o.namespace, n, Number(o.replicas), log);
      },
    );
  lab
    .command('agent')
    .description("manage the nodes' agents")
    .command('restart')
    .description(
      'restart the agents of the given nodes (all when none is given); they get the lab state again',
    )
    .argument('[nodes...]', 'node names')
    .option('--name <lab>', 'lab name')
    .action(async (nodes: string[], o: { name?: string }, cmd: Command) => {
      const l = await import('../lab/lab.js');
      // `--node NODE` (the global option) names a node too.
      const node = cmd.optsWithGlobals<{ node?: string }>().node;
      await l.restartAgents(labName(o, cmd), node ? [...nodes, node] : nodes, log);
    });
  const etcd = lab.command('etcd').description("the lab's etcd (labs of 2 or more nodes): outage drills");
  for (const [action, what] of [
    ['stop', 'stop the members (all, or those named); returns once they are gone'],
    ['start', 'start the members that are not running; returns once the cluster has quorum'],
    ['status', 'the cluster as a client on the underlay sees it'],
  ] as const) {
    const c = etcd.command(action).description(what).option('--name <lab>', 'lab name');
    if (action !== 'status')
      c.option(
        '--member <name>',
        'a member (etcd1, etcd2, ...), repeatable',
        (v, p: string[]) => [...p, v],
        [],
      );
    c.action(async (o: { name?: string; member?: string[] }, cmd: Command) => {
      const l = await import('../lab/lab.js');
      await l.etcd(labName(o, cmd), action, o.member ?? [], log);
    });
  }
  lab
    .command('node')
    .description("the lab's nodes")
    .command('remove')
    .description(
      'remove a node: its pods, agent and namespace, and its keys in etcd (the other nodes drop its routes and endpoints)',
    )
    .argument('<node>', 'node name')
    .option('--name <lab>', 'lab name')
    .action(async (node: string, o: { name?: string }, cmd: Command) => {
      const l = await import('../lab/lab.js');
      await l.removeLabNode(labName(o, cmd), node, log);
    });
  lab
    .command('exec')
    .description(
      'run a command inside a pod (NAME or pod/NAME: its network namespace, resolv.conf and node cgroup), on a node (node/NAME) or in the world namespace (--world)',
    )
    .option('-n, --namespace <ns>', 'pod namespace', 'default')
    .option('--world', "in the lab's world namespace (the outside clients of NodePorts and LoadBalancers)")
    .option('--name <lab>', 'lab name')
    .argument('[target]', 'pod name, pod/NAME or node/NAME')
    .argument('[command...]')
    .action(
      async (
        pod: string | undefined,
        argv: string[],
        o: { namespace: string; name?: string; world?: boolean },
        cmd: Command,
      ) => {
        const l = await import('../lab/lab.js');
        const s = l.requireLab(labName(o, cmd));
        // With --world every word after the options is the command.
        const [target, command] = o.world ? ['world', [...(pod ? [pod] : []), ...argv]] : [pod ?? '', argv];
        process.exit(await l.exec(s, o.namespace, target, command));
      },
    );
  lab
    .command('get')
    .description(
      'display lab objects like kubectl get: pods (po), nodes (no), namespaces (ns), services (svc), endpointslices, ' +
        'deployments (deploy), ciliumendpoints (cep), ciliumnetworkpolicies (cnp), ' +
        'ciliumclusterwidenetworkpolicies (ccnp), networkpolicies (netpol), policies',
    )
    .argument('<type>', 'resource type (TYPE/NAME works too)')
    .argument('[names...]', 'names of the objects to show')
    .option('-n, --namespace <ns>', 'namespace (default "default")')
    .option('-A, --all-namespaces', 'objects of every namespace')
    .option('-o, --output <format>', 'json|yaml|wide|name (default: a table)')
    .option('--show-labels', 'add a LABELS column')
    .option('--name <lab>', 'lab name')
    .action(async (type: string, names: string[], o: GetOptions, cmd: Command) => {
      const out = await getCommand([type, ...names], o, labName(o, cmd));
      process.stdout.write(out.stdout);
      process.stderr.write(out.stderr);
      if (out.failed) process.exitCode = 1;
    });
}

interface UpFlags {
  name?: string;
  nodes: string;
  dns?: boolean;
  etcdMembers?: string;
  kvstoreLeaseTtl?: string;
  routingMode?: string;
  ipv6?: boolean | string;
  filename?: string[];
}

interface GetOptions {
  name?: string;
  namespace?: string;
  allNamespaces?: boolean;
  output?: string;
  showLabels?: boolean;
}

const FORMATS = ['json', 'yaml', 'wide', 'name'];

/** `lab get`, following kubectl: what to print on stdout and stderr, and whether something was missing. */
async function getCommand(
  args: string[],
  o: GetOptions,
  labNameValue: string,
): Promise<{ stdout: string; stderr: string; failed: boolean }> {
  const r = await import('../lab/resources.js');
  const l = await import('../lab/lab.js');
  if (o.output !== undefined && !FORMATS.includes(o.output))
    throw new CliError(`-o: unknown output format "${o.output}" (${FORMATS.join(', ')})`);
  if (o.allNamespaces && o.namespace !== undefined)
    throw new CliError('-n and -A: give a namespace or all namespaces, not both');
  const resolve = (t: string) => {
    try {
      return r.resolveType(t);
    } catch (e) {
      if (e instanceof r.ResourceError) throw new CliError(e.message);
      throw e;
    }
  };
  // Either TYPE NAME... or TYPE/NAME... (as kubectl takes them).
  const requests: { type: ReturnType<typeof r.resolveType>; names: string[] }[] = [];
  if (args[0]!.includes('/')) {
    for (const a of args) {
      const [t, name, ...rest] = a.split('/');
      if (!t || !name || rest.length || !a.includes('/'))
        throw new CliError(`"${a}": mix of TYPE/NAME and plain arguments; use TYPE/NAME for each`);
      const type = resolve(t);
      const known = requests.find((q) => q.type === type);
      if (known) known.names.push(name);
      else requests.push({ type, names: [name] });
    }
  } else requests.push({ type: resolve(args[0]!), names: args.slice(1) });
  const byName = requests.some((q) => q.names.length > 0);
  if (byName && o.allNamespaces)
    throw new CliError('a resource cannot be retrieved by name across all namespaces');
  const ns = o.allNamespaces ? undefined : (o.namespace ?? 'default');
  const s = l.requireLab(labNameValue);
  let stdout = '';
  let stderr = '';
  const items: Awaited<ReturnType<typeof l.getObjects>> = [];
  const now = Date.now();
  for (const { type, names } of requests) {
    const all = await l.getObjects(s, type, type.namespaced ? ns : undefined);
    let shown = all;
    if (names.length) {
      shown = [];
      for (const n of names) {
        const hit = all.filter((x) => x.metadata.name === n);
        if (hit.length === 0) stderr += `Error from server (NotFound): ${type.plural} "${n}" not found\n`;
        shown.push(...hit);
      }
    }
    items.push(...shown);
    if (o.output === 'json' || o.output === 'yaml') continue;
    if (o.output === 'name') {
      for (const x of shown) stdout += `${r.qualifiedName(x.kind, x.metadata.name)}\n`;
      continue;
    }
    if (shown.length === 0) {
      if (!names.length)
        stderr += `No resources found${type.namespaced && ns !== undefined ? ` in ${ns} namespace` : ''}.\n`;
      continue;
    }
    if (stdout) stdout += '\n';
    stdout += r.formatTable(
      r.table(type, shown, {
        wide: o.output === 'wide',
        withNamespace: type.namespaced && ns === undefined,
        showLabels: o.showLabels === true,
        now,
      }),
    );
  }
  if (o.output === 'json' || o.output === 'yaml') {
    const single = requests.length === 1 && requests[0]!.names.length === 1 && items.length === 1;
    const doc = single
      ? items[0]
      : { apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } };
    if (items.length || !byName)
      stdout +=
        o.output === 'json' ? `${JSON.stringify(doc, null, 4)}\n` : (await import('yaml')).stringify(doc);
  }
  return { stdout, stderr, failed: stderr.includes('Error from server') };
}
