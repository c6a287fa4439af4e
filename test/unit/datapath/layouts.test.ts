import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { distRoot } from '../../../src/common/paths.js';
import { generateLayouts, layoutInputs, parseDefines } from '../../../src/datapath/codegen/index.js';
import {
  checkObjectLayouts,
  DEFS,
  decodeEvent,
  decodePolicyKey,
  encodePolicyKey,
  endpointKeyOf,
  formatIp,
  ipcacheKeyOf,
  LayoutMismatchError,
  layoutDifferences,
  layouts,
  MAPS,
  parseIp,
  parsePrefix,
  policyFlags,
  STRUCTS,
} from '../../../src/datapath/index.js';
import { Btf, CollectionSpec } from '../../../src/ebpf/index.js';
import { bpfObject, repoRoot } from '../../helpers/paths.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Marks the bytes a struct's fields cover (nested structs included). */
function markFields(struct: string, base: number, out: Uint8Array): void {
  const layout = (STRUCTS as Record<string, (typeof STRUCTS)[keyof typeof STRUCTS]>)[struct]!;
  for (const f of Object.values(layout.fields)) {
    if (f.struct) markFields(f.struct, base + f.offset, out);
    else out.fill(1, base + f.offset, base + f.offset + f.size);
  }
}

describe('generated layouts: codecs', () => {
  it('every struct decodes and re-encodes arbitrary bytes unchanged (compiler padding holes become zero)', () => {
    for (const layout of Object.values(STRUCTS)) {
      const covered = new Uint8Array(layout.size);
      markFields(layout.name, 0, covered);
      for (let i = 0; i < 20; i++) {
        const bytes = new Uint8Array(randomBytes(layout.size));
        // biome-ignore lint/suspicious/noExplicitAny: each layout's Init accepts its own decode result
        const again = (layout.encode as (v: any) => Uint8Array)(layout.decode(bytes));
        const expected = bytes.map((b, j) => (covered[j] ? b : 0));
        assert.equal(hex(again), hex(expected), layout.name);
      }
    }
    // the only hole in defs.h: 4 bytes before policy_verdict_notify.ktime_ns
    const pv = new Uint8Array(layouts.policyVerdictNotify.size);
    markFields('policy_verdict_notify', 0, pv);
    assert.deepEqual(
      [...pv.keys()].filter((j) => !pv[j]),
      [36, 37, 38, 39],
    );
  });

  it('sizes match the C structs (bpf/README.md)', () => {
    const sizes = Object.fromEntries(Object.values(STRUCTS).map((s) => [s.name, s.size]));
    assert.deepEqual(
      {
        ipcache_key: sizes.ipcache_key,
        remote_endpoint_info: sizes.remote_endpoint_info,
        endpoint_key: sizes.endpoint_key,
        policy_key: sizes.policy_key,
        policy_entry: sizes.policy_entry,
        trace_notify: sizes.trace_notify,
        drop_notify: sizes.drop_notify,
        policy_verdict_notify: sizes.policy_verdict_notify,
      },
      {
        ipcache_key: 24,
        remote_endpoint_info: 12,
        endpoint_key: 20,
        policy_key: 12,
        policy_entry: 8,
        trace_notify: 192,
        drop_notify: 176,
        policy_verdict_notify: 176,
      },
    );
  });

  it('ipcache_key for 10.1.2.0/24: prefixlen 32+24, family 1, address in network order', () => {
    const k = ipcacheKeyOf('10.1.2.0/24');
    assert.equal(hex(k), `38000000` + `0000` + `00` + `01` + `0a010200` + '00'.repeat(12));
    // host bits are cleared; a bare address is a host prefix
    assert.equal(hex(ipcacheKeyOf('10.1.2.77/24')), hex(k));
    assert.equal(hex(ipcacheKeyOf('10.1.2.77').subarray(0, 4)), '40000000');
    const k6 = ipcacheKeyOf('fd00::1:0/112');
    assert.equal(hex(k6.subarray(0, 8)), '9000000000000002');
    assert.equal(hex(k6.subarray(8)), 'fd000000000000000000000000010000');
    const d = layouts.ipcacheKey.decode(k);
    assert.equal(d.prefixlen, 56);
    assert.equal(d.family, DEFS.ENDPOINT_KEY_IPV4);
    assert.equal(hex(d.ip6.subarray(0, 4)), '0a010200', 'union members view the same bytes');
  });

  it('endpoint_key: IPv4 in the first 4 bytes, family after the union', () => {
    assert.equal(hex(endpointKeyOf('10.0.1.10')), `0a00010a${'00'.repeat(12)}01000000`);
    assert.equal(hex(endpointKeyOf('fd00::10')), `fd${'00'.repeat(14)}1002000000`);
  });

  it('policy_key: identity and port in network order, bits past the prefix cleared', () => {
    const k = encodePolicyKey({ identity: 1000, egress: 1, protocol: 6, dport: 80, prefixLen: 64 });
    assert.equal(hex(k), '40000000' + '000003e8' + '01' + '06' + '0050');
    assert.deepEqual(decodePolicyKey(k), {
      identity: 1000,
      egress: 1,
      protocol: 6,
      dport: 80,
      prefixLen: 64,
    });
    // a /52 port block: the low 4 port bits are dropped
    const blk = encodePolicyKey({ identity: 0, egress: 0, protocol: 17, dport: 0x1234, prefixLen: 52 });
    assert.equal(hex(blk), '34000000' + '00000000' + '00' + '11' + '1000');
    // prefix 40: protocol and port ignored
    const any = encodePolicyKey({ identity: 2, egress: 0, protocol: 6, dport: 80, prefixLen: 40 });
    assert.equal(hex(any.subarray(8)), '00000000');
  });

  it('policy flags: deny, L4 on protocol keys, unenforced wildcard allow', () => {
    const allow = { deny: false, proxyPort: 0, ruleCookie: 0 };
    const wild0 = { identity: 0, egress: 0 as const, protocol: 0, dport: 0, prefixLen: 40 };
    assert.equal(policyFlags(wild0, allow), DEFS.POLICY_F_UNENFORCED, 'cookie 0 wildcard = unenforced');
    assert.equal(policyFlags(wild0, { ...allow, ruleCookie: 5 }), 0, 'a rule allowing all is reported');
    assert.equal(policyFlags(wild0, allow, { ingressEnforced: true, egressEnforced: false }), 0);
    assert.equal(
      policyFlags({ ...wild0, egress: 1 }, allow, { ingressEnforced: true, egressEnforced: false }),
      DEFS.POLICY_F_UNENFORCED,
    );
    const l4 = { identity: 9, egress: 1 as const, protocol: 6, dport: 443, prefixLen: 64 };
    assert.equal(policyFlags(l4, allow), DEFS.POLICY_F_L4);
    assert.equal(policyFlags(l4, { ...allow, deny: true }), DEFS.POLICY_F_L4 | DEFS.POLICY_F_DENY);
    assert.equal(policyFlags({ ...l4, prefixLen: 48, dport: 0 }, allow), DEFS.POLICY_F_L4);
    assert.equal(policyFlags({ ...wild0, identity: 7 }, allow), 0, 'identity-specific L3 allow');
  });

  it('decodes a drop event record by its type byte', () => {
    const rec = layouts.dropNotify.encode({
      hdr: {
        type: DEFS.CILIUM_NOTIFY_DROP,
        subtype: DEFS.DROP_POLICY,
        source: 100,
        hash: 0,
        lenOrig: 54,
        lenCap: 3,
        version: 1,
      },
      srcLabel: 1000,
      dstLabel: 2,
      dstId: 0,
      file: 1,
      ipv6: 0,
      ifindex: 5,
      ktimeNs: 123n,
      extError: -1,
      revNatIndex: 7,
      data: Uint8Array.of(1, 2, 3),
    });
    const e = decodeEvent(rec);
    assert.equal(e.kind, 'drop');
    if (e.kind !== 'drop') return;
    assert.equal(e.event.hdr.subtype, 133);
    assert.equal(e.event.extError, -1);
    assert.equal(e.event.ktimeNs, 123n);
    assert.deepEqual([...e.packet], [1, 2, 3]);
    assert.equal(decodeEvent(Uint8Array.of(42, 0, 0)).kind, 'unknown');
  });

  it('rejects byte arrays of the wrong length', () => {
    assert.throws(
      () =>
        layouts.endpointInfo.encode({
          ifindex: 1,
          lxcId: 1,
          flags: 0,
          mac: Uint8Array.of(1, 2, 3),
          nodeMac: new Uint8Array(6),
          secIdentity: 1,
        }),
      /endpoint_info.mac: expected 6 bytes, got 3/,
    );
  });
});

