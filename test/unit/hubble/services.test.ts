import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

process.env.TZ = 'UTC';

import {
  compileFilter,
  compileFilters,
  DropReasonNames,
  dropReasonText,
  FilterError,
  type Flow,
  formatCompact,
  formatDict,
  formatJson,
  formatTable,
  Observer,
  type ParserContext,
  PROTO_DIR,
  parseEvent,
  tableHeader,
  tableRow,
} from '../../../src/hubble/index.js';
import {
  dropEvent,
  PODS,
  packet,
  SERVICES,
  serviceGetter,
  TCP_ACK,
  TCP_SYN,
  traceEvent,
  verdictEvent,
  worldGetters,
} from './helpers/events.js';

const T0 = 1700596862; // 2023-11-21T20:01:02Z
const calls: string[] = [];
const ctx: ParserContext = {
  nodeName: 'node1',
  bootTime: { sec: T0, nsec: 0 },
  ...worldGetters(),
  ...serviceGetter(calls),
};
const { tiefighter: tf, deathstar: ds, coredns: dns } = PODS;
const { deathstar: dsSvc, kubeDns, admin } = SERVICES;

const synTo = (dst: string, dport: number) =>
  packet({ src: tf.ip, dst, proto: 'tcp', sport: 51234, dport, flags: TCP_SYN });

/** A new connection's packet seen leaving tiefighter (trace from-endpoint). */
const fromTf = (pkt: Uint8Array, dstLabel: number, ktimeNs = 0n) =>
  traceEvent({ obsPoint: 5, source: tf.ep, srcLabel: tf.id, dstLabel, reason: 0, ktimeNs, pkt });

/** tiefighter → deathstar:80 SYN, to `dst` (the ClusterIP, or the pod when socket-LB translated it). */
const request = (dst: string) => parseEvent(fromTf(synTo(dst, 80), dst === ds.ip ? ds.id : 2), ctx)!;

