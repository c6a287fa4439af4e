import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type DnsRecords,
  type DnsServer,
  serveDnsFromFile,
  startDnsServer,
  watchRecordsFile,
  writeRecordsFile,
} from '../../../src/dns/index.js';
import { dnsCliPath } from './dns-cli.js';
import { ask, firstData, rrs } from './wire.js';

const dir = mkdtempSync(join(tmpdir(), 'cts-dns-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const NAME = 'deathstar.default.svc.cluster.local';

function records(ip: string): DnsRecords {
  return {
    services: [
      {
        name: 'deathstar',
        namespace: 'default',
        clusterIPs: [ip],
        headless: false,
        ports: [],
        endpoints: [],
      },
    ],
    pods: [],
  };
}

/** Asks until the answer is `want` (A record data, or the rcode), within `ms`. */
async function eventually(port: number, want: string, ms = 3000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const a = await ask(port, NAME, 'A');
    const got = firstData(a) ?? a.rcode;
    if (got === want) return Date.now() - t0;
    if (Date.now() - t0 > ms) assert.fail(`still ${got} after ${ms} ms, want ${want}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('records file: the lab rewrites it, the server follows it without restart', () => {
  const servers: DnsServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('a missing file is no records; atomic rewrites are answered within moments (the watch, not the timer)', async () => {
    const file = join(dir, 'records.json');
    const s = await serveDnsFromFile({ listen: ['127.0.0.1:0'], recordsFile: file, pollMs: 60_000 });
    servers.push(s);
    const port = s.addresses[0]!.port;
    assert.equal((await ask(port, NAME, 'A')).rcode, 'NXDOMAIN');
    writeRecordsFile(file, records('10.96.0.20'));
    assert.ok((await eventually(port, '10.96.0.20')) < 1000);
    writeRecordsFile(file, records('10.96.0.21'));
    await eventually(port, '10.96.0.21');
    writeRecordsFile(file, { services: [], pods: [] });
    await eventually(port, 'NXDOMAIN');
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file is left behind',
    );
  });

  it('the timer re-reads a changed file even without a watch event', async () => {
    const file = join(dir, 'polled.json');
    writeRecordsFile(file, records('10.96.0.30'));
    const source = watchRecordsFile(file, { pollMs: 50 });
    try {
      const changed = source.changed();
      // Written in place (same inode): the size and mtime change, the timer sees it.
      writeFileSync(file, JSON.stringify(records('10.96.0.31')));
      assert.equal((await changed).services[0]!.clusterIPs[0], '10.96.0.31');
      assert.equal(source.reload(), false, 'an unchanged file is not taken again');
    } finally {
      source.close();
    }
  });

  it('a broken or invalid file keeps the previous records and says why, naming the field', async () => {
    const file = join(dir, 'broken.json');
    writeRecordsFile(file, records('10.96.0.40'));
    const lines: string[] = [];
    const source = watchRecordsFile(file, { pollMs: 50, log: (l) => lines.push(l) });
    const s = await startDnsServer({ listen: ['127.0.0.1:0'], source });
    servers.push(s);
    const port = s.addresses[0]!.port;
    try {
      writeFileSync(file, '{"services": [');
      source.reload();
      assert.match(source.lastError ?? '', /broken\.json: not JSON/);
      await eventually(port, '10.96.0.40');
      writeFileSync(file, JSON.stringify(records('10.96.0.999')));
      source.reload();
      assert.match(
        source.lastError ?? '',
        /broken\.json\.services\[0\]\.clusterIPs\[0\]: must be an IP address/,
      );
      await eventually(port, '10.96.0.40');
      assert.ok(lines.some((l) => l.includes('kept the previous records')));
      writeRecordsFile(file, records('10.96.0.41'));
      await eventually(port, '10.96.0.41');
      assert.equal(source.lastError, undefined);
    } finally {
      source.close();
    }
  });

  it('a file invalid at start is refused naming the file and field; writeRecordsFile writes nothing invalid', async () => {
    const file = join(dir, 'bad-start.json');
    writeFileSync(file, JSON.stringify({ services: [{ name: 'x' }], pods: [] }));
    await assert.rejects(
      serveDnsFromFile({ listen: ['127.0.0.1:0'], recordsFile: file }),
      /bad-start\.json\.services\[0\]\.namespace/,
    );
    const fresh = join(dir, 'never.json');
    assert.throws(() => writeRecordsFile(fresh, records('nope')), /records\.services\[0\]\.clusterIPs\[0\]/);
    assert.equal(existsSync(fresh), false);
  });
});

describe('cilium-ts dns serve and resolv-conf (the command, as its own process)', () => {
  it('serve: listens where told, answers from the records file, follows it, stops on SIGTERM', async () => {
    const file = join(dir, 'cli.json');
    writeRecordsFile(file, records('10.96.0.50'));
    const p = spawn(
      process.execPath,
      [
        dnsCliPath,
        'dns',
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--records',
        file,
        '--ttl',
        '7',
        '--log-queries',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        p.stdout.on('data', () => {
          const m = /serving cluster\.local on 127\.0\.0\.1:(\d+) \(udp, tcp\)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        p.on('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
      });
      const a = await ask(port, NAME, 'A');
      assert.deepEqual(rrs(a.answers), [`${NAME} 7 A 10.96.0.50`]);
      writeRecordsFile(file, records('10.96.0.51'));
      await eventually(port, '10.96.0.51');
      assert.match(out, /deathstar\.default\.svc\.cluster\.local A NOERROR answers=1/);
      const code = await new Promise<number | null>((resolve) => {
        p.on('exit', resolve);
        p.kill('SIGTERM');
      });
      assert.equal(code, 0);
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('serve with a bad flag fails with one line naming it', async () => {
    const p = spawn(
      process.execPath,
      [dnsCliPath, 'dns', 'serve', '--listen', 'here', '--records', join(dir, 'x.json')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => p.on('exit', resolve));
    assert.equal(code, 1);
    assert.equal(err, 'Error: listen[0]: "here" is not IP, IP:PORT or [IPv6]:PORT (IP addresses only)\n');
  });

  it('resolv-conf prints a pod’s resolv.conf', async () => {
    const p = spawn(process.execPath, [
      dnsCliPath,
      'dns',
      'resolv-conf',
      '--namespace',
      'default',
      '--nameserver',
      '10.96.0.10',
    ]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    assert.equal(await new Promise((resolve) => p.on('exit', resolve)), 0);
    assert.equal(
      out,
      'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
    );
  });
});
