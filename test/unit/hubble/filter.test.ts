import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compileFilter,
  compileFilters,
  FilterError,
  type Flow,
  type FlowFilter,
  type FlowPredicate,
  type ParserContext,
  parseEvent,
} from '../../../src/hubble/index.js';
import {
  dropEvent,
  PODS,
  packet,
  TCP_ACK,
  TCP_SYN,
  traceEvent,
  verdictEvent,
  worldGetters,
} from './helpers/events.js';

const ctx: ParserContext = {
  nodeName: 'kind-worker',
  bootTime: { sec: 1700596862, nsec: 0 },
  ...worldGetters(),
};
const { tiefighter: tf, deathstar: ds, coredns: dns, xwing } = PODS;

const flows: Record<string, Flow> = {
  // tiefighter -> deathstar:80 SYN, forwarded (from-endpoint)
  tfToDs: parseEvent(
    traceEvent({
      obsPoint: 5,
      source: tf.ep,
      srcLabel: tf.id,
      dstLabel: ds.id,
      reason: 0,
      ktimeNs: 0n,
      pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 51234, dport: 80, flags: TCP_SYN }),
    }),
    ctx,
  )!,
  // reply deathstar -> tiefighter SYN-ACK (to-endpoint)
  dsToTfReply: parseEvent(
    traceEvent({
      obsPoint: 0,
      source: tf.ep,
      srcLabel: ds.id,
      dstLabel: tf.id,
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
  )!,
  // xwing -> deathstar:80 dropped by policy (IPv6)
  xwDrop: parseEvent(
    dropEvent({
      reason: 133,
      source: ds.ep,
      srcLabel: xwing.id,
      dstLabel: ds.id,
      ktimeNs: 2n,
      pkt: packet({ src: xwing.ip6, dst: ds.ip6, proto: 'tcp', sport: 40000, dport: 80, flags: TCP_SYN }),
    }),
    ctx,
  )!,
  // tiefighter -> coredns:53 UDP
  dnsQuery: parseEvent(
    traceEvent({
      obsPoint: 5,
      source: tf.ep,
      srcLabel: tf.id,
      dstLabel: dns.id,
      reason: 0,
      ktimeNs: 3n,
      pkt: packet({ src: tf.ip, dst: dns.ip, proto: 'udp', sport: 33333, dport: 53 }),
    }),
    ctx,
  )!,
  // ping tiefighter -> world
  ping: parseEvent(
    traceEvent({
      obsPoint: 3,
      source: tf.ep,
      srcLabel: tf.id,
      dstLabel: 2,
      reason: 0,
      ktimeNs: 4n,
      pkt: packet({ src: tf.ip, dst: '1.1.1.1', proto: 'icmp', icmpType: 8 }),
    }),
    ctx,
  )!,
  // policy verdict allowing tiefighter into deathstar
  verdict: parseEvent(
    verdictEvent({
      dir: 1,
      source: ds.ep,
      remoteLabel: tf.id,
      verdict: 0,
      dstPort: 80,
      proto: 6,
      matchType: 2,
      ktimeNs: 5n,
      pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 51234, dport: 80, flags: TCP_SYN }),
    }),
    ctx,
  )!,
};

/** Names of the flows a predicate keeps, sorted. */
function kept(from: Record<string, Flow>, p: FlowPredicate): string[] {
  return Object.entries(from)
    .filter(([, fl]) => p(fl))
    .map(([k]) => k)
    .sort();
}

function select(f: FlowFilter): string[] {
  return kept(flows, compileFilter(f));
}

