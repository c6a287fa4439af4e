/**
 * Conntrack GC against entries the datapath itself wrote: bpf_lxc.o loaded for two endpoints in a
 * private bpffs, crafted packets run through cil_from_container with BPF_PROG_TEST_RUN create CT
 * entries (TCP SYN: 60 s, TCP RST: 10 s close timeout, UDP: 60 s), and the GC, the flushes and
 * the REST routes act on the real pinned maps. The expiry test waits for the datapath's own 10 s
 * deadline to pass on the kernel's clock, so it also proves the GC reads that clock.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { Router } from '../../../src/agent/http.js';
import { ConntrackGC, registerConntrackRoutes } from '../../../src/conntrack/index.js';
import { DatapathLoader, DEFS, monotonicNs } from '../../../src/datapath/index.js';
import { BpfMap, MapType, Program } from '../../../src/ebpf/index.js';
import { cleanupStack, privateBpffs, sh, uniquePrefix } from '../../helpers/sys.js';
import { frame, TCP, tcp, udp } from '../datapath/packets.js';

const WORLD4 = '192.0.2.5';
const WORLD6 = '2001:db8::5';
const LXC = { id: 300, identity: 3000, ipv4: '10.9.1.10', ipv6: 'fd09::10', mac: '02:00:00:09:01:0a' };
const PEER = { id: 301, identity: 3001, ipv4: '10.9.1.20', ipv6: 'fd09::20', mac: '02:00:00:09:02:0a' };
const NODE_MAC = '02:00:00:09:00:01';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('privileged: conntrack GC on entries written by the datapath', () => {
  const cleanup = cleanupStack();
  let loader: DatapathLoader;
  const from: Record<number, Program> = {};

  /** One packet out of an endpoint (cil_from_container), to the world; must pass. */
  const send = (ep: typeof LXC, v: 4 | 6, proto: 'tcp-syn' | 'tcp-rst' | 'udp', sport: number) => {
    const l4 = proto === 'udp' ? udp(sport, 53) : tcp(sport, 80, proto === 'tcp-syn' ? TCP.SYN : TCP.RST);
    const nh = proto === 'udp' ? 17 : 6;
    const f =
      v === 4
        ? frame.v4(ep.mac, NODE_MAC, ep.ipv4, WORLD4, nh, l4)
        : frame.v6(ep.mac, NODE_MAC, ep.ipv6, WORLD6, nh, l4);
    const r = from[ep.id]!.testRun({ data: f });
    assert.equal(r.retval, DEFS.TC_ACT_OK, `${proto} from ${ep.ipv4} v${v} passes`);
  };
  const tuples = () =>
    loader.maps.conntrack
      .list()
      .map((e) => `${e.src}:${e.sport}`)
      .sort();

  before(() => {
    const bpffs = privateBpffs(cleanup);
    const ns = uniquePrefix('ctgc');
    sh('ip', ['netns', 'add', ns]);
    cleanup.add(() => void spawnSync('ip', ['netns', 'del', ns]));
    for (const [h, p] of [
      ['lxca', 'poda'],
      ['lxcb', 'podb'],
    ])
      sh('ip', ['-n', ns, 'link', 'add', h!, 'type', 'veth', 'peer', 'name', p!]);
    loader = DatapathLoader.open({ bpffs });
    cleanup.add(() => loader.close());
    for (const [ep, iface] of [
      [LXC, 'lxca'],
      [PEER, 'lxcb'],
    ] as const) {
      const l = loader.load({
        ...ep,
        nodeMac: NODE_MAC,
        interface: iface,
        netns: `/run/netns/${ns}`,
        routerIpv4: '10.9.1.1',
        routerIpv6: 'fd09::1',
        monitorAggregation: 0,
      });
      cleanup.add(() => void loader.remove(ep.id));
      from[ep.id] = Program.fromId(l.ingress.progId);
      cleanup.add(() => from[ep.id]!.close());
    }
  });
  after(async () => {
    await cleanup.run();
  });

  it('expired entries go, live ones stay and keep working; metrics count both', async () => {
    loader.maps.conntrack.flush();
    const registry = new Registry();
    const gc = new ConntrackGC({ maps: loader.maps.conntrack, registry });
    send(LXC, 4, 'tcp-syn', 41000);
    send(LXC, 4, 'tcp-rst', 41001);
    send(LXC, 4, 'udp', 41002);
    send(LXC, 6, 'tcp-rst', 41003);
    send(LXC, 6, 'udp', 41004);
    send(PEER, 4, 'tcp-rst', 42001);

    // The datapath's deadlines, read on our clock: the same base (CLOCK_MONOTONIC) as bpf_ktime_get_ns.
    const now = monotonicNs();
    const left = (sport: number) =>
      Number(loader.maps.conntrack.list().find((e) => e.sport === sport)!.lifetimeNs - now) / 1e9;
    assert.ok(Math.abs(left(41000) - 60) < 1, `SYN entry expires in ~60 s (${left(41000)})`);
    assert.ok(Math.abs(left(41001) - 10) < 1, `RST entry expires in ~10 s (${left(41001)})`);

    let run = gc.runOnce();
    assert.equal(run.deleted, 0, 'nothing expired yet');
    assert.deepEqual(
      run.families.map((f) => [f.family, f.alive, f.deleted, f.completed]),
      [
        ['ipv4', 4, 0, true],
        ['ipv6', 2, 0, true],
      ],
    );

    const rstDeadline = loader.maps.conntrack.list().find((e) => e.sport === 42001)!.lifetimeNs;
    await sleep(Number(rstDeadline - monotonicNs()) / 1e6 + 200);
    run = gc.runOnce();
    assert.equal(run.deleted, 3, 'the three RST entries (10 s close timeout) expired');
    assert.deepEqual(tuples(), [`${LXC.ipv4}:41000`, `${LXC.ipv4}:41002`, `${LXC.ipv6}:41004`]);
    assert.ok(run.maxDeleteRatio > 0 && run.maxDeleteRatio < 1e-4);

    // The SYN entry survived and still matches: an ACK of that connection is established.
    const ack = frame.v4(LXC.mac, NODE_MAC, LXC.ipv4, WORLD4, 6, tcp(41000, 80, TCP.ACK));
    assert.equal(from[LXC.id]!.testRun({ data: ack }).retval, DEFS.TC_ACT_OK);
    // (its entry now has the lifetime of an established connection: the ACK was accounted on it)
    assert.ok(left(41000) > 3600, `established: expires in ${left(41000)} s`);

    const text = await registry.metrics();
    const sample = (name: string, labels: string) =>
      Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(sample('cilium_datapath_conntrack_gc_runs_total', 'family="ipv4",status="completed"'), 2);
    assert.equal(sample('cilium_datapath_conntrack_gc_runs_total', 'family="ipv6",status="completed"'), 2);
    assert.equal(sample('cilium_datapath_conntrack_gc_entries', 'family="ipv4",status="alive"'), 2);
    assert.equal(sample('cilium_datapath_conntrack_gc_entries', 'family="ipv4",status="deleted"'), 2);
    assert.equal(sample('cilium_datapath_conntrack_gc_entries', 'family="ipv6",status="alive"'), 1);
    assert.equal(sample('cilium_datapath_conntrack_gc_entries', 'family="ipv6",status="deleted"'), 1);
    assert.equal(
      sample('cilium_datapath_conntrack_gc_duration_seconds_count', 'family="ipv4",status="completed"'),
      2,
    );
    assert.deepEqual([gc.status().runs, gc.status().deletedTotal], [2, 3]);
  });

  it("an endpoint's flush removes every entry to or from its addresses, and only those", () => {
    loader.maps.conntrack.flush();
    const gc = new ConntrackGC({ maps: loader.maps.conntrack });
    send(LXC, 4, 'tcp-syn', 43000);
    send(LXC, 6, 'udp', 43001);
    send(PEER, 4, 'tcp-syn', 44000);
    send(PEER, 6, 'udp', 44001);
    // pod to pod: PEER opens to LXC (entries on both sides carry LXC's address as destination)
    const p2p = frame.v4(PEER.mac, NODE_MAC, PEER.ipv4, LXC.ipv4, 17, udp(44002, 53));
    assert.notEqual(from[PEER.id]!.testRun({ data: p2p }).retval, DEFS.TC_ACT_SHOT);
    const before = tuples();
    assert.ok(before.includes(`${PEER.ipv4}:44002`));

    assert.throws(
      () => gc.flushEndpoint([LXC.ipv4, 'not-an-ip']),
      (e: Error & { field?: string }) => e.field === 'ips[1]',
    );
    assert.throws(() => gc.flushEndpoint([]), /ips/);
    assert.deepEqual(tuples(), before, 'a bad address deletes nothing');

    const r = gc.flushEndpoint([LXC.ipv4, LXC.ipv6]);
    assert.deepEqual(tuples(), [`${PEER.ipv4}:44000`, `${PEER.ipv6}:44001`]);
    assert.equal(r.deleted, before.length - 2);
    assert.equal(r.families.ipv6, 1);
  });

  it('flush by family, everything, and through DELETE /v1/bpf/ct on the agent router', async () => {
    loader.maps.conntrack.flush();
    const gc = new ConntrackGC({ maps: loader.maps.conntrack });
    send(LXC, 4, 'udp', 45000);
    send(LXC, 6, 'udp', 45001);
    send(PEER, 6, 'udp', 45002);
    assert.throws(
      () => gc.flush({ family: 'ipv5' }),
      (e: Error & { field?: string }) => e.field === 'family',
    );
    assert.deepEqual(gc.flush({ family: 'ipv6' }), { deleted: 2, families: { ipv6: 2 } });
    assert.deepEqual(tuples(), [`${LXC.ipv4}:45000`]);

    const router = new Router();
    registerConntrackRoutes(router, gc);
    const server = createServer((req, res) => void router.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const call = (method: string, path: string) =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
          let t = '';
          res.on('data', (d) => (t += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(t) }));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      send(PEER, 6, 'udp', 45003);
      const del = await call('DELETE', '/v1/bpf/ct');
      assert.equal(del.status, 200);
      assert.deepEqual(del.body, { deleted: 2, families: { ipv4: 1, ipv6: 1 } });
      assert.deepEqual(tuples(), []);
      const bad = await call('DELETE', '/v1/bpf/ct?family=ipv5');
      assert.deepEqual([bad.status, bad.body.code, bad.body.field], [400, 'invalid-argument', 'family']);
      const st = await call('GET', '/v1/bpf/ct/gc');
      assert.deepEqual([st.body.running, st.body.deletedTotal], [false, 4]);
      send(LXC, 4, 'udp', 45004);
      const run = await call('POST', '/v1/bpf/ct/gc');
      assert.equal(run.body.deleted, 0);
      assert.equal((run.body.families as { alive: number }[])[0]!.alive, 1);
    } finally {
      server.close();
    }
  });
});

