/**
 * `cilium-ts hubble observe` and `hubble status`, with flags spelled as the upstream
 * `hubble` CLI spells them. registerHubbleCommands(program) adds a `hubble`
 * command to the given commander program. Filter flags build FlowFilters the
 * way upstream does: a direction-less flag (`--pod`, `--ip`, `--label`, `--service`,
 * `--port`, `--identity`, `--namespace`) yields a source-side and a
 * destination-side filter (OR), `--from-*`/`--to-*` apply to both, and `--not`
 * sends the next filter flag to the blacklist.
 */
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { CiliumTsError } from '../common/errors.js';
import type { GetFlowsRequestInput, ObserverClient } from '../hubble/client.js';
import { MessageTypeNames, TraceObsPointNames } from '../hubble/constants.js';
import {
  DICT_SEPARATOR,
  formatCompact,
  formatDict,
  formatJson,
  formatJsonPb,
  formatLost,
  formatTable,
  tableHeader,
  tableRow,
} from '../hubble/format.js';
import type { FlowFilter, IPVersion, TCPFlags, TrafficDirection, Verdict } from '../hubble/types.js';
import { relaySocketPath } from '../lab/state.js';
import { CliError } from './errors.js';
import { resolveTarget, type TargetOptions } from './target.js';

/** The gRPC client loads only for the commands that talk to a server: grpc-js and the protos take
 * a large part of the CLI's start-up. */
/** The `--server` option every `hubble` command takes (defaultServer reads it). */
const SERVER_OPTION = [
  '--server <address>',
  'Hubble server: unix:///path or host:port (env HUBBLE_SERVER; default: the node --lab/--node pick)',
] as const;

async function observerClient(address: string): Promise<ObserverClient> {
  const { ObserverClient } = await import('../hubble/client.js');
  return new ObserverClient(address);
}

// ---------- filter building ----------

type FilterKey = keyof FlowFilter;
type Entry = { flag: string; value: string; negated: boolean };

/** Flags that take a filter value, in the order they can appear. */
export const FILTER_FLAGS = [
  'ip',
  'from-ip',
  'to-ip',
  'pod',
  'from-pod',
  'to-pod',
  'namespace',
  'from-namespace',
  'to-namespace',
  'label',
  'from-label',
  'to-label',
  'service',
  'from-service',
  'to-service',
  'identity',
  'from-identity',
  'to-identity',
  'port',
  'from-port',
  'to-port',
  'verdict',
  'protocol',
  'type',
  'node-name',
  'traffic-direction',
  'tcp-flags',
  'ip-version',
  'drop-reason-desc',
  'uuid',
  'http-status',
  'http-method',
  'http-path',
  'dns-query',
] as const;

const CONFLICTS: [string, string[]][] = [
  ['ip', ['from-ip', 'to-ip']],
  ['pod', ['from-pod', 'to-pod']],
  ['namespace', ['from-namespace', 'to-namespace']],
  ['label', ['from-label', 'to-label']],
  ['service', ['from-service', 'to-service']],
  ['namespace', ['from-service', 'to-service']],
  ['identity', ['from-identity', 'to-identity']],
  ['port', ['from-port', 'to-port']],
];

const VERDICTS = new Set(['FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED']);

/** `trace`, `trace:to-endpoint`, `drop`, `policy-verdict`, `l7`, `4`, `4:0` → EventTypeFilter. */
export function parseEventTypeFilter(v: string): NonNullable<FlowFilter['event_type']>[number] {
  const [name, sub] = v.split(':', 2) as [string, string | undefined];
  const type = MessageTypeNames[name] ?? (/^\d+$/.test(name) ? Number(name) : undefined);
  if (type === undefined) {
    throw new CliError(`--type: unknown event type "${name}" (${Object.keys(MessageTypeNames).join(', ')})`);
  }
  if (sub === undefined) return { type };
  let subType: number | undefined;
  if (/^\d+$/.test(sub)) subType = Number(sub);
  else {
    for (const [k, n] of Object.entries(TraceObsPointNames)) if (n === sub) subType = Number(k);
  }
  if (subType === undefined) throw new CliError(`--type: unknown sub-type "${sub}"`);
  return { type, match_sub_type: true, sub_type: subType };
}

