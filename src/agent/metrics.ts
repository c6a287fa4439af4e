/**
 * Agent metrics (upstream names where a counterpart exists), in the same registry as Hubble's:
 * endpoints, identities, policies, policy revision, BPF map pressure, datapath forward/drop counters.
 * Values are read when Prometheus scrapes, so they cost nothing in between.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { dropReasonText } from '../hubble/constants.js';

/** What the agent's metrics read, at scrape time. */
export interface AgentMetricsSources {
  endpoints(): readonly { state: string }[];
  identities(): readonly { scope: string }[];
  policy(): { count: number; revision: number };
  mapPressure(): Map<string, number>;
  datapathCounters(): readonly { reason: number; direction: string; packets: bigint; bytes: bigint }[];
}

export function registerAgentMetrics(agent: AgentMetricsSources, registry: Registry): void {
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        try {
          collect(this);
        } catch {
          // datapath not open yet: no samples
        }
      },
    });

  gauge('cilium_endpoint', 'Number of endpoints managed by this agent', [], (g) =>
    g.set(agent.endpoints().length),
  );
  gauge('cilium_endpoint_state', 'Endpoints by state', ['endpoint_state'], (g) => {
    const by = new Map<string, number>();
    for (const e of agent.endpoints()) by.set(e.state, (by.get(e.state) ?? 0) + 1);
    for (const [s, n] of by) g.set({ endpoint_state: s }, n);
  });
  gauge('cilium_identity', 'Number of security identities', ['type'], (g) => {
    const by = new Map<string, number>();
    for (const i of agent.identities()) by.set(i.scope, (by.get(i.scope) ?? 0) + 1);
    for (const [t, n] of by) g.set({ type: t }, n);
  });
  gauge('cilium_policy', 'Number of policies in the repository', [], (g) => g.set(agent.policy().count));
  gauge('cilium_policy_max_revision', 'Highest policy revision', [], (g) => g.set(agent.policy().revision));
  gauge('cilium_bpf_map_pressure', 'Fill ratio of BPF maps (entries / max entries)', ['map_name'], (g) => {
    for (const [name, ratio] of agent.mapPressure()) g.set({ map_name: name }, ratio);
  });
  // Cumulative counts kept by the datapath (cilium_metrics), exposed as counters like upstream's.
  const datapath = (
    name: string,
    help: string,
    labelNames: string[],
    pick: (e: { reason: number; packets: bigint; bytes: bigint }) => number | undefined,
    labels: (e: { reason: number; direction: string }) => Record<string, string>,
  ) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        try {
          for (const e of agent.datapathCounters()) {
            const v = pick(e);
            if (v !== undefined && v > 0) this.inc(labels(e), v);
          }
        } catch {
          // datapath not open yet
        }
      },
    });
  const dir = (e: { direction: string }) => e.direction.toUpperCase();
  datapath(
    'cilium_forward_count_total',
    'Packets forwarded by the datapath',
    ['direction'],
    (e) => (e.reason === 0 ? Number(e.packets) : undefined),
    (e) => ({ direction: dir(e) }),
  );
  datapath(
    'cilium_forward_bytes_total',
    'Bytes forwarded by the datapath',
    ['direction'],
    (e) => (e.reason === 0 ? Number(e.bytes) : undefined),
    (e) => ({ direction: dir(e) }),
  );
  datapath(
    'cilium_drop_count_total',
    'Packets dropped by the datapath',
    ['reason', 'direction'],
    (e) => (e.reason !== 0 ? Number(e.packets) : undefined),
    (e) => ({ reason: dropReasonText(e.reason), direction: dir(e) }),
  );
  datapath(
    'cilium_drop_bytes_total',
    'Bytes dropped by the datapath',
    ['reason', 'direction'],
    (e) => (e.reason !== 0 ? Number(e.bytes) : undefined),
    (e) => ({ reason: dropReasonText(e.reason), direction: dir(e) }),
  );
}