describe('privileged: conntrack GC interval follows what each run deleted', () => {
  it('shortens after a run that deleted much, holds when it found nothing, grows after a trickle', async () => {
    // A real LRU map with the CT layout, small enough that a few entries are a large share.
    const m = BpfMap.create({
      name: 'ct_gc_small',
      type: MapType.LRU_HASH,
      keySize: 40,
      valueSize: 56,
      maxEntries: 100,
      flags: 0,
      pinning: 'none',
    });
    try {
      const put = (i: number, lifetimeNs: bigint) => {
        const k = new Uint8Array(40);
        new DataView(k.buffer).setUint32(0, i, true);
        const v = new Uint8Array(56);
        new DataView(v.buffer).setBigUint64(0, lifetimeNs, true);
        m.update(k, v);
      };
      const past = monotonicNs() - 1_000_000_000n;
      for (let i = 0; i < 60; i++) put(i, past);
      put(1000, monotonicNs() + 3_600_000_000_000n);
      const gc = new ConntrackGC({
        maps: { ct4: m },
        interval: { startMs: 1000, minMs: 100, roundingMs: 10, maxLruMs: 60_000 },
      });
      gc.start();
      await sleep(100);
      let st = gc.status();
      assert.equal(st.runs, 1);
      assert.equal(st.lastRun?.deleted, 60);
      assert.equal(st.intervalMs, 400, '60 % deleted: 1000 ms x 0.4');
      await sleep(450);
      st = gc.status();
      assert.equal(st.runs, 2, 'the second run came after the shortened interval');
      assert.equal(st.intervalMs, 400, 'nothing deleted: interval kept');
      put(2000, past);
      put(2001, past);
      await sleep(450);
      st = gc.status();
      assert.equal(st.runs, 3);
      assert.equal(st.lastRun?.deleted, 2);
      assert.equal(st.intervalMs, 600, '2 % deleted: x1.5');
      assert.equal(st.running, true);
      gc.stop();
      assert.equal(gc.status().running, false);
      await sleep(700);
      assert.equal(gc.status().runs, 3, 'no run after stop');
      assert.equal([...m.keys()].length, 1, 'the live entry stayed');
    } finally {
      m.close();
    }
  });
});