function parseTcpFlags(v: string): TCPFlags {
  const out: TCPFlags = {};
  for (const f of v.split(',').map((x) => x.trim().toUpperCase())) {
    if (!['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'].includes(f)) {
      throw new CliError(`--tcp-flags: unknown flag "${f}"`);
    }
    out[f as keyof TCPFlags] = true;
  }
  return out;
}

class Side {
  f: FlowFilter | undefined;
  add<K extends FilterKey>(key: K, value: NonNullable<FlowFilter[K]>[number]): void {
    this.f ??= {};
    const arr = (this.f[key] ?? []) as unknown[];
    arr.push(value);
    (this.f as Record<string, unknown>)[key] = arr;
  }
}

/** Flags whose value goes as-is to a source and a destination field. */
const SIDED = {
  ip: ['source_ip', 'destination_ip'],
  label: ['source_label', 'destination_label'],
} as const;

/**
 * Service names without a namespace get each of the namespace flags' values (`web` with `-n a -n b`:
 * `a/web`, `b/web`); a name with another namespace than the flags give is an error, as upstream.
 */
function withNamespaces(key: string, names: readonly string[], namespaces: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of names) {
    const slash = name.indexOf('/');
    if (slash < 0) {
      for (const ns of namespaces) out.push(`${ns}/${name}`);
      continue;
    }
    const own = name.slice(0, slash);
    const other = namespaces.find((ns) => ns !== own);
    if (other !== undefined)
      throw new CliError(`${key}: namespace conflict: "${other}" does not contain "${name}"`);
    out.push(name);
  }
  return out;
}

