/**
 * Numbers the datapath defines in bpf/lib/defs.h and other modules keep their own copy of (named
 * for upstream, or to stay free of the datapath layer): each copy must equal the generated DEFS, so
 * a change on either side fails here instead of silently misreading events or maps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFS, layouts } from '../../../src/datapath/index.js';
import {
  DropReasonNames,
  DropReasonText,
  MessageType,
  NotifyType,
  PolicyMatchTypeNames,
  TRACE_REASON_CT_REPLY,
  TraceObsPointEnum,
  TraceObsPointNames,
  TraceReasonEnum,
  TrafficDirectionNumbers,
} from '../../../src/hubble/constants.js';
import { CILIUM_TS_EVENT_VERSION, EVENT_CAPTURE_LEN } from '../../../src/hubble/layout.js';
import { parseEvent } from '../../../src/hubble/parser.js';
import { ReservedIdentity } from '../../../src/identity/numbering.js';
import { PREFIX_FULL, PREFIX_IDENTITY_ONLY, PREFIX_PROTO_ONLY, Proto } from '../../../src/policy/ports.js';

/** DEFS entries whose name starts with `prefix`, as [rest of the name, value]. */
function defsWith(prefix: string): [string, number][] {
  return Object.entries(DEFS)
    .filter(([k]) => k.startsWith(prefix))
    .map(([k, v]) => [k.slice(prefix.length), v]);
}

