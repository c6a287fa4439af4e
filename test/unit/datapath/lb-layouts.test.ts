/**
 * The LB map layouts (bpf/lib/defs.h) as the generated codecs write them: upstream's sizes and byte
 * order (addresses, ports and rev-NAT indexes network order; backend IDs, counts and slots host order).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFS, layouts, MAPS, STRUCTS } from '../../../src/datapath/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('LB layouts', () => {
  it("sizes: upstream's, but the reverse-NAT value keeps its tail padding (8 bytes, not packed 6)", () => {
    const size = (n: keyof typeof STRUCTS) => STRUCTS[n].size;
    assert.deepEqual(
      {
        lb4_key: size('lb4_key'),
        lb6_key: size('lb6_key'),
        lb_service: size('lb_service'),
        lb4_backend: size('lb4_backend'),
        lb6_backend: size('lb6_backend'),
        lb4_reverse_nat: size('lb4_reverse_nat'),
        lb4_affinity_key: size('lb4_affinity_key'),
        lb6_affinity_key: size('lb6_affinity_key'),
        lb_affinity_val: size('lb_affinity_val'),
        lb_affinity_match: size('lb_affinity_match'),
        lb4_src_range_key: size('lb4_src_range_key'),
        lb4_reverse_sk_key: size('lb4_reverse_sk_key'),
        lb4_reverse_sk: size('lb4_reverse_sk'),
      },
      {
        lb4_key: 12,
        lb6_key: 24,
        lb_service: 12,
        lb4_backend: 12,
        lb6_backend: 24,
        lb4_reverse_nat: 8,
        lb4_affinity_key: 16,
        lb6_affinity_key: 24,
        lb_affinity_val: 16,
        lb_affinity_match: 8,
        lb4_src_range_key: 12,
        lb4_reverse_sk_key: 16,
        lb4_reverse_sk: 8,
      },
    );
  });

  it('lb4_key: address and port network order, slot host order, then proto and scope', () => {
    const k = layouts.lb4Key.encode({
      address: 0x0a60000a, // 10.96.0.10
      dport: 80,
      backendSlot: 2,
      proto: DEFS.CIL_IPPROTO_TCP,
      scope: DEFS.LB_LOOKUP_SCOPE_INT,
    });
    assert.equal(hex(k), '0a60000a' + '0050' + '0200' + '06' + '01' + '0000');
  });

  it('lb_service: backend ID, count and qcount host order; rev-NAT index network order', () => {
    const v = layouts.lbService.encode({
      backendId: 0x01020304,
      count: 3,
      revNatIndex: 0x0102,
      flags: DEFS.SVC_FLAG_AFFINITY,
      flags2: DEFS.SVC_FLAG2_TWO_SCOPES,
      qcount: 1,
    });
    assert.equal(hex(v), '04030201' + '0300' + '0102' + '10' + '20' + '0100');
    // On the master entry the union is the algorithm (upper 8 bits) and the affinity timeout.
    const master = layouts.lbService.decode(
      layouts.lbService.encode({
        affinityTimeout: (DEFS.LB_ALGORITHM_MAGLEV << DEFS.LB_ALGORITHM_SHIFT) | 10800,
        count: 0,
        revNatIndex: 1,
        flags: 0,
        flags2: 0,
        qcount: 0,
      }),
    );
    assert.equal(master.affinityTimeout >>> DEFS.LB_ALGORITHM_SHIFT, DEFS.LB_ALGORITHM_MAGLEV);
    assert.equal(master.affinityTimeout & DEFS.LB_AFFINITY_TIMEOUT_MASK, 10800);
    assert.equal(master.backendId, master.affinityTimeout, 'one union');
  });

  it('lb4_backend: address and port network order, state in flags', () => {
    const b = layouts.lb4Backend.encode({
      address: 0x0af40101,
      port: 8080,
      proto: DEFS.CIL_IPPROTO_UDP,
      flags: DEFS.BE_STATE_TERMINATING,
      clusterId: 0x0102,
      zone: 3,
    });
    assert.equal(hex(b), '0af40101' + '1f90' + '11' + '01' + '0201' + '03' + '00');
  });

  it('affinity key: netns cookie in the union with the client IP; rev-NAT id network order', () => {
    const k = layouts.lb4AffinityKey.encode({ netnsCookie: 0x1122334455667788n, revNatId: 5, netns: 1 });
    assert.equal(hex(k), '8877665544332211' + '0005' + '01' + '00' + '00000000');
    const c = layouts.lb4AffinityKey.encode({ clientIp: 0x0a000001, revNatId: 5, netns: 0 });
    assert.equal(hex(c), '0a000001' + '00000000' + '0005' + '00' + '00' + '00000000');
  });

  it('source range key: prefixlen counts rev-NAT id and pad before the address', () => {
    const k = layouts.lb4SrcRangeKey.encode({
      prefixlen: DEFS.LB_SRC_RANGE_PREFIX_HDR_BITS + 24,
      revNatId: 7,
      address: 0xc0000200,
    });
    assert.equal(hex(k), '38000000' + '0007' + '0000' + 'c0000200');
  });

  it('reverse_sk: socket cookie host order, backend and service addresses network order', () => {
    const k = layouts.lb4ReverseSkKey.encode({ cookie: 42n, address: 0x0af40101, port: 8080 });
    assert.equal(hex(k), '2a00000000000000' + '0af40101' + '1f90' + '0000');
    const v = layouts.lb4ReverseSk.encode({ address: 0x0a60000a, port: 80, revNatIndex: 9 });
    assert.equal(hex(v), '0a60000a' + '0050' + '0009');
  });

  it('map descriptors: hash maps and tries allocate on demand, LRU maps are preallocated', () => {
    const NO_PREALLOC = 1;
    for (const f of [4, 6]) {
      for (const m of ['services_v2', 'backends_v3', 'reverse_nat', 'source_range'])
        assert.equal(MAPS[`cilium_lb${f}_${m}` as keyof typeof MAPS].flags, NO_PREALLOC, m);
      for (const m of ['affinity', 'reverse_sk']) {
        const d = MAPS[`cilium_lb${f}_${m}` as keyof typeof MAPS];
        assert.equal(d.typeName, 'LRU_HASH');
        assert.equal(d.flags, 0);
      }
      for (const m of ['reverse_nat', 'affinity', 'maglev', 'reverse_sk'])
        assert.equal(MAPS[`cilium_lb${f}_${m}` as keyof typeof MAPS].maxEntries, DEFS.LB_MAP_SIZE);
      // One entry per backend slot and one per backend: sized for 10,000 services x 10 backends.
      assert.equal(
        MAPS[`cilium_lb${f}_services_v2` as keyof typeof MAPS].maxEntries,
        DEFS.LB_SERVICE_MAP_SIZE,
      );
      assert.equal(
        MAPS[`cilium_lb${f}_backends_v3` as keyof typeof MAPS].maxEntries,
        DEFS.LB_BACKEND_MAP_SIZE,
      );
      assert.ok(DEFS.LB_SERVICE_MAP_SIZE >= 10_000 * 11 && DEFS.LB_BACKEND_MAP_SIZE >= 100_000);
    }
    assert.equal(MAPS.cilium_lb4_reverse_nat.keySize, 2, 'rev-NAT index key');
    assert.equal(MAPS.cilium_lb_affinity_match.key, 'lb_affinity_match');
    assert.equal(MAPS.cilium_lb6_services_v2.key, 'lb6_key');
    assert.equal(MAPS.cilium_lb6_services_v2.value, 'lb_service');
  });
});