function buildTracker(entries: readonly Entry[]): FlowFilter[] {
  const used = new Set(entries.map((e) => e.flag));
  for (const [a, bs] of CONFLICTS) {
    for (const b of bs)
      if (used.has(a) && used.has(b)) throw new CliError(`filters --${a} and --${b} cannot be combined`);
  }
  const left = new Side();
  const right = new Side();
  const both = <K extends FilterKey>(k: K, v: NonNullable<FlowFilter[K]>[number]) => {
    left.add(k, v);
    right.add(k, v);
  };
  const nsAll = entries.filter((e) => e.flag === 'namespace').map((e) => e.value);
  const nsFrom = entries.filter((e) => e.flag === 'from-namespace').map((e) => e.value);
  const nsTo = entries.filter((e) => e.flag === 'to-namespace').map((e) => e.value);
  const hasPod = used.has('pod');
  const hasFromPod = used.has('from-pod');
  const hasToPod = used.has('to-pod');
  // which sides carry a service filter (namespaces go into it instead of a namespace-only pod filter)
  const hasService = used.has('service');
  const hasFromService = used.has('from-service');
  const hasToService = used.has('to-service');
  const podValue = (v: string, ns: string[]) =>
    v.includes('/') ? v : `${ns.length === 1 ? ns[0] : 'default'}/${v}`;
  for (const { flag, value: v } of entries) {
    switch (flag) {
      case 'ip':
      case 'label':
        left.add(SIDED[flag][0], v);
        right.add(SIDED[flag][1], v);
        break;
      case 'from-ip':
      case 'from-label':
        both(SIDED[flag.slice(5) as keyof typeof SIDED][0], v);
        break;
      case 'to-ip':
      case 'to-label':
        both(SIDED[flag.slice(3) as keyof typeof SIDED][1], v);
        break;
      case 'pod':
        left.add('source_pod', podValue(v, nsAll));
        right.add('destination_pod', podValue(v, nsAll));
        break;
      case 'from-pod':
        both('source_pod', podValue(v, nsFrom.length ? nsFrom : nsAll));
        break;
      case 'to-pod':
        both('destination_pod', podValue(v, nsTo.length ? nsTo : nsAll));
        break;
      case 'namespace':
        // folded into the pod filters when pods are given
        if (hasPod) break;
        if (hasFromPod || hasToPod) {
          if (!hasFromPod) both('source_pod', `${v}/`);
          if (!hasToPod) both('destination_pod', `${v}/`);
          break;
        }
        if (hasService) break;
        left.add('source_pod', `${v}/`);
        right.add('destination_pod', `${v}/`);
        break;
      case 'from-namespace':
        if (hasFromPod) break;
        if (!hasService && !hasFromService) left.add('source_pod', `${v}/`);
        if (!hasFromService) right.add('source_pod', `${v}/`);
        break;
      case 'to-namespace':
        if (hasToPod) break;
        if (!hasToService) left.add('destination_pod', `${v}/`);
        if (!hasService && !hasToService) right.add('destination_pod', `${v}/`);
        break;
      case 'service':
        left.add('source_service', v);
        right.add('destination_service', v);
        break;
      case 'from-service':
        both('source_service', v);
        break;
      case 'to-service':
        both('destination_service', v);
        break;
      case 'identity':
      case 'from-identity':
      case 'to-identity': {
        if (!/^\d+$/.test(v)) throw new CliError(`--${flag}: not a numeric identity: "${v}"`);
        const n = Number(v);
        if (flag === 'identity') {
          left.add('source_identity', n);
          right.add('destination_identity', n);
        } else both(flag === 'from-identity' ? 'source_identity' : 'destination_identity', n);
        break;
      }
      case 'port':
      case 'from-port':
      case 'to-port': {
        if (!/^\d+$/.test(v) || Number(v) > 65535) throw new CliError(`--${flag}: not a port: "${v}"`);
        if (flag === 'port') {
          left.add('source_port', v);
          right.add('destination_port', v);
        } else both(flag === 'from-port' ? 'source_port' : 'destination_port', v);
        break;
      }
      case 'verdict': {
        const u = v.toUpperCase();
        if (!VERDICTS.has(u)) throw new CliError(`--verdict: unknown verdict "${v}"`);
        both('verdict', u as Verdict);
        break;
      }
      case 'protocol':
        both('protocol', v.toLowerCase());
        break;
      case 'type':
        both('event_type', parseEventTypeFilter(v));
        break;
      case 'node-name':
        both('node_name', v);
        break;
      case 'traffic-direction': {
        const u = v.toUpperCase();
        if (u !== 'INGRESS' && u !== 'EGRESS')
          throw new CliError(`--traffic-direction: "${v}" (ingress|egress)`);
        both('traffic_direction', u as TrafficDirection);
        break;
      }
      case 'tcp-flags':
        both('tcp_flags', parseTcpFlags(v));
        break;
      case 'ip-version': {
        const m: Record<string, IPVersion> = {
          '4': 'IPv4',
          v4: 'IPv4',
          ipv4: 'IPv4',
          '6': 'IPv6',
          v6: 'IPv6',
          ipv6: 'IPv6',
        };
        const iv = m[v.toLowerCase()];
        if (!iv) throw new CliError(`--ip-version: "${v}" (v4|v6)`);
        both('ip_version', iv);
        break;
      }
      case 'drop-reason-desc':
        both('drop_reason_desc', v.toUpperCase());
        break;
      case 'uuid':
        both('uuid', v);
        break;
      case 'http-status':
        if (!/^[1-5][0-9]{0,2}\+?$/.test(v)) throw new CliError(`--http-status: "${v}" (e.g. 404, 5+)`);
        both('http_status_code', v);
        break;
      case 'http-method':
        both('http_method', v.toUpperCase());
        break;
      case 'http-path':
        both('http_path', v);
        break;
      case 'dns-query':
        both('dns_query', v);
        break;
    }
  }
  // as upstream: the namespace flags complete service names given without one (to-namespace first,
  // then from-namespace, then namespace)
  for (const [side, key, ns] of [
    [left, 'destination_service', nsTo],
    [right, 'destination_service', nsTo],
    [left, 'source_service', nsFrom],
    [right, 'source_service', nsFrom],
    [left, 'source_service', nsAll],
    [right, 'destination_service', nsAll],
  ] as const) {
    const names = side.f?.[key];
    if (names && ns.length > 0) side.f![key] = withNamespaces(key, names, ns);
  }
  if (!left.f && !right.f) return [];
  if (JSON.stringify(left.f) === JSON.stringify(right.f)) return [left.f!];
  return [left.f, right.f].filter((x): x is FlowFilter => x !== undefined);
}

