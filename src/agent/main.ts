/** Process entry of `cilium-ts agent`: configuration from flags, structured logs, signals. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { CiliumTsError } from '../common/errors.js';
import { MAGLEV_FILLS, MAGLEV_TABLE_SIZES, type MaglevFill } from '../service/maglev.js';
import { Agent } from './agent.js';
import { type AgentConfig, defaultConfig, ROUTING_MODES, type RoutingMode } from './config.js';
import { startIdleCollector } from './memory.js';

export interface AgentFlags {
  lab: string;
  node: string;
  podCidr: string;
  podCidrV6?: string;
  nodeIp?: string[];
  nodeLabel?: string[];
  allowHostNetns?: boolean;
  allowLocalhost?: string;
  cgroup?: string;
  devices?: string;
  kvstore?: string;
  routingMode?: string;
  enableIpv4BigTcp?: boolean;
  kvstoreEndpoints?: string;
  kvstoreLeaseTtl?: string;
  bpfLbAlgorithm?: string;
  bpfLbMaglevTableSize?: string;
  bpfLbMaglevFill?: string;
  runDir?: string;
  monitorAggregation: string;
  policyAuditMode?: boolean;
  bpfConntrackAccounting?: boolean;
  hubblePort: string;
  metricsPort: string;
  hubbleMetrics: string;
  tofqdnsMinTtl?: string;
  logLevel: string;
}

export function configFromFlags(f: AgentFlags): AgentConfig {
  const o: Partial<AgentConfig> = {
    podCidrV4: f.podCidr,
    nodeIPs: f.nodeIp ?? [],
    monitorAggregation: Number(f.monitorAggregation),
    policyAuditMode: f.policyAuditMode ?? false,
    conntrackAccounting: f.bpfConntrackAccounting ?? false,
    hubbleListenPort: Number(f.hubblePort),
    metricsPort: Number(f.metricsPort),
    hubbleMetrics: f.hubbleMetrics.split(',').filter(Boolean),
    logLevel: f.logLevel,
  };
  if (f.podCidrV6) o.podCidrV6 = f.podCidrV6;
  if (f.runDir) o.runDir = f.runDir;
  if (f.allowLocalhost !== undefined) {
    if (f.allowLocalhost !== 'always' && f.allowLocalhost !== 'policy')
      throw new AgentConfigError(
        `--allow-localhost ${f.allowLocalhost}: expected always or policy`,
        'allowLocalhost',
      );
    o.allowLocalhost = f.allowLocalhost;
  }
  if (f.cgroup) o.cgroup = f.cgroup;
  if (f.devices) o.devices = f.devices.split(',').filter(Boolean);
  if (f.routingMode !== undefined) {
    if (!ROUTING_MODES.includes(f.routingMode as RoutingMode))
      throw new AgentConfigError(`--routing-mode ${f.routingMode}: expected vxlan or native`, 'routingMode');
    o.routingMode = f.routingMode as RoutingMode;
  }
  if (f.enableIpv4BigTcp) {
    if ((o.routingMode ?? 'vxlan') !== 'native')
      throw new AgentConfigError(
        '--enable-ipv4-big-tcp needs --routing-mode native: the VXLAN device takes GSO packets of 64 KiB at most',
        'enableIpv4BigTcp',
      );
    o.enableIpv4BigTcp = true;
  }
  if (f.kvstore !== undefined) {
    if (f.kvstore !== 'memory' && f.kvstore !== 'etcd')
      throw new AgentConfigError(`--kvstore ${f.kvstore}: expected memory or etcd`, 'kvstore');
    o.kvstore = f.kvstore;
    o.kvstoreEndpoints = (f.kvstoreEndpoints ?? '').split(',').filter(Boolean);
    if (o.kvstore === 'etcd' && o.kvstoreEndpoints.length === 0)
      throw new AgentConfigError('--kvstore etcd needs --kvstore-endpoints URL[,URL...]', 'kvstoreEndpoints');
  }
  if (f.kvstoreLeaseTtl !== undefined) {
    const ttl = Number(f.kvstoreLeaseTtl);
    if (!/^\d+$/.test(f.kvstoreLeaseTtl) || ttl < 2 || ttl > 86400)
      throw new AgentConfigError(
        `--kvstore-lease-ttl ${f.kvstoreLeaseTtl}: expected whole seconds from 2 to 86400`,
        'kvstoreLeaseTtlSeconds',
      );
    o.kvstoreLeaseTtlSeconds = ttl;
  }
  if (f.tofqdnsMinTtl !== undefined) {
    const ttl = Number(f.tofqdnsMinTtl);
    if (!/^\d+$/.test(f.tofqdnsMinTtl) || ttl > 604800)
      throw new AgentConfigError(
        `--tofqdns-min-ttl ${f.tofqdnsMinTtl}: expected whole seconds from 0 to 604800`,
        'fqdnMinTtlSeconds',
      );
    o.fqdnMinTtlSeconds = ttl;
  }
  if (f.bpfLbAlgorithm !== undefined) {
    if (f.bpfLbAlgorithm !== 'random' && f.bpfLbAlgorithm !== 'maglev')
      throw new AgentConfigError(
        `--bpf-lb-algorithm ${f.bpfLbAlgorithm}: expected random or maglev`,
        'lbAlgorithm',
      );
    o.lbAlgorithm = f.bpfLbAlgorithm;
  }
  if (f.bpfLbMaglevTableSize !== undefined) {
    const m = Number(f.bpfLbMaglevTableSize);
    if (!MAGLEV_TABLE_SIZES.includes(m))
      throw new AgentConfigError(
        `--bpf-lb-maglev-table-size ${f.bpfLbMaglevTableSize}: expected one of ${MAGLEV_TABLE_SIZES.join(', ')}`,
        'maglevTableSize',
      );
    o.maglevTableSize = m;
  }
  if (f.bpfLbMaglevFill !== undefined) {
    if (!MAGLEV_FILLS.includes(f.bpfLbMaglevFill as MaglevFill))
      throw new AgentConfigError(
        `--bpf-lb-maglev-fill ${f.bpfLbMaglevFill}: expected ${MAGLEV_FILLS.join(' or ')}`,
        'maglevFill',
      );
    o.maglevFill = f.bpfLbMaglevFill as MaglevFill;
  }
  const cfg = defaultConfig(f.lab, f.node, o);
  for (const kv of f.nodeLabel ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new AgentConfigError(`--node-label ${kv}: give key=value`, 'nodeLabel');
    cfg.nodeLabels[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return cfg;
}

export class AgentConfigError extends CiliumTsError {
  constructor(message: string, field: string) {
    super(message, { field, code: 'invalid-argument' });
  }
}

/**
 * The agent owns the network namespace it runs in (router device, routes, programs). It runs in a
 * namespace made for a node (a named one, as `ip netns add` and the lab create under /run/netns);
 * anywhere else (the machine's own namespace above all) it would change the host's networking, so
 * it refuses unless told to.
 */
export function checkNetns(allowHostNetns: boolean): void {
  if (allowHostNetns) return;
  const own = statSync('/proc/self/ns/net').ino;
  for (const dir of ['/run/netns', '/var/run/netns']) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      try {
        if (statSync(join(dir, n)).ino === own) return;
      } catch {
        // a namespace file being created or removed: not ours
      }
    }
  }
  throw new AgentConfigError(
    'refusing to run in the root network namespace (or any namespace not made for a node under /run/netns): ' +
      "the agent would create its router device and routes in the machine's own network; run it in a node " +
      'namespace, as `cilium-ts lab up` does, or pass --allow-host-netns',
    'allowHostNetns',
  );
}

export async function runAgent(flags: AgentFlags): Promise<void> {
  checkNetns(flags.allowHostNetns ?? false);
  const cfg = configFromFlags(flags);
  const log = pino({ level: cfg.logLevel, base: { node: cfg.node, lab: cfg.lab } });
  const agent = new Agent(cfg, log);
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    await agent.stop().catch((e) => log.error({ err: e }, 'stop failed'));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  try {
    await agent.start();
  } catch (err) {
    log.fatal({ err }, 'agent failed to start');
    process.exit(1);
  }
  startIdleCollector();
}
