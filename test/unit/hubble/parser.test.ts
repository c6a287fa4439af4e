import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type EndpointInfo,
  EventVersionError,
  ipv6,
  type ParserContext,
  parseEvent,
  parseEventTimed,
  TruncatedEventError,
  UnknownEventTypeError,
} from '../../../src/hubble/index.js';
import {
  dropEvent,
  PODS,
  packet,
  TCP_ACK,
  TCP_SYN,
  tiefighterSyn,
  traceEvent,
  verdictEvent,
  worldGetters,
} from './helpers/events.js';

const T0 = 1700596862; // 2023-11-21T20:01:02Z
const ctx: ParserContext = { nodeName: 'node1', bootTime: { sec: T0, nsec: 0 }, ...worldGetters() };
const { tiefighter: tf, deathstar: ds, coredns: dns, xwing } = PODS;

describe('hubble parser', () => {
  it('trace FROM_ENDPOINT, IPv4 TCP SYN, new connection: egress, not a reply, endpoints resolved', () => {
    const ev = traceEvent({
      obsPoint: 5,
      source: tf.ep,
      srcLabel: tf.id,
      dstLabel: ds.id,
      reason: 0,
      ifindex: 17,
      ktimeNs: 123_456_789n,
      pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 51234, dport: 80, flags: TCP_SYN }),
    });
    const r = parseEventTimed(ev, { ...ctx, interfaceName: (i) => (i === 17 ? 'lxc1234' : undefined) })!;
    const f = r.flow;
    assert.equal(f.time, '2023-11-21T20:01:02.123456789Z');
    assert.equal(r.sec, T0);
    assert.equal(r.nsec, 123456789);
    assert.equal(f.verdict, 'FORWARDED');
    assert.equal(f.drop_reason, undefined);
    assert.deepEqual(f.ethernet, { source: '0a:00:00:00:00:01', destination: '0a:00:00:00:00:02' });
    assert.deepEqual(f.IP, { source: tf.ip, destination: ds.ip, ipVersion: 'IPv4' });
    assert.deepEqual(f.l4, { TCP: { source_port: 51234, destination_port: 80, flags: { SYN: true } } });
    assert.deepEqual(f.source, {
      ID: tf.ep,
      identity: tf.id,
      namespace: 'default',
      labels: [...tf.labels],
      pod_name: 'tiefighter',
    });
    assert.equal(f.destination?.pod_name, ds.pod);
    assert.equal(f.destination?.ID, ds.ep);
    assert.equal(f.Type, 'L3_L4');
    assert.equal(f.node_name, 'node1');
    assert.deepEqual(f.event_type, { type: 4, sub_type: 5 });
    assert.equal(f.traffic_direction, 'EGRESS');
    assert.equal(f.trace_observation_point, 'FROM_ENDPOINT');
    assert.equal(f.trace_reason, 'NEW');
    assert.equal(f.is_reply, false);
    assert.equal(f.reply, undefined);
    assert.deepEqual(f.interface, { index: 17, name: 'lxc1234' });
    assert.equal(f.Summary, 'TCP Flags: SYN');
    assert.match(f.uuid!, /^[0-9a-f-]{36}$/);
    assert.deepEqual(f.emitter?.name, 'Hubble');
  });

  it('trace TO_ENDPOINT (0) of a reply: TO_ENDPOINT, is_reply, direction from the emitting endpoint', () => {
    // SYN-ACK from deathstar back to tiefighter, delivered to tiefighter (emitter = tiefighter = destination)
    const f = parseEvent(
      traceEvent({
        obsPoint: 0,
        source: tf.ep,
        srcLabel: ds.id,
        dstLabel: tf.id,
        dstId: tf.ep,
        reason: 2,
        ktimeNs: 1n,
        pkt: packet({
          src: ds.ip,
          dst: tf.ip,
          proto: 'tcp',
          sport: 80,
          dport: 51234,
          flags: TCP_SYN | TCP_ACK,
        }),
      }),
      ctx,
    )!;
    assert.equal(f.trace_observation_point, 'TO_ENDPOINT');
    assert.deepEqual(f.event_type, { type: 4 });
    assert.equal(f.is_reply, true);
    assert.equal(f.reply, true);
    assert.equal(f.trace_reason, 'REPLY');
    // emitter is not the packet's source, and the packet is a reply → the connection is tiefighter's egress
    assert.equal(f.traffic_direction, 'EGRESS');
    assert.equal(f.Summary, 'TCP Flags: SYN, ACK');
    assert.deepEqual(f.l4?.TCP?.flags, { SYN: true, ACK: true });
    assert.equal(f.time, '2023-11-21T20:01:02.000000001Z');
  });

  it('trace TO_STACK of a new connection to the world, received at the destination side: ingress', () => {
    const f = parseEvent(
      traceEvent({
        obsPoint: 3,
        source: ds.ep,
        srcLabel: 2,
        dstLabel: ds.id,
        reason: 1,
        ktimeNs: 5_000_000n,
        pkt: packet({ src: '8.8.8.8', dst: ds.ip, proto: 'udp', sport: 53, dport: 40000 }),
      }),
      ctx,
    )!;
    assert.equal(f.trace_observation_point, 'TO_STACK');
    assert.equal(f.trace_reason, 'ESTABLISHED');
    assert.equal(f.traffic_direction, 'INGRESS');
    assert.deepEqual(f.source, { identity: 2, labels: ['reserved:world'] });
    assert.deepEqual(f.l4, { UDP: { source_port: 53, destination_port: 40000 } });
    assert.equal(f.Summary, 'UDP');
    assert.equal(f.time, '2023-11-21T20:01:02.005Z');
  });

  it('drop (IPv6 UDP, policy denied at the destination): DROPPED, reason code and name, ingress, reply unknown', () => {
    const f = parseEvent(
      dropEvent({
        reason: 133,
        source: ds.ep,
        srcLabel: tf.id,
        dstLabel: ds.id,
        dstId: ds.ep,
        ktimeNs: 2_000_000_000n,
        pkt: packet({ src: tf.ip6, dst: ds.ip6, proto: 'udp', sport: 40000, dport: 53 }),
      }),
      ctx,
    )!;
    assert.equal(f.verdict, 'DROPPED');
    assert.equal(f.drop_reason, 133);
    assert.equal(f.drop_reason_desc, 'POLICY_DENIED');
    assert.deepEqual(f.IP, { source: 'fd00::10', destination: 'fd00::20', ipVersion: 'IPv6' });
    assert.deepEqual(f.event_type, { type: 1, sub_type: 133 });
    assert.equal(f.traffic_direction, 'INGRESS');
    assert.equal(f.is_reply, undefined);
    assert.equal(f.trace_observation_point, undefined);
    assert.deepEqual(f.file, { name: 'bpf_lxc.c' });
    assert.equal(f.source?.pod_name, 'tiefighter');
    assert.equal(f.time, '2023-11-21T20:01:04Z');
  });

  it('drop at the source endpoint (deny policy on egress) is egress; remote destinations resolve via ipcache info', () => {
    const f = parseEvent(
      dropEvent({
        reason: 181,
        source: tf.ep,
        srcLabel: tf.id,
        dstLabel: xwing.id,
        ktimeNs: 0n,
        pkt: packet({ src: tf.ip, dst: xwing.ip, proto: 'tcp', sport: 1000, dport: 443, flags: TCP_SYN }),
      }),
      ctx,
    )!;
    assert.equal(f.drop_reason_desc, 'POLICY_DENY');
    assert.equal(f.traffic_direction, 'EGRESS');
    assert.deepEqual(f.destination, {
      identity: xwing.id,
      namespace: 'default',
      labels: [...xwing.labels],
      pod_name: 'xwing',
    });
  });

  it('policy verdict events: allowed (ingress, L3-L4), denied (egress), audited; type 9 and 5 both read as upstream type 5', () => {
    const pkt = packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 51234, dport: 80, flags: TCP_SYN });
    const allowed = parseEvent(
      verdictEvent({
        dir: 1,
        source: ds.ep,
        remoteLabel: tf.id,
        verdict: 0,
        dstPort: 80,
        proto: 6,
        matchType: 2,
        ktimeNs: 0n,
        pkt,
      }),
      ctx,
    )!;
    assert.equal(allowed.verdict, 'FORWARDED');
    assert.deepEqual(allowed.event_type, { type: 5 });
    assert.equal(allowed.traffic_direction, 'INGRESS');
    assert.equal(allowed.policy_match_type, 2);
    assert.equal(allowed.is_reply, false);
    assert.equal(allowed.source?.identity, tf.id);
    assert.equal(allowed.destination?.identity, ds.id, 'local identity from the endpoint getter');
    assert.equal(allowed.destination?.ID, ds.ep);

    const denied = parseEvent(
      verdictEvent({
        type: 5,
        dir: 2,
        source: tf.ep,
        remoteLabel: ds.id,
        verdict: -181,
        dstPort: 80,
        proto: 6,
        matchType: 0,
        ktimeNs: 0n,
        pkt,
      }),
      ctx,
    )!;
    assert.equal(denied.verdict, 'DROPPED');
    assert.equal(denied.drop_reason, 181);
    assert.equal(denied.drop_reason_desc, 'POLICY_DENY');
    assert.equal(denied.traffic_direction, 'EGRESS');
    assert.equal(denied.is_reply, undefined);
    assert.deepEqual(denied.event_type, { type: 5 });

    const audited = parseEvent(
      verdictEvent({
        dir: 1,
        source: ds.ep,
        remoteLabel: tf.id,
        verdict: -133,
        dstPort: 80,
        proto: 6,
        matchType: 0,
        audited: true,
        ktimeNs: 0n,
        pkt,
      }),
      ctx,
    )!;
    assert.equal(audited.verdict, 'AUDIT');
    assert.equal(audited.drop_reason_desc, undefined);
  });

  it('ICMPv4 and ICMPv6 type/code and upstream-style summaries', () => {
    const echo = parseEvent(
      traceEvent({
        obsPoint: 5,
        source: tf.ep,
        srcLabel: tf.id,
        dstLabel: dns.id,
        reason: 0,
        ktimeNs: 0n,
        pkt: packet({ src: tf.ip, dst: dns.ip, proto: 'icmp', icmpType: 8 }),
      }),
      ctx,
    )!;
    assert.deepEqual(echo.l4, { ICMPv4: { type: 8 } });
    assert.equal(echo.Summary, 'ICMPv4 EchoRequest');
    const unreach = parseEvent(
      traceEvent({
        obsPoint: 0,
        source: tf.ep,
        srcLabel: dns.id,
        dstLabel: tf.id,
        reason: 3,
        ktimeNs: 0n,
        pkt: packet({ src: dns.ip, dst: tf.ip, proto: 'icmp', icmpType: 3, icmpCode: 3 }),
      }),
      ctx,
    )!;
    assert.deepEqual(unreach.l4, { ICMPv4: { type: 3, code: 3 } });
    assert.equal(unreach.Summary, 'ICMPv4 DestinationUnreachable(Port)');
    assert.equal(unreach.trace_reason, 'RELATED');
    const reply6 = parseEvent(
      traceEvent({
        obsPoint: 0,
        source: tf.ep,
        srcLabel: dns.id,
        dstLabel: tf.id,
        reason: 2,
        ktimeNs: 0n,
        pkt: packet({ src: dns.ip6, dst: tf.ip6, proto: 'icmp', icmpType: 129 }),
      }),
      ctx,
    )!;
    assert.deepEqual(reply6.l4, { ICMPv6: { type: 129 } });
    assert.equal(reply6.Summary, 'ICMPv6 EchoReply');
    assert.equal(reply6.is_reply, true);
  });

  it('non-IP packets keep Ethernet only; an empty capture gives no layers', () => {
    const arp = new Uint8Array(42);
    arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0, 0, 0, 0, 1, 0x08, 0x06]);
    const f = parseEvent(
      traceEvent({
        obsPoint: 5,
        source: tf.ep,
        srcLabel: tf.id,
        dstLabel: 0,
        reason: 0,
        ktimeNs: 0n,
        pkt: arp,
      }),
      ctx,
    )!;
    assert.deepEqual(f.ethernet, { source: '0a:00:00:00:00:01', destination: 'ff:ff:ff:ff:ff:ff' });
    assert.equal(f.IP, undefined);
    assert.equal(f.Summary, 'Ethernet');
    const empty = traceEvent({
      obsPoint: 5,
      source: tf.ep,
      srcLabel: tf.id,
      dstLabel: 0,
      reason: 0,
      ktimeNs: 0n,
      pkt: new Uint8Array(0),
    });
    const g = parseEvent(empty, ctx)!;
    assert.equal(g.ethernet, undefined);
    assert.equal(g.Summary, '');
    assert.deepEqual(
      g.source,
      { identity: tf.id, labels: [...tf.labels] },
      'no IP: identity and its labels only',
    );
  });

  it('typed errors: unknown type, truncated record, unknown layout version; debug events carry no flow', () => {
    const bad = new Uint8Array(168);
    bad[0] = 77;
    assert.throws(
      () => parseEvent(bad, ctx),
      (e: unknown) => e instanceof UnknownEventTypeError && e.eventType === 77,
    );
    const short = traceEvent({
      obsPoint: 5,
      source: 1,
      srcLabel: 1,
      dstLabel: 2,
      reason: 0,
      ktimeNs: 0n,
      pkt: new Uint8Array(0),
    }).subarray(0, 30);
    assert.throws(
      () => parseEvent(short, ctx),
      (e: unknown) => e instanceof TruncatedEventError && e.expected === 40,
    );
    assert.throws(() => parseEvent(new Uint8Array(0), ctx), TruncatedEventError);
    const v2 = traceEvent({
      obsPoint: 5,
      source: 1,
      srcLabel: 1,
      dstLabel: 2,
      reason: 0,
      ktimeNs: 0n,
      pkt: new Uint8Array(0),
      version: 2,
    });
    assert.throws(() => parseEvent(v2, ctx), EventVersionError);
    const dbg = new Uint8Array(64);
    dbg[0] = 2;
    assert.equal(parseEvent(dbg, ctx), undefined);
  });

  it('formats IPv6 addresses as RFC 5952 (like Go)', () => {
    const b = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((x) => Number.parseInt(x, 16)));
    assert.equal(ipv6(b('fd000000000000000000000000000001'), 0), 'fd00::1');
    assert.equal(ipv6(b('00000000000000000000000000000000'), 0), '::');
    assert.equal(ipv6(b('00000000000000000000000000000001'), 0), '::1');
    assert.equal(ipv6(b('20010db8000000010000000000000001'), 0), '2001:db8:0:1::1');
    assert.equal(ipv6(b('20010db8000000000001000000000001'), 0), '2001:db8::1:0:0:1');
    assert.equal(ipv6(b('00000000000000000000ffff0a000001'), 0), '::ffff:10.0.0.1');
    assert.equal(ipv6(b('fe800000000000000000000000000000'), 0), 'fe80::');
  });

  it('flows serialise to upstream JSON field names', () => {
    const f = parseEvent(tiefighterSyn(1), { ...ctx, uuid: false })!;
    const keys = Object.keys(JSON.parse(JSON.stringify(f)));
    for (const k of [
      'time',
      'verdict',
      'ethernet',
      'IP',
      'l4',
      'source',
      'destination',
      'Type',
      'node_name',
      'event_type',
      'traffic_direction',
      'trace_observation_point',
      'is_reply',
      'Summary',
    ]) {
      assert.ok(keys.includes(k), `missing ${k}`);
    }
    assert.equal(keys[0], 'time');
    assert.equal(f.uuid, undefined);
  });
});