/** Filter flags in command-line order (with `--not` marking the next one) → whitelist and blacklist. */
export function buildFilters(entries: readonly Entry[]): {
  whitelist: FlowFilter[];
  blacklist: FlowFilter[];
} {
  return {
    whitelist: buildTracker(entries.filter((e) => !e.negated)),
    blacklist: buildTracker(entries.filter((e) => e.negated)),
  };
}

// ---------- time ----------

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60000,
  h: 3600000,
};

/** `--since`/`--until`: RFC 3339 / date text, or a Go duration ago (`5m`, `1h30m`, `90s`). Returns ms since the epoch. */
export function parseTimeArg(v: string, now = Date.now()): number {
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    let ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g))
      ms += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    return now - ms;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new CliError(`invalid time "${v}": use RFC 3339 or a duration like 5m`);
  return t;
}

function toProtoTs(ms: number): { seconds: number; nanos: number } {
  const sec = Math.floor(ms / 1000);
  return { seconds: sec, nanos: Math.round((ms - sec * 1000) * 1e6) };
}

// ---------- server address ----------

/**
 * `--server`, else $HUBBLE_SERVER, else the lab's relay when no node is picked (`--node`,
 * CILIUM_TS_NODE), else the Hubble socket of the node `--lab`/`--node` pick.
 */
export function defaultServer(opts: { server?: string } & TargetOptions, env = process.env): string {
  if (opts.server) return opts.server;
  if (env.HUBBLE_SERVER) return env.HUBBLE_SERVER;
  // A lab of several nodes runs a relay: every node's flows, unless one node is asked for.
  if (opts.node === undefined && env.CILIUM_TS_NODE === undefined) {
    const relay = relaySocketPath(opts.lab ?? env.CILIUM_TS_LAB ?? 'default');
    if (existsSync(relay)) return `unix://${relay}`;
  }
  return `unix://${resolveTarget(opts, env).hubbleSocket}`;
}

// ---------- commands ----------

interface ObserveOpts {
  follow?: boolean;
  last?: string;
  first?: string;
  all?: boolean;
  since?: string;
  until?: string;
  output: string;
  server?: string;
  lab?: string;
  node?: string;
  printNodeName?: boolean;
}

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: CliIo = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
};