describe('hubble filters: one field at a time', () => {
  it('source/destination IP, exact (normalised) and CIDR, v4 and v6', () => {
    assert.deepEqual(select({ source_ip: [tf.ip] }), ['dnsQuery', 'ping', 'tfToDs', 'verdict']);
    assert.deepEqual(select({ destination_ip: ['10.0.1.0/24'] }), [
      'dnsQuery',
      'dsToTfReply',
      'tfToDs',
      'verdict',
    ]);
    assert.deepEqual(select({ destination_ip: ['0.0.0.0/0'] }), [
      'dnsQuery',
      'dsToTfReply',
      'ping',
      'tfToDs',
      'verdict',
    ]);
    assert.deepEqual(select({ source_ip: ['fd00:0000:0:2:0::40'] }), ['xwDrop']);
    assert.deepEqual(select({ source_ip: ['fd00::/16'] }), ['xwDrop']);
    assert.deepEqual(select({ destination_ip: ['1.1.1.1', 'fd00::20'] }), ['ping', 'xwDrop']);
    assert.throws(() => compileFilter({ source_ip: ['10.0.0.300'] }), FilterError);
    assert.throws(() => compileFilter({ source_ip: ['10.0.0.0/33'] }), FilterError);
  });

  it('pods: namespace/prefix, namespace only, any namespace', () => {
    assert.deepEqual(select({ source_pod: ['default/tie'] }), ['dnsQuery', 'ping', 'tfToDs', 'verdict']);
    assert.deepEqual(select({ destination_pod: ['kube-system/'] }), ['dnsQuery']);
    assert.deepEqual(select({ destination_pod: ['/deathstar'] }), ['tfToDs', 'verdict', 'xwDrop']);
    assert.deepEqual(select({ source_pod: ['deathstar'] }), ['dsToTfReply']);
    assert.deepEqual(select({ source_pod: ['kube-system/tiefighter'] }), []);
    assert.throws(() => compileFilter({ source_pod: ['/'] }), FilterError);
  });

  it('labels: key=value with and without source, key only, negation, set-based', () => {
    assert.deepEqual(select({ source_label: ['k8s:app=tiefighter'] }), [
      'dnsQuery',
      'ping',
      'tfToDs',
      'verdict',
    ]);
    assert.deepEqual(select({ source_label: ['app=xwing'] }), ['xwDrop']);
    assert.deepEqual(select({ source_label: ['any:org=empire'] }), [
      'dnsQuery',
      'dsToTfReply',
      'ping',
      'tfToDs',
      'verdict',
    ]);
    assert.deepEqual(select({ destination_label: ['k8s:k8s-app'] }), ['dnsQuery']);
    assert.deepEqual(select({ destination_label: ['reserved:world'] }), ['ping']);
    assert.deepEqual(select({ destination_label: ['!k8s:org'] }), ['dnsQuery', 'ping']);
    assert.deepEqual(select({ source_label: ['k8s:org!=empire'] }), ['xwDrop']);
    assert.deepEqual(select({ destination_label: ['app in (deathstar, xwing)'] }), [
      'tfToDs',
      'verdict',
      'xwDrop',
    ]);
    assert.deepEqual(select({ destination_label: ['k8s:app notin (deathstar,tiefighter)'] }), [
      'dnsQuery',
      'ping',
    ]);
    assert.deepEqual(select({ source_label: ['k8s:org=empire,k8s:app=deathstar'] }), ['dsToTfReply']);
    assert.deepEqual(select({ source_label: ['app=deathstar', 'app=xwing'] }), ['dsToTfReply', 'xwDrop']);
    assert.deepEqual(select({ source_label: ['k8s:app=web'] }), []);
    assert.throws(() => compileFilter({ source_label: ['app in (a'] }), FilterError);
  });

  it('identity, verdict, drop reason, event type (with sub-type), traffic direction', () => {
    assert.deepEqual(select({ source_identity: [xwing.id] }), ['xwDrop']);
    assert.deepEqual(select({ destination_identity: [2] }), ['ping']);
    assert.deepEqual(select({ verdict: ['DROPPED'] }), ['xwDrop']);
    assert.deepEqual(select({ verdict: ['FORWARDED'] }).length, 5);
    assert.deepEqual(select({ drop_reason_desc: ['POLICY_DENIED'] }), ['xwDrop']);
    assert.deepEqual(select({ event_type: [{ type: 1 }] }), ['xwDrop']);
    assert.deepEqual(select({ event_type: [{ type: 5 }] }), ['verdict']);
    assert.deepEqual(select({ event_type: [{ type: 4, match_sub_type: true, sub_type: 0 }] }), [
      'dsToTfReply',
    ]);
    assert.deepEqual(select({ event_type: [{ type: 4, match_sub_type: true, sub_type: 3 }] }), ['ping']);
    assert.deepEqual(select({ traffic_direction: ['INGRESS'] }), ['verdict', 'xwDrop']);
  });

  it('protocol, ports, TCP flags, reply, IP version, node name, uuid', () => {
    assert.deepEqual(select({ protocol: ['udp'] }), ['dnsQuery']);
    assert.deepEqual(select({ protocol: ['ICMP'] }), ['ping']);
    assert.deepEqual(select({ protocol: ['icmpv6'] }), []);
    assert.deepEqual(select({ protocol: ['tcp'] }), ['dsToTfReply', 'tfToDs', 'verdict', 'xwDrop']);
    assert.throws(() => compileFilter({ protocol: ['bogus'] }), FilterError);
    assert.deepEqual(select({ destination_port: ['80'] }), ['tfToDs', 'verdict', 'xwDrop']);
    assert.deepEqual(select({ source_port: ['80', '33333'] }), ['dnsQuery', 'dsToTfReply']);
    assert.throws(() => compileFilter({ source_port: ['http'] }), FilterError);
    assert.deepEqual(select({ tcp_flags: [{ SYN: true, ACK: true }] }), ['dsToTfReply']);
    assert.deepEqual(select({ tcp_flags: [{ SYN: true }] }), ['dsToTfReply', 'tfToDs', 'verdict', 'xwDrop']);
    assert.deepEqual(select({ reply: [true] }), ['dsToTfReply']);
    // as upstream: drops (reply unknown) count as non-replies
    assert.deepEqual(select({ reply: [false] }), ['dnsQuery', 'ping', 'tfToDs', 'verdict', 'xwDrop']);
    assert.deepEqual(select({ ip_version: ['IPv6'] }), ['xwDrop']);
    assert.deepEqual(select({ node_name: ['kind-*'] }).length, 6);
    assert.deepEqual(select({ node_name: ['default/kind-worker'] }).length, 6);
    assert.deepEqual(select({ node_name: ['other'] }), []);
    assert.deepEqual(select({ uuid: [flows.ping!.uuid!] }), ['ping']);
  });

  it('fields inside one filter AND together; values inside a field OR', () => {
    assert.deepEqual(select({ source_pod: ['default/tiefighter'], destination_port: ['80'] }), [
      'tfToDs',
      'verdict',
    ]);
    assert.deepEqual(
      select({ source_pod: ['default/tiefighter'], destination_port: ['80'], event_type: [{ type: 4 }] }),
      ['tfToDs'],
    );
    assert.deepEqual(select({ verdict: ['DROPPED', 'AUDIT'], protocol: ['tcp', 'udp'] }), ['xwDrop']);
  });
});

