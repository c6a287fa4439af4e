/**
 * The agent's control-plane cells (the FQDN ones included) against in-memory maps, with one client
 * pod as an endpoint: what the fqdn cell tests and bench/dns-proxy drive.
 */
import { pino } from 'pino';
import { CONTROL_PLANE_CELLS } from '../../../src/agent/agent.js';
import {
  type AgentCellExtras,
  ConfigT,
  EndpointsT,
  LogT,
  ResourcesT,
  TargetsT,
} from '../../../src/agent/cells/tokens.js';
import { type AgentConfig, defaultConfig } from '../../../src/agent/config.js';
import type { DatapathTargets } from '../../../src/endpoint/datapath-state.js';
import type { EndpointRecord } from '../../../src/endpoint/types.js';
import { cell, Hive } from '../../../src/hive/hive.js';
import type { FakeDatapath } from '../agent/fake-targets.js';

export const CLIENT_IP = '10.211.0.10';

/** Starts the cells with state in `dir`. */
export async function controlPlane(
  dp: FakeDatapath,
  dir: string,
  overrides: Partial<AgentConfig> = {},
): Promise<Hive<AgentCellExtras>> {
  const cfg = defaultConfig('t', 'n1', {
    runDir: dir,
    stateDir: dir,
    nodeIPs: ['192.168.60.2'],
    podCidrV4: '10.211.0.0/24',
    ...overrides,
  });
  const targets = cell<DatapathTargets, AgentCellExtras>({
    name: 'fake-targets',
    needs: [],
    provides: TargetsT,
    build: () => ({ provide: dp }),
  });
  const hive = new Hive<AgentCellExtras>(
    [...CONTROL_PLANE_CELLS, targets],
    [
      [ConfigT, cfg],
      [LogT, pino({ level: 'silent' })],
    ],
  );
  await hive.start();
  return hive;
}

/** The pod default/client (app=client) as an endpoint, written to the maps. */
export async function addClient(hive: Hive<AgentCellExtras>, dp: FakeDatapath): Promise<EndpointRecord> {
  await hive.get(ResourcesT).setPod('default', 'client', { labels: { app: 'client' }, namedPorts: {} });
  dp.interfaces.add('lxcclient');
  const { manager, state, persist } = hive.get(EndpointsT);
  const ep = await manager.create({
    containerId: 'c-client',
    ifName: 'eth0',
    netns: '/var/run/netns/client',
    podNamespace: 'default',
    podName: 'client',
    ipv4: CLIENT_IP,
    mac: '02:00:00:00:00:01',
    hostIfName: 'lxcclient',
    hostIfindex: 101,
    hostMac: '02:00:00:00:00:02',
  });
  await state.flush();
  await persist();
  return ep;
}
