import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Btf, BtfKind, Collection, CollectionSpec, VerifierError } from '../../../src/ebpf/index.js';
import { AttrLayout } from '../../../src/ebpf/sys/bpf.js';
import { bpfObject } from '../../helpers/paths.js';
import { cleanupStack, privateBpffs } from '../../helpers/sys.js';

/** An IPv4/TCP packet (Ethernet framed) to `dport`. */
export function tcpPacket(dport: number, dst = [10, 0, 0, 2]): Buffer {
  const p = Buffer.alloc(54);
  p.writeUInt16BE(0x0800, 12);
  p[14] = 0x45;
  p.writeUInt16BE(40, 16);
  p[22] = 64;
  p[23] = 6;
  Buffer.from([10, 0, 0, 1]).copy(p, 26);
  Buffer.from(dst).copy(p, 30);
  p.writeUInt16BE(40000, 34);
  p.writeUInt16BE(dport, 36);
  p[46] = 0x50;
  p[47] = 0x02; // SYN
  return p;
}

describe('privileged: programs', () => {
  it('runs a program on crafted packets with PROG_TEST_RUN', () => {
    using c = Collection.load(CollectionSpec.fromFile(bpfObject('test/port_filter.o')));
    const prog = c.program('filter_ingress');
    const port = Buffer.alloc(2);
    port.writeUInt16LE(8080);
    c.map('blocked_ports').update(port, Uint8Array.of(1));
    assert.equal(prog.testRun({ data: tcpPacket(8080) }).retval, 2, 'TC_ACT_SHOT for a blocked port');
    assert.equal(prog.testRun({ data: tcpPacket(8081) }).retval, 0, 'TC_ACT_OK otherwise');
    const r = prog.testRun({ data: tcpPacket(8081), repeat: 1000 });
    assert.ok(r.durationNs >= 0 && r.durationNs < 100_000);
    const info = prog.info();
    assert.equal(info.name, 'filter_ingress');
    assert.equal(info.mapIds.length, 6);
  });

  it('loadAsync with serialUntil verifies one program after the other, the rest at once once it settles', async (t) => {
    const cleanup = cleanupStack();
    t.after(() => cleanup.run());
    const pinPath = privateBpffs(cleanup); // the object has a map pinned by name
    const spec = CollectionSpec.fromFile(bpfObject('test/maps_zoo.o'));
    spec.rewriteConstants({ magic: 1 });
    const names = [...spec.programs.keys()];
    assert.ok(names.length >= 2, 'an object with several programs');
    // never settles: every program still loads, one at a time
    {
      using c = await Collection.loadAsync(spec, { pinPath, serialUntil: new Promise(() => {}) });
      assert.deepEqual([...c.programs.keys()].sort(), [...names].sort());
      assert.equal(c.program('lpm_then_tail').testRun({ data: Buffer.alloc(64) }).retval, 1);
    }
    // settled at once: as loadAsync without it
    {
      using c = await Collection.loadAsync(spec, { pinPath, serialUntil: Promise.resolve() });
      assert.deepEqual([...c.programs.keys()].sort(), [...names].sort());
    }
    // a rejected program fails the load in serial mode too, with the verifier's error
    await assert.rejects(
      Collection.loadAsync(CollectionSpec.fromFile(bpfObject('test/rejected.o')), {
        serialUntil: new Promise(() => {}),
      }),
      VerifierError,
    );
  });

  it('a load is not undone by signals arriving while the verifier runs', async (t) => {
    // The verifier gives up (EAGAIN) at any pending signal: a sampling profiler's SIGPROF or a
    // burst of SIGCHLD would otherwise fail every retry of a load that takes longer than their
    // interval. Here another process sends signals as fast as it can all along.
    const spec = CollectionSpec.fromFile(bpfObject('test/slow_verify.o')); // ~0.2 s to verify
    let received = 0;
    const onSignal = () => {
      received++;
    };
    process.on('SIGUSR2', onSignal);
    const flood = spawn('bash', ['-c', `while kill -USR2 ${process.pid} 2>/dev/null; do :; done`], {
      stdio: 'ignore',
    });
    t.after(() => {
      flood.kill('SIGKILL');
      process.off('SIGUSR2', onSignal);
    });
    while (received < 100) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 3; i++) {
      const before = received;
      using c = Collection.load(spec);
      assert.equal(c.program('slow_verify').testRun({ data: tcpPacket(80) }).retval & ~1, 0);
      await new Promise((r) => setTimeout(r, 20));
      assert.ok(received > before, 'signals kept arriving during the load');
    }
  });

  it('specialises one object per load through .rodata constants', () => {
    const base = CollectionSpec.fromFile(bpfObject('test/port_filter.o'));
    const spec = base.copy();
    spec.rewriteConstants({ filter_daddr: 0x0a000063 }); // filter only traffic to 10.0.0.99
    using c = Collection.load(spec);
    const port = Buffer.alloc(2);
    port.writeUInt16LE(8080);
    c.map('blocked_ports').update(port, Uint8Array.of(1));
    assert.equal(c.program('filter_ingress').testRun({ data: tcpPacket(8080, [10, 0, 0, 2]) }).retval, 0);
    assert.equal(c.program('filter_ingress').testRun({ data: tcpPacket(8080, [10, 0, 0, 99]) }).retval, 2);
  });

  it('a rejected program throws VerifierError with a readable log naming the source line', () => {
    const spec = CollectionSpec.fromFile(bpfObject('test/rejected.o'));
    let err: unknown;
    try {
      Collection.load(spec);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof VerifierError, `got ${String(err)}`);
    assert.equal(err.program, 'unchecked_read');
    assert.match(err.message, /outside of the packet/);
    assert.match(err.message, /rejected\.c:\d+/, 'source line from BTF line info');
    assert.match(err.log, /invalid access to packet/);
    assert.ok(err.tail(3).split('\n').length <= 3);
  });

  it('bpf_attr layouts match the running kernel (BTF of union bpf_attr)', () => {
    const vmlinux = new Btf(readFileSync('/sys/kernel/btf/vmlinux'));
    const attr = vmlinux.find('bpf_attr', BtfKind.UNION)[0]!;
    // Collect member name -> byte offset for every anonymous struct in the union (one per command).
    const structs = attr.members!.map((m) => {
      const t = vmlinux.resolve(m.type);
      const offs = new Map<string, number>();
      const walk = (id: number, base: number) => {
        const s = vmlinux.resolve(id);
        for (const mm of s.members ?? []) {
          if (mm.name) offs.set(mm.name, base + mm.bitOffset / 8);
          else walk(mm.type, base + mm.bitOffset / 8);
        }
      };
      walk(t.id, 0);
      return offs;
    });
    const check = (layout: Record<string, number>, names: string[]) => {
      const s = structs.find((o) => names.every((n) => o.has(n)));
      assert.ok(s, `no bpf_attr member struct has ${names.join(',')}`);
      for (const n of names) assert.equal(layout[n], s.get(n), `offset of ${n}`);
    };
    check(AttrLayout.mapCreate, [
      'map_type',
      'key_size',
      'value_size',
      'max_entries',
      'map_flags',
      'inner_map_fd',
      'map_name',
      'btf_fd',
      'map_extra',
    ]);
    check(AttrLayout.progLoad, [
      'prog_type',
      'insn_cnt',
      'insns',
      'license',
      'log_level',
      'log_size',
      'log_buf',
      'prog_name',
      'expected_attach_type',
      'prog_btf_fd',
      'func_info_rec_size',
      'func_info',
      'func_info_cnt',
      'line_info_rec_size',
      'line_info',
      'line_info_cnt',
      'log_true_size',
    ]);
    check(AttrLayout.testRun, [
      'prog_fd',
      'retval',
      'data_size_in',
      'data_size_out',
      'data_in',
      'data_out',
      'repeat',
      'duration',
      'ctx_size_in',
      'ctx_in',
      'ctx_out',
    ]);
    check(AttrLayout.mapBatch, ['in_batch', 'out_batch', 'keys', 'values', 'count', 'map_fd', 'elem_flags']);
    check(AttrLayout.btfLoad, ['btf', 'btf_log_buf', 'btf_size', 'btf_log_size', 'btf_log_level']);
    check(AttrLayout.progQuery, [
      'query_flags',
      'attach_flags',
      'prog_ids',
      'prog_attach_flags',
      'link_ids',
      'revision',
    ]);
    check(AttrLayout.objPin, ['pathname', 'bpf_fd', 'file_flags']);
  });
});
