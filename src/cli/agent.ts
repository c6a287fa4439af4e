/**
 * `cilium-ts agent` and the commands that talk to a running agent (like `cilium` in a Cilium pod):
 * status, endpoint, identity, policy, bpf, monitor.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { AgentApi } from '../api/client.js';
import type {
  BpfLbEntry,
  EndpointView,
  PolicyDeleteRequest,
  ServiceView,
  StatusResponse,
  TraceResponse,
  TraceSide,
} from '../api/types.js';
import type { PolicyRef, ValidationIssue } from '../policy/index.js';
import { CliError } from './errors.js';
import { formatColumns, printJson, printTable } from './output.js';
import { targetOf } from './target.js';

/** The typed API of the agent the global `--lab`/`--node` options pick. */
async function apiFor(cmd: Command): Promise<AgentApi> {
  const { AgentApi } = await import('../api/client.js');
  return new AgentApi(targetOf(cmd).agentSocket);
}

function wantJson(cmd: Command): boolean {
  return cmd.optsWithGlobals<{ output?: string }>().output === 'json';
}

function readInput(file: string): string {
  try {
    return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(
      `${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
}

/**
 * Validates the policies of a YAML/JSON file with the agent's own validator (src/policy), here, so it
 * works with no agent running. Issues number documents as they appear in the file (1-based).
 */
async function validatePolicyFile(file: string): Promise<ValidationIssue[]> {
  const { parseYamlDocuments } = await import('../k8s/objects.js');
  const { validatePolicies } = await import('../policy/index.js');
  const docs = parseYamlDocuments(readInput(file), file);
  if (docs.length === 0) throw new CliError(`${file}: no policy documents`);
  return validatePolicies(docs.map((d) => d.obj)).map((i) => ({
    ...i,
    document: docs[i.document]!.index + 1,
  }));
}

/** `document N (Kind name): path: message`, as `policy validate` and `policy import` print an issue. */
function issueLine(i: ValidationIssue): string {
  const what = i.kind ? ` (${i.kind} ${i.name ?? ''})` : '';
  return `document ${i.document}${what}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`;
}

interface TraceOpts {
  srcPod?: string;
  dstPod?: string;
  srcIdentity?: string;
  dstIdentity?: string;
  src?: string[];
  dst?: string[];
  dport: string;
  protocol: string;
}

/** Adds `-o, --output` to a command (tables for people, JSON for scripts). */
function out(cmd: Command): Command {
  return cmd.option('-o, --output <format>', 'table|json', 'table');
}

export function registerAgentCommands(program: Command): void {
  program
    .command('agent')
    .description('run the agent for one node (the lab starts one per node)')
    .option('--pod-cidr <cidr>', 'IPv4 pod CIDR of this node', '10.200.0.0/24')
    .option('--pod-cidr-v6 <cidr>', 'IPv6 pod CIDR of this node')
    .option('--node-ip <ip...>', 'addresses of this node (host identity)')
    .option('--node-label <key=value...>', 'labels of this node (fromNodes/toNodes select the host by them)')
    .option(
      '--routing-mode <vxlan|native>',
      "how other nodes' pods are reached (vxlan: the overlay, VNI = source identity; native: routes via their node)",
      'vxlan',
    )
    .option(
      '--enable-ipv4-big-tcp',
      "IPv4 BIG TCP (native routing): the node's devices (--devices) and pods' veths take 192 KiB GSO/GRO packets",
    )
    .option('--kvstore <memory|etcd>', 'where cluster state lives', 'memory')
    .option('--kvstore-endpoints <urls>', 'etcd client URLs, comma-separated (http://10.0.0.1:2379,...)')
    .option('--kvstore-lease-ttl <seconds>', "TTL of the etcd lease of this node's keys (default 15)")
    .option(
      '--tofqdns-min-ttl <seconds>',
      "DNS answers allow their IPs at least this long (default 0: the answer's TTL)",
    )
    .option(
      '--devices <ifnames>',
      'external devices, comma-separated: the NodePort load balancer attaches there',
    )
    .option('--cgroup <dir>', "cgroup v2 directory of this node's processes: socket-LB attaches there")
    .option('--bpf-lb-algorithm <random|maglev>', 'backend selection for north-south traffic', 'random')
    .option('--bpf-lb-maglev-table-size <M>', 'Maglev lookup table size (a prime: 251 ... 131071)', '16381')
    .option(
      '--bpf-lb-maglev-fill <stable|permutation>',
      "Maglev table fill: stable (fewest entries move when backends change) or upstream's permutation",
      'stable',
    )
    .option(
      '--allow-localhost <mode>',
      "always: the node's host reaches its pods whatever their ingress policy (default); policy: as written",
      'always',
    )
    .option(
      '--allow-host-netns',
      "run in the machine's own network namespace (changes the host's networking)",
    )
    .option('--run-dir <dir>', 'socket, bpffs and state directory')
    .option('--monitor-aggregation <level>', '0: every packet, 1: connections and flag changes', '1')
    .option('--policy-audit-mode', 'report policy drops but let traffic pass')
    .option(
      '--bpf-conntrack-accounting',
      "count every packet and byte in conntrack entries (`bpf ct list`); off: each connection's first packet only",
    )
    .option(
      '--hubble-port <port>',
      'loopback TCP port of the Hubble Observer API (0 = any free, -1 = off)',
      '0',
    )
    .option('--metrics-port <port>', 'loopback port of the Prometheus endpoint (0 = any free, -1 = off)', '0')
    .option(
      '--hubble-metrics <list>',
      'enabled Hubble metrics',
      'drop,tcp,flow,port-distribution,icmp,http,dns',
    )
    .option('--log-level <level>', 'trace|debug|info|warn|error', 'info')
    .action(async (_o, cmd: Command) => {
      const { runAgent } = await import('../agent/main.js');
      const o = cmd.optsWithGlobals();
      // The agent serves the node it is told (it is not looked up among running ones).
      await runAgent({
        ...o,
        lab: o.lab ?? process.env.CILIUM_TS_LAB ?? 'default',
        node: o.node ?? process.env.CILIUM_TS_NODE ?? 'node1',
      } as never);
    });

  out(program.command('status'))
    .description('agent status')
    .action(async (_o, cmd: Command) => {
      const t = targetOf(cmd);
      const s = await (await apiFor(cmd)).status();
      // Addresses inside the node's namespace answer nothing from here: print the lab's forwarded ones.
      const { labNodeAddresses } = await import('../lab/forwarder.js');
      const fwd = labNodeAddresses(t.lab, t.node);
      if (fwd) {
        if (fwd.metrics) s.metrics = fwd.metrics;
        if (fwd.hubble) s.hubble.tcp = fwd.hubble;
        else delete s.hubble.tcp;
      }
      if (wantJson(cmd)) return printJson(s);
      process.stdout.write(formatStatus(s));
    });

  const ep = program.command('endpoint').description('endpoints on this node');
  out(ep.command('list'))
    .description('list endpoints')
    .action(async (_o, cmd: Command) => {
      const list = await (await apiFor(cmd)).endpoints();
      if (wantJson(cmd)) return printJson(list);
      printTable(
        list.map((e) => ({
          id: e.id,
          ingress: e.policyEnabled.ingress ? 'Enabled' : 'Disabled',
          egress: e.policyEnabled.egress ? 'Enabled' : 'Disabled',
          identity: e.identity,
          labels: e.labels.filter((l) => !l.startsWith('k8s:io.cilium.k8s.namespace.labels')).join(' '),
          ipv4: e.ipv4 ?? '',
          pod: `${e.podNamespace}/${e.podName}`,
          status: e.state,
        })),
        [
          'ENDPOINT',
          'POLICY (ingress)',
          'POLICY (egress)',
          'IDENTITY',
          'LABELS (source:key[=value])',
          'IPv4',
          'POD',
          'STATUS',
        ],
      );
    });
  out(ep.command('get'))
    .description('one endpoint (ID, IP or namespace/pod)')
    .argument('<endpoint>')
    .action(async (ref: string, _o, cmd: Command) => {
      const e = await (await apiFor(cmd)).endpoint(ref);
      if (wantJson(cmd)) return printJson(e);
      process.stdout.write(formatEndpoint(e));
    });

  const id = program.command('identity').description('security identities');
  out(id.command('list'))
    .description('list identities')
    .action(async (_o, cmd: Command) => {
      const list = await (await apiFor(cmd)).identities();
      if (wantJson(cmd)) return printJson(list);
      printTable(
        list.map((i) => ({ id: i.id, labels: i.labels.join(' '), refs: i.refCount })),
        ['ID', 'LABELS', 'REFS'],
      );
    });
  id.command('get')
    .argument('<id>')
    .action(async (n: string, _o, cmd: Command) => printJson(await (await apiFor(cmd)).identity(n)));

  const pol = program.command('policy').description('network policies');
  pol
    .command('import')
    .description('import policies from a YAML/JSON file (all or nothing)')
    .argument('<file>')
    .action(async (file: string, _o, cmd: Command) => {
      const r = await (await apiFor(cmd)).importPolicies({ text: readInput(file) });
      process.stdout.write(`Revision: ${r.revision} (${r.policies.join(', ')})\n`);
    });
  pol
    .command('validate')
    .description(
      'validate a policy file as the agent would, without applying it (no agent needed, like kubectl --dry-run=client)',
    )
    .argument('<file>')
    .action(async (file: string) => {
      const issues = await validatePolicyFile(file);
      if (issues.length === 0) return void process.stdout.write('All policies are valid\n');
      for (const i of issues) process.stdout.write(`${issueLine(i)}\n`);
      throw new CliError(`${issues.length} problem(s) found`);
    });
  out(pol.command('get'))
    .description('show the policy repository and its revision')
    .action(async (_o, cmd: Command) => {
      const r = await (await apiFor(cmd)).policies();
      if (wantJson(cmd)) return printJson(r);
      printTable(
        r.policies.map((p) => ({
          kind: p.kind,
          namespace: p.namespace || '<cluster>',
          name: p.name,
          rules: p.rules,
          revision: p.revision,
        })),
        ['KIND', 'NAMESPACE', 'NAME', 'RULES', 'REVISION'],
      );
      process.stdout.write(`Revision: ${r.revision}\n`);
    });
  pol
    .command('delete')
    .description('delete policies by name, from a file, or all')
    .argument('[name]')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option(
      '--kind <kind>',
      'CiliumNetworkPolicy|CiliumClusterwideNetworkPolicy|NetworkPolicy',
      'CiliumNetworkPolicy',
    )
    .option('-f, --filename <file>', 'delete the policies a file defines')
    .option('--all', 'delete every policy')
    .action(
      async (
        name: string | undefined,
        o: { namespace: string; kind: string; filename?: string; all?: boolean },
        cmd: Command,
      ) => {
        let body: PolicyDeleteRequest;
        if (o.all) body = { all: true };
        else if (o.filename) {
          const { parseManifests, policyRefOf } = await import('../k8s/objects.js');
          body = { refs: parseManifests(readInput(o.filename), o.filename).policies.map(policyRefOf) };
        } else if (name)
          body = {
            refs: [
              {
                kind: o.kind,
                namespace: o.kind === 'CiliumClusterwideNetworkPolicy' ? '' : o.namespace,
                name,
              },
            ],
          };
        else throw new CliError('policy delete: give a name, -f FILE or --all');
        const r = await (await apiFor(cmd)).deletePolicies(body);
        process.stdout.write(
          `Deleted ${r.deleted.length} policy(ies)${r.deleted.length ? `: ${r.deleted.join(', ')}` : ''}\nRevision: ${r.revision}\n`,
        );
      },
    );
  out(pol.command('trace'))
    .description('the verdict for traffic from a source to a destination, and the rules deciding it')
    .option('--src-pod <ns/pod>', 'source pod')
    .option('--dst-pod <ns/pod>', 'destination pod')
    .option('--src-identity <id>', 'source identity')
    .option('--dst-identity <id>', 'destination identity')
    .option('-s, --src <labels...>', 'source labels (key=value)')
    .option('-d, --dst <labels...>', 'destination labels (key=value)')
    .option('--dport <port>', 'destination port (ICMP: type)', '0')
    .option('--protocol <proto>', 'TCP|UDP|SCTP|ICMP|ICMPv6', 'TCP')
    .action(async (o: TraceOpts, cmd: Command) => {
      const side = (pod?: string, ident?: string, labels?: string[]): TraceSide | undefined =>
        pod ? { pod } : ident !== undefined ? { identity: Number(ident) } : labels ? { labels } : undefined;
      const r = await (await apiFor(cmd)).tracePolicy({
        src: side(o.srcPod, o.srcIdentity, o.src),
        dst: side(o.dstPod, o.dstIdentity, o.dst),
        dport: Number(o.dport),
        protocol: o.protocol,
      });
      if (wantJson(cmd)) return printJson(r);
      process.stdout.write(formatTrace(r));
    });

  const bpf = program.command('bpf').description('inspect the datapath maps');
  const bpfPolicy = bpf.command('policy').description('per-endpoint policy map');
  out(bpfPolicy.command('get'))
    .argument('<endpoint>', 'endpoint ID, IP or namespace/pod')
    .action(async (ref: string, _o, cmd: Command) => {
      const r = await (await apiFor(cmd)).bpfPolicy(ref);
      if (wantJson(cmd)) return printJson(r);
      printTable(
        r.entries,
        Object.keys(r.entries[0] ?? { POLICY: 1 }).map((k) => k.toUpperCase()),
      );
    });
  const dumps: [string, string, (api: AgentApi) => Promise<object[]>][] = [
    ['ct', 'connection tracking entries', (api) => api.bpfCt()],
    ['ipcache', 'prefix to identity map', (api) => api.bpfIpcache()],
    ['endpoint', 'local endpoint map', (api) => api.bpfEndpoints()],
    ['metrics', 'datapath counters per reason and direction', (api) => api.bpfMetrics()],
  ];
  const mapCommands = new Map<string, Command>();
  for (const [name, desc, dump] of dumps) {
    const map = bpf.command(name).description(desc);
    mapCommands.set(name, map);
    out(map.command('list')).action(async (_o, cmd: Command) => {
      const rows = await dump(await apiFor(cmd));
      if (wantJson(cmd)) return printJson(rows);
      printTable(
        rows,
        Object.keys(rows[0] ?? { EMPTY: 1 }).map((k) => k.toUpperCase()),
      );
    });
  }
  out(mapCommands.get('ct')!.command('flush'))
    .description('delete every connection tracking entry (established connections are tracked anew)')
    .option('--family <family>', 'only this family: ipv4|ipv6')
    .action(async (o: { family?: string }, cmd: Command) => {
      if (o.family !== undefined && o.family !== 'ipv4' && o.family !== 'ipv6')
        throw new CliError(`--family: "${o.family}" (ipv4|ipv6)`);
      const r = await (await apiFor(cmd)).bpfCtFlush(o.family ? { family: o.family } : {});
      if (wantJson(cmd)) return printJson(r);
      for (const [family, n] of Object.entries(r.families))
        process.stdout.write(`Flushed ${n} entries from cilium_ct${family === 'ipv4' ? 4 : 6}_global\n`);
    });

  out(bpf.command('lb').description('load-balancer maps').command('list'))
    .description('service frontends as the LB maps hold them, with their backend slots')
    .action(async (_o, cmd: Command) => {
      const rows = await (await apiFor(cmd)).bpfLb();
      if (wantJson(cmd)) return printJson(rows);
      process.stdout.write(formatBpfLb(rows));
    });

  const node = program.command('node').description('nodes of the cluster');
  out(node.command('list'))
    .description('the nodes this agent knows, itself included (as `cilium node list`)')
    .action(async (_o, cmd: Command) => {
      const rows = await (await apiFor(cmd)).nodeList();
      if (wantJson(cmd)) return printJson(rows);
      // IPv6 columns as upstream's, when any node has IPv6 (a dual-stack cluster)
      const v6 = rows.some((n) => n.ipv6PodCidr || n.addresses.some((a) => a.ip.includes(':')));
      process.stdout.write(
        formatColumns(
          [
            'Name',
            'IPv4 Address',
            'Endpoint CIDR',
            ...(v6 ? ['IPv6 Address', 'Endpoint CIDR'] : []),
            'Local',
          ],
          rows.map((n) => [
            n.cluster === 'default' ? n.name : `${n.cluster}/${n.name}`,
            n.addresses.find((a) => !a.ip.includes(':'))?.ip ?? '',
            n.ipv4PodCidr ?? '',
            ...(v6 ? [n.addresses.find((a) => a.ip.includes(':'))?.ip ?? '', n.ipv6PodCidr ?? ''] : []),
            n.local ? 'yes' : '',
          ]),
        ),
      );
    });

  const service = program.command('service').description('services (kube-proxy replacement)');
  out(service.command('list'))
    .description('service frontends and their backends')
    .action(async (_o, cmd: Command) => {
      const rows = await (await apiFor(cmd)).serviceList();
      if (wantJson(cmd)) return printJson(rows);
      process.stdout.write(formatServiceList(rows));
    });

  out(program.command('monitor'))
    .description('print datapath events (trace, drop, policy verdict) as they happen')
    .option('-t, --type <type...>', 'drop|trace|policy-verdict')
    .option('--related-to <endpoint>', 'only events of this endpoint ID')
    .action(async (o: { type?: string[]; relatedTo?: string }, cmd: Command) => {
      const api = await apiFor(cmd);
      const json = wantJson(cmd);
      const kinds = ['drop', 'trace', 'policy-verdict'] as const;
      const types = (o.type ?? []).map((t) => {
        const k = kinds.find((x) => x === t);
        if (!k) throw new CliError(`--type: unknown event type "${t}" (${kinds.join(', ')})`);
        return k;
      });
      if (o.relatedTo !== undefined && !/^\d+$/.test(o.relatedTo))
        throw new CliError(`--related-to: not an endpoint ID: "${o.relatedTo}"`);
      process.stderr.write('Listening for events... Press Ctrl-C to quit\n');
      const ac = new AbortController();
      process.on('SIGINT', () => ac.abort());
      process.on('SIGTERM', () => ac.abort());
      await api.monitor(
        { type: types, ...(o.relatedTo === undefined ? {} : { endpoint: Number(o.relatedTo) }) },
        (ev) => process.stdout.write(`${json ? JSON.stringify(ev) : ev.text}\n`),
        ac.signal,
      );
    });
}

function refText(r: PolicyRef): string {
  return r.namespace ? `${r.kind} ${r.namespace}/${r.name}` : `${r.kind} ${r.name}`;
}

/** Labels worth showing (namespace labels are implied by the namespace). */
function traceLabels(labels: readonly string[]): string {
  return `[${labels.filter((l) => !l.startsWith('k8s:io.cilium.k8s.namespace.labels')).join(' ')}]`;
}

/** Prints a trace the way `cilium policy trace` does: per direction the rules, the matches and the verdict. */
export function formatTrace(r: TraceResponse): string {
  const lines: string[] = [];
  const add = (s: string) => lines.push(s);
  const proto = r.protocol;
  const isIcmp = /^icmp/i.test(proto);
  const port = isIcmp ? `type ${r.dport}/${proto}` : `${r.dport === 0 ? 'any' : r.dport}/${proto}`;
  add('----------------------------------------------------------------');
  add(`Tracing From: ${traceLabels(r.src.labels)} => To: ${traceLabels(r.dst.labels)} Ports: [${port}]`);
  add(`Policy revision: ${r.revision}`);
  for (const dir of ['egress', 'ingress'] as const) {
    const d = r[dir];
    const who = dir === 'egress' ? r.src : r.dst;
    const Dir = dir === 'egress' ? 'Egress' : 'Ingress';
    add('');
    add(`Resolving ${dir} policy for ${traceLabels(who.labels)}`);
    for (const rule of d.selectingRules) {
      add(`* Rule ${refText(rule.policy)} (rule ${rule.ruleIndex}): selected`);
      for (const m of d.matches.filter(
        (m) => refText(m.policy) === refText(rule.policy) && m.ruleIndex === rule.ruleIndex,
      )) {
        const deny = m.section.endsWith('Deny');
        const peerWord = dir === 'egress' ? 'to' : 'from';
        add(
          `    ${deny ? 'Denies' : 'Allows'} ${peerWord} ${m.peer === '{}' ? 'any peer' : `labels ${m.peer}`} by ${m.section}[${m.peerRuleIndex}]`,
        );
        add(`      Ports: ${m.l4}`);
      }
    }
    add(`${d.selectingRules.length} rule(s) selected`);
    switch (d.verdict) {
      case 'denied':
        add('Found deny rule');
        break;
      case 'allowed':
        add('Found allow rule');
        break;
      case 'default-denied':
        add(`Found no allow rule (${dir} is enforced: default deny)`);
        break;
      default:
        add(`No rule enforces ${dir} (default allow)`);
    }
    add(`${Dir} verdict: ${d.verdict}`);
  }
  add('');
  add(`Final verdict: ${r.verdict}`);
  return `${lines.join('\n')}\n`;
}

/** `endpoint get` in human form: the fields an operator looks at, the policy revision among them. */
export function formatEndpoint(e: EndpointView): string {
  const named = Object.entries(e.namedPorts)
    .map(([n, p]) => `${n}=${p.port}/${p.protocol}`)
    .join(' ');
  const rows: [string, unknown][] = [
    ['Endpoint', e.id],
    ['Pod', `${e.podNamespace}/${e.podName}`],
    ['State', e.state],
    ['Identity', e.identity],
    ['Labels', e.labels.join(' ')],
    ['IPv4', e.ipv4 ?? ''],
    ['IPv6', e.ipv6 ?? ''],
    ['Policy revision', e.policyRevision],
    ['Policy (ingress)', e.policyEnabled.ingress ? 'Enabled' : 'Disabled'],
    ['Policy (egress)', e.policyEnabled.egress ? 'Enabled' : 'Disabled'],
    ['Named ports', named],
    ['Host interface', `${e.hostIfName} (ifindex ${e.hostIfindex})`],
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(20)}${String(v ?? '')}`).join('\n') + '\n';
}

/** `cilium status`-style lines: one subsystem per line, details after a colon. */
export function formatStatus(s: StatusResponse): string {
  const lines: [string, string][] = [];
  const ipam = (f: 'ipv4' | 'ipv6', cidr: string | undefined) => {
    const r = s.ipam[f];
    return r && cidr
      ? `${f === 'ipv4' ? 'IPv4' : 'IPv6'}: ${r.used}/${r.capacity} allocated from ${cidr}`
      : '';
  };
  const reconcilers = s.reconcilers ?? [];
  const failing = reconcilers.flatMap((r) => r.errors.map((e) => `${r.name} ${e.key}: ${e.error}`));
  lines.push(['Lab / node', `${s.lab} / ${s.node}`]);
  lines.push(['KVStore', s.kvstore]);
  lines.push(['Cilium', `${s.ready ? 'Ok' : 'Starting'}   uptime ${s.uptimeSeconds}s`]);
  lines.push(['Nodes', String(s.nodes ?? 1)]);
  if (s.routing)
    lines.push([
      'Routing',
      s.routing.mode === 'vxlan'
        ? `Network: Tunnel [vxlan] ${s.routing.device} (port ${s.routing.port}, MTU ${s.routing.mtu}), ${s.routing.tunnels} remote node(s)`
        : 'Network: Native',
    ]);
  if (s.bigTcp) lines.push(['BIG TCP', s.bigTcp.ipv4 ? `IPv4 (GSO/GRO ${s.bigTcp.ipv4} bytes)` : 'Disabled']);
  lines.push(['Endpoints', String(s.endpoints)]);
  lines.push(['Identities', `${s.identities}${s.identitiesWaiting ? `; ${s.identitiesWaiting}` : ''}`]);
  lines.push(['Policy', `revision ${s.policy.revision}, ${s.policy.policies} policies`]);
  lines.push([
    'IPAM',
    [ipam('ipv4', s.ipam.podCidrV4), ipam('ipv6', s.ipam.podCidrV6)].filter(Boolean).join(', '),
  ]);
  lines.push([
    'BPF maps',
    `${reconcilers.length - new Set(failing.map((f) => f.split(' ')[0])).size}/${reconcilers.length} reconcilers healthy` +
      (failing.length ? `; failing: ${failing.join('; ')}` : ''),
  ]);
  lines.push([
    'Datapath',
    s.datapath.open
      ? `bpffs ${s.datapath.bpffs}, ${s.datapath.policyMaps} policy maps, events lost ${s.datapath.eventsLost}`
      : 'not open',
  ]);
  lines.push([
    'Monitor',
    `${s.monitor.events} events, ${s.monitor.subscribers} listening${s.monitor.readerError ? `; reader failed: ${s.monitor.readerError}` : ''}`,
  ]);
  const hubbleAt = [s.hubble.unix, s.hubble.tcp].filter(Boolean).join('  ');
  lines.push(['Hubble', `Ok   Current/Max Flows: ${s.hubble.flows}/${s.hubble.maxFlows}   ${hubbleAt}`]);
  const gc = s.conntrackGC;
  if (gc)
    lines.push([
      'Conntrack GC',
      `${gc.running ? 'running' : 'stopped'}, ${gc.runs} runs, ${gc.deletedTotal} entries deleted, interval ${Math.round(gc.intervalMs / 1000)}s`,
    ]);
  if (s.metrics) lines.push(['Metrics', s.metrics]);
  if (s.proxies?.length)
    lines.push([
      'L7 proxies',
      s.proxies
        .map((p) => `${p.parser} :${p.port} ${p.running ? `${p.connections} connections` : 'down'}`)
        .join(', '),
    ]);
  return lines.map(([k, v]) => `${`${k}:`.padEnd(22)}${v}\n`).join('');
}

/** `cilium service list`: ID, frontend, type, then one `N => backend (state)` line per backend. */
export function formatServiceList(rows: readonly ServiceView[]): string {
  const table = rows.flatMap((r) => {
    const backends = r.backends.length
      ? r.backends.map((b, i) => `${i + 1} => ${b.address}:${b.port}/${b.protocol} (${b.state})`)
      : [''];
    return backends.map((b, i) =>
      i === 0 ? [String(r.id), r.frontend, r.type, b, r.service] : ['', '', '', b, ''],
    );
  });
  return formatColumns(['ID', 'Frontend', 'Service Type', 'Backend', 'Service'], table);
}

/** `cilium bpf lb list`: the master row `0.0.0.0:0 (revnat) (0) [flags]`, then one row per slot. */
export function formatBpfLb(rows: readonly BpfLbEntry[]): string {
  const table = rows.flatMap((r) => [
    [r.frontend, `0.0.0.0:0 (${r.revNatIndex}) (0) [${r.flags}]`],
    ...r.slots.map((s) => [
      '',
      `${s.backend} (${r.revNatIndex}) (${s.slot})${s.state === 'active' ? '' : ` [${s.state}]`}`,
    ]),
  ]);
  return formatColumns(['SERVICE ADDRESS', 'BACKEND ADDRESS (REVNAT_ID) (SLOT)'], table);
}
