/**
 * Datapath tier: bpf_lxc.o loaded through DatapathLoader (per-endpoint constants, shared pinned
 * maps in a private bpffs, attached to veths in a throwaway namespace), then driven with
 * BPF_PROG_TEST_RUN on crafted frames. Events are read from the ring buffer and decoded with the
 * generated codecs; policy is written through PolicyMaps in the control plane's shapes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  type DatapathEvent,
  DatapathLoader,
  DEFS,
  decodeEvent,
  type EndpointDatapathConfig,
  formatMac,
} from '../../../src/datapath/index.js';
import { forEachEntry } from '../../../src/datapath/maps/conntrack.js';
import { ctEntry, ctKey } from '../../../src/datapath/maps/generated/layouts.js';
import { Program, type RingBufReader } from '../../../src/ebpf/index.js';
import { type MapEntry, makeKey } from '../../../src/policy/mapstate.js';
import { cleanupStack, privateBpffs, sh, uniquePrefix } from '../../helpers/sys.js';
import {
  arp,
  csum,
  frame,
  icmp,
  icmp6,
  icmp6Csum,
  ipv4,
  nsBody,
  solicitedNode,
  TCP,
  tcp,
  udp,
} from './packets.js';

const WORLD = '192.0.2.5';
const WORLD6 = '2001:db8::5';
/** The node's router address: in the ipcache with the host identity, as the agent writes it. */
const NODE_IP = '10.0.1.1';
const LXC = {
  id: 100,
  identity: 1000,
  ipv4: '10.0.1.10',
  ipv6: 'fd00::10',
  mac: '02:00:00:00:01:0a',
  nodeMac: '02:00:00:00:01:01',
};
const PEER = {
  id: 200,
  identity: 2000,
  ipv4: '10.0.1.20',
  ipv6: 'fd00::20',
  mac: '02:00:00:00:02:0a',
  nodeMac: '02:00:00:00:02:01',
};

interface Run {
  rv: number;
  out: Uint8Array;
  ev: DatapathEvent[];
}

const drops = (ev: DatapathEvent[]) => ev.flatMap((e) => (e.kind === 'drop' ? [e.event] : []));
const verdicts = (ev: DatapathEvent[]) => ev.flatMap((e) => (e.kind === 'policy-verdict' ? [e.event] : []));
const traces = (ev: DatapathEvent[]) => ev.flatMap((e) => (e.kind === 'trace' ? [e.event] : []));

function entry(
  identity: number,
  egress: 0 | 1,
  protocol: number,
  dport: number,
  prefixLen: number,
  deny: boolean,
  ruleCookie: number,
): MapEntry {
  return {
    key: makeKey(identity, egress, protocol, dport, prefixLen),
    entry: { deny, proxyPort: 0, ruleCookie },
  };
}

/** A copy of the IPv4 frame `f` with TTL `ttl` (and IP ID `id`), its header checksum made right. */
function withTtl(f: Uint8Array, ttl: number, id?: number): Uint8Array {
  const p = Uint8Array.from(f);
  if (id !== undefined) {
    p[18] = id >> 8;
    p[19] = id & 0xff;
  }
  p[22] = ttl;
  p[24] = 0;
  p[25] = 0;
  const c = csum(p.subarray(14, 34));
  p[24] = c >> 8;
  p[25] = c & 0xff;
  return p;
}