/** Add `observe` to a `hubble` command. */
export function addObserveCommand(hubble: Command, io: CliIo = stdio): Command {
  const cmd = new Command('observe').description('Observe flows of a cilium-ts node (Hubble Observer API)');
  let entries: Entry[] = [];
  let negateNext = false;
  const record = (flag: string) => (value: string, prev: unknown) => {
    entries.push({ flag, value, negated: negateNext });
    negateNext = false;
    return [...((prev as string[] | undefined) ?? []), value];
  };
  const flagDesc: Record<string, [string | undefined, string]> = {
    ip: [undefined, 'flows from or to this IP or CIDR'],
    'from-ip': [undefined, 'flows from this IP or CIDR'],
    'to-ip': [undefined, 'flows to this IP or CIDR'],
    pod: [
      undefined,
      'flows from or to this pod name prefix ([namespace/]pod; namespace defaults to "default")',
    ],
    'from-pod': [undefined, 'flows from this pod name prefix'],
    'to-pod': [undefined, 'flows to this pod name prefix'],
    namespace: ['-n', 'flows from or to this namespace'],
    'from-namespace': [undefined, 'flows from this namespace'],
    'to-namespace': [undefined, 'flows to this namespace'],
    label: [
      '-l',
      'flows from or to endpoints matching this label selector (e.g. k8s:app=web, !key, key in (a,b))',
    ],
    'from-label': [undefined, 'flows from endpoints matching this label selector'],
    'to-label': [undefined, 'flows to endpoints matching this label selector'],
    service: [
      undefined,
      'flows from or to this service ([namespace/]name prefix; namespace defaults to "default")',
    ],
    'from-service': [undefined, 'flows from this service ([namespace/]name prefix)'],
    'to-service': [undefined, 'flows to this service ([namespace/]name prefix)'],
    identity: [undefined, 'flows from or to this security identity'],
    'from-identity': [undefined, 'flows from this security identity'],
    'to-identity': [undefined, 'flows to this security identity'],
    port: [undefined, 'flows with this L4 source or destination port'],
    'from-port': [undefined, 'flows with this L4 source port'],
    'to-port': [undefined, 'flows with this L4 destination port'],
    verdict: [undefined, 'flows with this verdict (FORWARDED, DROPPED, AUDIT, ...)'],
    protocol: [
      undefined,
      'flows with this protocol (tcp, udp, icmp, icmpv4, icmpv6, sctp, http, dns, kafka)',
    ],
    type: ['-t', 'flows of this event type (trace, drop, policy-verdict, l7; trace:to-endpoint...)'],
    'node-name': [undefined, 'flows observed on nodes matching this pattern (k8s*, cluster/node)'],
    'traffic-direction': [undefined, 'flows in this direction (ingress, egress)'],
    'tcp-flags': [undefined, 'flows with these TCP flags set (e.g. SYN or SYN,ACK)'],
    'ip-version': [undefined, 'flows of this IP version (v4, v6)'],
    'drop-reason-desc': [undefined, 'drops with this reason (e.g. POLICY_DENIED)'],
    uuid: [undefined, 'the flow with this uuid'],
    'http-status': [undefined, 'L7 HTTP flows with this status code or prefix (404, 5+)'],
    'http-method': [undefined, 'L7 HTTP flows with this method (GET, POST...)'],
    'http-path': [undefined, 'L7 HTTP flows whose path matches this regular expression'],
    'dns-query': [undefined, 'L7 DNS flows whose query matches this regular expression'],
  };
  for (const flag of FILTER_FLAGS) {
    const [short, desc] = flagDesc[flag]!;
    const meta = flag.replace(/^(from|to)-/, '').replace(/-/g, '_');
    cmd.addOption(
      new Option(`${short ? `${short}, ` : ''}--${flag} <${meta}>`, desc).argParser(record(flag)),
    );
  }
  cmd
    .option('--not', 'negate the next filter flag (sends it to the blacklist)')
    .option('-f, --follow', 'follow flows as they are observed')
    .option('--last <n>', 'get the last N flows (default 20 when not following)')
    .option('--first <n>', 'get the first N flows held by the server')
    .option('--all', 'get all flows held by the server')
    .option('--since <time>', 'flows since this time (RFC 3339) or duration ago (5m, 1h)')
    .option('--until <time>', 'flows until this time (RFC 3339) or duration ago')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['compact', 'dict', 'json', 'jsonpb', 'table'])
        .default('compact'),
    )
    .option('--print-node-name', 'print the node name in each line')
    .option(...SERVER_OPTION);
  cmd.on('option:not', () => {
    negateNext = true;
  });
  cmd.action(async (_opts: ObserveOpts, c: Command) => {
    const taken = entries;
    entries = [];
    negateNext = false;
    await runObserve(c.optsWithGlobals<ObserveOpts>(), taken, io);
  });
  hubble.addCommand(cmd);
  return cmd;
}

/** Build the GetFlows request from observe's options. */
export function observeRequest(opts: ObserveOpts, entries: readonly Entry[]): GetFlowsRequestInput {
  const { whitelist, blacklist } = buildFilters(entries);
  const req: GetFlowsRequestInput = { whitelist, blacklist };
  if (opts.first !== undefined && opts.last !== undefined)
    throw new CliError('--first and --last cannot be combined');
  if (opts.first !== undefined && opts.follow) throw new CliError('--first and --follow cannot be combined');
  const num = (v: string, flag: string) => {
    if (!/^\d+$/.test(v)) throw new CliError(`${flag}: not a number: "${v}"`);
    return Number(v);
  };
  if (opts.first !== undefined) {
    req.number = num(opts.first, '--first');
    req.first = true;
  } else if (opts.last !== undefined) req.number = num(opts.last, '--last');
  else if (!opts.follow && !opts.all && opts.since === undefined && opts.until === undefined) req.number = 20;
  if (opts.follow) req.follow = true;
  if (opts.since !== undefined) req.since = toProtoTs(parseTimeArg(opts.since));
  if (opts.until !== undefined) req.until = toProtoTs(parseTimeArg(opts.until));
  return req;
}