describe('hubble filters: whitelist and blacklist', () => {
  const run = (wl: FlowFilter[], bl: FlowFilter[]) => kept(flows, compileFilters(wl, bl));
  it('no filters pass everything', () => assert.equal(run([], []).length, 6));
  it('whitelist filters OR together', () => {
    assert.deepEqual(run([{ verdict: ['DROPPED'] }, { protocol: ['udp'] }], []), ['dnsQuery', 'xwDrop']);
  });
  it('blacklist removes any match', () => {
    assert.deepEqual(run([], [{ protocol: ['tcp'] }, { protocol: ['icmp'] }]), ['dnsQuery']);
  });
  it('whitelist minus blacklist', () => {
    assert.deepEqual(
      run([{ source_pod: ['default/'] }], [{ event_type: [{ type: 5 }] }, { destination_ip: ['1.1.1.1'] }]),
      ['dnsQuery', 'dsToTfReply', 'tfToDs', 'xwDrop'],
    );
  });
  it('a pod in either direction is two whitelist filters (as hubble --pod builds them)', () => {
    assert.deepEqual(run([{ source_pod: ['kube-system/'] }, { destination_pod: ['kube-system/'] }], []), [
      'dnsQuery',
    ]);
  });
});

describe('hubble filters: interface (as hubble observe --interface)', () => {
  const names: Record<number, string> = { 17: 'lxc1234', 18: 'lxc5678' };
  const withIf = { ...ctx, interfaceName: (i: number) => names[i] };
  const at = (ifindex: number | undefined, ktimeNs: bigint) =>
    parseEvent(
      traceEvent({
        obsPoint: 0,
        source: ds.ep,
        srcLabel: tf.id,
        dstLabel: ds.id,
        reason: 0,
        ktimeNs,
        ...(ifindex === undefined ? {} : { ifindex }),
        pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 51234, dport: 80, flags: TCP_SYN }),
      }),
      withIf,
    )!;
  const byIf: Record<string, Flow> = {
    if17: at(17, 1n),
    if18: at(18, 2n),
    if99: at(99, 3n),
    none: at(undefined, 4n),
  };
  const pick = (f: FlowFilter) => kept(byIf, compileFilter(f));

  it('matches by name, by index, by both; an empty entry matches any flow with an interface', () => {
    assert.deepEqual(byIf.if17!.interface, { index: 17, name: 'lxc1234' });
    assert.deepEqual(byIf.if99!.interface, { index: 99 });
    assert.equal(byIf.none!.interface, undefined);
    assert.deepEqual(pick({ interface: [{ name: 'lxc1234' }] }), ['if17']);
    assert.deepEqual(pick({ interface: [{ index: 18 }] }), ['if18']);
    assert.deepEqual(pick({ interface: [{ index: 17, name: 'lxc1234' }] }), ['if17']);
    assert.deepEqual(pick({ interface: [{ index: 18, name: 'lxc1234' }] }), []);
    assert.deepEqual(pick({ interface: [{ name: 'lxc1234' }, { index: 99 }] }), ['if17', 'if99']);
    assert.deepEqual(pick({ interface: [{}] }), ['if17', 'if18', 'if99']);
    assert.deepEqual(pick({ interface: [{ name: 'eth0' }] }), []);
  });

  it('ANDs with the other fields and works in blacklists', () => {
    assert.deepEqual(pick({ interface: [{ name: 'lxc5678' }], destination_port: ['80'] }), ['if18']);
    assert.deepEqual(pick({ interface: [{ name: 'lxc5678' }], destination_port: ['81'] }), []);
    assert.deepEqual(kept(byIf, compileFilters([], [{ interface: [{ index: 17 }] }])), [
      'if18',
      'if99',
      'none',
    ]);
  });

  it('rejects a malformed index naming the field', () => {
    assert.throws(() => compileFilter({ interface: [{ index: -1 }] }), /interface/);
  });
});
