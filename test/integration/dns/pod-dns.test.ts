/**
 * Cluster DNS as a pod sees it: `cilium-ts dns serve` on 10.96.0.10:53 inside a network namespace,
 * and "pods" in that namespace with their own mount namespace where the generated resolv.conf is
 * bind-mounted over /etc/resolv.conf (the rest of the file system shared). glibc's resolver, curl and
 * Node's dns.lookup then resolve short service names through the search path.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath } from '../../../src/common/paths.js';
import { type DnsRecords, podResolvConf, writeRecordsFile } from '../../../src/dns/index.js';
import { cleanupStack, sh, uniquePrefix } from '../../helpers/sys.js';
import { dnsCliPath } from '../../unit/dns/dns-cli.js';

const isRoot = process.getuid?.() === 0;

function records(deathstarIp: string): DnsRecords {
  return {
    services: [
      {
        name: 'deathstar',
        namespace: 'default',
        clusterIPs: [deathstarIp],
        headless: false,
        ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
        endpoints: [],
      },
      {
        name: 'db',
        namespace: 'empire',
        clusterIPs: [],
        headless: true,
        ports: [],
        endpoints: [
          { addresses: ['10.200.0.5'], ready: true },
          { addresses: ['10.200.0.6'], ready: true },
        ],
      },
    ],
    pods: [],
  };
}

/** Waits for a line matching `re` on a child's stdout. */
function waitFor(p: ChildProcess, re: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (re.test(out)) resolve();
    });
    p.on('exit', (c) => reject(new Error(`${what} exited ${c}: ${out}`)));
  });
}

describe('privileged: cluster DNS from a pod (resolv.conf bind-mounted in its own mount namespace)', {
  skip: !isRoot && 'needs root',
}, () => {
  const cleanup = cleanupStack();
  const ns = uniquePrefix('ctsdns');
  const netns = `/run/netns/${ns}`;
  const dir = mkdtempSync(join(tmpdir(), 'cts-dns-pod-'));
  const recordsFile = join(dir, 'records.json');
  const hostResolvConf = readFileSync('/etc/resolv.conf', 'utf8');

  /** Runs a command as a pod of `namespace` would: in the netns, with the pod's resolv.conf. */
  function inPod(namespace: string, cmd: string[]) {
    const resolv = join(dir, `resolv-${namespace}.conf`);
    writeFileSync(resolv, podResolvConf({ namespace, nameservers: ['10.96.0.10'] }));
    return spawnSync(
      'nsenter',
      [
        `--net=${netns}`,
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount --bind "$0" /etc/resolv.conf && exec "$@"',
        resolv,
        ...cmd,
      ],
      { encoding: 'utf8', timeout: 10_000 },
    );
  }

  before(async () => {
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    sh('ip', ['netns', 'add', ns]);
    cleanup.add(() => void spawnSync('ip', ['netns', 'del', ns]));
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // The DNS service address and the deathstar's address live on the namespace's own loopback.
    for (const a of ['10.96.0.10/32', '10.96.0.20/32', '10.96.0.21/32'])
      sh('ip', ['-n', ns, 'addr', 'add', a, 'dev', 'lo']);
    writeRecordsFile(recordsFile, records('10.96.0.20'));

    const dns = spawn(
      'nsenter',
      [
        `--net=${netns}`,
        process.execPath,
        dnsCliPath,
        'dns',
        'serve',
        '--listen',
        '10.96.0.10:53',
        '--records',
        recordsFile,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanup.add(() => void dns.kill('SIGKILL'));
    await waitFor(dns, /serving cluster\.local on 10\.96\.0\.10:53 \(udp, tcp\)/, 'dns serve');

    const web = spawn(
      'nsenter',
      [
        `--net=${netns}`,
        process.execPath,
        cliPath,
        'workload',
        'serve',
        '--tcp',
        '80',
        '--http',
        '--name',
        'deathstar',
        '-q',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanup.add(() => void web.kill('SIGKILL'));
    await waitFor(web, /serving deathstar/, 'workload serve');
  });
  after(() => cleanup.run());

  it('privileged: a pod in default resolves `deathstar` and `deathstar.default` through the search path; curl deathstar works', () => {
    const short = inPod('default', ['getent', 'hosts', 'deathstar']);
    assert.equal(short.status, 0, short.stderr);
    assert.match(short.stdout, /^10\.96\.0\.20\s+deathstar\.default\.svc\.cluster\.local/);
    const withNs = inPod('default', ['getent', 'hosts', 'deathstar.default']);
    assert.match(withNs.stdout, /^10\.96\.0\.20\s/);
    const curl = inPod('default', [
      'curl',
      '-sS',
      '--max-time',
      '5',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{remote_ip}',
      'http://deathstar/',
    ]);
    assert.equal(curl.status, 0, curl.stderr);
    assert.equal(curl.stdout, '200 10.96.0.20');
    const node = inPod('default', [
      process.execPath,
      '-e',
      "require('node:dns').lookup('deathstar', { family: 4 }, (e, a) => { console.log(e ? e.code : a); })",
    ]);
    assert.equal(node.stdout.trim(), '10.96.0.20');
  });

  it('privileged: the search path is the pod’s namespace: `db` from empire is the headless pods, from default it is not found', () => {
    const fromEmpire = inPod('empire', ['getent', 'ahostsv4', 'db']);
    assert.equal(fromEmpire.status, 0, fromEmpire.stderr);
    const ips = [
      ...new Set(
        fromEmpire.stdout
          .split('\n')
          .map((l) => l.split(/\s+/)[0])
          .filter(Boolean),
      ),
    ].sort();
    assert.deepEqual(ips, ['10.200.0.5', '10.200.0.6']);
    assert.equal(inPod('default', ['getent', 'hosts', 'db']).status, 2);
    assert.match(inPod('default', ['getent', 'hosts', 'db.empire']).stdout, /^10\.200\.0\.[56]\s/);
  });

  it('privileged: a name outside the cluster fails at once (REFUSED, no upstream), and the host’s resolv.conf is untouched', () => {
    const t0 = Date.now();
    const r = inPod('default', ['getent', 'hosts', 'example.com']);
    assert.equal(r.status, 2);
    assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms`);
    assert.equal(readFileSync('/etc/resolv.conf', 'utf8'), hostResolvConf);
    const seen = inPod('default', ['cat', '/etc/resolv.conf']);
    assert.equal(seen.stdout, podResolvConf({ namespace: 'default', nameservers: ['10.96.0.10'] }));
  });

  it('privileged: a records file rewrite is resolved by the running server without restart', async () => {
    writeRecordsFile(recordsFile, records('10.96.0.21'));
    const deadline = Date.now() + 5000;
    let out = '';
    while (Date.now() < deadline) {
      out = inPod('default', ['getent', 'hosts', 'deathstar']).stdout;
      if (out.startsWith('10.96.0.21')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(out, /^10\.96\.0\.21\s/);
  });
});
