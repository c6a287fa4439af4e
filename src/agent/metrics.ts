/**
 * Agent metrics (upstream names where a counterpart exists), in the same registry as Hubble's:
 * endpoints, identities, policies, policy revision, BPF map pressure, datapath forward/drop counters.
 * Values are read when Prometheus scrapes, so they cost nothing in between.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { dropReasonText } from '../hubble/constants.js';
import type { Agent } from './agent.js';

export function registerAgentMetrics(agent: Agent, registry: Registry): void {
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
    g.set(agent.endpoints.list().length),
  );
  gauge('cilium_endpoint_state', 'Endpoints by state', ['endpoint_state'], (g) => {
    const by = new Map<string, number>();
    for (const e of agent.endpoints.list()) by.set(e.state, (by.get(e.state) ?? 0) + 1);
    for (const [s, n] of by) g.set({ endpoint_state: s }, n);
  });
  gauge('cilium_identity', 'Number of security identities', ['type'], (g) => {
    const by = new Map<string, number>();
    for (const i of agent.identities.all()) by.set(i.scope, (by.get(i.scope) ?? 0) + 1);
    for (const [t, n] of by) g.set({ type: t }, n);
  });
  gauge('cilium_policy', 'Number of policies in the repository', [], (g) => g.set(agent.repo.list().length));
  gauge('cilium_policy_max_revision', 'Highest policy revision', [], (g) => g.set(agent.repo.revision));
  gauge('cilium_bpf_map_pressure', 'Fill ratio of BPF maps (entries / max entries)', ['map_name'], (g) => {
    for (const [name, ratio] of agent.datapath.mapPressure()) g.set({ map_name: name }, ratio);
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
          for (const e of agent.datapath.m.metrics.list()) {
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