describe('addresses', () => {
  it('parses and formats IPv4/IPv6', () => {
    for (const s of ['10.0.0.1', 'fd00::10', '::', '::1', 'fe80::1:2:3:4', '2001:db8:0:1:1:1:1:1', '1::']) {
      const a = parseIp(s);
      assert.equal(formatIp(a.family, a.bytes), s);
    }
    assert.equal(formatIp(6, parseIp('::ffff:10.1.2.3').bytes), '::ffff:a01:203');
    assert.equal(formatIp(6, parseIp('2001:0db8:0000:0000:0001:0000:0000:0001').bytes), '2001:db8::1:0:0:1');
    assert.equal(parsePrefix('fd00::ff/120').bytes[15], 0);
    assert.throws(() => parsePrefix('10.0.0.0/33'));
    assert.throws(() => parseIp('10.0.0'));
  });
});

describe('codegen', () => {
  it('the committed layouts.ts equals a fresh generation (what --check verifies)', () => {
    const fresh = generateLayouts(layoutInputs(repoRoot));
    const committed = readFileSync(join(repoRoot, 'src/datapath/maps/generated/layouts.ts'), 'utf8');
    assert.equal(fresh, committed);
  });

  it('codegen-datapath --check exits 0 when fresh and 1 when the file differs', () => {
    const script = join(distRoot, 'scripts/codegen-datapath.js');
    const ok = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const dir = mkdtempSync(join(tmpdir(), 'cts-codegen-'));
    try {
      const stale = join(dir, 'layouts.ts');
      const committed = readFileSync(join(repoRoot, 'src/datapath/maps/generated/layouts.ts'), 'utf8');
      writeFileSync(stale, committed.replace('size: 24,', 'size: 28,'));
      const bad = spawnSync(process.execPath, [script, '--check', '--file', stale], { encoding: 'utf8' });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /out of date/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('describes every map of the datapath objects, including the inner templates', () => {
    assert.deepEqual(Object.keys(MAPS).sort(), [
      'cilium_ct4_global',
      'cilium_ct6_global',
      'cilium_events',
      'cilium_events_lost',
      'cilium_ipcache',
      'cilium_lb4_affinity',
      'cilium_lb4_backends_v3',
      'cilium_lb4_maglev',
      'cilium_lb4_reverse_nat',
      'cilium_lb4_reverse_sk',
      'cilium_lb4_services_v2',
      'cilium_lb4_source_range',
      'cilium_lb6_affinity',
      'cilium_lb6_backends_v3',
      'cilium_lb6_maglev',
      'cilium_lb6_reverse_nat',
      'cilium_lb6_reverse_sk',
      'cilium_lb6_services_v2',
      'cilium_lb6_source_range',
      'cilium_lb_affinity_match',
      'cilium_lb_sock_rev',
      'cilium_lb_sock_slot_rev',
      'cilium_lb_sock_slots',
      'cilium_lxc',
      'cilium_metrics',
      'cilium_metrics_fwd',
      'cilium_nodeport_nat4',
      'cilium_policy_ep_layers',
      'cilium_policy_layers',
      'cilium_policy_maps',
      'cilium_proxy',
    ]);
    // Shared policy layers hold tries of the endpoints' inner template.
    assert.deepEqual(MAPS.cilium_policy_layers.inner, MAPS.cilium_policy_maps.inner);
    // socket-LB's TCP reverse entries: socket slots (two arrays indexed alike: holder cookies,
    // entries), else socket local storage (created with the object's BTF).
    assert.equal(MAPS.cilium_lb_sock_slots.typeName, 'ARRAY');
    assert.equal(MAPS.cilium_lb_sock_slots.valueSize, 8);
    assert.equal(MAPS.cilium_lb_sock_slot_rev.maxEntries, MAPS.cilium_lb_sock_slots.maxEntries);
    assert.equal(MAPS.cilium_lb_sock_rev.typeName, 'SK_STORAGE');
    // NodePort NAT: an LRU keyed like conntrack.
    assert.equal(MAPS.cilium_nodeport_nat4.typeName, 'LRU_HASH');
    assert.equal(MAPS.cilium_nodeport_nat4.key, 'ct_key');
    assert.equal(MAPS.cilium_nodeport_nat4.value, 'nodeport_nat_entry');
    // Maglev: one entry holding the whole table of M = LB_MAGLEV_LUT_SIZE backend IDs.
    assert.deepEqual(MAPS.cilium_lb4_maglev.inner, {
      type: 2,
      typeName: 'ARRAY',
      keySize: 4,
      valueSize: 4 * 16381,
      maxEntries: 1,
      flags: 0,
    });
    assert.deepEqual(MAPS.cilium_policy_maps.inner, {
      type: 11,
      typeName: 'LPM_TRIE',
      keySize: 12,
      valueSize: 8,
      maxEntries: 16384,
      flags: 1,
    });
    assert.equal(MAPS.cilium_ipcache.key, 'ipcache_key');
    assert.equal(MAPS.cilium_ct4_global.value, 'ct_entry');
  });

  it('parses integer #defines', () => {
    assert.deepEqual(
      parseDefines('#define A 1\n#define B 0x10 /* c */\n#define C (3)\n#define D(x) x\n#define E foo\n'),
      [
        ['A', 1],
        ['B', 16],
        ['C', 3],
      ],
    );
    assert.equal(DEFS.DROP_POLICY_DENY, 181);
    assert.equal(DEFS.POLICY_F_UNENFORCED, 4);
  });
});

describe('load-time layout check', () => {
  it('accepts bpf_lxc.o as built', () => {
    const spec = CollectionSpec.fromFile(bpfObject('bpf_lxc.o'));
    assert.deepEqual(layoutDifferences(spec), []);
    checkObjectLayouts(spec, 'bpf_lxc.o');
  });

  it('names each difference of an object that disagrees with the generated layouts', () => {
    const spec = CollectionSpec.fromFile(bpfObject('bpf_lxc.o'));
    spec.maps.get('cilium_ipcache')!.maxEntries = 1000;
    spec.maps.get('cilium_policy_maps')!.innerMap!.valueSize = 12;
    spec.maps.delete('cilium_metrics');
    assert.throws(
      () => checkObjectLayouts(spec, 'bpf_lxc.o'),
      (err: unknown) => {
        assert.ok(err instanceof LayoutMismatchError);
        assert.deepEqual(err.differences, [
          'map cilium_ipcache: max entries 1000, generated 512000',
          'map cilium_metrics is missing',
          'map cilium_policy_maps: inner value size 12, generated 8',
        ]);
        return true;
      },
    );
  });

  it('detects a struct whose fields moved', () => {
    const spec = CollectionSpec.fromFile(bpfObject('bpf_lxc.o'));
    const btf = spec.btf!;
    const t = btf.find('ct_key').find((x) => x.members)!;
    // Move member 2 (sport) from bit 256 to bit 264 in a copy of the raw BTF.
    const raw = btf.raw.slice();
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const hdrLen = dv.getUint32(4, true);
    const typeOff = dv.getUint32(8, true);
    dv.setUint32(hdrLen + typeOff + t.rawOffset + 12 + 2 * 12 + 8, 264, true);
    spec.btf = new Btf(raw);
    const diffs = layoutDifferences(spec);
    assert.equal(diffs.length, 1);
    assert.match(diffs[0]!, /^struct ct_key: object has .*sport@33:2/);
  });
});
