/**
 * `cilium-ts agent` and the commands that talk to a running agent (like `cilium` in a Cilium pod):
 * status, endpoint, identity, policy, bpf, monitor.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError } from './errors.js';
import { printJson, printTable } from './output.js';

interface Globals {
  lab?: string;
  node?: string;
  output?: string;
}

async function clientFor(cmd: Command) {
  const g = cmd.optsWithGlobals<Globals>();
  const { AgentClient } = await import('../agent/client.js');
  const { agentSocketPath } = await import('../agent/config.js');
  const lab = g.lab ?? process.env.CILIUM_TS_LAB ?? 'default';
  let node = g.node ?? process.env.CILIUM_TS_NODE;
  if (!node) {
    const { loadLab } = await import('../lab/state.js');
    node = loadLab(lab)?.nodes[0]?.name ?? 'node1';
  }
  return new AgentClient(agentSocketPath(lab, node));
}

function wantJson(cmd: Command): boolean {
  return cmd.optsWithGlobals<Globals>().output === 'json';
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
    .option('--run-dir <dir>', 'socket, bpffs and state directory')
    .option('--monitor-aggregation <level>', '0: every packet, 1: connections and flag changes', '1')
    .option('--policy-audit-mode', 'report policy drops but let traffic pass')
    .option(
      '--hubble-port <port>',
      'loopback TCP port of the Hubble Observer API (0 = any free, -1 = off)',
      '0',
    )
    .option('--metrics-port <port>', 'loopback port of the Prometheus endpoint (0 = any free, -1 = off)', '0')
    .option('--hubble-metrics <list>', 'enabled Hubble metrics', 'drop,tcp,flow,port-distribution,icmp')
    .option('--log-level <level>', 'trace|debug|info|warn|error', 'info')
    .action(async (_o, cmd: Command) => {
      const { runAgent } = await import('../agent/main.js');
      const o = cmd.optsWithGlobals();
      await runAgent({
        ...o,
        lab: o.lab ?? process.env.CILIUM_TS_LAB ?? 'default',
        node: o.node ?? 'node1',
      } as never);
    });

  out(program.command('status'))
    .description('agent status')
    .action(async (_o, cmd: Command) => {
      const s = await (await clientFor(cmd)).get<Record<string, unknown>>('/v1/status');
      if (wantJson(cmd)) return printJson(s);
      const kv = (k: string, v: unknown) =>
        process.stdout.write(`${k.padEnd(22)}${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
      for (const [k, v] of Object.entries(s)) kv(`${k}:`, v);
    });

  const ep = program.command('endpoint').description('endpoints on this node');
  out(ep.command('list'))
    .description('list endpoints')
    .action(async (_o, cmd: Command) => {
      const list = await (await clientFor(cmd)).get<Record<string, unknown>[]>('/v1/endpoint');
      if (wantJson(cmd)) return printJson(list);
      printTable(
        list.map((e) => {
          const pe = e.policyEnabled as { ingress: boolean; egress: boolean };
          return {
            id: e.id,
            ingress: pe.ingress ? 'Enabled' : 'Disabled',
            egress: pe.egress ? 'Enabled' : 'Disabled',
            identity: e.identity,
            labels: (e.labels as string[])
              .filter((l) => !l.startsWith('k8s:io.cilium.k8s.namespace.labels'))
              .join(' '),
            ipv4: e.ipv4 ?? '',
            pod: `${e.podNamespace}/${e.podName}`,
            status: e.state,
          };
        }),
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
      const e = await (await clientFor(cmd)).get<Record<string, unknown>>(
        `/v1/endpoint/${encodeURIComponent(ref)}`,
      );
      if (wantJson(cmd)) return printJson(e);
      process.stdout.write(formatEndpoint(e));
    });

  const id = program.command('identity').description('security identities');
  out(id.command('list'))
    .description('list identities')
    .action(async (_o, cmd: Command) => {
      const list = await (await clientFor(cmd)).get<{ id: number; labels: string[]; refCount: number }[]>(
        '/v1/identity',
      );
      if (wantJson(cmd)) return printJson(list);
      printTable(
        list.map((i) => ({ id: i.id, labels: i.labels.join(' '), refs: i.refCount })),
        ['ID', 'LABELS', 'REFS'],
      );
    });
  id.command('get')
    .argument('<id>')
    .action(async (n: string, _o, cmd: Command) =>
      printJson(await (await clientFor(cmd)).get(`/v1/identity/${encodeURIComponent(n)}`)),
    );

  const pol = program.command('policy').description('network policies');
  pol
    .command('import')
    .description('import policies from a YAML/JSON file (all or nothing)')
    .argument('<file>')
    .action(async (file: string, _o, cmd: Command) => {
      const r = await (await clientFor(cmd)).put<{ revision: number; policies: string[] }>(
        '/v1/policy',
        readInput(file),
        'application/yaml',
      );
      process.stdout.write(`Revision: ${r.revision} (${r.policies.join(', ')})\n`);
    });
  pol
    .command('validate')
    .description('validate a policy file without applying it')
    .argument('<file>')
    .action(async (file: string, _o, cmd: Command) => {
      const r = await (await clientFor(cmd)).post<{
        valid: boolean;
        issues: { document: number; kind?: string; name?: string; path: string; message: string }[];
      }>('/v1/policy/validate', readInput(file), 'application/yaml');
      if (r.valid) return void process.stdout.write('All policies are valid\n');
      for (const i of r.issues)
        process.stdout.write(
          `document ${i.document + 1}${i.kind ? ` (${i.kind} ${i.name ?? ''})` : ''}: ${i.path}: ${i.message}\n`,
        );
      throw new CliError(`${r.issues.length} problem(s) found`);
    });
  out(pol.command('get'))
    .description('show the policy repository and its revision')
    .action(async (_o, cmd: Command) => {
      const r = await (await clientFor(cmd)).get<{
        revision: number;
        policies: {
          kind: string;
          namespace: string;
          name: string;
          revision: number;
          rules: number;
          document: unknown;
        }[];
      }>('/v1/policy');
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
        let body: unknown;
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
        const r = await (await clientFor(cmd)).delete<{ revision: number; deleted: string[] }>(
          '/v1/policy',
          body,
        );
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
    .action(async (o: Record<string, string | string[] | undefined>, cmd: Command) => {
      const side = (pod?: unknown, ident?: unknown, labels?: unknown) =>
        pod ? { pod } : ident !== undefined ? { identity: Number(ident) } : labels ? { labels } : undefined;
      const r = await (await clientFor(cmd)).post<Record<string, unknown>>('/v1/policy/trace', {
        src: side(o.srcPod, o.srcIdentity, o.src),
        dst: side(o.dstPod, o.dstIdentity, o.dst),
        dport: Number(o.dport),
        protocol: o.protocol,
      });
      if (wantJson(cmd)) return printJson(r);
      printTrace(r);
    });

  const bpf = program.command('bpf').description('inspect the datapath maps');
  const bpfPolicy = bpf.command('policy').description('per-endpoint policy map');
  out(bpfPolicy.command('get'))
    .argument('<endpoint>', 'endpoint ID, IP or namespace/pod')
    .action(async (ref: string, _o, cmd: Command) => {
      const r = await (await clientFor(cmd)).get<{ endpoint: number; entries: Record<string, unknown>[] }>(
        `/v1/bpf/policy/${encodeURIComponent(ref)}`,
      );
      if (wantJson(cmd)) return printJson(r);
      printTable(
        r.entries,
        Object.keys(r.entries[0] ?? { POLICY: 1 }).map((k) => k.toUpperCase()),
      );
    });
  for (const [name, path, desc] of [
    ['ct', '/v1/bpf/ct', 'connection tracking entries'],
    ['ipcache', '/v1/bpf/ipcache', 'prefix to identity map'],
    ['endpoint', '/v1/bpf/endpoints', 'local endpoint map'],
    ['metrics', '/v1/bpf/metrics', 'datapath counters per reason and direction'],
  ] as const) {
    out(bpf.command(name).description(desc).command('list')).action(async (_o, cmd: Command) => {
      const rows = await (await clientFor(cmd)).get<Record<string, unknown>[]>(path);
      if (wantJson(cmd)) return printJson(rows);
      printTable(
        rows,
        Object.keys(rows[0] ?? { EMPTY: 1 }).map((k) => k.toUpperCase()),
      );
    });
  }

  out(program.command('monitor'))
    .description('print datapath events (trace, drop, policy verdict) as they happen')
    .option('-t, --type <type...>', 'drop|trace|policy-verdict')
    .option('--related-to <endpoint>', 'only events of this endpoint ID')
    .action(async (o: { type?: string[]; relatedTo?: string }, cmd: Command) => {
      const c = await clientFor(cmd);
      const json = wantJson(cmd);
      const qs = new URLSearchParams();
      for (const t of o.type ?? []) qs.append('type', t);
      if (o.relatedTo) qs.set('endpoint', o.relatedTo);
      process.stderr.write('Listening for events... Press Ctrl-C to quit\n');
      const ac = new AbortController();
      process.on('SIGINT', () => ac.abort());
      process.on('SIGTERM', () => ac.abort());
      await c.stream(
        `/v1/monitor?${qs}`,
        (ev) => process.stdout.write(`${json ? JSON.stringify(ev) : (ev as { text: string }).text}\n`),
        ac.signal,
      );
    });
}

interface TraceRef {
  kind: string;
  namespace: string;
  name: string;
}
interface TraceMatchView {
  policy: TraceRef;
  ruleIndex: number;
  section: string;
  peerRuleIndex: number;
  peer?: string;
  l4?: string;
}
interface TraceDirectionView {
  verdict: string;
  enforced: boolean;
  matches: TraceMatchView[];
  selectingRules: { policy: TraceRef; ruleIndex: number }[];
}

function refText(r: TraceRef): string {
  return r.namespace ? `${r.kind} ${r.namespace}/${r.name}` : `${r.kind} ${r.name}`;
}

/** Labels worth showing (namespace labels are implied by the namespace). */
function traceLabels(labels: string[] | undefined): string {
  return `[${(labels ?? []).filter((l) => !l.startsWith('k8s:io.cilium.k8s.namespace.labels')).join(' ')}]`;
}

