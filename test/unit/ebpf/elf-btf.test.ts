import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  Btf,
  BtfKind,
  CollectionSpec,
  ElfError,
  ElfFile,
  encodeConstant,
  MapType,
  ProgType,
  sectionDef,
} from '../../../src/ebpf/index.js';
import { AttachType } from '../../../src/ebpf/sys/constants.js';
import { bpfObject } from '../../helpers/paths.js';

describe('ELF reader', () => {
  it('reads sections, symbols and relocations of a clang object', () => {
    const elf = new ElfFile(readFileSync(bpfObject('test/port_filter.o')));
    const names = elf.sections.map((s) => s.name);
    for (const n of [
      'tcx/ingress',
      'tcx/egress',
      '.maps',
      '.rodata',
      '.bss',
      '.data',
      'license',
      '.BTF',
      '.BTF.ext',
    ]) {
      assert.ok(names.includes(n), `missing section ${n}`);
    }
    const fn = elf.symbols.find((s) => s.name === 'filter_ingress');
    assert.ok(fn && fn.size > 0 && fn.size % 8 === 0);
    const ingress = elf.section('tcx/ingress')!;
    const relocs = elf.relocations.get(ingress.index) ?? [];
    assert.ok(
      relocs.some((r) => r.symbol.name === 'verdicts'),
      'map relocation present',
    );
  });

  it('rejects data that is not a BPF ELF object, naming the problem', () => {
    assert.throws(
      () => new ElfFile(Buffer.from('hello world, not an elf file at all'.repeat(3))),
      /not an ELF file/,
    );
    const x86 = Buffer.from(readFileSync(bpfObject('test/port_filter.o')));
    x86.writeUInt16LE(62, 18); // EM_X86_64
    assert.throws(
      () => new ElfFile(x86),
      (e: unknown) => e instanceof ElfError && /machine 62 is not BPF/.test(e.message),
    );
  });
});

describe('BTF parser', () => {
  const spec = CollectionSpec.fromFile(bpfObject('test/maps_zoo.o'));
  const btf = spec.btf!;

  it('parses struct layouts with member offsets', () => {
    const key = btf.find('lpm_v4_key', BtfKind.STRUCT)[0]!;
    assert.equal(btf.sizeof(key.id), 8);
    assert.deepEqual(
      key.members!.map((m) => [m.name, m.bitOffset, btf.typeName(m.type)]),
      [
        ['prefixlen', 0, '__u32'],
        ['addr', 32, '__u32'],
      ],
    );
  });

  it('parses the kernel vmlinux BTF (tens of thousands of types)', () => {
    const vmlinux = new Btf(readFileSync('/sys/kernel/btf/vmlinux'));
    assert.ok(vmlinux.types.length > 10000);
    const skb = vmlinux.find('__sk_buff', BtfKind.STRUCT)[0]!;
    assert.ok(skb.members!.some((m) => m.name === 'data_end'));
    const tcx = vmlinux.find('bpf_attach_type', BtfKind.ENUM)[0]!;
    assert.equal(
      tcx.enumValues!.find((v) => v.name === 'BPF_TCX_INGRESS')!.value,
      BigInt(AttachType.TCX_INGRESS),
    );
  });

  it('reads func and line info from .BTF.ext', () => {
    const ext = spec.btfExt!;
    assert.ok((ext.funcInfo.get('tc') ?? []).length >= 2);
    assert.ok((ext.lineInfo.get('tc') ?? []).length > 0);
  });
});