async function runObserve(opts: ObserveOpts, entries: readonly Entry[], io: CliIo): Promise<void> {
  const req = observeRequest(opts, entries);
  const client = await observerClient(defaultServer(opts));
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  const fo = { nodeName: opts.printNodeName ?? false };
  const rows: string[][] = [];
  let n = 0;
  try {
    for await (const res of client.getFlows(req, ac.signal)) {
      if (res.lost_events) {
        if (opts.output === 'jsonpb') io.err(formatJsonPb({ lost_events: res.lost_events }));
        else io.err(formatLost(res.lost_events));
        continue;
      }
      const f = res.flow;
      if (!f) continue;
      switch (opts.output) {
        case 'json':
          io.out(formatJson(f));
          break;
        case 'jsonpb':
          io.out(formatJsonPb(res));
          break;
        case 'dict':
          if (n > 0) io.out(DICT_SEPARATOR);
          io.out(formatDict(f, fo));
          break;
        case 'table':
          if (opts.follow) {
            if (n === 0) io.out(formatTable([tableHeader(fo)]));
            io.out(formatTable([tableRow(f, fo)]));
          } else rows.push(tableRow(f, fo));
          break;
        default:
          io.out(formatCompact(f, fo));
      }
      n++;
    }
    if (opts.output === 'table' && !opts.follow && rows.length > 0)
      io.out(formatTable([tableHeader(fo), ...rows]));
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
    client.close();
  }
}

/** `fn` with a client of the command's Hubble server (--server, else the lab node's or relay); an
 * unreachable server is one clear error. */
async function withServer<T>(
  c: Command,
  fn: (client: ObserverClient, address: string) => Promise<T>,
): Promise<T> {
  const address = defaultServer(c.optsWithGlobals<{ server?: string } & TargetOptions>());
  const client = await observerClient(address);
  try {
    return await fn(client, address);
  } catch (err) {
    throw new CiliumTsError(`cannot reach Hubble server at ${address}: ${(err as Error).message}`, {
      code: 'unavailable',
      cause: err,
    });
  } finally {
    client.close();
  }
}

/** `hubble status` text, as upstream prints it. */
export function formatStatus(
  address: string,
  health: string,
  st: {
    num_flows: number;
    max_flows: number;
    flows_rate: number;
    num_connected_nodes?: number;
    num_unavailable_nodes?: number;
  },
): string {
  const fmt = (n: number) => n.toLocaleString('en-US');
  const pct = st.max_flows > 0 ? ((st.num_flows / st.max_flows) * 100).toFixed(2) : '0.00';
  const lines = [
    `Healthcheck (via ${address}): ${health === 'SERVING' ? 'Ok' : health}`,
    `Current/Max Flows: ${fmt(st.num_flows)}/${fmt(st.max_flows)} (${pct}%)`,
    `Flows/s: ${st.flows_rate.toFixed(2)}`,
  ];
  if (st.num_connected_nodes !== undefined) {
    const total = st.num_connected_nodes + (st.num_unavailable_nodes ?? 0);
    lines.push(`Connected Nodes: ${st.num_connected_nodes}/${total}`);
  }
  return lines.join('\n');
}

/** Add `status` to a `hubble` command. */
export function addStatusCommand(hubble: Command, io: CliIo = stdio): Command {
  const cmd = new Command('status')
    .description("Health and flow counters of a node's Hubble server")
    .option('-o, --output <format>', 'output format (text|json)', 'text')
    .option(...SERVER_OPTION)
    .action(async (_o, c: Command) => {
      const output = c.opts<{ output: string }>().output;
      const { address, health, st } = await withServer(c, async (client, address) => ({
        address,
        health: await client.healthCheck(),
        st: await client.serverStatus(),
      }));
      if (output === 'json') io.out(JSON.stringify({ healthcheck: health, ...st }));
      else io.out(formatStatus(address, health, st));
    });
  hubble.addCommand(cmd);
  return cmd;
}

