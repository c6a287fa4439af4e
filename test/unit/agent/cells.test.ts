/**
 * The agent's cells (identity, resources, ipcache, node, policy, endpoints, datapath sync) run for
 * real against in-memory map targets: restarts prune what the maps hold beyond the desired state,
 * failed writes are retried, a prefix with two owners keeps the winning claim, and identity
 * references are recomputed from their owners on every restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { CONTROL_PLANE_CELLS } from '../../../src/agent/agent.js';
import {
  type AgentCellExtras,
  ConfigT,
  EndpointsT,
  IdentitiesT,
  LogT,
  PolicyT,
  ResourcesT,
  SyncT,
  TargetsT,
} from '../../../src/agent/cells/tokens.js';
import { defaultConfig } from '../../../src/agent/config.js';
import type { DatapathTargets } from '../../../src/endpoint/datapath-state.js';
import { cell, Hive } from '../../../src/hive/hive.js';
import { type FakeDatapath, fakeDatapath } from './fake-targets.js';

const NODE_IP = '192.168.50.2';
const dirs: string[] = [];
const hives: Hive<AgentCellExtras>[] = [];

afterEach(async () => {
  for (const h of hives.splice(0)) await h.stop().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cts-cells-'));
  dirs.push(d);
  return d;
}

/** The agent's cells minus the ones that need root (bpffs, router device, CNI, Hubble). */
async function startAgent(dp: FakeDatapath, dir: string): Promise<Hive<AgentCellExtras>> {
  const cfg = defaultConfig('t', 'n1', {
    runDir: dir,
    stateDir: dir,
    nodeIPs: [NODE_IP],
    podCidrV4: '10.210.0.0/24',
  });
  const targets = cell<DatapathTargets, AgentCellExtras>({
    name: 'fake-targets',
    needs: [],
    provides: TargetsT,
    build: () => ({ provide: dp }),
  });
  const cells = [...CONTROL_PLANE_CELLS, targets];
  const hive = new Hive<AgentCellExtras>(cells, [
    [ConfigT, cfg],
    [LogT, pino({ level: 'silent' })],
  ]);
  hives.push(hive);
  await hive.start();
  return hive;
}

async function stopAgent(hive: Hive<AgentCellExtras>): Promise<void> {
  hives.splice(hives.indexOf(hive), 1);
  await hive.stop();
}

let seq = 0;
async function addPod(
  hive: Hive<AgentCellExtras>,
  dp: FakeDatapath,
  name: string,
  labels: Record<string, string>,
) {
  await hive.get(ResourcesT).setPod('default', name, { labels, namedPorts: {} });
  const n = ++seq;
  const hostIfName = `lxc${name}`;
  dp.interfaces.add(hostIfName);
  const { manager, state, persist } = hive.get(EndpointsT);
  const ep = await manager.create({
    containerId: `c-${name}`,
    ifName: 'eth0',
    netns: `/var/run/netns/${name}`,
    podNamespace: 'default',
    podName: name,
    ipv4: `10.210.0.${10 + n}`,
    mac: '02:00:00:00:00:01',
    hostIfName,
    hostIfindex: 100 + n,
    hostMac: '02:00:00:00:00:02',
  });
  await state.flush();
  await persist();
  return ep;
}

const cidrPolicy = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'to-node', namespace: 'default' },
  spec: { endpointSelector: {}, egress: [{ toCIDR: [`${NODE_IP}/32`] }] },
};

