/**
 * Hubble pipeline bench with the real datapath: bpf_lxc.o emits trace events into the real ring
 * buffer (PROG_TEST_RUN from a producer thread, paced to a target rate); the main thread reads them
 * with RingBufReader and feeds the Observer (parse, flow ring, metrics), as the agent does.
 * Prints the highest rate sustained without loss, and CPU and memory at 10k flows/s.
 * Run as root: node dist/bench/hubble-pipeline.js
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { DatapathMaps } from '../src/datapath/index.js';
import { endpointConstants } from '../src/datapath/loader.js';
import { Collection, CollectionSpec, Program } from '../src/ebpf/index.js';
import { HubbleMetrics } from '../src/hubble/metrics.js';
import { Observer } from '../src/hubble/observer.js';
import { bpfObject } from '../test/helpers/paths.js';

/**
 * A TCP ACK from the pod 10.200.0.5 to a world address: forwarded to the stack and, with
 * MONITOR_AGGREGATION 0, traced twice (from-endpoint and to-stack).
 */
function packet(): Buffer {
  const p = Buffer.alloc(54);
  Buffer.from([2, 0, 0, 0, 0, 1]).copy(p, 0); // dst: node MAC
  Buffer.from([2, 0, 0, 0, 0, 5]).copy(p, 6); // src: pod MAC
  p.writeUInt16BE(0x0800, 12);
  p[14] = 0x45;
  p.writeUInt16BE(40, 16);
  p[22] = 64;
  p[23] = 6;
  Buffer.from([10, 200, 0, 5]).copy(p, 26);
  Buffer.from([192, 168, 211, 254]).copy(p, 30);
  p.writeUInt16BE(40000, 34);
  p.writeUInt16BE(80, 36);
  p[46] = 0x50;
  p[47] = 0x10; // ACK
  return p;
}

if (!isMainThread) {
  // Producer: run the program `rate` times per second in 10 ms slices until told to stop.
  const prog = Program.openPinned(workerData.progPath as string);
  const data = packet();
  let rate = 0;
  parentPort!.on('message', (m: { rate?: number; stop?: boolean }) => {
    if (m.stop) process.exit(0);
    if (m.rate !== undefined) rate = m.rate;
  });
  const tick = () => {
    const per = Math.round(rate / 100);
    if (per > 0) prog.testRun({ data, repeat: per });
    setTimeout(tick, 10);
  };
  tick();
} else {
  const dir = mkdtempSync(join(tmpdir(), 'cts-hbench-'));
  execFileSync('mount', ['-t', 'bpf', 'bpf', dir]);
  try {
    const maps = DatapathMaps.open(dir);
    const spec = CollectionSpec.fromFile(bpfObject('bpf_lxc.o'));
    spec.rewriteConstants(
      endpointConstants(
        {
          id: 5,
          identity: 256,
          ipv4: '10.200.0.5',
          mac: '02:00:00:00:00:05',
          nodeMac: '02:00:00:00:00:01',
          interface: 1,
          monitorAggregation: 0,
        },
        1,
      ),
    );
    const coll = Collection.load(spec, {
      mapReplacements: maps.replacements(),
      programs: ['cil_from_container'],
    });
    const progPath = join(dir, 'bench_prog');
    coll.program('cil_from_container').pin(progPath);
    const observer = new Observer({ nodeName: 'bench', metrics: new HubbleMetrics(), uuid: false });
    const reader = maps.events.reader();
    const worker = new Worker(new URL(import.meta.url), { workerData: { progPath } });
    // A producer that fails ends the run through the finally below (its bpffs unmounted), not
    // as an uncaught error that skips it.
    let producerError: unknown;
    worker.on('error', (err) => {
      producerError = err;
    });

    const runAt = async (rate: number, seconds: number) => {
      const lost0 = maps.events.lost();
      const seen0 = observer.status().seen_flows;
      worker.postMessage({ rate });
      const elu0 = performance.eventLoopUtilization();
      const cpu0 = process.cpuUsage();
      const end = Date.now() + seconds * 1000;
      while (Date.now() < end) {
        if (producerError) throw producerError;
        reader.poll((rec) => void observer.ingest(rec));
        await reader.wait(20);
      }
      worker.postMessage({ rate: 0 });
      await new Promise((r) => setTimeout(r, 50));
      reader.poll((rec) => void observer.ingest(rec));
      const elu = performance.eventLoopUtilization(elu0);
      const cpu = process.cpuUsage(cpu0);
      return {
        flows: (observer.status().seen_flows - seen0) / seconds,
        lost: Number(maps.events.lost() - lost0),
        consumerBusy: elu.utilization,
        processCpu: (cpu.user + cpu.system) / 1e6 / seconds,
      };
    };

    console.log('# Hubble pipeline with the real datapath (ring buffer -> parse -> flow ring -> metrics)');
    let best = 0;
    for (const rate of [20_000, 50_000, 100_000, 150_000, 200_000, 300_000, 400_000]) {
      const r = await runAt(rate, 2);
      const ok = r.lost === 0;
      console.log(
        `program runs ${String(rate / 1000).padStart(4)}k/s: consumed ${(r.flows / 1000).toFixed(1)}k flows/s, lost ${r.lost}, consumer thread busy ${(r.consumerBusy * 100).toFixed(0)}%`,
      );
      if (ok) best = Math.max(best, r.flows);
      else break;
    }
    console.log(`highest rate sustained with no loss: ${(best / 1000).toFixed(0)}k flows/s`);
    const r10 = await runAt(5_000, 5); // two traces per run: ~10k flows/s
    const mem = process.memoryUsage();
    console.log(
      `at ${(r10.flows / 1000).toFixed(1)}k flows/s: consumer thread busy ${(r10.consumerBusy * 100).toFixed(1)}% of one core; process CPU (incl. the producer thread) ${(r10.processCpu * 100).toFixed(0)}%; RSS ${(mem.rss / 2 ** 20).toFixed(0)} MiB, heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB (ring of ${observer.status().max_flows} flows)`,
    );
    worker.postMessage({ stop: true });
    reader.close();
    coll.close();
    maps.close();
  } finally {
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
