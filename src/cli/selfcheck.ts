/**
 * `cilium-ts selfcheck`: proves the eBPF stack works on this machine. It builds two throwaway
 * network namespaces joined by a veth, serves TCP in one, attaches a port filter with tcx on the
 * other side's veth, and shows real connections passing, being dropped after a map update (with
 * the drop reported through the ring buffer), and passing again. Everything is removed at the end.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { bpfObjectPath, cliPath } from '../common/paths.js';

const PORT = 8080;

export function registerSelfcheck(program: Command): void {
  program
    .command('selfcheck')
    .description('load and attach an eBPF program and show it filtering real traffic between two namespaces')
    .action(async () => {
      const ok = await selfcheck((l) => process.stdout.write(`${l}\n`));
      process.exit(ok ? 0 : 1);
    });
}

export async function selfcheck(log: (line: string) => void): Promise<boolean> {
  // Loaded here, not with the command table: the eBPF library loads libc through koffi, which every
  // other command would pay for at start-up.
  const { Collection, CollectionSpec, Link, RingBufReader } = await import('../ebpf/index.js');
  const { run } = await import('../datapath/linux/index.js');
  const id = randomBytes(3).toString('hex');
  const nsA = `ctsc${id}a`;
  const nsB = `ctsc${id}b`;
  const undo: (() => unknown)[] = [];
  let passed = true;
  const step = (what: string, good: boolean) => {
    log(`  ${good ? 'ok  ' : 'FAIL'} ${what}`);
    passed &&= good;
  };
  try {
    log(`selfcheck: namespaces ${nsA} and ${nsB}, veth 10.251.0.1 <-> 10.251.0.2`);
    await run(['ip', 'netns', 'add', nsA]);
    undo.push(() => run(['ip', 'netns', 'del', nsA]));
    await run(['ip', 'netns', 'add', nsB]);
    undo.push(() => run(['ip', 'netns', 'del', nsB]));
    await run([
      'ip',
      'link',
      'add',
      `sc${id}a`,
      'netns',
      nsA,
      'type',
      'veth',
      'peer',
      'name',
      `sc${id}b`,
      'netns',
      nsB,
    ]);
    for (const [ns, dev, ip] of [
      [nsA, `sc${id}a`, '10.251.0.1/24'],
      [nsB, `sc${id}b`, '10.251.0.2/24'],
    ] as const) {
      await run(['ip', '-n', ns, 'addr', 'add', ip, 'dev', dev]);
      await run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    const server = spawn(
      'nsenter',
      [
        `--net=/run/netns/${nsB}`,
        process.execPath,
        cliPath,
        'workload',
        'serve',
        '--tcp',
        String(PORT),
        '-q',
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    undo.push(() => void server.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      server.stdout.on('data', (d: Buffer) => d.toString().includes('serving') && resolve());
      server.on('exit', (c) => reject(new Error(`workload server exited with ${c}`)));
    });

    const bpffs = mkdtempSync(join(tmpdir(), 'cts-selfcheck-'));
    await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
    undo.push(async () => {
      await run(['umount', '-l', bpffs]);
      rmSync(bpffs, { recursive: true, force: true });
    });

    const spec = CollectionSpec.fromFile(bpfObjectPath('test/port_filter.o'));
    const coll = Collection.load(spec);
    undo.push(() => coll.close());
    const link = Link.attachTcx({
      program: coll.program('filter_ingress'),
      direction: 'ingress',
      interface: `sc${id}b`,
      netns: `/run/netns/${nsB}`,
    });
    undo.push(() => link.close());
    log(
      `loaded ${spec.programs.size} programs, ${spec.maps.size} maps; attached filter_ingress to tcx/ingress of sc${id}b (link id ${link.info().id})`,
    );

    const probe = () =>
      new Promise<{ ok: boolean; line: string }>((resolve) => {
        const args = [
          `--net=/run/netns/${nsA}`,
          process.execPath,
          cliPath,
          'workload',
          'connect',
          `10.251.0.2:${PORT}`,
          '--timeout',
          '700ms',
        ];
        execFile('nsenter', args, (err, stdout) => resolve({ ok: !err, line: stdout.trim() }));
      });
    let r = await probe();
    step(`TCP 10.251.0.1 -> 10.251.0.2:${PORT} passes with an empty blocklist (${r.line})`, r.ok);

    const key = Buffer.alloc(2);
    key.writeUInt16LE(PORT);
    coll.map('blocked_ports').update(key, Uint8Array.of(1));
    log(`map update: blocked_ports[${PORT}] = 1`);
    r = await probe();
    step(`TCP to port ${PORT} is DROPPED by the program (${r.line})`, !r.ok);
    const rb = new RingBufReader(coll.map('events'));
    let events = 0;
    rb.poll((rec) => {
      const b = Buffer.from(rec);
      if (events++ === 0)
        log(
          `  ring buffer: drop ${[...b.subarray(0, 4)].join('.')}:${b.readUInt16LE(8)} -> ${[...b.subarray(4, 8)].join('.')}:${b.readUInt16LE(10)} proto ${b[12]}`,
        );
    });
    rb.close();
    step(`${events} drop event(s) received through the ring buffer`, events > 0);

    coll.map('blocked_ports').delete(key);
    log(`map delete: blocked_ports[${PORT}]`);
    r = await probe();
    step(`TCP to port ${PORT} passes again (${r.line})`, r.ok);
  } catch (err) {
    log(`  FAIL ${err instanceof Error ? err.message : String(err)}`);
    passed = false;
  } finally {
    for (const fn of undo.reverse()) {
      try {
        await fn();
      } catch {
        // keep cleaning up
      }
    }
  }
  log(passed ? 'selfcheck passed: the datapath filters real traffic' : 'selfcheck FAILED');
  return passed;
}