describe('datapath: bpf_lxc.o under BPF_PROG_TEST_RUN', () => {
  const cleanup = cleanupStack();
  let loader: DatapathLoader;
  let reader: RingBufReader;
  const progs: Record<string, Program> = {};

  const run = (prog: string, pkt: Uint8Array): Run => {
    const r = progs[prog]!.testRun({ data: pkt });
    const ev: DatapathEvent[] = [];
    reader.poll((rec) => ev.push(decodeEvent(rec)));
    return { rv: r.retval, out: r.data, ev };
  };
  const fromLxc = (pkt: Uint8Array) => run('lxc_from', pkt);
  const toLxc = (pkt: Uint8Array) => run('lxc_to', pkt);
  const lxcV4 = (dst: string, proto: number, l4: Uint8Array, src = LXC.ipv4) =>
    frame.v4(LXC.mac, LXC.nodeMac, src, dst, proto, l4);
  const toLxcV4 = (src: string, proto: number, l4: Uint8Array) =>
    frame.v4(LXC.nodeMac, LXC.mac, src, LXC.ipv4, proto, l4);
  const fromLxcAck = (sport: number) => run('agg_from', lxcV4(WORLD, 6, tcp(sport, 80, TCP.ACK))).rv;

  before(() => {
    const bpffs = privateBpffs(cleanup);
    const ns = uniquePrefix('dpP');
    sh('ip', ['netns', 'add', ns]);
    cleanup.add(() => void spawnSync('ip', ['netns', 'del', ns]));
    const netns = `/run/netns/${ns}`;
    for (const [h, p] of [
      ['lxca', 'poda'],
      ['lxcb', 'podb'],
    ])
      sh('ip', ['-n', ns, 'link', 'add', h!, 'type', 'veth', 'peer', 'name', p!]);
    loader = DatapathLoader.open({ bpffs });
    cleanup.add(() => loader.close());
    const cfg = (ep: typeof LXC, iface: string, extra: Partial<EndpointDatapathConfig> = {}) => ({
      ...ep,
      interface: iface,
      netns,
      routerIpv4: '10.0.1.1',
      routerIpv6: 'fd00::1',
      monitorAggregation: 0,
      ...extra,
    });
    const a = loader.load(cfg(LXC, 'lxca'));
    const b = loader.load(cfg(PEER, 'lxcb'));
    cleanup.add(() => {
      loader.remove(LXC.id);
      loader.remove(PEER.id);
    });
    progs.lxc_from = Program.fromId(a.ingress.progId);
    progs.lxc_to = Program.fromId(a.egress.progId);
    progs.peer_from = Program.fromId(b.ingress.progId);
    cleanup.add(() => {
      for (const p of Object.values(progs)) p.close();
    });
    // A second load of LXC with audit mode, kept unattached on its own interface.
    sh('ip', ['-n', ns, 'link', 'add', 'lxcc', 'type', 'veth', 'peer', 'name', 'podc']);
    const c = loader.load(cfg({ ...LXC, id: 101 }, 'lxcc', { policyAuditMode: true, monitorAggregation: 1 }));
    cleanup.add(() => void loader.remove(101));
    progs.audit_to = Program.fromId(c.egress.progId);
    // The same endpoint again, on a node configured with --allow-localhost=policy.
    sh('ip', ['-n', ns, 'link', 'add', 'lxcd', 'type', 'veth', 'peer', 'name', 'podd']);
    const strict = DatapathLoader.open({ bpffs, maps: loader.maps, node: { allowLocalhost: 'policy' } });
    cleanup.add(() => {
      strict.remove(102);
      strict.close();
    });
    progs.strict_to = Program.fromId(strict.load(cfg({ ...LXC, id: 102 }, 'lxcd')).egress.progId);
    // The same endpoint again with monitor aggregation (the agent's default), no policy map.
    sh('ip', ['-n', ns, 'link', 'add', 'lxce', 'type', 'veth', 'peer', 'name', 'pode']);
    const agg = loader.load(cfg({ ...LXC, id: 103 }, 'lxce', { monitorAggregation: 1 }));
    cleanup.add(() => void loader.remove(103));
    progs.agg_from = Program.fromId(agg.ingress.progId);
    progs.agg_to = Program.fromId(agg.egress.progId);
    // The same endpoint again, on a node with conntrack accounting (--bpf-conntrack-accounting).
    sh('ip', ['-n', ns, 'link', 'add', 'lxcf', 'type', 'veth', 'peer', 'name', 'podf']);
    const counting = DatapathLoader.open({ bpffs, maps: loader.maps, node: { ctAccounting: true } });
    cleanup.add(() => {
      counting.remove(104);
      counting.close();
    });
    progs.acct_from = Program.fromId(counting.load(cfg({ ...LXC, id: 104 }, 'lxcf')).ingress.progId);
    reader = loader.maps.events.reader();
    cleanup.add(() => reader.close());
    reader.poll(() => {});
  });
  after(async () => {
    await cleanup.run();
  });

  it('answers an ARP request for the router with NODE_MAC, redirected back', () => {
    const req = frame.arp(
      LXC.mac,
      'ff:ff:ff:ff:ff:ff',
      arp(1, LXC.mac, LXC.ipv4, '00:00:00:00:00:00', '10.0.1.1'),
    );
    const r = fromLxc(req);
    assert.equal(r.rv, DEFS.TC_ACT_REDIRECT);
    const want = frame.arp(LXC.nodeMac, LXC.mac, arp(2, LXC.nodeMac, '10.0.1.1', LXC.mac, LXC.ipv4));
    assert.deepEqual([...r.out.subarray(0, 42)], [...want]);
  });

  it('without an inner policy map: default allow, traces FROM_LXC and TO_STACK, no verdict', () => {
    const r = fromLxc(lxcV4(WORLD, 6, tcp(40000, 80, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    const t = traces(r.ev);
    assert.ok(t.some((e) => e.hdr.subtype === DEFS.TRACE_FROM_LXC));
    const toStack = t.find((e) => e.hdr.subtype === DEFS.TRACE_TO_STACK);
    assert.ok(toStack, 'TO_STACK trace');
    assert.equal(toStack.reason, DEFS.TRACE_REASON_POLICY);
    assert.equal(toStack.srcLabel, LXC.identity);
    assert.equal(toStack.dstLabel, DEFS.ID_WORLD);
    assert.equal(verdicts(r.ev).length, 0);
    const ct = loader.maps.conntrack.list({ family: 4 });
    const e = ct.find((c) => c.sport === 40000);
    assert.ok(e, 'conntrack entry listed');
    assert.deepEqual(
      [e.src, e.dst, e.dport, e.protocol, e.side, e.srcIdentity],
      [LXC.ipv4, WORLD, 80, 6, 'egress', 1000],
    );
    assert.ok(e.expiresInS > 0 && e.expiresInS <= 60);
  });

  it('drops a spoofed source with 132 (event and metric)', () => {
    const r = fromLxc(lxcV4(WORLD, 6, tcp(40000, 80, TCP.SYN), '10.0.1.99'));
    assert.equal(r.rv, DEFS.TC_ACT_SHOT);
    const d = drops(r.ev);
    assert.equal(d.length, 1);
    assert.equal(d[0]!.hdr.subtype, DEFS.DROP_INVALID_SIP);
    assert.equal(d[0]!.hdr.source, LXC.id);
    assert.equal(d[0]!.hdr.lenCap, 54);
    const m = loader.maps.metrics
      .list()
      .find((x) => x.reason === DEFS.DROP_INVALID_SIP && x.endpointId === LXC.id && x.direction === 'egress');
    assert.equal(m?.packets, 1n);
  });

  it('an empty inner map denies new connections (133, verdict -133 egress); established and replies pass', () => {
    loader.maps.policy.replace(LXC.id, []);
    let r = fromLxc(lxcV4(WORLD, 6, tcp(40001, 81, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_SHOT);
    assert.equal(drops(r.ev)[0]?.hdr.subtype, DEFS.DROP_POLICY);
    const v = verdicts(r.ev)[0];
    assert.ok(v);
    assert.deepEqual([v.verdict, v.dir, v.dstPort, v.proto, v.remoteLabel], [-133, 2, 81, 6, DEFS.ID_WORLD]);

    r = fromLxc(lxcV4(WORLD, 6, tcp(40000, 80, TCP.ACK)));
    assert.equal(r.rv, DEFS.TC_ACT_OK, 'established connection passes despite policy');
    r = toLxc(toLxcV4(WORLD, 6, tcp(80, 40000, TCP.SYN | TCP.ACK)));
    assert.equal(r.rv, DEFS.TC_ACT_OK, 'reply passes at to-container');
    assert.ok(
      traces(r.ev).some(
        (e) => e.hdr.subtype === DEFS.TRACE_TO_LXC && e.reason === DEFS.TRACE_REASON_CT_REPLY,
      ),
    );

    r = toLxc(toLxcV4(WORLD, 6, tcp(5555, 8080, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_SHOT, 'new ingress connection from world');
    assert.equal(drops(r.ev)[0]?.hdr.subtype, DEFS.DROP_POLICY);
    assert.equal(drops(r.ev)[0]?.srcLabel, DEFS.ID_WORLD);
  });

  it('allow and deny entries: wildcard deny wins (181), L3+L4 allow reported with its cookie', () => {
    const policy = loader.maps.policy;
    policy.apply(LXC.id, {
      upserts: [
        entry(DEFS.ID_WORLD, 1, 6, 443, 64, false, 7),
        entry(0, 1, 6, 0, 48, true, 9),
        entry(DEFS.ID_WORLD, 1, 6, 444, 64, false, 8),
      ],
      deletes: [],
    });
    let r = fromLxc(lxcV4(WORLD, 6, tcp(40002, 443, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_SHOT);
    assert.equal(drops(r.ev)[0]?.hdr.subtype, DEFS.DROP_POLICY_DENY);
    assert.equal(verdicts(r.ev)[0]?.matchType, DEFS.POLICY_MATCH_L4_ONLY);

    const res = policy.apply(LXC.id, { upserts: [], deletes: [makeKey(0, 1, 6, 0, 48)] });
    assert.deepEqual(res, { written: 0, deleted: 1, created: false });
    r = fromLxc(lxcV4(WORLD, 6, tcp(40003, 443, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    const v = verdicts(r.ev)[0];
    assert.deepEqual([v?.verdict, v?.matchType, v?.ruleCookie], [0, DEFS.POLICY_MATCH_L3_L4, 7]);

    policy.apply(LXC.id, { upserts: [entry(DEFS.ID_WORLD, 1, 6, 444, 64, true, 8)], deletes: [] });
    r = fromLxc(lxcV4(WORLD, 6, tcp(40004, 444, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_SHOT);
    assert.equal(drops(r.ev)[0]?.hdr.subtype, DEFS.DROP_POLICY_DENY);

    const dump = policy.dump(LXC.id)!;
    const e444 = dump.find((d) => d.key.dport === 444)!;
    assert.deepEqual(e444, {
      key: { identity: 2, egress: 1, protocol: 6, dport: 444, prefixLen: 64 },
      entry: { deny: true, proxyPort: 0, ruleCookie: 8 },
      flags: DEFS.POLICY_F_DENY | DEFS.POLICY_F_L4,
    });
    assert.equal(dump.length, 2);
    // deleting an absent key alongside a present one: the batch skips it
    const d2 = policy.apply(LXC.id, {
      upserts: [],
      deletes: [makeKey(5, 1, 6, 1, 64), makeKey(2, 1, 6, 444, 64)],
    });
    assert.equal(d2.deleted, 1);
  });

  it('ICMP echo is allowed by type in the port field; the echo reply passes as a CT reply', () => {
    const ping = lxcV4(WORLD, 1, icmp(8, 0, 0x1234));
    assert.equal(fromLxc(ping).rv, DEFS.TC_ACT_SHOT, 'no entry for ICMP');
    loader.maps.policy.apply(LXC.id, { upserts: [entry(0, 1, 1, 8, 64, false, 11)], deletes: [] });
    const r = fromLxc(ping);
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    assert.deepEqual(
      [verdicts(r.ev)[0]?.dstPort, verdicts(r.ev)[0]?.matchType],
      [8, DEFS.POLICY_MATCH_L4_ONLY],
    );
    assert.equal(toLxc(toLxcV4(WORLD, 1, icmp(0, 0, 0x1234))).rv, DEFS.TC_ACT_OK);
    assert.equal(toLxc(toLxcV4(WORLD, 1, icmp(0, 0, 0x9999))).rv, DEFS.TC_ACT_SHOT, 'unsolicited reply');
  });

  /** Runs a packet that passes through `prog` and returns the reasons of the traces it sent. */
  const traced = (prog: string, pkt: Uint8Array) => {
    const r = run(prog, pkt);
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    return traces(r.ev).map((e) => e.reason);
  };

  it('monitor aggregation: UDP and ICMP echo traced on the first packet each way, TCP on new SYN/FIN/RST', () => {
    const R = DEFS;
    // UDP: the request opens the connection, the first answer is traced as a reply, then neither again
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 17, udp(41000, 53))), [R.TRACE_REASON_POLICY]);
    assert.deepEqual(traced('agg_to', toLxcV4(WORLD, 17, udp(53, 41000))), [R.TRACE_REASON_CT_REPLY]);
    assert.deepEqual(traced('agg_to', toLxcV4(WORLD, 17, udp(53, 41000))), []);
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 17, udp(41000, 53))), []);
    // ICMP echo: the same, per echo id
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 1, icmp(8, 0, 0x4242))), [R.TRACE_REASON_POLICY]);
    assert.deepEqual(traced('agg_to', toLxcV4(WORLD, 1, icmp(0, 0, 0x4242))), [R.TRACE_REASON_CT_REPLY]);
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 1, icmp(8, 0, 0x4242, 2))), []);
    assert.deepEqual(traced('agg_to', toLxcV4(WORLD, 1, icmp(0, 0, 0x4242, 2))), []);
    // TCP: SYN, SYN-ACK and the first FIN each way are traced; plain ACKs are not
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 6, tcp(41001, 80, TCP.SYN))), [R.TRACE_REASON_POLICY]);
    assert.deepEqual(traced('agg_to', toLxcV4(WORLD, 6, tcp(80, 41001, TCP.SYN | TCP.ACK))), [
      R.TRACE_REASON_CT_REPLY,
    ]);
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 6, tcp(41001, 80, TCP.ACK))), []);
    assert.deepEqual(traced('agg_to', toLxcV4(WORLD, 6, tcp(80, 41001, TCP.ACK))), []);
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 6, tcp(41001, 80, TCP.FIN | TCP.ACK))), [
      R.TRACE_REASON_CT_ESTABLISHED,
    ]);
  });

  it('monitor aggregation: a direction not reported for 5 s is reported again, once', () => {
    const R = DEFS;
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 6, tcp(41002, 80, TCP.SYN))), [R.TRACE_REASON_POLICY]);
    assert.deepEqual(traced('agg_to', toLxcV4(WORLD, 6, tcp(80, 41002, TCP.SYN | TCP.ACK))), [
      R.TRACE_REASON_CT_REPLY,
    ]);
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 6, tcp(41002, 80, TCP.ACK))), []);
    // Both directions' last reports 6 s back, as if the connection had sent plain ACKs since.
    const ct4 = loader.maps.conntrack.ct4;
    const back = Number((6_000_000_000n >> 20n) & 0xffffffffn);
    const port = ((41002 & 0xff) << 8) | (41002 >> 8); // as the key holds it (network order)
    let aged = 0;
    forEachEntry(ct4, (kb, ko, vb, vo) => {
      const k = ctKey.decode(kb, ko);
      if (k.nexthdr !== 6 || (k.sport !== port && k.dport !== port)) return;
      const v = ctEntry.decode(vb, vo);
      ct4.update(
        kb.slice(ko, ko + ctKey.size),
        ctEntry.encode({
          ...v,
          lastTxReport: (v.lastTxReport - back) >>> 0,
          lastRxReport: (v.lastRxReport - back) >>> 0,
        }),
      );
      aged++;
    });
    assert.equal(aged, 1, 'the connection has one entry (the pod egress side)');
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 6, tcp(41002, 80, TCP.ACK))), [
      R.TRACE_REASON_CT_ESTABLISHED,
    ]);
    assert.deepEqual(traced('agg_from', lxcV4(WORLD, 6, tcp(41002, 80, TCP.ACK))), []);
    assert.deepEqual(traced('agg_to', toLxcV4(WORLD, 6, tcp(80, 41002, TCP.ACK))), [R.TRACE_REASON_CT_REPLY]);
    assert.deepEqual(traced('agg_to', toLxcV4(WORLD, 6, tcp(80, 41002, TCP.ACK))), []);
  });

  it('conntrack: established packets write only what moves on, and count only with accounting on', () => {
    // the entry as the map holds it (expiresInS is computed at listing)
    const entry = (sport: number) => {
      const { expiresInS: _, ...e } = loader.maps.conntrack.list().find((x) => x.sport === sport)!;
      return e;
    };
    const pkt = (sport: number, flags: number) => lxcV4(WORLD, 6, tcp(sport, 80, flags));
    const len = (sport: number, flags: number) => pkt(sport, flags).length;
    // default (off): the entry keeps its first packet's count
    assert.equal(run('agg_from', pkt(41020, TCP.SYN)).rv, DEFS.TC_ACT_OK);
    const syn = entry(41020);
    assert.equal(fromLxcAck(41020), DEFS.TC_ACT_OK);
    const est = entry(41020);
    assert.deepEqual([est.txPackets, est.txBytes], [1n, BigInt(len(41020, TCP.SYN))]);
    assert.ok(est.lifetimeNs - syn.lifetimeNs > 3600n * 1_000_000_000n, 'established: the long lifetime');
    assert.deepEqual(entry(41020), est);
    for (let i = 0; i < 5; i++) fromLxcAck(41020);
    assert.deepEqual(entry(41020), est, 'more established packets within a second: the entry is not written');
    // a RST is new: the flags move on and the deadline shortens to the close timeout
    run('agg_from', pkt(41020, TCP.RST | TCP.ACK));
    assert.ok(entry(41020).lifetimeNs < est.lifetimeNs - 3600n * 1_000_000_000n);
    // on: every packet and its bytes
    run('acct_from', pkt(41021, TCP.SYN));
    for (let i = 0; i < 3; i++) run('acct_from', pkt(41021, TCP.ACK));
    const counted = entry(41021);
    assert.deepEqual(
      [counted.txPackets, counted.txBytes],
      [4n, BigInt(len(41021, TCP.SYN) + 3 * len(41021, TCP.ACK))],
    );
  });

  it('ICMP errors quoting a tracked connection are related; others go through policy', () => {
    const quoted = ipv4(LXC.ipv4, WORLD, 6, tcp(40003, 443, TCP.SYN)).subarray(0, 28);
    const err = (q: Uint8Array) =>
      toLxcV4('192.0.2.1', 1, Uint8Array.from(Buffer.concat([Buffer.from([3, 3, 0, 0, 0, 0, 0, 0]), q])));
    const r = toLxc(err(quoted));
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    assert.ok(traces(r.ev).some((e) => e.reason === DEFS.TRACE_REASON_CT_RELATED));
    const other = ipv4(LXC.ipv4, WORLD, 6, tcp(49999, 443, TCP.SYN)).subarray(0, 28);
    assert.equal(toLxc(err(other)).rv, DEFS.TC_ACT_SHOT);
  });

  it('unenforced direction: the flagged wildcard allows without a verdict; unflagged it is a reported allow-all', () => {
    const policy = loader.maps.policy;
    const wildcard = entry(0, 1, 0, 0, 40, false, 0);
    policy.replace(LXC.id, [wildcard], { ingressEnforced: true, egressEnforced: false });
    assert.equal(policy.dump(LXC.id)![0]!.flags, DEFS.POLICY_F_UNENFORCED);
    let r = fromLxc(lxcV4(WORLD, 17, udp(5000, 53)));
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    assert.equal(verdicts(r.ev).length, 0, 'no verdict for an unenforced direction');

    // enforcement changes without the entry changing: apply() fixes the flag
    policy.apply(LXC.id, { upserts: [], deletes: [] }, { ingressEnforced: true, egressEnforced: true });
    assert.equal(policy.dump(LXC.id)![0]!.flags, 0);
    r = fromLxc(lxcV4(WORLD, 17, udp(5001, 53)));
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    assert.equal(verdicts(r.ev)[0]?.matchType, DEFS.POLICY_MATCH_ALL);
  });

  it('local delivery: MACs rewritten, TTL decremented (checksum valid), redirected to the peer', () => {
    loader.writeEndpoint({ ...PEER, interface: 'lxcb', ifindex: 4242 });
    loader.writeEndpoint({ ...LXC, interface: 'lxca', ifindex: 4241 });
    loader.maps.policy.replace(LXC.id, [entry(0, 1, 0, 0, 40, false, 0)], {
      ingressEnforced: true,
      egressEnforced: false,
    });
    const r = fromLxc(lxcV4(PEER.ipv4, 6, tcp(41000, 8080, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_REDIRECT);
    assert.equal(formatMac(r.out.subarray(0, 6)), PEER.mac);
    assert.equal(formatMac(r.out.subarray(6, 12)), PEER.nodeMac);
    const ip = r.out.subarray(14, 34);
    assert.equal(ip[8], 63, 'TTL');
    assert.equal(csum(ip), 0, 'IPv4 header checksum');
    const t = traces(r.ev).find((e) => e.hdr.subtype === DEFS.TRACE_TO_LXC);
    assert.deepEqual([t?.dstId, t?.dstLabel, t?.ifindex], [PEER.id, PEER.identity, 4242]);
    assert.equal(verdicts(r.ev).length, 0);
  });

  it("local delivery enforces the peer's ingress policy, attributed to the peer", () => {
    loader.maps.policy.replace(PEER.id, [entry(LXC.identity, 0, 6, 8080, 64, false, 21)]);
    let r = fromLxc(lxcV4(PEER.ipv4, 6, tcp(41001, 8081, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_SHOT);
    assert.deepEqual([drops(r.ev)[0]?.hdr.subtype, drops(r.ev)[0]?.hdr.source], [DEFS.DROP_POLICY, PEER.id]);
    assert.deepEqual([verdicts(r.ev)[0]?.hdr.source, verdicts(r.ev)[0]?.dir], [PEER.id, 1]);
    r = fromLxc(lxcV4(PEER.ipv4, 6, tcp(41002, 8080, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_REDIRECT);
    // the peer's answer goes out through its own from-container; its egress denies all, yet replies pass
    loader.maps.policy.replace(PEER.id, [entry(LXC.identity, 0, 6, 8080, 64, false, 21)], {
      ingressEnforced: true,
      egressEnforced: true,
    });
    r = run(
      'peer_from',
      frame.v4(PEER.mac, PEER.nodeMac, PEER.ipv4, LXC.ipv4, 6, tcp(8080, 41002, TCP.SYN | TCP.ACK)),
    );
    assert.equal(r.rv, DEFS.TC_ACT_REDIRECT);
    assert.ok(traces(r.ev).some((e) => e.reason === DEFS.TRACE_REASON_CT_REPLY));
  });

  it('local delivery: the incrementally updated header checksum stays valid whatever the TTL and header', () => {
    // the peer's ingress policy (previous test) allows LXC to 8080
    for (const ttl of [2, 3, 64, 128, 255])
      for (const id of [0x0000, 0x1234, 0xfeff, 0xffff]) {
        const r = fromLxc(withTtl(lxcV4(PEER.ipv4, 6, tcp(42000 + ttl, 8080, TCP.SYN)), ttl, id));
        assert.equal(r.rv, DEFS.TC_ACT_REDIRECT, `TTL ${ttl}, id ${id}`);
        assert.equal(r.out[22], ttl - 1, 'TTL');
        assert.equal(csum(r.out.subarray(14, 34)), 0, `IPv4 header checksum, TTL ${ttl}, id ${id}`);
      }
  });

  it('TTL 1 towards a local pod is dropped with 196', () => {
    const r = fromLxc(withTtl(lxcV4(PEER.ipv4, 6, tcp(41002, 8080, TCP.ACK)), 1));
    assert.equal(r.rv, DEFS.TC_ACT_SHOT);
    assert.equal(drops(r.ev)[0]?.hdr.subtype, DEFS.DROP_TTL_EXCEEDED);
  });

  it('IPv6: spoofed source dropped, local peer reached with an L3 allow', () => {
    const v6 = (src: string, dst: string, nh: number, l4: Uint8Array) =>
      frame.v6(LXC.mac, LXC.nodeMac, src, dst, nh, l4);
    assert.equal(fromLxc(v6('fd00::11', '2001:db8::5', 6, tcp(1, 2, TCP.SYN))).rv, DEFS.TC_ACT_SHOT);
    loader.maps.policy.apply(PEER.id, {
      upserts: [entry(LXC.identity, 0, 0, 0, 40, false, 22)],
      deletes: [],
    });
    const r = fromLxc(v6(LXC.ipv6, PEER.ipv6, 17, udp(5000, 53)));
    assert.equal(r.rv, DEFS.TC_ACT_REDIRECT);
    assert.equal(r.out[21], 63, 'hop limit');
    assert.equal(verdicts(r.ev)[0]?.matchType, DEFS.POLICY_MATCH_L3_ONLY);
    assert.equal(verdicts(r.ev)[0]?.ipv6, 1);
  });

  it('audit mode: a denied connection is allowed and reported as audited, without a drop', () => {
    loader.maps.policy.replace(101, []);
    const r = run('audit_to', toLxcV4(WORLD, 6, tcp(40005, 9999, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    assert.deepEqual([verdicts(r.ev)[0]?.audited, verdicts(r.ev)[0]?.verdict], [1, -133]);
    assert.equal(drops(r.ev).length, 0);
  });

  it("CT flags: a pod of another node is the entry's cluster peer; a new connection on the tuple of the proxy's upstream one keeps nothing of that entry", () => {
    const REMOTE = '10.0.2.30'; // a pod of another node
    const ct4 = loader.maps.conntrack.ct4;
    /** The flags of the entries whose ports are `a` and `b` (either way round). */
    const flagsOf = (a: number, b: number): number[] => {
      const be = (n: number) => ((n & 0xff) << 8) | (n >> 8); // as the key holds it (network order)
      const out: number[] = [];
      forEachEntry(ct4, (kb, ko, vb, vo) => {
        const k = ctKey.decode(kb, ko);
        if (k.nexthdr === 6 && [k.sport, k.dport].sort().join() === [be(a), be(b)].sort().join())
          out.push(ctEntry.decode(vb, vo).flags);
      });
      return out;
    };
    loader.maps.ipcache.upsert(`${REMOTE}/32`, { identity: 3000 });
    cleanup.add(() => void loader.maps.ipcache.delete(`${REMOTE}/32`));
    loader.maps.policy.replace(
      LXC.id,
      [entry(0, 1, 0, 0, 40, false, 0), entry(3000, 0, 6, 8080, 64, false, 31)],
      {
        ingressEnforced: true,
        egressEnforced: false,
      },
    );
    // egress: the peer's identity decides, the world is no cluster peer
    assert.notEqual(fromLxc(lxcV4(REMOTE, 6, tcp(41500, 80, TCP.SYN))).rv, DEFS.TC_ACT_SHOT);
    assert.deepEqual(flagsOf(41500, 80), [DEFS.CT_F_CLUSTER_PEER]);
    assert.notEqual(fromLxc(lxcV4(WORLD, 6, tcp(41501, 80, TCP.SYN))).rv, DEFS.TC_ACT_SHOT);
    assert.deepEqual(flagsOf(41501, 80), [0]);
    // ingress: the proxy's upstream connection (marked: the proxy applied the ingress rules) ...
    const mark = new Uint8Array(192); // struct __sk_buff (the kernel writes all of it back), mark at 8
    new DataView(mark.buffer).setUint32(8, DEFS.MARK_MAGIC_PROXY_INGRESS, true);
    const syn = toLxcV4(REMOTE, 6, tcp(45000, 8080, TCP.SYN));
    assert.equal(progs.lxc_to!.testRun({ data: syn, ctx: mark }).retval, DEFS.TC_ACT_OK);
    assert.deepEqual(flagsOf(45000, 8080), [DEFS.CT_F_FROM_PROXY | DEFS.CT_F_CLUSTER_PEER]);
    // ... then the remote pod's own connection on that tuple: its own entry, not the proxy's
    assert.equal(toLxc(syn).rv, DEFS.TC_ACT_OK);
    assert.deepEqual(flagsOf(45000, 8080), [DEFS.CT_F_CLUSTER_PEER]);
  });

  it('ICMPv6 ND/MLD types to a global address are policed like any ICMPv6: a denied peer is not reached', () => {
    loader.writeEndpoint({ ...PEER, interface: 'lxcb', ifindex: 4242 });
    loader.maps.policy.replace(PEER.id, []); // the peer: default-deny ingress
    loader.maps.policy.replace(LXC.id, [entry(0, 1, 0, 0, 40, false, 0)], {
      ingressEnforced: true,
      egressEnforced: false,
    });
    const toPeer = (type: number, body: Uint8Array, hopLimit: number) =>
      fromLxc(
        frame.v6(
          LXC.mac,
          LXC.nodeMac,
          LXC.ipv6,
          PEER.ipv6,
          58,
          icmp6(LXC.ipv6, PEER.ipv6, type, body),
          hopLimit,
        ),
      );
    // A neighbour solicitation for the pod's own address, and an advertisement: before, both went
    // to the node's stack unpoliced, which routed them to the peer.
    for (const [type, hl] of [
      [135, 255],
      [136, 255],
      [135, 64],
    ] as const) {
      const r = toPeer(type, nsBody(LXC.ipv6, LXC.mac), hl);
      assert.equal(r.rv, DEFS.TC_ACT_SHOT, `type ${type} hop limit ${hl}`);
      const d = drops(r.ev)[0];
      assert.deepEqual([d?.hdr.subtype, d?.hdr.source], [DEFS.DROP_POLICY, PEER.id]);
      const v = verdicts(r.ev)[0];
      assert.deepEqual([v?.proto, v?.dstPort, v?.dir], [58, type, 1], 'policed as ICMPv6 of that type');
    }
    // Towards the pod: an NS from a global address to the pod's global address meets its ingress policy.
    loader.maps.policy.replace(LXC.id, []);
    const r = toLxc(
      frame.v6(
        LXC.nodeMac,
        LXC.mac,
        WORLD6,
        LXC.ipv6,
        58,
        icmp6(WORLD6, LXC.ipv6, 135, nsBody(LXC.ipv6, LXC.mac)),
        255,
      ),
    );
    assert.equal(r.rv, DEFS.TC_ACT_SHOT);
    assert.equal(drops(r.ev)[0]?.hdr.subtype, DEFS.DROP_POLICY);
  });

  it('real neighbour discovery and MLD on the link still work under a default-deny policy', () => {
    loader.maps.policy.replace(LXC.id, []); // both directions default-deny
    const router = 'fd00::1';
    const group = solicitedNode(router);
    // NS for the router to its solicited-node group: answered with a router NA carrying NODE_MAC.
    const ns = icmp6(LXC.ipv6, group, 135, nsBody(router, LXC.mac));
    let r = fromLxc(frame.v6(LXC.mac, '33:33:ff:00:00:01', LXC.ipv6, group, 58, ns, 255));
    assert.equal(r.rv, DEFS.TC_ACT_REDIRECT);
    const na = r.out.subarray(54);
    assert.equal(na[0], 136, 'neighbour advertisement');
    assert.equal(
      Buffer.from(na.subarray(8, 24)).toString('hex'),
      Buffer.from(r.out.subarray(22, 38)).toString('hex'),
    );
    assert.equal(formatMac(na.subarray(26, 32)), LXC.nodeMac, 'target link-layer address');
    assert.equal(r.out[21], 255, 'hop limit');
    assert.equal(icmp6Csum(router, LXC.ipv6, na), 0, 'ICMPv6 checksum');
    assert.equal(drops(r.ev).length, 0);
    // Duplicate address detection (unspecified source) goes to the node's stack.
    const dadGroup = solicitedNode(LXC.ipv6);
    r = fromLxc(
      frame.v6(
        LXC.mac,
        '33:33:ff:00:00:10',
        '::',
        dadGroup,
        58,
        icmp6('::', dadGroup, 135, nsBody(LXC.ipv6, LXC.mac)),
        255,
      ),
    );
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    // An MLDv2 report to ff02::16 with hop limit 1.
    const mld = icmp6('fe80::10', 'ff02::16', 143, new Uint8Array(4));
    r = fromLxc(frame.v6(LXC.mac, '33:33:00:00:00:16', 'fe80::10', 'ff02::16', 58, mld, 1));
    assert.equal(r.rv, DEFS.TC_ACT_OK);
    assert.equal(drops(r.ev).length + verdicts(r.ev).length, 0, 'neither policed nor dropped');
    // The same MLD report with a hop limit that could leave the link is policed.
    r = fromLxc(frame.v6(LXC.mac, '33:33:00:00:00:16', 'fe80::10', 'ff02::16', 58, mld, 64));
    assert.equal(r.rv, DEFS.TC_ACT_SHOT);
    // The node resolving the pod: NS from its link-local address to the pod's solicited-node group.
    const fromNode = icmp6('fe80::1', dadGroup, 135, nsBody(LXC.ipv6, LXC.nodeMac));
    r = toLxc(frame.v6(LXC.nodeMac, '33:33:ff:00:00:10', 'fe80::1', dadGroup, 58, fromNode, 255));
    assert.equal(r.rv, DEFS.TC_ACT_OK);
  });

  it('allow-localhost: the host identity reaches a default-deny endpoint; with allowLocalhost policy it is dropped', () => {
    loader.maps.ipcache.upsert(`${NODE_IP}/32`, { identity: DEFS.ID_HOST });
    loader.maps.policy.replace(LXC.id, []);
    loader.maps.policy.replace(102, []);
    const syn = frame.v4(LXC.nodeMac, LXC.mac, NODE_IP, LXC.ipv4, 6, tcp(45000, 8080, TCP.SYN));
    let r = toLxc(syn);
    assert.equal(r.rv, DEFS.TC_ACT_OK, 'host -> pod allowed by default');
    assert.equal(drops(r.ev).length + verdicts(r.ev).length, 0);
    r = fromLxc(lxcV4(NODE_IP, 6, tcp(8080, 45000, TCP.SYN | TCP.ACK)));
    assert.equal(r.rv, DEFS.TC_ACT_OK, "the pod's answer passes as a reply despite its default-deny egress");
    assert.equal(
      toLxc(toLxcV4(WORLD, 6, tcp(45001, 8080, TCP.SYN))).rv,
      DEFS.TC_ACT_SHOT,
      'world still denied',
    );

    r = run('strict_to', frame.v4(LXC.nodeMac, LXC.mac, NODE_IP, LXC.ipv4, 6, tcp(45002, 8080, TCP.SYN)));
    assert.equal(r.rv, DEFS.TC_ACT_SHOT, 'allow-localhost=policy: host traffic is policed');
    assert.deepEqual(
      [drops(r.ev)[0]?.hdr.subtype, drops(r.ev)[0]?.srcLabel],
      [DEFS.DROP_POLICY, DEFS.ID_HOST],
    );
    assert.throws(
      () => DatapathLoader.open({ bpffs: '/nonexistent', node: { allowLocalhost: 'sometimes' as 'always' } }),
      /allowLocalhost: expected 'always' or 'policy', got "sometimes"/,
    );
  });

  it('lists metrics and counts no lost events', () => {
    const m = loader.maps.metrics.list();
    assert.ok(
      m.some((x) => x.reason === 0 && x.endpointId === LXC.id && x.direction === 'egress' && x.packets > 0n),
    );
    assert.ok(
      m.some((x) => x.reason === DEFS.DROP_POLICY && x.endpointId === PEER.id && x.direction === 'ingress'),
    );
    assert.equal(loader.maps.events.lost(), 0n);
    const n = loader.maps.conntrack.flush();
    assert.ok(n > 0);
    assert.equal(loader.maps.conntrack.list().length, 0);
    assert.equal(loader.maps.policy.delete(LXC.id), true);
    assert.equal(loader.maps.policy.has(LXC.id), false);
  });
});
