/**
 * Socket-LB with real sockets: bpf_sock.o's hooks attached to a throwaway cgroup, services written
 * into the node's maps through the typed wrappers, TCP and UDP servers on backend addresses inside
 * a test network namespace, and a client process in the cgroup (and the namespace) connecting to
 * service addresses nobody owns. Every address is on the namespace's loopback.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  cgroupId,
  DatapathMaps,
  DEFS,
  type LbFrontend,
  type LbService,
  SocketLbLoader,
} from '../../../src/datapath/index.js';
import { BpfMap, LinkType } from '../../../src/ebpf/index.js';
import { cleanupStack, privateBpffs, sh, uniquePrefix } from '../../helpers/sys.js';
import { waitFor } from '../../helpers/wait.js';
import { CgroupClient, startServers, throwawayCgroup } from './cgroup-client.js';

const TCP_PORT = 8080;
const UDP_PORT = 5353;
const TCP = DEFS.CIL_IPPROTO_TCP;
const UDP = DEFS.CIL_IPPROTO_UDP;
const BACKENDS4 = ['10.244.1.1', '10.244.1.2', '10.244.1.3'];
const BACKENDS6 = ['fd00:244::1', 'fd00:244::2'];
/** Has a server of its own: reached directly unless socket-LB translates it. */
const EXTERNAL_IP = '10.200.0.1';
const NODE_IP = '10.250.0.1';
const REMOTE_NODE_IP = '10.250.0.2';
const WORLD_IP = '10.250.0.3';
const NODEPORT = 30080;

/** Backend IDs: 1..3 IPv4, 11..12 IPv6. */
const ID4 = [1, 2, 3];
const ID6 = [11, 12];

const name = (addr: string, port: number) => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);
const servers = (addrs: readonly string[], port: number) => addrs.map((a) => name(a, port));

/** Socket slots (bpf_sock.c): the holder's cookie in cilium_lb_sock_slots (0: free), its
 * lb_sock_rev in cilium_lb_sock_slot_rev (the service address at byte 16). */
const SLOT_REV = { size: 40, service: 16 } as const;

/** Counts per server of a list of results. */
function tally(results: { server?: string }[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of results) if (r.server) m.set(r.server, (m.get(r.server) ?? 0) + 1);
  return m;
}

