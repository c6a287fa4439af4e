/**
 * Three agents' control-plane cells (identities, node registry, policy, endpoints) run in one
 * process against in-memory map targets, sharing one real etcd: the same labels get the same
 * identity on every node, each node learns the others' identities and nodes (their addresses
 * become remote-node in its ipcache) and the others' pods (their IPs map to their identities).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { CONTROL_PLANE_CELLS } from '../../../src/agent/agent.js';
import {
  type AgentCellExtras,
  ConfigT,
  EndpointsT,
  IdentitiesT,
  LogT,
  NodeT,
  ResourcesT,
  TargetsT,
} from '../../../src/agent/cells/tokens.js';
import { defaultConfig } from '../../../src/agent/config.js';
import type { DatapathTargets } from '../../../src/endpoint/datapath-state.js';
import { cell, Hive } from '../../../src/hive/hive.js';
import { type FakeDatapath, fakeDatapath } from '../../unit/agent/fake-targets.js';
import { startTestEtcd, type TestEtcd } from '../kvstore/etcd-harness.js';

describe('cluster-wide identities through etcd (three agents, real etcd on loopback)', () => {
  let etcd: TestEtcd;
  const dirs: string[] = [];
  const hives: Hive<AgentCellExtras>[] = [];

  before(async () => {
    etcd = await startTestEtcd(1);
  });
  after(async () => {
    for (const h of hives) await h.stop().catch(() => {});
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await etcd?.stop();
  });

  async function agent(
    node: string,
    index: number,
  ): Promise<{ hive: Hive<AgentCellExtras>; dp: FakeDatapath }> {
    const dir = mkdtempSync(join(tmpdir(), 'cts-cluster-'));
    dirs.push(dir);
    const dp = fakeDatapath();
    const cfg = defaultConfig('t', node, {
      runDir: dir,
      stateDir: dir,
      nodeIPs: [`192.168.60.${index + 1}`],
      podCidrV4: `10.${220 + index}.0.0/24`,
      kvstore: 'etcd',
      kvstoreEndpoints: etcd.endpoints,
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
    hives.push(hive);
    await hive.start();
    return { hive, dp };
  }

  async function addPod(
    hive: Hive<AgentCellExtras>,
    node: number,
    name: string,
    labels: Record<string, string>,
  ) {
    await hive.get(ResourcesT).setPod('default', name, { labels, namedPorts: {} });
    const { manager, state } = hive.get(EndpointsT);
    const ep = await manager.create({
      containerId: `c-${name}`,
      ifName: 'eth0',
      netns: `/var/run/netns/${name}`,
      podNamespace: 'default',
      podName: name,
      ipv4: `10.${220 + node}.0.${10 + name.length}`,
      mac: '02:00:00:00:00:01',
      hostIfName: `lxc${name}`,
      hostIfindex: 100,
      hostMac: '02:00:00:00:00:02',
    });
    await state.flush();
    return ep;
  }

  async function until(what: string, test: () => boolean, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!test()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('agree on identities, see each other, and share them', async () => {
    const agents = await Promise.all(['n1', 'n2', 'n3'].map((n, i) => agent(n, i)));
    // Three nodes create a pod with the same new labels at once.
    const eps = await Promise.all(agents.map((a, i) => addPod(a.hive, i, `web${i}`, { app: 'web' })));
    const ids = eps.map((e) => e.identity);
    assert.ok(ids[0]! >= 256, 'a cluster identity');
    assert.deepEqual(new Set(ids).size, 1, `one identity for app=web on every node: ${ids}`);
    const db = await addPod(agents[1]!.hive, 1, 'db', { app: 'db' });
    assert.notEqual(db.identity, ids[0]);
    // Node 0 learns the identity node 1 allocated, with its labels.
    await until('n1 to learn app=db', () => !!agents[0]!.hive.get(IdentitiesT).async.lookup(db.identity));
    assert.ok(
      agents[0]!.hive.get(IdentitiesT).async.lookup(db.identity)!.labels.toStrings().includes('k8s:app=db'),
    );
    // Every node knows every node, and claims the others' addresses as remote-node (identity 6).
    await until('three nodes everywhere', () =>
      agents.every((a) => a.hive.get(NodeT).registry.list().length === 3),
    );
    await until(
      'remote-node ipcache entries',
      () => agents[0]!.dp.ipcache.data.get('192.168.60.2/32')?.identity === 6,
    );
    assert.equal(agents[0]!.dp.ipcache.data.get('192.168.60.1/32')?.identity, 1, 'its own address is host');
    // Each node's pods are their own identity on the other nodes (ipcache through cilium/state/ip/v1).
    await until(
      'n1 to map the db pod of n2',
      () => agents[0]!.dp.ipcache.data.get(`${db.ipv4}/32`)?.identity === db.identity,
    );
    await until(
      'n3 to map the web pod of n1',
      () => agents[2]!.dp.ipcache.data.get(`${eps[0]!.ipv4}/32`)?.identity === ids[0],
    );
    // A pod removed on n2 stops mapping on n1.
    const { manager, state } = agents[1]!.hive.get(EndpointsT);
    await manager.remove(manager.get(db.id)!);
    await state.flush();
    await until('n1 to forget the db pod', () => !agents[0]!.dp.ipcache.data.has(`${db.ipv4}/32`));
  });
});