describe('hand-kept copies of the datapath constants', () => {
  it('reserved identities (identity/numbering.ts)', () => {
    const upper = (s: string) => s.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
    const copy = Object.fromEntries(Object.entries(ReservedIdentity).map(([k, v]) => [upper(k), v]));
    assert.deepEqual(copy, Object.fromEntries(defsWith('ID_')));
  });

  it('policy key prefix lengths and protocol numbers (policy/ports.ts)', () => {
    assert.equal(PREFIX_IDENTITY_ONLY, DEFS.POLICY_IDENTITY_DIR_PREFIX);
    assert.equal(PREFIX_PROTO_ONLY, DEFS.POLICY_PROTO_PREFIX);
    assert.equal(PREFIX_FULL, DEFS.POLICY_FULL_PREFIX);
    assert.deepEqual(
      [Proto.ICMP, Proto.TCP, Proto.UDP, Proto.ICMPv6, Proto.SCTP],
      [
        DEFS.CIL_IPPROTO_ICMP,
        DEFS.CIL_IPPROTO_TCP,
        DEFS.CIL_IPPROTO_UDP,
        DEFS.CIL_IPPROTO_ICMPV6,
        DEFS.CIL_IPPROTO_SCTP,
      ],
    );
  });

  it('event types, version and capture length (hubble/constants.ts, hubble/layout.ts)', () => {
    assert.deepEqual(
      [NotifyType.DROP, NotifyType.DEBUG, NotifyType.CAPTURE, NotifyType.TRACE, NotifyType.POLICY_VERDICT],
      [
        DEFS.CILIUM_NOTIFY_DROP,
        DEFS.CILIUM_NOTIFY_DBG_MSG,
        DEFS.CILIUM_NOTIFY_DBG_CAPTURE,
        DEFS.CILIUM_NOTIFY_TRACE,
        DEFS.CILIUM_NOTIFY_POLICY_VERDICT,
      ],
    );
    assert.equal(MessageType.POLICY_VERDICT, DEFS.CILIUM_NOTIFY_POLICY_VERDICT);
    assert.equal(CILIUM_TS_EVENT_VERSION, DEFS.CILIUM_TS_EVENT_VERSION);
    assert.equal(EVENT_CAPTURE_LEN, DEFS.EVENT_CAPTURE_LEN);
  });

  it('trace observation points and reasons (hubble/constants.ts)', () => {
    const points = defsWith('TRACE_').filter(([k]) => /^(TO|FROM)_/.test(k));
    assert.equal(points.length, 12);
    for (const [name, v] of points) {
      // TO_LXC / FROM_LXC are the endpoint's points: upstream names them TO_ENDPOINT / FROM_ENDPOINT.
      assert.equal(TraceObsPointEnum[v], name.replace(/_LXC$/, '_ENDPOINT'), `TRACE_${name}`);
      assert.equal(TraceObsPointNames[v], name.replace(/_LXC$/, '_ENDPOINT').toLowerCase().replace('_', '-'));
    }
    assert.deepEqual(Object.fromEntries(defsWith('TRACE_REASON_').map(([k, v]) => [v, k])), {
      0: 'POLICY',
      1: 'CT_ESTABLISHED',
      2: 'CT_REPLY',
      3: 'CT_RELATED',
      5: 'UNKNOWN',
    });
    // The overlay device's points know no CT state: upstream's TRACE_REASON_UNKNOWN, the field's
    // zero value, left out of the flow.
    assert.equal(TraceReasonEnum[DEFS.TRACE_REASON_UNKNOWN], undefined);
    assert.deepEqual(
      [0, 1, 2, 3].map((r) => TraceReasonEnum[r]),
      ['NEW', 'ESTABLISHED', 'REPLY', 'RELATED'],
    );
    assert.equal(TRACE_REASON_CT_REPLY, DEFS.TRACE_REASON_CT_REPLY);
  });

  it('policy directions and match types (hubble/constants.ts)', () => {
    assert.equal(TrafficDirectionNumbers.INGRESS, DEFS.METRIC_INGRESS);
    assert.equal(TrafficDirectionNumbers.EGRESS, DEFS.METRIC_EGRESS);
    assert.deepEqual(
      [
        DEFS.POLICY_MATCH_NONE,
        DEFS.POLICY_MATCH_L3_ONLY,
        DEFS.POLICY_MATCH_L3_L4,
        DEFS.POLICY_MATCH_L4_ONLY,
        DEFS.POLICY_MATCH_ALL,
      ].map((m) => PolicyMatchTypeNames[m]),
      ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all'],
    );
  });

  it('every drop reason the datapath can report has a name and a text (hubble/constants.ts)', () => {
    const codes = defsWith('DROP_').filter(([k]) => !k.startsWith('FILE_'));
    assert.ok(codes.length > 40);
    for (const [name, code] of codes) {
      assert.ok(DropReasonNames[code], `DROP_${name} (${code}) has a flow.DropReason name`);
      assert.ok(DropReasonText[code], `DROP_${name} (${code}) has a text`);
    }
    assert.equal(DropReasonNames[DEFS.DROP_POLICY], 'POLICY_DENIED');
    assert.equal(DropReasonNames[DEFS.DROP_POLICY_DENY], 'POLICY_DENY');
  });

  it("the drop's source file index (DROP_FILE_LXC) is reported as bpf_lxc.c by the Hubble parser", () => {
    const rec = (file: number) =>
      layouts.dropNotify.encode({
        hdr: {
          type: DEFS.CILIUM_NOTIFY_DROP,
          subtype: DEFS.DROP_POLICY,
          source: 1,
          hash: 0,
          lenOrig: 0,
          lenCap: 0,
          version: DEFS.CILIUM_TS_EVENT_VERSION,
        },
        srcLabel: 256,
        dstLabel: 257,
        dstId: 1,
        file,
        ipv6: 0,
        ifindex: 0,
        ktimeNs: 0n,
        extError: 0,
        revNatIndex: 0,
        data: new Uint8Array(0),
      });
    const ctx = { nodeName: 'n', bootTime: { sec: 0, nsec: 0 }, uuid: false };
    assert.deepEqual(parseEvent(rec(DEFS.DROP_FILE_LXC), ctx)?.file, { name: 'bpf_lxc.c' });
    assert.deepEqual(parseEvent(rec(DEFS.DROP_FILE_HOST), ctx)?.file, { name: 'bpf_host.c' });
    assert.deepEqual(parseEvent(rec(DEFS.DROP_FILE_OVERLAY), ctx)?.file, { name: 'bpf_overlay.c' });
    assert.equal(parseEvent(rec(200), ctx)?.file, undefined, 'an index no datapath file has');
  });
});