describe('hubble parser: parts flows share', () => {
  const syn = () => tiefighterSyn();

  it('flows of one endpoint share its frozen description until what the node knows of it changes', () => {
    let info: EndpointInfo = {
      id: tf.ep,
      identity: tf.id,
      namespace: 'default',
      podName: 'tiefighter',
      labels: tf.labels,
    };
    const c: ParserContext = { ...ctx, endpointByIp: (ip) => (ip === tf.ip ? info : undefined) };
    const a = parseEvent(syn(), c)!;
    const b = parseEvent(syn(), c)!;
    assert.equal(a.source, b.source, 'one description for both flows');
    assert.ok(Object.isFrozen(a.source) && Object.isFrozen(a.source?.labels));
    assert.throws(() => {
      (a.source as { pod_name?: string }).pod_name = 'other';
    }, TypeError);
    assert.equal(a.l4?.TCP?.flags, b.l4?.TCP?.flags, 'one flags object per flag combination');
    assert.equal(a.emitter, b.emitter);
    // the pod is relabelled: the agent hands out a new info, flows describe it anew
    info = { ...info, labels: [...tf.labels, 'k8s:version=2'] };
    const after = parseEvent(syn(), c)!;
    assert.notEqual(after.source, a.source);
    assert.deepEqual(after.source?.labels, [...tf.labels, 'k8s:version=2']);
    assert.deepEqual(a.source?.labels, [...tf.labels], 'flows made before keep what they said');
  });

  it("an address known by identity only follows the identity's labels", () => {
    let labels: readonly string[] = ['reserved:world'];
    const c: ParserContext = { ...ctx, endpointByIp: () => undefined, identityLabels: () => labels };
    const first = parseEvent(syn(), c)!;
    assert.deepEqual(first.destination?.labels, ['reserved:world']);
    assert.equal(parseEvent(syn(), c)!.destination, first.destination);
    labels = ['cidr:10.0.0.0/8', 'reserved:world'];
    assert.deepEqual(parseEvent(syn(), c)!.destination?.labels, ['cidr:10.0.0.0/8', 'reserved:world']);
  });
});
