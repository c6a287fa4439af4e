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
import { type AgentConfig, defaultConfig } from '../../../src/agent/config.js';
import { configFromFlags } from '../../../src/agent/main.js';
import type { DatapathTargets } from '../../../src/endpoint/datapath-state.js';
import { cell, Hive } from '../../../src/hive/hive.js';
import { MAGLEV_FILLS, Maglev } from '../../../src/service/maglev.js';
import { type FakeDatapath, fakeDatapath } from './fake-targets.js';
import { agentFlags } from './flags.js';

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
async function startAgent(
  dp: FakeDatapath,
  dir: string,
  overrides: Partial<AgentConfig> = {},
): Promise<Hive<AgentCellExtras>> {
  const cfg = defaultConfig('t', 'n1', {
    runDir: dir,
    stateDir: dir,
    nodeIPs: [NODE_IP],
    podCidrV4: '10.210.0.0/24',
    ...overrides,
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

describe('services cell against in-memory LB maps', () => {
  const svc = (name: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.20',
      selector: { app: 'web' },
      ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
      ...extra,
    },
  });
  const slice = (ips: string[], terminating: string[] = []) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ port: 8080, protocol: 'TCP' }],
    endpoints: [
      ...ips.map((ip) => ({
        addresses: [ip],
        conditions: { ready: true, serving: true, terminating: false },
      })),
      ...terminating.map((ip) => ({
        addresses: [ip],
        conditions: { ready: false, serving: true, terminating: true },
      })),
    ],
  });
  const masters = (dp: FakeDatapath) =>
    [...dp.lb.services.data.values()].filter((r) => r.key.backendSlot === 0);

  it('a Service and its EndpointSlice become a master entry, slots and backends; removal clears them', async () => {
    const dp = fakeDatapath();
    const hive = await startAgent(dp, stateDir());
    const res = hive.get(ResourcesT);
    await res.setObject('Service', 'default', 'web', svc('web'));
    await res.setObject(
      'EndpointSlice',
      'default',
      'web-abc',
      slice(['10.210.0.11', '10.210.0.12'], ['10.210.0.13']),
    );
    const [m] = masters(dp).filter((r) => r.key.address === '10.96.0.20' && r.key.port === 80);
    assert.ok(m, 'master entry for 10.96.0.20:80');
    assert.equal(m.value.count, 2, 'two active backends');
    assert.equal(m.value.qcount, 1, 'one terminating backend');
    assert.equal(dp.lb.backends.data.size, 3);
    assert.ok(dp.lb.revNat.data.size >= 1);
    await res.setObject('Service', 'default', 'web', undefined);
    await res.setObject('EndpointSlice', 'default', 'web-abc', undefined);
    assert.equal(dp.lb.services.data.size, 0);
    assert.equal(dp.lb.backends.data.size, 0);
    assert.equal(dp.lb.revNat.data.size, 0);
  });

  it('--bpf-lb-maglev-fill chooses how Maglev tables are filled; status names it; a bad value is refused', async () => {
    const flags = agentFlags({ podCidr: '10.210.0.0/24', bpfLbAlgorithm: 'maglev' });
    assert.equal(configFromFlags(flags).maglevFill, 'stable');
    assert.equal(configFromFlags({ ...flags, bpfLbMaglevFill: 'permutation' }).maglevFill, 'permutation');
    assert.throws(
      () => configFromFlags({ ...flags, bpfLbMaglevFill: 'ring' }),
      /--bpf-lb-maglev-fill ring: expected stable or permutation/,
    );
    const ips = Array.from({ length: 12 }, (_, i) => `10.210.0.${20 + i}`);
    const backends = ips.map((address) => ({ address, port: 8080, protocol: 'TCP' as const }));
    for (const fill of MAGLEV_FILLS) {
      const dp = fakeDatapath();
      const hive = await startAgent(dp, stateDir(), {
        lbAlgorithm: 'maglev',
        maglevTableSize: 251,
        maglevFill: fill,
      });
      const res = hive.get(ResourcesT);
      await res.setObject('Service', 'default', 'web', svc('web', { externalIPs: ['192.0.2.10'] }));
      await res.setObject('EndpointSlice', 'default', 'web-abc', slice(ips));
      const status = Object.assign({}, ...hive.instances().map(({ inst }) => inst.status?.() ?? {}));
      const features: string[] = status.kubeProxyReplacement.features;
      assert.ok(
        features.includes(`Backend selection: Maglev (table size 251, ${fill} fill)`),
        features.join('; '),
      );
      // Every table written is the one this fill gives for the backends, whatever IDs they got.
      const idOf = new Map([...dp.lb.backends.data.values()].map((r) => [r.address, r.id]));
      const expected = new Maglev({ tableSize: 251, fill }).table(
        backends.map((b) => ({ ...b, id: idOf.get(b.address)! })),
      );
      const tables = [...dp.lb.maglev.data.values()];
      assert.ok(tables.length > 0);
      for (const t of tables) assert.deepEqual([...t.backendIds], [...expected]);
      await stopAgent(hive);
    }
  });

  it('a bad Service is refused naming the field, and nothing is stored or written', async () => {
    const dp = fakeDatapath();
    const hive = await startAgent(dp, stateDir());
    const res = hive.get(ResourcesT);
    await assert.rejects(
      res.setObject('Service', 'default', 'bad', svc('bad', { ports: [{ port: 80, protocol: 'SCTP' }] })),
      /spec\.ports\[0\]\.protocol/,
    );
    assert.equal(res.stores.services.list().length, 0);
    assert.equal(dp.lb.services.data.size, 0);
  });

  it('rev-NAT indexes and backend IDs survive a restart; leftovers of a deleted service are pruned', async () => {
    const dp = fakeDatapath();
    const dir = stateDir();
    let hive = await startAgent(dp, dir);
    let res = hive.get(ResourcesT);
    await res.setObject('Service', 'default', 'web', svc('web'));
    await res.setObject('EndpointSlice', 'default', 'web-abc', slice(['10.210.0.11', '10.210.0.12']));
    const before = JSON.stringify([...dp.lb.services.data.entries()].sort());
    const backendsBefore = JSON.stringify([...dp.lb.backends.data.entries()].sort());
    await stopAgent(hive);
    // While the agent is down, a stale frontend lingers in the maps.
    dp.lb.services.data.set('stale', {
      key: { family: 4, address: '10.96.9.9', port: 9, backendSlot: 0, protocol: 6, scope: 0 },
      value: { backendId: 0, count: 0, revNatIndex: 999, flags: 0, flags2: 0, qcount: 0 },
    });
    hive = await startAgent(dp, dir);
    res = hive.get(ResourcesT);
    assert.equal(JSON.stringify([...dp.lb.services.data.entries()].sort()), before, 'same rows, same IDs');
    assert.equal(JSON.stringify([...dp.lb.backends.data.entries()].sort()), backendsBefore);
  });
});