describe('CollectionSpec', () => {
  it('decodes BTF map definitions: type, sizes, flags, pinning, inner map', () => {
    const spec = CollectionSpec.fromFile(bpfObject('test/maps_zoo.o'));
    const m = (n: string) => spec.maps.get(n)!;
    assert.equal(m('lru').type, MapType.LRU_HASH);
    assert.equal(m('lru').keySize, 8);
    assert.equal(m('lru').valueSize, 4);
    assert.equal(m('lru').maxEntries, 128);
    assert.equal(m('lpm').type, MapType.LPM_TRIE);
    assert.equal(m('lpm').flags, 1);
    assert.equal(m('pinned_array').pinning, 'by-name');
    assert.equal(m('lru').pinning, 'none');
    assert.equal(m('jump_table').type, MapType.PROG_ARRAY);
    assert.equal(m('outer').type, MapType.HASH_OF_MAPS);
    assert.equal(m('outer').valueSize, 4);
    assert.deepEqual(
      {
        type: m('outer').innerMap!.type,
        k: m('outer').innerMap!.keySize,
        v: m('outer').innerMap!.valueSize,
        n: m('outer').innerMap!.maxEntries,
      },
      { type: MapType.ARRAY, k: 4, v: 8, n: 4 },
    );
    assert.equal(m('small_ring').type, MapType.RINGBUF);
    assert.equal(m('small_ring').maxEntries, 16384);
  });

  it('maps programs to types by section name', () => {
    const spec = CollectionSpec.fromFile(bpfObject('test/maps_zoo.o'));
    assert.equal(spec.programs.get('xdp_pass')!.type, ProgType.XDP);
    assert.equal(spec.programs.get('connect4_allow')!.type, ProgType.CGROUP_SOCK_ADDR);
    assert.equal(spec.programs.get('connect4_allow')!.expectedAttachType, AttachType.CGROUP_INET4_CONNECT);
    const pf = CollectionSpec.fromFile(bpfObject('test/port_filter.o'));
    assert.equal(pf.programs.get('filter_ingress')!.expectedAttachType, AttachType.TCX_INGRESS);
    assert.equal(pf.programs.get('filter_egress')!.expectedAttachType, AttachType.TCX_EGRESS);
    assert.equal(sectionDef('tc/anything')?.progType, ProgType.SCHED_CLS);
    assert.equal(sectionDef('nonsense'), undefined);
  });

  it('links bpf-to-bpf calls and records map references with global data offsets', () => {
    const spec = CollectionSpec.fromFile(bpfObject('test/port_filter.o'));
    const p = spec.programs.get('filter_egress')!;
    // filter_egress calls filter_ingress (another section), which calls port_blocked (.text):
    // three functions, each with its own func_info record, rebased in order.
    assert.equal(p.funcInfo.length, 3);
    assert.equal(p.funcInfo[0]!.insnOff, 0);
    assert.ok(p.funcInfo.every((f, i) => i === 0 || f.insnOff > p.funcInfo[i - 1]!.insnOff));
    const dv = new DataView(p.instructions.buffer);
    for (let i = 0; i < p.instructions.length / 8; i++) {
      const op = p.instructions[i * 8]!;
      const src = p.instructions[i * 8 + 1]! >> 4;
      if (op === 0x85 && src === 1) {
        const target = i + 1 + dv.getInt32(i * 8 + 4, true);
        assert.ok(
          p.funcInfo.some((f) => f.insnOff === target),
          `call at ${i} lands on a function start`,
        );
      }
    }
    const maps = new Set(p.mapRefs.map((r) => r.map));
    for (const n of ['blocked_ports', 'verdicts', 'events', '.rodata', '.bss', '.data'])
      assert.ok(maps.has(n), n);
    assert.ok(
      p.mapRefs.some((r) => r.map === '.rodata' && r.valueOffset === 4),
      'report_drops at .rodata+4',
    );
  });

  it('rewrites volatile const globals, big-endian for __be32', () => {
    const spec = CollectionSpec.fromFile(bpfObject('test/port_filter.o'));
    spec.rewriteConstants({ filter_daddr: 0x0a000002, report_drops: false });
    assert.deepEqual([...spec.variableBytes('filter_daddr')], [10, 0, 0, 2]);
    assert.deepEqual([...spec.variableBytes('report_drops')], [0]);
    const copy = spec.copy();
    copy.rewriteConstants({ filter_daddr: [192, 168, 0, 1] });
    assert.deepEqual([...spec.variableBytes('filter_daddr')], [10, 0, 0, 2], 'copies are independent');
    assert.throws(() => spec.rewriteConstants({ nope: 1 }), /variable nope does not exist/);
    assert.throws(() => spec.rewriteConstants({ report_drops: 300 }), /does not fit in 1 bytes/);
  });

  it('encodes constants little-endian by default', () => {
    assert.deepEqual([...encodeConstant('x', 0x01020304, 4, false)], [4, 3, 2, 1]);
    assert.deepEqual([...encodeConstant('x', -1, 2, false)], [255, 255]);
    assert.deepEqual([...encodeConstant('x', 0x0102n, 2, true)], [1, 2]);
  });

  it('fills data-section sizes and variable offsets in the BTF given to the kernel', () => {
    const spec = CollectionSpec.fromFile(bpfObject('test/port_filter.o'));
    const fixed = new Btf(spec.kernelBtf!);
    const ro = fixed.find('.rodata', BtfKind.DATASEC)[0]!;
    assert.equal(ro.sizeOrType, 5);
    const offs = ro.secinfo!.map((v) => [fixed.type(v.type).name, v.offset]);
    assert.deepEqual(offs, [
      ['filter_daddr', 0],
      ['report_drops', 4],
    ]);
  });
});
