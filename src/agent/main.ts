/** Process entry of `cilium-ts agent`: configuration from flags, structured logs, signals. */
import { pino } from 'pino';
import { Agent } from './agent.js';
import { type AgentConfig, defaultConfig } from './config.js';

export interface AgentFlags {
  lab: string;
  node: string;
  podCidr: string;
  podCidrV6?: string;
  nodeIp?: string[];
  runDir?: string;
  monitorAggregation: string;
  policyAuditMode?: boolean;
  hubblePort: string;
  metricsPort: string;
  hubbleMetrics: string;
  logLevel: string;
}

export function configFromFlags(f: AgentFlags): AgentConfig {
  const o: Partial<AgentConfig> = {
    podCidrV4: f.podCidr,
    nodeIPs: f.nodeIp ?? [],
    monitorAggregation: Number(f.monitorAggregation),
    policyAuditMode: f.policyAuditMode ?? false,
    hubbleListenPort: Number(f.hubblePort),
    metricsPort: Number(f.metricsPort),
    hubbleMetrics: f.hubbleMetrics.split(',').filter(Boolean),
    logLevel: f.logLevel,
  };
  if (f.podCidrV6) o.podCidrV6 = f.podCidrV6;
  if (f.runDir) o.runDir = f.runDir;
  return defaultConfig(f.lab, f.node, o);
}

export async function runAgent(flags: AgentFlags): Promise<void> {
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
}