/** A duration as Go prints one truncated to seconds (upstream's AGE column): 0s, 45s, 13m5s, 2h0m7s. */
export function formatAge(ns: number): string {
  let s = Math.max(0, Math.floor(ns / 1e9));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  s %= 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

const NODE_STATES: Record<string, string> = {
  NODE_CONNECTED: 'Connected',
  NODE_UNAVAILABLE: 'Unavailable',
  NODE_GONE: 'Gone',
  NODE_ERROR: 'Error',
};

/** `hubble list nodes` rows, as upstream prints them (GetNodes' nodes, sorted by name). */
export function formatNodeList(nodes: Record<string, unknown>[], wide = false): string {
  const rows = [...nodes]
    .sort((a, b) => String(a.name).localeCompare(String(b.name)))
    .map((n) => {
      const uptime = Number(n.uptime_ns ?? 0);
      const [cur, max] = [Number(n.num_flows ?? 0), Number(n.max_flows ?? 0)];
      const connected = n.state === 'NODE_CONNECTED';
      const row = [
        String(n.name ?? ''),
        NODE_STATES[String(n.state)] ?? 'Unknown',
        connected ? formatAge(uptime) : 'N/A',
        connected && uptime > 0 ? (Number(n.seen_flows ?? 0) / (uptime / 1e9)).toFixed(2) : 'N/A',
        connected ? `${cur}/${max} (${max > 0 ? ((cur / max) * 100).toFixed(2) : '0.00'}%)` : 'N/A',
      ];
      return wide ? [...row, String(n.version ?? ''), String(n.address ?? '')] : row;
    });
  const header = [
    'NAME',
    'STATUS',
    'AGE',
    'FLOWS/S',
    'CURRENT/MAX-FLOWS',
    ...(wide ? ['VERSION', 'ADDRESS'] : []),
  ];
  return formatTable([header, ...rows]);
}

/** Add `list nodes` and `list namespaces` (GetNodes, GetNamespaces) to a `hubble` command. */
export function addListCommand(hubble: Command, io: CliIo = stdio): Command {
  const list = new Command('list').description(
    'List the nodes and namespaces a Hubble server (or relay) knows',
  );
  list
    .command('nodes')
    .description('Nodes with their state, age and flow counters (through the relay: every node)')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'wide', 'json'])
        .default('table'),
    )
    .option(...SERVER_OPTION)
    .action(async (_o, c: Command) => {
      const nodes = await withServer(c, (client) => client.getNodes());
      const output = c.opts<{ output: string }>().output;
      io.out(output === 'json' ? JSON.stringify(nodes, null, 2) : formatNodeList(nodes, output === 'wide'));
    });
  list
    .command('namespaces')
    .description('Namespaces seen in the flows')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .option(...SERVER_OPTION)
    .action(async (_o, c: Command) => {
      const ns = await withServer(c, (client) => client.getNamespaces());
      ns.sort((a, b) => a.cluster.localeCompare(b.cluster) || a.namespace.localeCompare(b.namespace));
      io.out(
        c.opts<{ output: string }>().output === 'json'
          ? JSON.stringify(ns, null, 2)
          : formatTable([['CLUSTER', 'NAMESPACE'], ...ns.map((n) => [n.cluster, n.namespace])]),
      );
    });
  hubble.addCommand(list);
  return list;
}

/** Add `hubble` (with `observe`, `status` and `list`) to the program. */
export function registerHubbleCommands(program: Command, io: CliIo = stdio): Command {
  const hubble = new Command('hubble').description('Flow observability (Hubble Observer API)');
  addObserveCommand(hubble, io);
  addStatusCommand(hubble, io);
  addListCommand(hubble, io);
  program.addCommand(hubble);
  return hubble;
}
