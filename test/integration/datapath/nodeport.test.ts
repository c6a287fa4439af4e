/**
 * tc-level load balancing with real connections, on a topology of namespaces built here:
 *
 *   world (client, 2 addresses) ── node eth0 (bpf_host: cil_from_netdev) ── pods a b c (backends), k (client)
 *     └── remote (a backend on "another node", reached through the world)
 *
 * Pods are plumbed by the CNI's setupEndpoint and run bpf_lxc; the node's external device runs
 * bpf_host, attached by HostDeviceLoader; services are written with the LB map wrappers. Servers name
 * themselves and report the source they see; clients run in the world and in pod k (no socket-LB
 * anywhere: every translation here is per packet).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setupEndpoint, setupNodeRouter } from '../../../src/cni/endpoint-plumbing.js';
import {
  be32Bytes,
  type DatapathEvent,
  DatapathLoader,
  DatapathMaps,
  DEFS,
  decodeEvent,
  type EndpointDatapathConfig,
  formatIp,
  HostDeviceError,
  HostDeviceLoader,
  type LbFrontend,
  type LbService,
  maglevSlot,
  type NodeDatapathConfig,
} from '../../../src/datapath/index.js';
import { queryTcx, type RingBufReader } from '../../../src/ebpf/index.js';
import { type MapEntry, makeKey } from '../../../src/policy/mapstate.js';
import { cleanupStack, privateBpffs, sh, uniquePrefix } from '../../helpers/sys.js';
import { type Conn, NetnsClient, startNamedServer } from './netns-client.js';

const TCP = DEFS.CIL_IPPROTO_TCP;
const UDP = DEFS.CIL_IPPROTO_UDP;
const BACKEND_TCP = 8080;
const BACKEND_UDP = 5353;
const F = DEFS;
const NODEPORT = F.SVC_FLAG_NODEPORT | F.SVC_FLAG_ROUTABLE;
const NODE: NodeDatapathConfig = { lbHashSeed: 0x5eed1234 };

function allow(identity: number, egress: 0 | 1, proto: number, port: number): MapEntry {
  return {
    key: makeKey(identity, egress, proto, port, port ? 64 : proto ? 48 : 40),
    entry: { deny: false, proxyPort: 0, ruleCookie: 7 },
  };
}

function tally(cs: Conn[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const c of cs) if (c.server) m.set(c.server, (m.get(c.server) ?? 0) + 1);
  return m;
}

describe('privileged: NodePort and per-packet service translation through bpf_host and bpf_lxc', () => {
  const cleanup = cleanupStack();
  const p = uniquePrefix('np');
  const ns = { world: `${p}w`, node: `${p}n`, remote: `${p}r` };
  const path = (n: string) => `/run/netns/${n}`;
  const u = 100 + (randomBytes(1)[0]! % 100);
  const o = 100 + (randomBytes(1)[0]! % 100);
  const NODE_IP = `192.168.${u}.1`;
  const NODE_IP2 = `192.168.${u}.2`;
  const WORLD_IP = `192.168.${u}.100`;
  const WORLD_IP2 = `192.168.${u}.101`;
  const LB_IP = `10.${o}.200.1`;
  const REMOTE_IP = `172.31.${u}.2`;
  const VIP = `10.96.${o}.10`;
  const ROUTER = `10.${o}.0.1`;
  const pods: Record<'a' | 'b' | 'c' | 'k', EndpointDatapathConfig> = {} as never;
  const POD = { a: [11, 5001, 10], b: [12, 5002, 11], c: [13, 5003, 12], k: [19, 5009, 20] } as const;
  /** backend IDs: TCP a b c = 1 2 3, the remote one 4; UDP a b c = 11 12 13 */
  const BE = { a: 1, b: 2, c: 3, remote: 4 } as const;
  let maps: DatapathMaps;
  let loader: DatapathLoader;
  let host: HostDeviceLoader;
  let world: NetnsClient;
  let podK: NetnsClient;
  let reader: RingBufReader;

  const ip = (x: keyof typeof POD) => pods[x].ipv4!;
  const nameOf = (id: number) =>
    id === BE.remote ? REMOTE_IP : ip((['a', 'b', 'c'] as const)[(id % 10) - 1]!);
  const events = (): DatapathEvent[] => {
    const ev: DatapathEvent[] = [];
    reader.poll((r) => ev.push(decodeEvent(r)));
    return ev;
  };
  function service(rev: number, fe: LbFrontend, s: Omit<LbService, 'revNatIndex'>): void {
    maps.lb.upsertRevNat({ revNatIndex: rev, address: fe.address, port: fe.port });
    maps.lb.upsertService(fe, { ...s, revNatIndex: rev });
  }

  before(async () => {
    const bpffs = privateBpffs(cleanup);
    for (const n of [ns.world, ns.node, ns.remote, ...['a', 'b', 'c', 'k'].map((x) => `${p}${x}`)]) {
      sh('ip', ['netns', 'add', n]);
      cleanup.add(() => void spawnSync('ip', ['netns', 'del', n]));
      sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
    }
    // world <-> node: the node's external device is its eth0
    sh('ip', [
      'link',
      'add',
      'eth0',
      'netns',
      ns.node,
      'type',
      'veth',
      'peer',
      'name',
      'wn',
      'netns',
      ns.world,
    ]);
    sh('ip', [
      'link',
      'add',
      'r0',
      'netns',
      ns.remote,
      'type',
      'veth',
      'peer',
      'name',
      'wr',
      'netns',
      ns.world,
    ]);
    const batch = (n: string, lines: string[]) => sh('ip', ['-n', n, '-batch', '-'], `${lines.join('\n')}\n`);
    batch(ns.world, [
      `addr add ${WORLD_IP}/24 dev wn`,
      `addr add ${WORLD_IP2}/24 dev wn`,
      'link set wn up',
      `addr add 172.31.${u}.1/24 dev wr`,
      'link set wr up',
      `route add ${LB_IP}/32 via ${NODE_IP}`,
    ]);
    batch(ns.node, [
      `addr add ${NODE_IP}/24 dev eth0`,
      `addr add ${NODE_IP2}/24 dev eth0`,
      'link set eth0 up',
      `route add default via ${WORLD_IP} dev eth0`,
    ]);
    batch(ns.remote, [
      `addr add ${REMOTE_IP}/24 dev r0`,
      'link set r0 up',
      `route add default via 172.31.${u}.1`,
    ]);
    for (const n of [ns.world, ns.node])
      sh('nsenter', [`--net=${path(n)}`, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
    // The tests that pick their client ports (41000-43999) never meet a port the kernel chose for
    // another connection of the world (EADDRINUSE).
    sh('nsenter', [
      `--net=${path(ns.world)}`,
      'sh',
      '-c',
      'echo 50000 60999 > /proc/sys/net/ipv4/ip_local_port_range',
    ]);
    await setupNodeRouter({ nodeNetns: path(ns.node), ipv4Router: ROUTER });
    for (const x of ['a', 'b', 'c', 'k'] as const) {
      const [id, identity, host4] = POD[x];
      const r = await setupEndpoint({
        nodeNetns: path(ns.node),
        podNetns: path(`${p}${x}`),
        ifName: 'eth0',
        hostIfName: `${p}${x.toUpperCase()}`,
        ipv4: { ip: `10.${o}.0.${host4}`, router: ROUTER },
      });
      pods[x] = {
        id,
        identity,
        ipv4: `10.${o}.0.${host4}`,
        mac: r.podMac,
        nodeMac: r.hostMac,
        interface: r.hostIfName,
        netns: path(ns.node),
        routerIpv4: ROUTER,
      };
    }

    maps = DatapathMaps.open(bpffs);
    cleanup.add(() => maps.close());
    loader = DatapathLoader.open({ bpffs, maps, node: NODE });
    cleanup.add(() => loader.close());
    for (const x of ['a', 'b', 'c', 'k'] as const) {
      loader.writeEndpoint(pods[x]);
      loader.load(pods[x]);
      cleanup.add(() => void loader.remove(pods[x].id));
    }
    for (const a of [NODE_IP, NODE_IP2, ROUTER]) maps.ipcache.upsert(a, { identity: DEFS.ID_HOST });
    host = HostDeviceLoader.open({ bpffs, maps, node: NODE });
    cleanup.add(() => host.close());
    cleanup.add(() => void host.detach('eth0'));
    const att = host.attach({ device: 'eth0', netns: path(ns.node), nodeIpv4: NODE_IP });
    assert.equal(att.replaced, false);

    for (const x of ['a', 'b', 'c'] as const) {
      await startNamedServer(path(`${p}${x}`), ip(x), BACKEND_TCP, BACKEND_UDP, cleanup);
      maps.lb.upsertBackend({ id: BE[x], address: ip(x), port: BACKEND_TCP, protocol: TCP, state: 0 });
      maps.lb.upsertBackend({ id: BE[x] + 10, address: ip(x), port: BACKEND_UDP, protocol: UDP, state: 0 });
    }
    await startNamedServer(path(ns.remote), REMOTE_IP, BACKEND_TCP, BACKEND_UDP, cleanup);
    maps.lb.upsertBackend({ id: BE.remote, address: REMOTE_IP, port: BACKEND_TCP, protocol: TCP, state: 0 });

    world = NetnsClient.start(path(ns.world), cleanup);
    podK = NetnsClient.start(path(`${p}k`), cleanup);
    reader = maps.events.reader();
    cleanup.add(() => reader.close());
  });
  after(async () => {
    await cleanup.run();
  });

  it('NodePort from the world reaches every backend (spread), replies come from the frontend, a local backend sees the client', async () => {
    service(1, { address: NODE_IP, port: 30080, protocol: TCP }, { backends: [1, 2, 3], flags: NODEPORT });
    events();
    const conns = await world.tcp(NODE_IP, 30080, { n: 90 });
    assert.deepEqual(
      conns.filter((c) => c.error),
      [],
    );
    const counts = tally(conns);
    assert.deepEqual([...counts.keys()].sort(), [ip('a'), ip('b'), ip('c')].sort());
    const chi2 = [...counts.values()].reduce((s, n) => s + (n - 30) ** 2 / 30, 0);
    assert.ok(chi2 < 13.8, `chi-square ${chi2.toFixed(2)} over ${JSON.stringify([...counts])}`);
    // as upstream: no SNAT to a local backend, its replies come back through this node anyway
    for (const c of conns) assert.equal(c.seenAs, `${WORLD_IP}:${c.localPort}`);

    // conntrack: one service entry per connection (the tuple as sent) naming its backend
    const svc = maps.conntrack.list({ family: 4 }).filter((e) => e.side === 'service' && e.dport === 30080);
    assert.equal(svc.length, 90);
    assert.ok(svc.every((e) => e.src === WORLD_IP && e.dst === NODE_IP && e.revNatIndex === 1));
    assert.deepEqual([...new Set(svc.map((e) => e.backendId))].sort(), [1, 2, 3]);
    // the backends' ingress entries carry the service and the NodePort flag
    const ingress = maps.conntrack
      .list({ family: 4 })
      .filter((e) => e.side === 'ingress' && e.src === WORLD_IP && e.dport === BACKEND_TCP);
    assert.equal(ingress.length, 90);
    assert.ok(ingress.every((e) => e.revNatIndex === 1 && e.flags & DEFS.CT_F_NODEPORT));
    // NAT: a reverse entry per connection, keyed by the client (no forward entry without SNAT)
    const nat = maps.nodeportNat.list().filter((e) => e.revNatIndex === 1);
    assert.equal(nat.length, 90);
    assert.ok(
      nat.every(
        (e) =>
          e.direction === 'reverse' &&
          e.tuple.src === WORLD_IP &&
          e.to.address === WORLD_IP &&
          e.to.port === e.tuple.sport &&
          e.service.address === NODE_IP &&
          e.service.port === 30080 &&
          e.ifindex > 0,
      ),
    );

    // events: the forward delivery is traced into the backend with the frontend it was sent to,
    // the reply out of the node with the backend it came from
    const ev = events();
    const toLxc = ev.flatMap((e) =>
      e.kind === 'trace' && e.event.hdr.subtype === DEFS.TRACE_TO_LXC && e.event.revNatIndex === 1
        ? [e.event]
        : [],
    );
    assert.ok(toLxc.length >= 90, `TO_LXC traces with the service: ${toLxc.length}`);
    assert.ok(toLxc.every((t) => t.origPort === 30080 && formatIp(4, be32Bytes(t.origIp4)) === NODE_IP));
    assert.ok(
      toLxc.every((t) => t.srcLabel === DEFS.ID_WORLD && [1, 2, 3].some((x) => t.hdr.source === 10 + x)),
    );
    const out = ev.flatMap((e) =>
      e.kind === 'trace' && e.event.hdr.subtype === DEFS.TRACE_TO_NETWORK && e.event.revNatIndex === 1
        ? [e.event]
        : [],
    );
    assert.ok(out.length >= 90, `TO_NETWORK traces of replies: ${out.length}`);
    assert.ok(out.every((t) => t.origPort === BACKEND_TCP && t.reason === DEFS.TRACE_REASON_CT_REPLY));
  });

  it('with snatLocalBackends a local backend sees the node (SNAT); a closed connection frees its port after 10 s, or later when the backend closed first (TIME_WAIT)', async () => {
    host.attach({ device: 'eth0', netns: path(ns.node), nodeIpv4: NODE_IP, snatLocalBackends: true });
    try {
      service(15, { address: NODE_IP, port: 30092, protocol: TCP }, { backends: [1, 2, 3], flags: NODEPORT });
      const conns = await world.tcp(NODE_IP, 30092, { n: 60 });
      assert.equal(tally(conns).size, 3);
      for (const c of conns) {
        const [addr, port] = c.seenAs!.split(':');
        assert.equal(addr, NODE_IP, 'the backend sees the node address');
        assert.ok(Number(port) >= DEFS.NODEPORT_SNAT_PORT_MIN && Number(port) <= DEFS.NODEPORT_SNAT_PORT_MAX);
      }
      const ingress = maps.conntrack
        .list({ family: 4 })
        .filter((e) => e.side === 'ingress' && e.src === NODE_IP && e.dport === BACKEND_TCP);
      assert.equal(ingress.length, 60);
      assert.ok(ingress.every((e) => e.revNatIndex === 15 && e.flags & DEFS.CT_F_NODEPORT));
      const nat = () => maps.nodeportNat.list().filter((e) => e.revNatIndex === 15);
      const fwd = nat().filter((e) => e.direction === 'forward');
      const rev = nat().filter((e) => e.direction === 'reverse');
      assert.equal(fwd.length, 60);
      assert.equal(rev.length, 60);
      assert.ok(
        fwd.every((e) => e.tuple.src === WORLD_IP && e.tuple.dport === 30092 && e.to.address === NODE_IP),
      );
      assert.ok(
        rev.every((e) => e.tuple.src === NODE_IP && e.to.address === WORLD_IP && e.service.port === 30092),
      );
      // the client closed first: the ports are free again within CT_CLOSE_TIMEOUT
      const longest = () =>
        Math.max(
          ...nat()
            .filter((e) => e.direction === 'reverse')
            .map((e) => e.expiresInS),
        );
      for (let i = 0; i < 40 && longest() > 10; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(longest() <= 10, `closed connections' NAT lifetimes: up to ${longest()} s`);

      // the backend closes first: it keeps the tuple in TIME_WAIT, so the port stays taken
      // longer; the same client port right away gets through (its own connection's tuple again)
      const port = 43000 + (randomBytes(2).readUInt16BE() % 1000);
      for (let i = 0; i < 3; i++) {
        const [c] = await world.tcp(NODE_IP, 30092, { localPort: port, serverCloses: true });
        assert.ok(c?.server, `connection ${i} from port ${port}: ${JSON.stringify(c)}`);
      }
      const held = () => nat().find((e) => e.direction === 'reverse' && e.to.port === port)?.expiresInS ?? 0;
      for (let i = 0; i < 40 && held() <= 10; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(held() > 10 && held() <= DEFS.NODEPORT_TIME_WAIT, `held for ${held()} s`);
    } finally {
      host.attach({ device: 'eth0', netns: path(ns.node), nodeIpv4: NODE_IP });
    }
  });

  it('the NodePort wildcard (address 0) answers on any address of the node', async () => {
    service(
      2,
      { address: '0.0.0.0', port: 30081, protocol: TCP },
      { backends: [1], flags: F.SVC_FLAG_NODEPORT },
    );
    for (const addr of [NODE_IP, NODE_IP2]) {
      const [c] = await world.tcp(addr, 30081);
      assert.equal(c?.server, ip('a'), `through ${addr}: ${JSON.stringify(c)}`);
    }
    const rev = maps.nodeportNat.list().filter((e) => e.revNatIndex === 2);
    assert.deepEqual(
      rev.map((e) => e.service.address).sort(),
      [NODE_IP, NODE_IP2],
      'replies from the address used',
    );
  });

  it('externalTrafficPolicy: Local keeps the client address', async () => {
    service(
      3,
      { address: NODE_IP, port: 30083, protocol: TCP },
      { backends: [2], flags: NODEPORT | F.SVC_FLAG_EXT_LOCAL_SCOPE },
    );
    const conns = await world.tcp(NODE_IP, 30083, { n: 5 });
    for (const c of conns) {
      assert.equal(c.server, ip('b'));
      assert.equal(c.seenAs, `${WORLD_IP}:${c.localPort}`, 'the backend sees the client itself');
    }
    assert.ok(!maps.nodeportNat.list().some((e) => e.revNatIndex === 3 && e.direction === 'forward'));
  });

  it('loadBalancerSourceRanges: a client outside the ranges is dropped (177) at the node; one inside gets through', async () => {
    service(
      4,
      { address: LB_IP, port: 80, protocol: TCP },
      { backends: [1, 2, 3], flags: F.SVC_FLAG_LOADBALANCER | F.SVC_FLAG_ROUTABLE | F.SVC_FLAG_SOURCE_RANGE },
    );
    maps.lb.addSourceRange({ revNatIndex: 4, address: WORLD_IP, prefixLen: 32 });
    events();
    const [ok] = await world.tcp(LB_IP, 80, { localAddress: WORLD_IP });
    assert.ok(ok?.server, JSON.stringify(ok));
    const [denied] = await world.tcp(LB_IP, 80, { localAddress: WORLD_IP2, timeoutMs: 700 });
    assert.equal(denied?.error, 'TIMEOUT');
    const drop = events().find(
      (e) => e.kind === 'drop' && e.event.hdr.subtype === DEFS.DROP_NOT_IN_SRC_RANGE,
    );
    assert.ok(drop?.kind === 'drop', 'drop event 177');
    assert.equal(drop.event.revNatIndex, 4);
    assert.equal(drop.event.file, DEFS.DROP_FILE_HOST);
    assert.equal(drop.event.srcLabel, DEFS.ID_WORLD);
    maps.lb.addSourceRange({ revNatIndex: 4, address: WORLD_IP, prefixLen: 31 });
    const [now] = await world.tcp(LB_IP, 80, { localAddress: WORLD_IP2 });
    assert.ok(now?.server, 'allowed once a range holds it');
  });

  it('a service without backends: dropped with DROP_NO_SERVICE (158) and an event naming the service', async () => {
    service(5, { address: NODE_IP, port: 30084, protocol: TCP }, { backends: [], flags: NODEPORT });
    events();
    const [c] = await world.tcp(NODE_IP, 30084, { timeoutMs: 700 });
    assert.equal(c?.error, 'TIMEOUT');
    const drops = events().flatMap((e) => (e.kind === 'drop' ? [e.event] : []));
    const d = drops.find((x) => x.hdr.subtype === DEFS.DROP_NO_SERVICE);
    assert.ok(d, `drop 158 (got ${drops.map((x) => x.hdr.subtype)})`);
    assert.equal(d.revNatIndex, 5);
    assert.equal(d.file, DEFS.DROP_FILE_HOST);
    const m = maps.metrics.list().find((x) => x.reason === DEFS.DROP_NO_SERVICE && x.direction === 'ingress');
    assert.ok(m && m.packets >= 1n, 'drop metric');
  });

  it('UDP NodePort: replies come from the frontend', async () => {
    service(6, { address: NODE_IP, port: 30085, protocol: UDP }, { backends: [11, 12, 13], flags: NODEPORT });
    const rs = await world.udp(NODE_IP, 30085, { n: 24 });
    assert.deepEqual(
      rs.filter((r) => r.error),
      [],
    );
    assert.ok(rs.every((r) => r.from === `${NODE_IP}:30085`));
    assert.ok(new Set(rs.map((r) => r.server)).size >= 2, 'spread over backends');
  });

  it('an established connection keeps its backend when the backends change; a terminating backend keeps its connection', async () => {
    service(7, { address: NODE_IP, port: 30086, protocol: TCP }, { backends: [1, 2, 3], flags: NODEPORT });
    const held = await world.open('h', NODE_IP, 30086);
    assert.ok(held.server, JSON.stringify(held));
    const x = [1, 2, 3].find((id) => nameOf(id) === held.server)!;
    const [y, z] = [1, 2, 3].filter((id) => id !== x) as [number, number];
    assert.equal((await world.send('h', 'one')).server, held.server);

    // another backend leaves: the held connection stays, new ones never reach it
    maps.lb.upsertService(
      { address: NODE_IP, port: 30086, protocol: TCP },
      { revNatIndex: 7, backends: [x, z], flags: NODEPORT },
    );
    assert.equal((await world.send('h', 'two')).server, held.server);
    const after = await world.tcp(NODE_IP, 30086, { n: 30 });
    assert.ok(after.every((c) => c.server && c.server !== nameOf(y)));

    // the held backend terminates: slotted after the count, state terminating
    maps.lb.upsertBackend({
      id: x,
      address: nameOf(x),
      port: BACKEND_TCP,
      protocol: TCP,
      state: DEFS.BE_STATE_TERMINATING,
    });
    maps.lb.upsertService(
      { address: NODE_IP, port: 30086, protocol: TCP },
      { revNatIndex: 7, backends: [z, x], count: 1, flags: NODEPORT },
    );
    for (let i = 0; i < 5; i++) assert.equal((await world.send('h', `t${i}`)).server, held.server);
    const fresh = await world.tcp(NODE_IP, 30086, { n: 20 });
    assert.ok(
      fresh.every((c) => c.server === nameOf(z)),
      'new connections only to the active backend',
    );
    await world.close('h');
    maps.lb.upsertBackend({ id: x, address: nameOf(x), port: BACKEND_TCP, protocol: TCP, state: 0 });
  });

  it('Maglev: each flow lands on the backend the table holds at the agent-computable flow hash', async () => {
    const m = maps.lb.maglevTableSize;
    const table = new Uint32Array(m);
    for (let i = 0; i < m; i++) table[i] = [1, 2, 3][(i * 7919) % 3]!;
    service(
      8,
      { address: NODE_IP, port: 30087, protocol: TCP },
      {
        backends: [1, 2, 3],
        flags: NODEPORT,
        algorithm: DEFS.LB_ALGORITHM_MAGLEV,
      },
    );
    maps.lb.setMaglev({ revNatIndex: 8, family: 4, backendIds: table });
    const base = 41000 + (randomBytes(2).readUInt16BE() % 1000);
    const conns = await world.tcp(NODE_IP, 30087, { n: 30, localPort: base });
    for (const [i, c] of conns.entries()) {
      const slot = maglevSlot(
        { saddr: WORLD_IP, sport: base + i, dport: 30087, protocol: TCP },
        NODE.lbHashSeed!,
        m,
      );
      assert.equal(c.server, nameOf(table[slot]!), `connection from port ${base + i}: ${JSON.stringify(c)}`);
    }
    assert.ok(tally(conns).size >= 2);
  });

  it('session affinity: one client, one backend (Maglev hashes the client only)', async () => {
    const m = maps.lb.maglevTableSize;
    const table = new Uint32Array(m);
    for (let i = 0; i < m; i++) table[i] = [1, 2, 3][i % 3]!;
    service(
      9,
      { address: NODE_IP, port: 30089, protocol: TCP },
      {
        backends: [1, 2, 3],
        flags: NODEPORT | F.SVC_FLAG_AFFINITY,
        affinityTimeout: 60,
        algorithm: DEFS.LB_ALGORITHM_MAGLEV,
      },
    );
    maps.lb.setMaglev({ revNatIndex: 9, family: 4, backendIds: table });
    for (const b of [1, 2, 3]) maps.lb.addAffinityMatch({ backendId: b, revNatIndex: 9 });
    const conns = await world.tcp(NODE_IP, 30089, { n: 20 });
    const slot = maglevSlot(
      { saddr: WORLD_IP, sport: 0, dport: 30089, protocol: TCP },
      NODE.lbHashSeed!,
      m,
      true,
    );
    assert.deepEqual([...tally(conns).keys()], [nameOf(table[slot]!)]);
    const aff = maps.lb.listAffinity().filter((a) => a.revNatIndex === 9);
    assert.deepEqual(
      aff.map((a) => [a.client, a.backendId]),
      [[{ ip: WORLD_IP }, table[slot]]],
    );
  });

  it('a backend on another node: out of the external device, SNATed, and its replies back to the client', async () => {
    service(11, { address: NODE_IP, port: 30088, protocol: TCP }, { backends: [BE.remote], flags: NODEPORT });
    events();
    const conns = await world.tcp(NODE_IP, 30088, { n: 5 });
    for (const c of conns) {
      assert.equal(c.server, REMOTE_IP, JSON.stringify(c));
      assert.equal(c.seenAs?.split(':')[0], NODE_IP);
    }
    const out = events().flatMap((e) =>
      e.kind === 'trace' && e.event.hdr.subtype === DEFS.TRACE_TO_NETWORK && e.event.revNatIndex === 11
        ? [e.event]
        : [],
    );
    assert.ok(
      out.some((t) => t.origPort === 30088),
      'forward traced with the frontend',
    );
    assert.ok(
      out.some((t) => t.origPort === BACKEND_TCP && t.reason === DEFS.TRACE_REASON_CT_REPLY),
      'reply traced',
    );
  });

  it('the backend pod’s ingress policy applies to NodePort connections, against the client’s identity', async () => {
    service(12, { address: NODE_IP, port: 30090, protocol: TCP }, { backends: [3], flags: NODEPORT });
    const enf = { ingressEnforced: true, egressEnforced: false };
    maps.policy.replace(pods.c.id, [allow(pods.k.identity, 0, TCP, BACKEND_TCP), allow(0, 1, 0, 0)], enf);
    events();
    const [c] = await world.tcp(NODE_IP, 30090, { timeoutMs: 700 });
    assert.equal(c?.error, 'TIMEOUT');
    const ev = events();
    const v = ev.find((e) => e.kind === 'policy-verdict');
    assert.ok(v?.kind === 'policy-verdict', 'a verdict');
    assert.equal(v.event.hdr.source, pods.c.id);
    assert.equal(v.event.remoteLabel, DEFS.ID_WORLD);
    assert.equal(v.event.verdict, -DEFS.DROP_POLICY);
    assert.equal(v.event.dstPort, BACKEND_TCP);
    maps.policy.replace(pods.c.id, [allow(DEFS.ID_WORLD, 0, TCP, BACKEND_TCP), allow(0, 1, 0, 0)], enf);
    const [ok] = await world.tcp(NODE_IP, 30090);
    assert.equal(ok?.server, ip('c'));
    maps.policy.delete(pods.c.id);
  });

  it('ClusterIP from a pod without socket-LB: translated at tc, policy against the backend identity, replies from the VIP', async () => {
    service(10, { address: VIP, port: 80, protocol: TCP }, { backends: [2] });
    events();
    const [c] = await podK.tcp(VIP, 80);
    assert.equal(c?.server, ip('b'), JSON.stringify(c));
    assert.equal(c?.seenAs?.split(':')[0], ip('k'), 'no SNAT east-west');
    const ev = events();
    const fwd = ev.find(
      (e) =>
        e.kind === 'trace' && e.event.hdr.subtype === DEFS.TRACE_TO_LXC && e.event.hdr.source === pods.b.id,
    );
    assert.ok(fwd?.kind === 'trace', 'delivery into b traced');
    assert.equal(fwd.event.revNatIndex, 10);
    assert.equal(formatIp(4, be32Bytes(fwd.event.origIp4)), VIP);
    assert.equal(fwd.event.origPort, 80);
    assert.equal(fwd.event.dstLabel, pods.b.identity);
    const rev = ev.find(
      (e) =>
        e.kind === 'trace' && e.event.hdr.subtype === DEFS.TRACE_TO_LXC && e.event.hdr.source === pods.k.id,
    );
    assert.ok(rev?.kind === 'trace', 'the reply into k traced');
    assert.equal(rev.event.revNatIndex, 10);
    assert.equal(formatIp(4, be32Bytes(rev.event.origIp4)), ip('b'), 'translated back from the backend');

    // k may talk to a's identity only: the VIP's backend is b, so the connection is refused
    const enf = { ingressEnforced: false, egressEnforced: true };
    maps.policy.replace(pods.k.id, [allow(pods.a.identity, 1, TCP, BACKEND_TCP), allow(0, 0, 0, 0)], enf);
    events();
    const [denied] = await podK.tcp(VIP, 80, { timeoutMs: 700 });
    assert.equal(denied?.error, 'TIMEOUT');
    const ev2 = events();
    const v = ev2.find((e) => e.kind === 'policy-verdict');
    assert.ok(v?.kind === 'policy-verdict');
    assert.equal(v.event.remoteLabel, pods.b.identity, 'policy sees the backend');
    assert.equal(v.event.dstPort, BACKEND_TCP);
    const d = ev2.find((e) => e.kind === 'drop');
    assert.ok(d?.kind === 'drop');
    assert.equal(d.event.hdr.subtype, DEFS.DROP_POLICY);
    assert.equal(d.event.revNatIndex, 10, 'the drop names the service');
    maps.policy.replace(pods.k.id, [allow(pods.b.identity, 1, TCP, BACKEND_TCP), allow(0, 0, 0, 0)], enf);
    const [ok] = await podK.tcp(VIP, 80);
    assert.equal(ok?.server, ip('b'));
    maps.policy.delete(pods.k.id);

    // no backend: dropped at the pod with 158
    service(13, { address: VIP, port: 81, protocol: TCP }, { backends: [] });
    events();
    const [none] = await podK.tcp(VIP, 81, { timeoutMs: 700 });
    assert.equal(none?.error, 'TIMEOUT');
    const d2 = events().find((e) => e.kind === 'drop' && e.event.hdr.subtype === DEFS.DROP_NO_SERVICE);
    assert.ok(d2?.kind === 'drop');
    assert.equal(d2.event.hdr.source, pods.k.id);
    assert.equal(d2.event.revNatIndex, 13);
    assert.equal(d2.event.file, DEFS.DROP_FILE_LXC);
  });

  it('re-attaching swaps the program into the pinned link; bad settings name their field; detach removes it', async () => {
    const before = host.pinned().eth0!.ingress!;
    const r = host.attach({ device: 'eth0', netns: path(ns.node), nodeIpv4: NODE_IP });
    assert.equal(r.replaced, true);
    assert.equal(r.ingress.id, before.id);
    assert.notEqual(r.ingress.progId, before.progId);
    const [c] = await world.tcp(NODE_IP, 30080);
    assert.ok(c?.server, 'NodePort still works');
    for (const [cfg, field] of [
      [{ device: 'eth0', nodeIpv4: 'fd00::1' }, 'nodeIpv4'],
      [{ device: 'eth0', nodeIpv4: NODE_IP, hostEndpointId: 70000 }, 'hostEndpointId'],
      [{ device: 'eth0', snatLocalBackends: 'yes' as never }, 'snatLocalBackends'],
      [{ device: 'no/such' }, 'device'],
      [{ device: 'nosuchdev0', netns: path(ns.node) }, 'device'],
    ] as const)
      assert.throws(
        () => host.attach(cfg),
        (e: unknown) => e instanceof HostDeviceError && e.field === field,
        `${JSON.stringify(cfg)} -> ${field}`,
      );
    assert.equal(host.detach('eth0'), true);
    assert.deepEqual(queryTcx(r.ifindex, 'ingress', path(ns.node)).linkIds, []);
    assert.deepEqual(host.pinned(), {});
    const [gone] = await world.tcp(NODE_IP, 30080, { timeoutMs: 500 });
    assert.ok(gone?.error, 'no NodePort without the program');
  });
});
