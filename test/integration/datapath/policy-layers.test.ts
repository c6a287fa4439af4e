/**
 * Shared policy layers (bpf/lib/policy.h, src/datapath/maps/policy.ts): entries many endpoints hold
 * written once into a trie that each endpoint lists. First bpf_lxc.o under BPF_PROG_TEST_RUN with
 * layers set by hand (verdicts, drop reasons, match types and cookies as one trie would give them,
 * audit mode); then the agent's path (policy engine → endpoint datapath state → real maps) through
 * broad policy changes and a restart, where every endpoint's entries as the datapath applies them
 * must equal the engine's state.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  type DatapathEvent,
  DatapathLoader,
  DatapathMaps,
  DEFS,
  decodeEvent,
  type EndpointDatapathConfig,
} from '../../../src/datapath/index.js';
import { Program, type RingBufReader } from '../../../src/ebpf/index.js';
import {
  type DatapathTargets,
  EndpointDatapathState,
  type PolicyMapTarget,
} from '../../../src/endpoint/datapath-state.js';
import { IdentityAllocator } from '../../../src/identity/index.js';
import { type IpcacheInfo, IpcacheMetadata } from '../../../src/ipcache/ipcache.js';
import { podIdentityLabels } from '../../../src/labels/index.js';
import { PolicyEngine, PolicyRepository, parsePolicies, SelectorCache } from '../../../src/policy/index.js';
import { type MapEntry, makeKey, policyKeyString, sortedEntries } from '../../../src/policy/mapstate.js';
import { Reconciler } from '../../../src/statedb/reconciler.js';
import { cleanupStack, privateBpffs, sh, uniquePrefix } from '../../helpers/sys.js';
import { frame, TCP, tcp, udp } from './packets.js';

const WORLD = '192.0.2.7';
const LXC = {
  id: 300,
  identity: 3000,
  ipv4: '10.0.3.10',
  ipv6: 'fd00::3:10',
  mac: '02:00:00:00:03:0a',
  nodeMac: '02:00:00:00:03:01',
};
const AUDIT_ID = 301;

const entry = (
  identity: number,
  protocol: number,
  dport: number,
  prefixLen: number,
  deny: boolean,
  ruleCookie: number,
): MapEntry => ({
  key: makeKey(identity, 1, protocol, dport, prefixLen),
  entry: { deny, proxyPort: 0, ruleCookie },
});

const drops = (ev: DatapathEvent[]) => ev.flatMap((e) => (e.kind === 'drop' ? [e.event] : []));
const verdicts = (ev: DatapathEvent[]) => ev.flatMap((e) => (e.kind === 'policy-verdict' ? [e.event] : []));

describe('datapath: shared policy layers under BPF_PROG_TEST_RUN', () => {
  const cleanup = cleanupStack();
  let loader: DatapathLoader;
  let reader: RingBufReader;
  const progs: Record<string, Program> = {};
  let sport = 41000;

  /** A new TCP connection (or UDP datagram) from the endpoint to the world: rv, drop reason, verdict. */
  const send = (prog: 'lxc' | 'audit', proto: 6 | 17, dport: number) => {
    const l4 = proto === 6 ? tcp(sport++, dport, TCP.SYN) : udp(sport++, dport);
    const pkt = frame.v4(LXC.mac, LXC.nodeMac, LXC.ipv4, WORLD, proto, l4);
    const r = progs[prog]!.testRun({ data: pkt });
    const ev: DatapathEvent[] = [];
    reader.poll((rec) => ev.push(decodeEvent(rec)));
    const v = verdicts(ev)[0];
    return {
      rv: r.retval,
      drop: drops(ev)[0]?.hdr.subtype,
      verdict: v && { verdict: v.verdict, match: v.matchType, cookie: v.ruleCookie, audited: v.audited },
    };
  };
  const layerCount = () => [...loader.maps.raw('cilium_policy_layers').keys()].length;

  before(() => {
    const bpffs = privateBpffs(cleanup);
    const ns = uniquePrefix('dpL');
    sh('ip', ['netns', 'add', ns]);
    cleanup.add(() => void spawnSync('ip', ['netns', 'del', ns]));
    for (const [h, p] of [
      ['lxla', 'pola'],
      ['lxlb', 'polb'],
    ])
      sh('ip', ['-n', ns, 'link', 'add', h!, 'type', 'veth', 'peer', 'name', p!]);
    loader = DatapathLoader.open({ bpffs });
    cleanup.add(() => loader.close());
    const cfg = (id: number, iface: string, extra: Partial<EndpointDatapathConfig> = {}) => ({
      ...LXC,
      id,
      interface: iface,
      netns: `/run/netns/${ns}`,
      routerIpv4: '10.0.3.1',
      routerIpv6: 'fd00::3:1',
      monitorAggregation: 0,
      ...extra,
    });
    const a = loader.load(cfg(LXC.id, 'lxla'));
    cleanup.add(() => void loader.remove(LXC.id));
    const b = loader.load(cfg(AUDIT_ID, 'lxlb', { policyAuditMode: true }));
    cleanup.add(() => void loader.remove(AUDIT_ID));
    progs.lxc = Program.fromId(a.ingress.progId);
    progs.audit = Program.fromId(b.ingress.progId);
    cleanup.add(() => {
      for (const p of Object.values(progs)) p.close();
    });
    reader = loader.maps.events.reader();
    cleanup.add(() => reader.close());
    reader.poll(() => {});
  });
  after(async () => {
    await cleanup.run();
  });

  it('a deny in a layer wins over the own trie, reported with its own cookie and match type', () => {
    const policy = loader.maps.policy;
    policy.replace(LXC.id, [entry(0, 0, 0, 40, false, 5)], { ingressEnforced: false, egressEnforced: true });
    const ssh = Object.freeze([entry(DEFS.ID_WORLD, 6, 22, 64, true, 9)]);
    policy.setLayers(LXC.id, [ssh]);
    assert.deepEqual(send('lxc', 6, 22), {
      rv: DEFS.TC_ACT_SHOT,
      drop: DEFS.DROP_POLICY_DENY,
      verdict: { verdict: -DEFS.DROP_POLICY_DENY, match: DEFS.POLICY_MATCH_L3_L4, cookie: 9, audited: 0 },
    });
    assert.deepEqual(send('lxc', 6, 80), {
      rv: DEFS.TC_ACT_OK,
      drop: undefined,
      verdict: { verdict: 0, match: DEFS.POLICY_MATCH_ALL, cookie: 5, audited: 0 },
    });
    // bpf policy get: the layer's entry is listed with the endpoint's; the own trie holds one entry
    const shown = policy.dump(LXC.id)!.map((e) => `${policyKeyString(e.key)} ${e.entry.deny} ${e.flags}`);
    assert.deepEqual(shown.sort(), [
      `0/egress/0/0/40 false 0`,
      `2/egress/6/22/64 true ${DEFS.POLICY_F_DENY | DEFS.POLICY_F_L4}`,
    ]);
    assert.equal(policy.dump(LXC.id, { own: true })!.length, 1);

    // An identity-0 deny in a layer: any remote, by port (L4-only match).
    const dns = Object.freeze([entry(0, 17, 53, 64, true, 15)]);
    policy.setLayers(LXC.id, [ssh, dns]);
    assert.deepEqual(send('lxc', 17, 53).verdict, {
      verdict: -DEFS.DROP_POLICY_DENY,
      match: DEFS.POLICY_MATCH_L4_ONLY,
      cookie: 15,
      audited: 0,
    });
    assert.equal(send('lxc', 6, 22).drop, DEFS.DROP_POLICY_DENY, 'the first layer still applies');
    assert.equal(send('lxc', 17, 54).rv, DEFS.TC_ACT_OK);

    // The layer is dropped from the list: its trie goes once no endpoint lists it.
    const before = layerCount();
    policy.setLayers(LXC.id, [dns]);
    assert.equal(layerCount(), before - 1);
    assert.equal(send('lxc', 6, 22).rv, DEFS.TC_ACT_OK);
    policy.setLayers(LXC.id, []);
    assert.equal(layerCount(), before - 2);
    assert.equal(loader.maps.raw('cilium_policy_ep_layers').lookup(new Uint8Array([44, 1, 0, 0])), undefined);
  });

  it("an identity's allow in a layer applies where the own trie has nothing longer for it", () => {
    const policy = loader.maps.policy;
    policy.replace(LXC.id, [], { ingressEnforced: false, egressEnforced: true });
    assert.equal(send('lxc', 6, 443).drop, DEFS.DROP_POLICY, 'default deny');
    const world = Object.freeze([entry(DEFS.ID_WORLD, 0, 0, 40, false, 12)]);
    policy.setLayers(LXC.id, [world]);
    assert.deepEqual(send('lxc', 6, 443).verdict, {
      verdict: 0,
      match: DEFS.POLICY_MATCH_L3_ONLY,
      cookie: 12,
      audited: 0,
    });
    // The own trie's longer entries for the identity win where they match, as in one trie.
    policy.apply(
      LXC.id,
      {
        upserts: [entry(DEFS.ID_WORLD, 6, 443, 64, false, 13), entry(DEFS.ID_WORLD, 6, 8443, 64, true, 14)],
        deletes: [],
      },
      { ingressEnforced: false, egressEnforced: true },
    );
    assert.deepEqual(send('lxc', 6, 443).verdict?.cookie, 13);
    assert.deepEqual(send('lxc', 6, 443).verdict?.match, DEFS.POLICY_MATCH_L3_L4);
    assert.deepEqual(send('lxc', 6, 444).verdict?.cookie, 12);
    const denied = send('lxc', 6, 8443);
    assert.deepEqual(
      [denied.rv, denied.drop, denied.verdict?.cookie],
      [DEFS.TC_ACT_SHOT, DEFS.DROP_POLICY_DENY, 14],
    );
    // A layer of one identity's allows never admits another identity.
    policy.setLayers(LXC.id, [Object.freeze([entry(DEFS.ID_HOST, 0, 0, 40, false, 16)])]);
    assert.equal(send('lxc', 6, 444).drop, DEFS.DROP_POLICY);
    policy.setLayers(LXC.id, []);
  });

  it('refuses entries a layer cannot hold: an identity-0 allow, an allow narrower than the identity', () => {
    const policy = loader.maps.policy;
    assert.throws(
      () => policy.setLayers(LXC.id, [[entry(0, 0, 0, 40, false, 1)]]),
      /identity-wide allows only/,
    );
    assert.throws(
      () => policy.setLayers(LXC.id, [[entry(DEFS.ID_WORLD, 6, 80, 64, false, 1)]]),
      /identity-wide allows only/,
    );
    assert.deepEqual(policy.layersOf(LXC.id), []);
  });

  it('audit mode: a deny from a layer is reported as audited and the connection passes', () => {
    const policy = loader.maps.policy;
    policy.replace(AUDIT_ID, [entry(0, 0, 0, 40, false, 5)], {
      ingressEnforced: false,
      egressEnforced: true,
    });
    const ssh = Object.freeze([entry(DEFS.ID_WORLD, 6, 22, 64, true, 9)]);
    policy.setLayers(AUDIT_ID, [ssh]);
    policy.setLayers(LXC.id, [ssh]);
    const r = send('audit', 6, 22);
    assert.deepEqual(r, {
      rv: DEFS.TC_ACT_OK,
      drop: undefined,
      verdict: { verdict: -DEFS.DROP_POLICY_DENY, match: DEFS.POLICY_MATCH_L3_L4, cookie: 9, audited: 1 },
    });
    // Two endpoints list the same layer: one trie.
    const before = layerCount();
    policy.setLayers(AUDIT_ID, []);
    assert.equal(layerCount(), before, 'still listed by the other endpoint');
    policy.delete(LXC.id);
    assert.equal(layerCount(), before - 1);
  });
});