const flows = {
  // tc-level LB before translation: the packet still carries the ClusterIP
  toVip: request(dsSvc.vip),
  // socket-LB: the connect() already went to the backend
  toBackend: request(ds.ip),
  // the backend's SYN-ACK delivered to tiefighter
  reply: parseEvent(
    traceEvent({
      obsPoint: 0,
      source: tf.ep,
      srcLabel: ds.id,
      dstLabel: tf.id,
      reason: 2,
      ktimeNs: 1_000_000n,
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
  // policy verdict at the backend, after translation
  verdict: parseEvent(
    verdictEvent({
      dir: 1,
      source: ds.ep,
      remoteLabel: tf.id,
      verdict: 0,
      dstPort: 80,
      proto: 6,
      matchType: 2,
      ktimeNs: 2_000_000n,
      pkt: synTo(ds.ip, 80),
    }),
    ctx,
  )!,
  // a DNS query to the kube-dns ClusterIP (UDP)
  dns: parseEvent(
    fromTf(packet({ src: tf.ip, dst: kubeDns.vip, proto: 'udp', sport: 40000, dport: 53 }), 2, 3_000_000n),
    ctx,
  )!,
  // TCP to the DNS pod's port 53: kube-dns only has a UDP port, so no service
  dnsTcp: parseEvent(fromTf(synTo(dns.ip, 53), dns.id, 4_000_000n), ctx)!,
  // a connection to a service without backends, dropped by the LB (DROP_NO_SERVICE)
  noBackend: parseEvent(
    dropEvent({
      reason: 158,
      source: tf.ep,
      srcLabel: tf.id,
      dstLabel: 2,
      ktimeNs: 5_000_000n,
      pkt: synTo(admin.vip, admin.port),
    }),
    ctx,
  )!,
};

const DS = { name: 'deathstar', namespace: 'default' };

describe('hubble flows carry the service (serviceByAddress)', () => {
  it('destination_service of requests: a ClusterIP frontend, or a backend reached through socket-LB', () => {
    assert.deepEqual(flows.toVip.destination_service, DS);
    assert.equal(flows.toVip.source_service, undefined);
    assert.equal(flows.toVip.destination?.pod_name, undefined);
    assert.deepEqual(flows.toBackend.destination_service, DS);
    assert.equal(flows.toBackend.destination?.pod_name, ds.pod);
    assert.deepEqual(flows.verdict.destination_service, DS);
    assert.deepEqual(flows.dns.destination_service, { name: 'kube-dns', namespace: 'kube-system' });
  });

  it('source_service of replies only; the reply destination (the client) is not looked up', () => {
    assert.equal(flows.reply.is_reply, true);
    assert.deepEqual(flows.reply.source_service, DS);
    assert.equal(flows.reply.destination_service, undefined);
    assert.equal(flows.toBackend.is_reply, false);
    assert.equal(flows.toBackend.source_service, undefined);
  });

  it('looks up by address, port and protocol; ICMP and flows without L4 ports are not looked up', () => {
    assert.equal(flows.dnsTcp.destination_service, undefined);
    calls.length = 0;
    parseEvent(fromTf(packet({ src: tf.ip, dst: ds.ip, proto: 'icmp', icmpType: 8 }), ds.id), ctx);
    assert.deepEqual(calls, []);
    parseEvent(fromTf(packet({ src: tf.ip6, dst: dns.ip6, proto: 'udp', sport: 40000, dport: 53 }), 2), ctx);
    assert.deepEqual(calls, ['fd00::30:53/UDP']);
  });

  it('a drop for a service without backends: upstream code, name and text, with the service', () => {
    const f = flows.noBackend;
    assert.equal(f.verdict, 'DROPPED');
    assert.equal(f.drop_reason, 158);
    assert.equal(f.drop_reason_desc, 'SERVICE_BACKEND_NOT_FOUND');
    assert.deepEqual(f.destination_service, { name: 'deathstar-admin', namespace: 'default' });
    assert.equal(
      formatCompact(f),
      'Nov 21 20:01:02.005: default/tiefighter:51234 (ID:1234) <> default/deathstar-admin:8080 (world) Service backend not found DROPPED (TCP Flags: SYN)',
    );
  });

  it('JSON has the fields with upstream names, in proto field order (after event_type)', () => {
    const keys = Object.keys(flows.toVip);
    assert.equal(keys.indexOf('destination_service'), keys.indexOf('event_type') + 1);
    assert.ok(keys.indexOf('destination_service') < keys.indexOf('traffic_direction'));
    const json = JSON.parse(formatJson(flows.reply)) as Flow;
    assert.deepEqual(json.source_service, DS);
    assert.match(
      formatJson(flows.toVip),
      /"destination_service":\{"name":"deathstar","namespace":"default"\}/,
    );
  });

  it('without a lookup flows carry no service', () => {
    const plain = parseEvent(fromTf(synTo(dsSvc.vip, 80), 2), {
      nodeName: 'node1',
      bootTime: { sec: T0, nsec: 0 },
      ...worldGetters(),
    })!;
    assert.equal(plain.destination_service, undefined);
    assert.equal(plain.source_service, undefined);
  });

  it('the Observer passes its serviceByAddress option to the parser', () => {
    const seen: string[] = [];
    const observer = new Observer({
      nodeName: 'node1',
      bootTime: { sec: T0, nsec: 0 },
      ...worldGetters(),
      ...serviceGetter(seen),
    });
    const f = observer.ingest(fromTf(synTo(dsSvc.vip, 80), 2))!;
    assert.deepEqual(f.destination_service, DS);
    assert.deepEqual(seen, [`${dsSvc.vip}:80/TCP`]);
  });
});

describe('hubble printers show services as upstream does', () => {
  it('compact: the pod name wins, else ns/service; replies flip; an IP without either stays an IP', () => {
    assert.equal(
      formatCompact(flows.toVip),
      'Nov 21 20:01:02.000: default/tiefighter:51234 (ID:1234) -> default/deathstar:80 (world) from-endpoint FORWARDED (TCP Flags: SYN)',
    );
    assert.equal(
      formatCompact(flows.toBackend),
      'Nov 21 20:01:02.000: default/tiefighter:51234 (ID:1234) -> default/deathstar-6f87c5b7f6-abcde:80 (ID:5678) from-endpoint FORWARDED (TCP Flags: SYN)',
    );
    assert.equal(
      formatCompact(flows.dns),
      'Nov 21 20:01:02.003: default/tiefighter:40000 (ID:1234) -> kube-system/kube-dns:53 (world) from-endpoint FORWARDED (UDP)',
    );
    assert.equal(
      formatCompact(flows.reply),
      'Nov 21 20:01:02.001: default/tiefighter:51234 (ID:1234) <- default/deathstar-6f87c5b7f6-abcde:80 (ID:5678) to-endpoint FORWARDED (TCP Flags: SYN, ACK)',
    );
    const noNs: Flow = { ...flows.toVip, destination_service: { name: 'deathstar' } };
    assert.match(formatCompact(noNs), / -> deathstar:80 \(world\) /);
  });

  it('dict and table use the same names', () => {
    assert.match(formatDict(flows.toVip), /^DESTINATION: default\/deathstar:80$/m);
    const rows = formatTable([tableHeader(), tableRow(flows.toVip)]).split('\n');
    assert.match(rows[1]!, /default\/tiefighter:51234 +default\/deathstar:80 +from-endpoint +FORWARDED/);
  });
});

describe('hubble service filters (upstream semantics)', () => {
  const all = Object.entries(flows);
  const run = (f: Parameters<typeof compileFilter>[0]) => {
    const p = compileFilter(f);
    return all.filter(([, fl]) => p(fl)).map(([k]) => k);
  };

  it('destination_service: a bare name means namespace default and is a prefix', () => {
    assert.deepEqual(run({ destination_service: ['deathstar'] }), [
      'toVip',
      'toBackend',
      'verdict',
      'noBackend',
    ]);
    assert.deepEqual(run({ destination_service: ['default/deathstar-'] }), ['noBackend']);
    assert.deepEqual(run({ destination_service: ['kube-dns'] }), []);
    assert.deepEqual(run({ destination_service: ['kube-system/kube-dns'] }), ['dns']);
  });

  it('namespace/ matches every service of the namespace; /name only services without a namespace', () => {
    assert.deepEqual(run({ destination_service: ['kube-system/'] }), ['dns']);
    assert.deepEqual(run({ destination_service: ['default/', 'kube-system/kube-'] }), [
      'toVip',
      'toBackend',
      'verdict',
      'dns',
      'noBackend',
    ]);
    assert.deepEqual(run({ destination_service: ['/deathstar'] }), []);
    const bare: Flow = { ...flows.toVip, destination_service: { name: 'deathstar' } };
    assert.equal(compileFilter({ destination_service: ['/death'] })(bare), true);
  });

  it('source_service matches the reply side only; flows without a service never match', () => {
    assert.deepEqual(run({ source_service: ['deathstar'] }), ['reply']);
    assert.deepEqual(run({ source_service: ['default/'] }), ['reply']);
    assert.equal(compileFilter({ destination_service: ['default/'] })(flows.dnsTcp), false);
  });

  it('both directions are two whitelist filters (OR); a blacklist removes them', () => {
    const both = compileFilters(
      [{ source_service: ['deathstar'] }, { destination_service: ['deathstar'] }],
      undefined,
    );
    assert.deepEqual(
      all.filter(([, f]) => both(f)).map(([k]) => k),
      ['toVip', 'toBackend', 'reply', 'verdict', 'noBackend'],
    );
    const not = compileFilters(undefined, [{ destination_service: ['deathstar'] }]);
    assert.deepEqual(
      all.filter(([, f]) => not(f)).map(([k]) => k),
      ['reply', 'dns', 'dnsTcp'],
    );
    // ANDed with other fields of the same filter
    assert.deepEqual(run({ destination_service: ['deathstar'], verdict: ['DROPPED'] }), ['noBackend']);
  });

  it('malformed names are refused naming the field', () => {
    for (const bad of ['', '/', 'a/b/c']) {
      assert.throws(
        () => compileFilter({ destination_service: [bad] }),
        (e: unknown) =>
          e instanceof FilterError && e.field === 'destination_service' && /\[namespace\/\]/.test(e.message),
      );
    }
    assert.throws(() => compileFilter({ source_service: [''] }), /^FilterError: source_service: /);
  });
});

describe('drop reasons of the load balancer', () => {
  it('the drop reason table is flow.proto DropReason, name for name', () => {
    const proto = readFileSync(join(PROTO_DIR, 'flow', 'flow.proto'), 'utf8');
    const body = /enum DropReason \{([^}]*)\}/.exec(proto)![1]!;
    const fromProto = Object.fromEntries(
      [...body.matchAll(/^\s*([A-Z0-9_]+) = (\d+);/gm)].map((m) => [Number(m[2]), m[1]]),
    );
    assert.deepEqual(DropReasonNames, fromProto);
  });

  it('DROP_NO_SERVICE (158) and DROP_NOT_IN_SRC_RANGE (177) have upstream names and texts', () => {
    assert.equal(DropReasonNames[158], 'SERVICE_BACKEND_NOT_FOUND');
    assert.equal(dropReasonText(158), 'Service backend not found');
    assert.equal(DropReasonNames[177], 'DENIED_BY_LB_SRC_RANGE_CHECK');
    assert.equal(dropReasonText(177), 'Denied by LB src range check');
    const denied = parseEvent(
      dropEvent({
        reason: 177,
        source: 0,
        srcLabel: 2,
        dstLabel: 0,
        ktimeNs: 0n,
        pkt: packet({
          src: '192.0.2.7',
          dst: '10.96.0.60',
          proto: 'tcp',
          sport: 50000,
          dport: 443,
          flags: TCP_SYN,
        }),
      }),
      ctx,
    )!;
    assert.equal(denied.drop_reason_desc, 'DENIED_BY_LB_SRC_RANGE_CHECK');
    assert.match(formatCompact(denied), / Denied by LB src range check DROPPED \(TCP Flags: SYN\)$/);
  });
});