describe('privileged: socket-LB: cgroup hooks translate service addresses for real sockets', () => {
  const cleanup = cleanupStack();
  let bpffs: string;
  let maps: DatapathMaps;
  let sock: SocketLbLoader;
  let cgroup: string;
  let netns: string;
  let client: CgroupClient;
  let rev = 0;

  /** Writes a service (its rev-NAT entry and its frontend) with the given backends. */
  function service(fe: LbFrontend, s: Omit<LbService, 'revNatIndex'>): number {
    const revNatIndex = ++rev;
    maps.lb.upsertRevNat({ revNatIndex, address: fe.address, port: fe.port });
    maps.lb.upsertService(fe, { ...s, revNatIndex });
    return revNatIndex;
  }

  /** The TCP socket slots held now (cookie not 0) for an IPv4 service address. */
  function slotsOf(service: string): number {
    const holders = BpfMap.openPinned(join(bpffs, 'cilium_lb_sock_slots'));
    const revs = BpfMap.openPinned(join(bpffs, 'cilium_lb_sock_slot_rev'));
    try {
      const h = holders.lookupBatch(8192);
      const r = revs.lookupBatch(8192);
      const cookies = Buffer.from(h.values.buffer, h.values.byteOffset, h.values.length);
      const entries = Buffer.from(r.values.buffer, r.values.byteOffset, r.values.length);
      const want = Buffer.from(service.split('.').map(Number));
      let n = 0;
      for (let i = 0; i < h.count; i++) {
        const o = i * SLOT_REV.size + SLOT_REV.service;
        if (cookies.readBigUInt64LE(8 * i) !== 0n && entries.subarray(o, o + 4).equals(want)) n++;
      }
      return n;
    } finally {
      holders.close();
      revs.close();
    }
  }

  /** Writes every slot's holder: `cookie(i)` (another socket), or 0 (free). */
  function fillSlots(cookie: (i: number) => bigint): void {
    const m = BpfMap.openPinned(join(bpffs, 'cilium_lb_sock_slots'));
    try {
      const n = m.info().maxEntries;
      const keys = Buffer.alloc(4 * n);
      const values = Buffer.alloc(8 * n);
      for (let i = 0; i < n; i++) {
        keys.writeUInt32LE(i, 4 * i);
        values.writeBigUInt64LE(cookie(i), 8 * i);
      }
      m.updateMany(keys, values, n);
    } finally {
      m.close();
    }
  }

  before(async () => {
    bpffs = privateBpffs(cleanup);
    const ns = uniquePrefix('slb');
    sh('ip', ['netns', 'add', ns]);
    cleanup.add(() => void sh('ip', ['netns', 'del', ns]));
    netns = `/run/netns/${ns}`;
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    for (const a of [...BACKENDS4, EXTERNAL_IP]) sh('ip', ['-n', ns, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
    for (const a of BACKENDS6) sh('ip', ['-n', ns, 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad']);
    await startServers(netns, TCP_PORT, UDP_PORT, [...BACKENDS4, ...BACKENDS6], cleanup);
    await startServers(netns, 80, 53, [EXTERNAL_IP], cleanup);

    maps = DatapathMaps.open(bpffs);
    cleanup.add(() => maps.close());
    const backend = (id: number, address: string, port: number, protocol: number) =>
      maps.lb.upsertBackend({ id, address, port, protocol, state: DEFS.BE_STATE_ACTIVE });
    for (const [i, a] of BACKENDS4.entries()) {
      backend(ID4[i]!, a, TCP_PORT, TCP);
      backend(ID4[i]! + 100, a, UDP_PORT, UDP);
    }
    for (const [i, a] of BACKENDS6.entries()) backend(ID6[i]!, a, TCP_PORT, TCP);
    maps.ipcache.upsert(NODE_IP, { identity: DEFS.ID_HOST });
    maps.ipcache.upsert(REMOTE_NODE_IP, { identity: DEFS.ID_REMOTE_NODE });

    cgroup = throwawayCgroup('slb', cleanup);
    sock = SocketLbLoader.open({ bpffs, maps });
    cleanup.add(() => sock.close());
    cleanup.add(() => void sock.detach());
    const r = sock.attach(cgroup);
    assert.equal(r.replaced, false);
    client = CgroupClient.start(cgroup, netns, cleanup);
  });
  after(async () => {
    await cleanup.run();
  });

  it('connect to a ClusterIP reaches a backend; getpeername() reports the service address', async () => {
    service({ address: '10.96.0.10', port: 80, protocol: TCP }, { backends: ID4 });
    const [r] = await client.tcp('10.96.0.10', 80);
    assert.ok(r, 'one result');
    assert.equal(r.error, undefined);
    assert.ok(servers(BACKENDS4, TCP_PORT).includes(r.server!), `reached a backend, got ${r.server}`);
    assert.equal(r.peer, '10.96.0.10:80');
  });

  it('200 connections spread over the three backends (chi-square sane), none elsewhere', async () => {
    const results = await client.tcp('10.96.0.10', 80, 200);
    const odd = results.filter((r) => r.error || r.peer !== '10.96.0.10:80');
    assert.deepEqual(odd, [], 'every connection reached a backend and getpeername() reports the service');
    const counts = tally(results);
    assert.deepEqual([...counts.keys()].sort(), servers(BACKENDS4, TCP_PORT).sort());
    const chi2 = [...counts.values()].reduce((s, n) => s + (n - 200 / 3) ** 2 / (200 / 3), 0);
    // 2 degrees of freedom: P(chi2 > 13.8) = 0.001
    assert.ok(chi2 < 13.8, `chi-square ${chi2.toFixed(2)} over ${JSON.stringify([...counts])}`);
  });

  it('backends after the count (terminating) get no new connections', async () => {
    service({ address: '10.96.0.11', port: 80, protocol: TCP }, { backends: ID4, count: 2 });
    const counts = tally(await client.tcp('10.96.0.11', 80, 60));
    assert.deepEqual([...counts.keys()].sort(), servers(BACKENDS4.slice(0, 2), TCP_PORT).sort());
  });

  it('a service with no backend fails connect() and sendto() with EHOSTUNREACH at once', async () => {
    service({ address: '10.96.0.12', port: 80, protocol: TCP }, { backends: [] });
    service({ address: '10.96.0.12', port: 53, protocol: UDP }, { backends: [] });
    const [t] = await client.tcp('10.96.0.12', 80);
    assert.equal(t?.error, 'EHOSTUNREACH');
    assert.ok(t!.ms < 100, `failed after ${t!.ms} ms`);
    const [u] = await client.udp('10.96.0.12', 53);
    assert.equal(u?.error, 'EHOSTUNREACH');
  });

  it('UDP: recvfrom() reports the service address, and one socket sticks to one backend for 50 datagrams', async () => {
    service({ address: '10.96.0.20', port: 53, protocol: UDP }, { backends: ID4.map((id) => id + 100) });
    const results = await client.udp('10.96.0.20', 53, { n: 50, sockets: 12 });
    const chosen = new Set<string>();
    for (const r of results) {
      assert.equal(r.error, undefined);
      assert.equal(r.replies.length, 50);
      assert.ok(
        r.replies.every((x) => x.from === '10.96.0.20:53'),
        'every reply comes from the service',
      );
      const perSocket = new Set(r.replies.map((x) => x.server));
      assert.equal(perSocket.size, 1, `one backend per socket, got ${[...perSocket]}`);
      chosen.add([...perSocket][0]!);
    }
    assert.ok(chosen.size >= 2, `12 sockets use more than one backend (${[...chosen]})`);
    for (const s of chosen) assert.ok(servers(BACKENDS4, UDP_PORT).includes(s));
  });

  it('UDP: a connected socket is translated at connect() and getpeername() reports the service', async () => {
    const lru = () => maps.lb.listReverseSk().filter((e) => e.service.address === '10.96.0.20').length;
    const before = lru();
    const [r] = await client.udp('10.96.0.20', 53, { n: 5, connected: true });
    assert.equal(r?.error, undefined);
    assert.equal(r!.peer, '10.96.0.20:53');
    assert.equal(new Set(r!.replies.map((x) => x.server)).size, 1);
    assert.ok(r!.replies.every((x) => x.from === '10.96.0.20:53'));
    // its one peer is in a socket slot (freed at close), not in the node-wide LRU map
    assert.equal(lru(), before);
    await waitFor('the connected UDP socket slot freed at close', () => slotsOf('10.96.0.20') === 0);
  });

  it('the protocol is part of the frontend: a TCP-only service leaves UDP to that address alone', async () => {
    const [u] = await client.udp('10.96.0.10', 80);
    assert.notEqual(u?.error, undefined, 'nothing answers UDP at the unowned service address');
    assert.equal(u!.replies.length, 0);
  });

  it('session affinity: one network namespace keeps its backend while the pair is active', async () => {
    const rev = service(
      { address: '10.96.0.30', port: 80, protocol: TCP },
      { backends: ID4, flags: DEFS.SVC_FLAG_AFFINITY, affinityTimeout: 60 },
    );
    for (const backendId of ID4) maps.lb.addAffinityMatch({ backendId, revNatIndex: rev });
    const first = tally(await client.tcp('10.96.0.30', 80, 30));
    assert.equal(first.size, 1, `30 connections, one backend: ${JSON.stringify([...first])}`);
    const entries = maps.lb.listAffinity().filter((e) => e.revNatIndex === rev);
    assert.equal(entries.length, 1);
    assert.ok(
      'netnsCookie' in entries[0]!.client && entries[0]!.client.netnsCookie > 0n,
      'keyed by netns cookie',
    );
    const pinned = [...first.keys()][0]!;
    const pinnedId = ID4[servers(BACKENDS4, TCP_PORT).indexOf(pinned)]!;
    assert.equal(entries[0]!.backendId, pinnedId);

    // The backend is no longer an active one of the service: the entry is not used any more.
    maps.lb.deleteAffinityMatch({ backendId: pinnedId, revNatIndex: rev });
    maps.lb.upsertService(
      { address: '10.96.0.30', port: 80, protocol: TCP },
      {
        revNatIndex: rev,
        backends: ID4.filter((id) => id !== pinnedId),
        flags: DEFS.SVC_FLAG_AFFINITY,
        affinityTimeout: 60,
      },
    );
    const next = tally(await client.tcp('10.96.0.30', 80, 30));
    assert.equal(next.size, 1, `pinned again to one backend: ${JSON.stringify([...next])}`);
    assert.notEqual([...next.keys()][0], pinned);
    assert.equal(maps.lb.flushAffinity(rev), 1, 'one entry (the same netns), replaced');
    assert.deepEqual(
      maps.lb.listAffinity().filter((e) => e.revNatIndex === rev),
      [],
    );
  });

  it('an ExternalIP is translated only when it is an address of this node (ipcache ID_HOST)', async () => {
    service(
      { address: EXTERNAL_IP, port: 80, protocol: TCP },
      { backends: ID4, flags: DEFS.SVC_FLAG_EXTERNAL_IP | DEFS.SVC_FLAG_ROUTABLE },
    );
    const [direct] = await client.tcp(EXTERNAL_IP, 80);
    assert.equal(direct?.server, `${EXTERNAL_IP}:80`, 'not this node: the connection is left alone');
    maps.ipcache.upsert(EXTERNAL_IP, { identity: DEFS.ID_HOST });
    try {
      const [r] = await client.tcp(EXTERNAL_IP, 80);
      assert.ok(servers(BACKENDS4, TCP_PORT).includes(r!.server!), `translated, got ${r!.server}`);
      assert.equal(r!.peer, `${EXTERNAL_IP}:80`);
    } finally {
      maps.ipcache.delete(EXTERNAL_IP);
    }
  });

  it('NodePort: a node address at the node port reaches the wildcard frontend, another address does not', async () => {
    service(
      { address: '0.0.0.0', port: NODEPORT, protocol: TCP },
      { backends: ID4, flags: DEFS.SVC_FLAG_NODEPORT },
    );
    for (const ip of [NODE_IP, REMOTE_NODE_IP]) {
      const [r] = await client.tcp(ip, NODEPORT);
      assert.ok(
        servers(BACKENDS4, TCP_PORT).includes(r!.server!),
        `${ip}: translated, got ${JSON.stringify(r)}`,
      );
      assert.equal(r!.peer, `${ip}:${NODEPORT}`);
    }
    const [world] = await client.tcp(WORLD_IP, NODEPORT);
    assert.equal(world?.error, 'ENETUNREACH', 'not a node: untranslated, and nothing routes it here');
  });

  it('IPv6: connect to a v6 ClusterIP reaches a v6 backend and getpeername() reports the service', async () => {
    service({ address: 'fd00:96::10', port: 80, protocol: TCP }, { backends: ID6 });
    const results = await client.tcp('fd00:96::10', 80, 40);
    assert.ok(
      results.every((r) => !r.error && r.peer === '[fd00:96::10]:80'),
      JSON.stringify(results[0]),
    );
    assert.deepEqual([...tally(results).keys()].sort(), servers(BACKENDS6, TCP_PORT).sort());
  });

  it('an IPv4-mapped address on an IPv6 socket is translated as IPv4', async () => {
    const [r] = await client.tcp('::ffff:10.96.0.10', 80);
    assert.equal(r?.error, undefined);
    assert.ok(servers(BACKENDS4, TCP_PORT).includes(r!.server!));
    assert.equal(r!.peer, '[::ffff:10.96.0.10]:80');
  });

  it('getpeername() of a connection whose service is gone reports the backend (stale entry dropped)', async () => {
    const fe = { address: '10.96.0.40', port: 80, protocol: TCP } as const;
    service(fe, { backends: ID4 });
    const held = await client.hold('c1', fe.address, fe.port);
    assert.equal(held.peer, '10.96.0.40:80');
    // a TCP socket keeps what its backend stands for in its slot, not in the node-wide LRU map
    assert.equal(slotsOf(fe.address), 1);
    const inMap = maps.lb.listReverseSk().filter((e) => e.service.address === fe.address).length;
    assert.equal(inMap, 0);
    maps.lb.deleteService(fe);
    const { peer } = await client.peer('c1');
    assert.equal(peer, held.server, 'the backend the connection really has');
    // the stale entry was dropped: asked again, the answer stays the backend
    assert.equal((await client.peer('c1')).peer, held.server);
  });

  it('a TCP connection holds one socket slot while it is open; close() gives it back', async () => {
    const fe = { address: '10.96.0.41', port: 80, protocol: TCP } as const;
    service(fe, { backends: ID4 });
    const held = await client.hold('c2', fe.address, fe.port);
    assert.equal(held.peer, '10.96.0.41:80');
    assert.equal(slotsOf(fe.address), 1);
    await client.drop('c2');
    await waitFor('the slot freed at close', () => slotsOf(fe.address) === 0);
    // connections opened and closed one after the other leave no slot behind
    const done = await client.tcp(fe.address, fe.port, 20);
    assert.deepEqual(
      done.map((r) => r.error),
      Array(20).fill(undefined),
    );
    await waitFor('every slot freed', () => slotsOf(fe.address) === 0);
  });

  it('a connection whose slot another socket holds keeps its entry in its own socket storage', async () => {
    const fe = { address: '10.96.0.42', port: 80, protocol: TCP } as const;
    service(fe, { backends: ID4 });
    // every slot held by sockets that are not there (cookies far above any real one)
    fillSlots((i) => (1n << 62n) + BigInt(i));
    try {
      const held = await client.hold('c3', fe.address, fe.port);
      assert.equal(held.error, undefined);
      assert.equal(held.peer, '10.96.0.42:80', 'getpeername() from the socket storage');
      assert.equal(slotsOf(fe.address), 0, 'no slot taken over');
      // the stale-entry path of the storage: the service goes, the backend is reported
      maps.lb.deleteService(fe);
      assert.equal((await client.peer('c3')).peer, held.server);
      await client.drop('c3');
    } finally {
      fillSlots(() => 0n);
    }
  });

  it('attaching again swaps the programs into the same pinned cgroup links; detach stops translating', async () => {
    const pinned = sock.pinned();
    assert.equal(Object.keys(pinned).length, 9);
    for (const l of Object.values(pinned)) {
      assert.equal(l.type, LinkType.CGROUP);
      assert.equal(l.cgroupId, cgroupId(cgroup));
    }
    // A second loader, as a restarted agent would open one, adopts the pinned links.
    const again = SocketLbLoader.open({ bpffs, maps });
    try {
      const r = again.attach(cgroup);
      assert.equal(r.replaced, true);
      for (const [hook, l] of Object.entries(r.links))
        assert.equal(l.id, pinned[hook as keyof typeof pinned]!.id, `${hook}: same link`);
      const [ok] = await client.tcp('10.96.0.10', 80);
      assert.ok(servers(BACKENDS4, TCP_PORT).includes(ok!.server!));
      assert.equal(again.detach(), true);
    } finally {
      again.close();
    }
    assert.deepEqual(sock.pinned(), {});
    const [gone] = await client.tcp('10.96.0.10', 80);
    assert.equal(gone?.error, 'ENETUNREACH', 'the service address itself is not routed');
  });
});