async function until(what: string, test: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('agent cells against in-memory maps', () => {
  it('the node address keeps the host identity while a toCIDR policy for it comes and goes', async () => {
    const dp = fakeDatapath();
    const hive = await startAgent(dp, stateDir());
    await addPod(hive, dp, 'a', { app: 'a' });
    assert.equal(dp.ipcache.data.get(`${NODE_IP}/32`)?.identity, 1);
    await hive.get(PolicyT).importPolicies([cidrPolicy]);
    assert.equal(
      dp.ipcache.data.get(`${NODE_IP}/32`)?.identity,
      1,
      'the node claim outranks the CIDR identity',
    );
    await hive
      .get(PolicyT)
      .deletePolicies([{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'to-node' }]);
    assert.equal(
      dp.ipcache.data.get(`${NODE_IP}/32`)?.identity,
      1,
      'deleting the policy leaves the node entry',
    );
  });

  it('a restart prunes entries, policy slots and pinned programs of endpoints that are gone', async () => {
    const dp = fakeDatapath();
    const dir = stateDir();
    let hive = await startAgent(dp, dir);
    const a = await addPod(hive, dp, 'a', { app: 'a' });
    const b = await addPod(hive, dp, 'b', { app: 'b' });
    await stopAgent(hive);
    // While the agent is down: pod b is deleted (its veth goes), and junk is left in the maps.
    dp.interfaces.delete('lxcb');
    dp.ipcache.data.set('10.99.0.0/16', { identity: 16777300 });
    dp.lxc.data.set('10.210.0.200', { ifindex: 9, endpointId: 77, identity: 300, mac: 'x', nodeMac: 'y' });
    dp.policy.replace(77, []);
    dp.programs.attached.set(77, 300);

    hive = await startAgent(dp, dir);
    assert.deepEqual(
      hive
        .get(EndpointsT)
        .manager.list()
        .map((e) => e.id),
      [a.id],
    );
    assert.ok(dp.ipcache.data.has(`${a.ipv4}/32`));
    assert.ok(!dp.ipcache.data.has(`${b.ipv4}/32`), 'ipcache entry of the deleted endpoint pruned');
    assert.ok(!dp.ipcache.data.has('10.99.0.0/16'), 'stray ipcache entry pruned');
    assert.deepEqual([...dp.lxc.data.keys()], [a.ipv4]);
    assert.ok(!dp.policy.has(77), 'stray policy slot pruned');
    assert.ok(dp.policy.has(a.id));
    assert.deepEqual([...dp.programs.attached.keys()], [a.id], 'pinned programs of gone endpoints detached');
    assert.ok(!hive.get(IdentitiesT).allocator.lookup(b.identity), "the deleted pod's identity is freed");
  });

  it('a failed map write is retried until it lands, and shows in status meanwhile', async () => {
    const dp = fakeDatapath();
    const hive = await startAgent(dp, stateDir());
    dp.ipcache.failWrites = 2;
    const a = await addPod(hive, dp, 'a', { app: 'a' });
    const prefix = `${a.ipv4}/32`;
    const failing = hive
      .get(SyncT)
      .status()
      .find((s) => s.name === 'ipcache')!;
    assert.equal(failing.errors.length, 1);
    assert.equal(failing.errors[0]!.key, prefix);
    assert.match(failing.errors[0]!.error!, /injected/);
    assert.ok(!dp.ipcache.data.has(prefix));
    await until('the retried write', () => dp.ipcache.data.has(prefix));
    await until('the error to clear', () =>
      hive
        .get(SyncT)
        .status()
        .every((s) => s.errors.length === 0),
    );
    assert.equal(dp.ipcache.data.get(prefix)?.identity, a.identity);
  });

  it('identity references are recomputed from owners: after three restarts a deleted pod frees its identity', async () => {
    const dp = fakeDatapath();
    const dir = stateDir();
    let hive = await startAgent(dp, dir);
    const ep = await addPod(hive, dp, 'web', { app: 'web' });
    for (let i = 0; i < 3; i++) {
      await stopAgent(hive);
      hive = await startAgent(dp, dir);
      assert.equal(hive.get(IdentitiesT).allocator.refCount(ep.identity), 1, `refs after restart ${i + 1}`);
    }
    const { manager, state } = hive.get(EndpointsT);
    await manager.remove(manager.get(ep.id)!);
    await state.flush();
    assert.equal(hive.get(IdentitiesT).allocator.lookup(ep.identity), undefined);
  });

  it('programs are attached only once the policy map holds the endpoint', async () => {
    const dp = fakeDatapath();
    const hive = await startAgent(dp, stateDir());
    await hive.get(PolicyT).importPolicies([cidrPolicy]);
    await addPod(hive, dp, 'a', { app: 'a' });
    await addPod(hive, dp, 'b', { app: 'b' });
    assert.deepEqual(dp.programs.policyPresentAtAttach, [true, true]);
  });

  it('policy changes reach the maps incrementally and agree with the engine', async () => {
    const dp = fakeDatapath();
    const hive = await startAgent(dp, stateDir());
    const a = await addPod(hive, dp, 'a', { app: 'a' });
    const replacedBefore = dp.policy.replaced;
    await hive.get(PolicyT).importPolicies([cidrPolicy]);
    const want = hive.get(PolicyT).engine.endpointPolicy(a.id)!.state;
    const held = dp.policy.tries.get(a.id)!;
    assert.deepEqual([...held.keys()].sort(), [...want.keys()].sort());
    assert.equal(dp.policy.replaced, replacedBefore, 'a policy change is a diff, not a new trie');
  });
});