/** Prints a trace the way `cilium policy trace` does: per direction the rules, the matches and the verdict. */
export function formatTrace(r: Record<string, unknown>): string {
  const lines: string[] = [];
  const add = (s: string) => lines.push(s);
  const src = r.src as { labels?: string[] } | undefined;
  const dst = r.dst as { labels?: string[] } | undefined;
  const proto = String(r.protocol ?? '');
  const isIcmp = /^icmp/i.test(proto);
  const port = isIcmp ? `type ${r.dport}/${proto}` : `${Number(r.dport) === 0 ? 'any' : r.dport}/${proto}`;
  add('----------------------------------------------------------------');
  add(`Tracing From: ${traceLabels(src?.labels)} => To: ${traceLabels(dst?.labels)} Ports: [${port}]`);
  if (r.revision !== undefined) add(`Policy revision: ${r.revision}`);
  for (const dir of ['egress', 'ingress'] as const) {
    const d = r[dir] as TraceDirectionView | undefined;
    if (!d) continue;
    const who = dir === 'egress' ? src : dst;
    const Dir = dir === 'egress' ? 'Egress' : 'Ingress';
    add('');
    add(`Resolving ${dir} policy for ${traceLabels(who?.labels)}`);
    for (const rule of d.selectingRules) {
      add(`* Rule ${refText(rule.policy)} (rule ${rule.ruleIndex}): selected`);
      for (const m of d.matches.filter(
        (m) => refText(m.policy) === refText(rule.policy) && m.ruleIndex === rule.ruleIndex,
      )) {
        const deny = m.section.endsWith('Deny');
        const peerWord = dir === 'egress' ? 'to' : 'from';
        add(
          `    ${deny ? 'Denies' : 'Allows'} ${peerWord} ${m.peer === '{}' || m.peer === undefined ? 'any peer' : `labels ${m.peer}`} by ${m.section}[${m.peerRuleIndex}]`,
        );
        add(`      Ports: ${m.l4 ?? 'any'}`);
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
  add(`Final verdict: ${String(r.verdict)}`);
  return `${lines.join('\n')}\n`;
}

function printTrace(r: Record<string, unknown>): void {
  process.stdout.write(formatTrace(r));
}

/** `endpoint get` in human form: the fields an operator looks at, the policy revision among them. */
export function formatEndpoint(e: Record<string, unknown>): string {
  const pe = (e.policyEnabled ?? {}) as { ingress?: boolean; egress?: boolean };
  const named = Object.entries((e.namedPorts ?? {}) as Record<string, { port: number; protocol: string }>)
    .map(([n, p]) => `${n}=${p.port}/${p.protocol}`)
    .join(' ');
  const rows: [string, unknown][] = [
    ['Endpoint', e.id],
    ['Pod', `${e.podNamespace}/${e.podName}`],
    ['State', e.state],
    ['Identity', e.identity],
    ['Labels', ((e.labels as string[] | undefined) ?? []).join(' ')],
    ['IPv4', e.ipv4 ?? ''],
    ['IPv6', e.ipv6 ?? ''],
    ['Policy revision', e.policyRevision],
    ['Policy (ingress)', pe.ingress ? 'Enabled' : 'Disabled'],
    ['Policy (egress)', pe.egress ? 'Enabled' : 'Disabled'],
    ['Named ports', named],
    ['Host interface', `${e.hostIfName} (ifindex ${e.hostIfindex})`],
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(20)}${String(v ?? '')}`).join('\n') + '\n';
}
