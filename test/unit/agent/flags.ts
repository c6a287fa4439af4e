/**
 * Agent flags as `cilium-ts agent` hands them to configFromFlags, with the required ones filled in,
 * for tests of one flag at a time.
 */
import type { AgentFlags } from '../../../src/agent/main.js';

export function agentFlags(overrides: Partial<AgentFlags> & Pick<AgentFlags, 'podCidr'>): AgentFlags {
  return {
    lab: 't',
    node: 'n1',
    monitorAggregation: '0',
    hubblePort: '0',
    metricsPort: '-1',
    hubbleMetrics: '',
    logLevel: 'info',
    ...overrides,
  };
}
