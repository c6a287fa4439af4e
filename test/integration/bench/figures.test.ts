/**
 * The benches print honest figures: run at small scale, their output is checked for what each
 * figure claims (a bpftool failure is never a ratio; the connection-rate rows really open a new
 * conntrack entry, hence a policy lookup, per connection).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bpfObject } from '../../helpers/paths.js';
import { cleanupStack, privateBpffs } from '../../helpers/sys.js';

const bench = (name: string) => fileURLToPath(new URL(`../../../bench/${name}.js`, import.meta.url));

function runBench(name: string, env: Record<string, string> = {}): string[] {
  const r = spawnSync(process.execPath, [bench(name)], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `bench ${name} exited ${r.status}: ${r.stderr}`);
  return r.stdout.split('\n');
}

describe('privileged: bench figures', () => {
  it('ebpf: a bpftool run that fails is reported as failed, and each ratio says what it compares', async () => {
    const cleanup = cleanupStack();
    let bpftoolLoads: boolean;
    try {
      const dir = privateBpffs(cleanup);
      const r = spawnSync('bpftool', ['prog', 'loadall', bpfObject('test/port_filter.o'), `${dir}/p`]);
      bpftoolLoads = r.status === 0;
    } finally {
      await cleanup.run();
    }
    const out = runBench('ebpf');
    const pf = out.filter((l) => l.startsWith('bpftool') && l.includes('port_filter'));
    if (!bpftoolLoads) {
      assert.equal(pf.length, 1, `one line for bpftool on port_filter.o:\n${out.join('\n')}`);
      assert.match(pf[0]!, /failed +exit \d+: \S/);
    }
    const ratios = out.filter((l) => /bpftool/.test(l) && /= [\d.]+x/.test(l));
    assert.ok(ratios.length >= 1, out.join('\n'));
    for (const l of ratios) {
      assert.doesNotMatch(l, /failed/);
      assert.match(l, / vs |for the whole command/, `the ratio says what it compares: ${l}`);
    }
  });

  it('datapath: connection rate with 10 and 10,000 policy entries against both plain paths, one conntrack entry per connection', () => {
    const out = runBench('datapath', {
      BENCH_IPERF_SECONDS: '1',
      BENCH_ROUND_TRIPS: '500',
      BENCH_CONNECTIONS: '300',
      BENCH_ROUNDS: '1',
    });
    const at = out.findIndex((l) => l.startsWith('connection rate (TCP_CRR'));
    assert.ok(at > 0, out.join('\n'));
    const [scratch, plain, small, large, ct] = out.slice(at + 1, at + 6);
    const rate = /([\d.]+)k conn\/s/;
    assert.match(scratch ?? '', /plain, built from scratch .*k conn\/s .*rate x[\d.]+/);
    assert.match(plain ?? '', /plain routed veth .*k conn\/s.*\(baseline\)/);
    assert.match(small ?? '', /datapath, 10 policy entries .*k conn\/s .*rate x[\d.]+/);
    assert.match(
      large ?? '',
      /datapath, 10,000 entries .*k conn\/s .*rate x[\d.]+ .*vs 10 entries: rate x[\d.]+/,
    );
    for (const l of [scratch, plain, small, large]) assert.ok(Number(rate.exec(l!)?.[1]) > 0, l);
    for (const base of ['plain routed veth', 'plain built from scratch'])
      assert.ok(
        out.some(
          (l) => l.includes(`vs ${base}`) && /median of the 1 rounds' ratios: throughput x[\d.]+/.test(l),
        ),
        `the datapath against ${base}, as the median of the rounds' own ratios`,
      );
    assert.match(ct ?? '', /conntrack entries made per datapath CRR run: 500 for 500 connections/);
    assert.ok(
      out.some((l) => /one long connection each \(established: policy is not consulted/.test(l)),
      'the throughput rows say they are established flows',
    );
  });
});
