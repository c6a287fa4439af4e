/**
 * eBPF library bench: map operations (single and batched), ring buffer decoding, program load.
 * Where bpftool can do the same operation, it is measured in the same run and the ratio printed,
 * with what it compares; a bpftool run that exits non-zero is reported as a failure, never as a
 * figure. Figures only, no assertions. Run as root: node dist/bench/ebpf.js
 */
import { execFileSync, type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap, Collection, CollectionSpec, MapType, RingBufReader } from '../src/ebpf/index.js';
import { bpfObject } from '../test/helpers/paths.js';

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
const now = () => Number(process.hrtime.bigint()) / 1e9;

function rate(ops: number, fn: () => void): number {
  const t0 = now();
  fn();
  return ops / (now() - t0);
}

function line(name: string, value: string, note = ''): void {
  console.log(`${name.padEnd(44)} ${value.padStart(14)}  ${note}`);
}

/** bpftool, checked: undefined on success, else why it failed (exit status and its first error line). */
function bpftool(args: string[]): string | undefined {
  const r: SpawnSyncReturns<string> = spawnSync('bpftool', args, {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (r.error) return r.error.message;
  if (r.status === 0) return undefined;
  const why = r.stderr.split('\n').find((l) => /error|fail|bad/i.test(l)) ?? r.stderr.trim().split('\n')[0];
  return `exit ${r.status ?? r.signal}: ${why ?? ''}`.trim();
}

/** Seconds per bpftool run of `args` (median of n), or the failure. */
function timeBpftool(n: number, args: (i: number) => string[]): { s: number } | { failed: string } {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    const failed = bpftool(args(i));
    if (failed) return { failed };
    xs.push(now() - t0);
  }
  return { s: xs.sort((a, b) => a - b)[Math.floor(n / 2)]! };
}

function mapBench(): void {
  const N = 200_000;
  const m = BpfMap.create({
    name: 'bench_hash',
    type: MapType.HASH,
    keySize: 4,
    valueSize: 8,
    maxEntries: N,
    flags: 0,
    pinning: 'none',
  });
  const key = Buffer.alloc(4);
  const val = Buffer.alloc(8);
  // warm-up
  for (let i = 0; i < 10_000; i++) {
    key.writeUInt32LE(i);
    m.update(key, val);
  }
  const upd = rate(N, () => {
    for (let i = 0; i < N; i++) {
      key.writeUInt32LE(i);
      val.writeUInt32LE(i);
      m.update(key, val);
    }
  });
  line('map update (hash, single)', `${fmt(upd)} ops/s`, 'target >= 300k');
  const look = rate(N, () => {
    for (let i = 0; i < N; i++) {
      key.writeUInt32LE(i);
      m.lookupInto(key, val);
    }
  });
  line('map lookup (hash, single)', `${fmt(look)} ops/s`);

  const keys = Buffer.alloc(N * 4);
  const vals = Buffer.alloc(N * 8);
  for (let i = 0; i < N; i++) {
    keys.writeUInt32LE(i, i * 4);
    vals.writeUInt32LE(i * 2, i * 8);
  }
  const B = 10_000;
  const bupd = rate(N, () => {
    for (let i = 0; i < N; i += B) m.updateBatch(keys.subarray(i * 4), vals.subarray(i * 8), B);
  });
  line('map update (hash, batch of 10k)', `${fmt(bupd)} elem/s`, 'target >= 2M');
  let got = 0;
  const blook = rate(N, () => {
    got = m.lookupBatch(B).count;
  });
  line('map lookup (hash, batch of 10k)', `${fmt(blook)} elem/s`, `(${got} read)`);

  // bpftool: the same single updates through its batch mode (one process, one syscall per line).
  const id = m.info().id;
  const dir = mkdtempSync(join(tmpdir(), 'cts-bench-'));
  try {
    const M = 20_000;
    const lines: string[] = [];
    for (let i = 0; i < M; i++) {
      const k = [i & 255, (i >> 8) & 255, (i >> 16) & 255, 0].join(' ');
      lines.push(`map update id ${id} key ${k} value 1 2 3 4 5 6 7 8`);
    }
    writeFileSync(join(dir, 'cmds'), `${lines.join('\n')}\n`);
    const r = timeBpftool(1, () => ['batch', 'file', join(dir, 'cmds')]);
    if ('failed' in r) line('bpftool map update (batch file)', 'failed', r.failed);
    else
      line(
        'bpftool map update (batch file)',
        `${fmt(M / r.s)} ops/s`,
        `ours/bpftool = ${(upd / (M / r.s)).toFixed(1)}x: our single updates (one bpf() call each, in process) ` +
          `vs ${fmt(M)} "map update" lines in one bpftool process (text parsing + one bpf() call each)`,
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  m.close();
}

async function ringBench(): Promise<void> {
  const spec = CollectionSpec.fromFile(bpfObject('test/event_source.o'));
  spec.rewriteConstants({ events_per_run: 1000 });
  const c = Collection.load(spec);
  const rb = new RingBufReader(c.map('samples'));
  const emit = c.program('emit');
  let total = 0;
  let busy = 0;
  let sum = 0n;
  for (let round = 0; round < 10; round++) {
    emit.testRun({ data: Buffer.alloc(64), repeat: 300 }); // 300k events
    const t0 = now();
    total += rb.poll((rec) => {
      // decode: sequence number and cpu, as a consumer would
      const dv = new DataView(rec.buffer, rec.byteOffset, rec.length);
      sum += dv.getBigUint64(0, true) + BigInt(dv.getUint32(8, true));
    });
    busy += now() - t0;
  }
  line(
    'ring buffer decode (poll, one core)',
    `${fmt(total / busy)} ev/s`,
    `target >= 1M (${fmt(total)} events)`,
  );

  let n = 0;
  let iterBusy = 0;
  for (let round = 0; round < 3; round++) {
    emit.testRun({ data: Buffer.alloc(64), repeat: 300 });
    const t0 = now();
    let k = 0;
    for await (const rec of rb) {
      sum += BigInt(rec[0]!);
      if (++k === 300_000) break;
    }
    iterBusy += now() - t0;
    n += k;
  }
  line('ring buffer decode (async iterator)', `${fmt(n / iterBusy)} ev/s`, `checksum ${sum % 1000n}`);
  rb.close();
  c.close();
}

/** Median seconds of `bpftool prog loadall OBJ DIR` (n runs) into a private bpffs, or the failure. */
function bpftoolLoad(obj: string, n: number): { s: number } | { failed: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cts-bench-fs-'));
  try {
    execFileSync('mount', ['-t', 'bpf', 'bpf', dir]);
    return timeBpftool(n, (i) => ['prog', 'loadall', obj, join(dir, `p${i}`)]);
  } finally {
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function loadBench(): void {
  const obj = bpfObject('test/port_filter.o');
  const spec = CollectionSpec.fromFile(obj);
  const N = 50;
  const t0 = now();
  for (let i = 0; i < N; i++) Collection.load(spec).close();
  const ours = (now() - t0) / N;
  line('program load (port_filter.o: 2 progs, 6 maps)', `${(ours * 1000).toFixed(2)} ms`);
  const parse = rate(200, () => {
    for (let i = 0; i < 200; i++) CollectionSpec.fromFile(obj);
  });
  line('ELF/BTF parse of the same object', `${((1 / parse) * 1000).toFixed(3)} ms`);

  // bpftool against the same object: one it can load (Debian's bpftool 7.1 / libbpf 1.1 cannot load
  // port_filter.o, whose tcx programs call each other). event_source.o's 16 MiB ring buffer
  // dominates its load time, on both sides.
  const pf = bpftoolLoad(obj, 1);
  if ('failed' in pf) line('bpftool prog loadall (port_filter.o)', 'failed', pf.failed);
  const ev = bpfObject('test/event_source.o');
  const evSpec = CollectionSpec.fromFile(ev);
  const t1 = now();
  for (let i = 0; i < N; i++) Collection.load(evSpec).close();
  const oursEv = (now() - t1) / N;
  line('program load (event_source.o: 1 prog, 4 maps)', `${(oursEv * 1000).toFixed(2)} ms`);
  const bt = bpftoolLoad(ev, 10);
  const start = timeBpftool(10, () => ['version']);
  if ('failed' in bt) line('bpftool prog loadall (event_source.o)', 'failed', bt.failed);
  else {
    const startS = 'failed' in start ? 0 : start.s;
    line(
      'bpftool prog loadall (event_source.o)',
      `${(bt.s * 1000).toFixed(2)} ms`,
      `bpftool/ours = ${(bt.s / oursEv).toFixed(1)}x for the whole command (process start, load, pin); ` +
        `${((bt.s - startS) / oursEv).toFixed(1)}x without its start (${(startS * 1000).toFixed(1)} ms, "bpftool version")`,
    );
  }
  const lxc = bpfObject('bpf_lxc.o');
  try {
    const s = CollectionSpec.fromFile(lxc);
    const dir2 = mkdtempSync(join(tmpdir(), 'cts-bench-fs-'));
    execFileSync('mount', ['-t', 'bpf', 'bpf', dir2]);
    try {
      const t2 = now();
      const K = 10;
      for (let i = 0; i < K; i++) Collection.load(s, { pinPath: dir2 }).close();
      line('program load (bpf_lxc.o, per endpoint)', `${(((now() - t2) / K) * 1000).toFixed(2)} ms`);
    } finally {
      spawnSync('umount', ['-l', dir2]);
      rmSync(dir2, { recursive: true, force: true });
    }
  } catch (err) {
    line('program load (bpf_lxc.o)', 'skipped', String(err));
  }
}

console.log('# eBPF library bench');
mapBench();
await ringBench();
loadBench();