describe('shared policy layers through the agent path (engine → endpoint datapath state → maps)', () => {
  const cleanup = cleanupStack();
  let maps: DatapathMaps;
  const alloc = new IdentityAllocator();
  const cache = new SelectorCache();
  cache.attach(alloc);
  const repo = new PolicyRepository();
  const engine = new PolicyEngine(repo, cache);
  const ENDPOINTS = [1, 2, 3, 4, 5];
  const writers: EndpointDatapathState[] = [];

  /** The endpoint datapath state over real maps; only its policy reconciler is used here. */
  const writer = async (m: DatapathMaps, policy: PolicyMapTarget = m.policy) => {
    const noMap = { set: () => {}, delete: () => {}, keys: () => [] };
    const ipcache = new IpcacheMetadata();
    const targets = {
      ipcache: noMap,
      lxc: noMap,
      policy,
      programs: {},
      lb: {},
    } as unknown as DatapathTargets;
    const ops = { update: () => {}, delete: () => {}, prune: () => {} };
    const w = new EndpointDatapathState(
      ipcache,
      targets,
      new Reconciler<IpcacheInfo>('ipcache', ipcache.table, ops),
      {
        autoFlush: false,
        fullPassIntervalMs: 0,
      },
    );
    writers.push(w);
    await w.reconcilers[1]!.start();
    return w;
  };
  const apply = async (w: EndpointDatapathState) => {
    for (const u of engine.regenerate()) w.applyPolicy(u.endpointId, u.diff, u.policy);
    await w.flush();
    assert.deepEqual(
      w.status().flatMap((r) => r.errors),
      [],
    );
  };
  const show = (es: readonly { key: MapEntry['key']; entry: MapEntry['entry'] }[]) =>
    sortedEntries(new Map(es.map((e, i) => [i, { key: e.key, entry: e.entry }]))).map(
      (e) => `${policyKeyString(e.key)} ${e.entry.deny ? 'deny' : 'allow'} ${e.entry.ruleCookie}`,
    );
  /** Every endpoint's entries as the datapath applies them equal the engine's. */
  const assertMapsMatch = (m: DatapathMaps) => {
    for (const id of ENDPOINTS) {
      const want = show([...engine.endpointPolicy(id)!.state.values()]);
      assert.deepEqual(show(m.policy.dump(id)!), want, `endpoint ${id}`);
    }
  };
  const sharedIn = (m: DatapathMaps) => ENDPOINTS.filter((id) => m.policy.layersOf(id).length > 0).length;

  before(() => {
    maps = DatapathMaps.open(privateBpffs(cleanup));
    cleanup.add(() => maps.close());
    // 40 identities labelled role=bad in ns0, 40 others in ns1, and the endpoints' own.
    const pod = (namespace: string, labels: Record<string, string>) =>
      podIdentityLabels({ namespace, labels, namespaceLabels: { zone: namespace === 'ns1' ? 'z1' : 'z0' } });
    for (let i = 0; i < 40; i++) {
      alloc.allocate(pod('ns0', { app: `x${i}`, role: 'bad' }));
      alloc.allocate(pod('ns1', { app: `y${i}` }));
    }
    for (const id of ENDPOINTS) {
      const labels = pod('ns0', { app: `web${id}` });
      alloc.allocate(labels);
      engine.upsertEndpoint(id, { labels });
    }
  });
  after(async () => {
    for (const w of writers) await w.reconcilers[1]!.stop();
    await cleanup.run();
  });

  it('a clusterwide deny and a namespace-wide allow go into shared layers; the maps show what the engine holds', async () => {
    const w = await writer(maps);
    for (const id of ENDPOINTS) w.applyPolicy(id, { upserts: [], deletes: [] }, engine.endpointPolicy(id)!);
    await w.flush();
    assertMapsMatch(maps);

    repo.upsert(
      parsePolicies([
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumClusterwideNetworkPolicy',
          metadata: { name: 'deny-bad' },
          spec: {
            endpointSelector: {},
            ingress: [{ fromEntities: ['all'] }],
            ingressDeny: [{ fromEndpoints: [{ matchLabels: { role: 'bad' } }] }],
          },
        },
      ])[0]!,
    );
    await apply(w);
    assertMapsMatch(maps);
    assert.equal(sharedIn(maps), ENDPOINTS.length, 'every endpoint lists the deny layer');
    const layer = maps.policy.layersOf(1)[0]!;
    assert.equal(layer.length, 40);
    for (const id of ENDPOINTS) {
      assert.equal(maps.policy.layersOf(id)[0], layer, 'one list for all');
      assert.ok(
        maps.policy.dump(id, { own: true })!.every((e) => !e.entry.deny),
        'denies only in the layer',
      );
    }

    repo.upsert(
      parsePolicies([
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'from-ns1', namespace: 'ns0' },
          spec: {
            podSelector: {},
            ingress: [{ from: [{ namespaceSelector: { matchLabels: { zone: 'z1' } } }] }],
          },
        },
      ])[0]!,
    );
    await apply(w);
    assertMapsMatch(maps);
    // The allows from ns1 that no deny covers are shared too (identity-wide allows).
    assert.ok(
      maps.policy.layersOf(1).some((l) => l.some((e) => !e.entry.deny)),
      'an allow layer',
    );

    repo.delete({ kind: 'CiliumClusterwideNetworkPolicy', namespace: '', name: 'deny-bad' });
    await apply(w);
    assertMapsMatch(maps);
    assert.ok(
      maps.policy.dump(1)!.every((e) => !e.entry.deny),
      'the denies are gone',
    );

    // An endpoint removed: its trie is kept for the next endpoint, empty, without layers.
    engine.removeEndpoint(5);
    w.removePolicy(5);
    await w.flush();
    assert.deepEqual(maps.policy.dump(5), []);
    assert.deepEqual(maps.policy.layersOf(5), []);
    const u = engine.upsertEndpoint(5, {
      labels: podIdentityLabels({
        namespace: 'ns0',
        labels: { app: 'web5' },
        namespaceLabels: { zone: 'z0' },
      }),
    });
    w.applyPolicy(5, u.diff, u.policy);
    await w.flush();
    assertMapsMatch(maps);
  });

  it('a layer that cannot be written leaves its entries in the own tries', async () => {
    await writers[0]!.reconcilers[1]!.stop();
    // The real maps, with every new layer refused (as when cilium_policy_layers is full).
    const p = maps.policy;
    const refusing: PolicyMapTarget = {
      endpoints: () => p.endpoints(),
      has: (id, opts) => p.has(id, opts),
      replace: (id, entries, enf) => p.replace(id, entries, enf),
      apply: (id, diff, enf) => p.apply(id, diff, enf),
      dump: (id, opts) => p.dump(id, opts),
      delete: (id) => p.delete(id),
      layersOf: (id) => p.layersOf(id),
      setLayers: (id, lists) => {
        if (lists.some((l) => !p.layersOf(id).includes(l))) throw new Error('no room for a layer');
        p.setLayers(id, lists);
      },
    };
    const w = await writer(maps, refusing);
    for (const id of ENDPOINTS) w.applyPolicy(id, { upserts: [], deletes: [] }, engine.endpointPolicy(id)!);
    await w.flush();
    repo.upsert(
      parsePolicies([
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumClusterwideNetworkPolicy',
          metadata: { name: 'deny-bad-full' },
          spec: {
            endpointSelector: {},
            ingressDeny: [{ fromEndpoints: [{ matchLabels: { role: 'bad' } }] }],
          },
        },
      ])[0]!,
    );
    await apply(w);
    assertMapsMatch(maps);
    assert.equal(sharedIn(maps), 0);
    assert.ok(
      maps.policy.dump(1, { own: true })!.some((e) => e.entry.deny),
      'the denies in the own trie',
    );
    repo.delete({ kind: 'CiliumClusterwideNetworkPolicy', namespace: '', name: 'deny-bad-full' });
    await apply(w);
    assertMapsMatch(maps);
    await w.reconcilers[1]!.stop();
    writers.splice(writers.indexOf(w), 1);
    await writers[0]!.reconcilers[1]!.start();
  });

  it('a restarted writer rewrites every endpoint from its state and removes the layers it does not use', async () => {
    repo.upsert(
      parsePolicies([
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumClusterwideNetworkPolicy',
          metadata: { name: 'deny-bad-again' },
          spec: {
            endpointSelector: {},
            ingressDeny: [{ fromEndpoints: [{ matchLabels: { role: 'bad' } }] }],
          },
        },
      ])[0]!,
    );
    await apply(writers[0]!);
    assertMapsMatch(maps);
    await writers[0]!.reconcilers[1]!.stop();
    // Its spare layer tries are refilled after a write (setImmediate): let that happen first.
    await new Promise((r) => setImmediate(r));
    // A new process: same pinned maps, the engine's states handed over as at a restore.
    const again = DatapathMaps.open(maps.pinDir);
    cleanup.add(() => again.close());
    const w = await writer(again);
    for (const id of ENDPOINTS) {
      const p = engine.endpointPolicy(id)!;
      w.syncPolicy(id, [...p.state.values()], p);
    }
    await w.reconcilers[1]!.fullPass();
    assert.deepEqual(
      w.status().flatMap((r) => r.errors),
      [],
    );
    assertMapsMatch(again);
    // The old process's layer is listed by no endpoint any more: only the new process's spares remain.
    const layers = [...again.raw('cilium_policy_layers').keys()].length;
    assert.equal(layers, again.policy.spareLayers);
  });
});
