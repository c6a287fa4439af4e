/**
 * DNS proxy and toFQDNs in a lab: a pod whose egress policy has DNS rules asks the lab's cluster
 * DNS and an external DNS server (run in the lab's world namespace, answering the zone ext.test);
 * its queries go through the agent's DNS proxy. Allowed names resolve and connections to their IPs
 * work, refused names get REFUSED, an IP no answer gave stays blocked, toFQDNs follows a changing
 * answer (the old IP expires with its TTL), random and truncated datagrams leave the proxy working;
 * `fqdn cache list`, Hubble's DNS flows and the dns metrics show what happened.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath } from '../../../src/common/paths.js';
import { type DnsRecords, writeRecordsFile } from '../../../src/dns/index.js';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('fq');
const WORLD_NETNS = `/run/netns/cts-${LAB}-world`;
const WORLD_DNS = '192.168.211.254';
/** A second external server, with long TTLs (zone stable.test). */
const STABLE_DNS = '192.168.211.253';
/** Addresses of the "external services", on the world namespace's bridge. */
const EXT = {
  api: '192.168.211.101',
  blocked: '192.168.211.102',
  moved: '192.168.211.103',
  stable: '192.168.211.104',
};

const MANIFESTS = `apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  containers: [{name: c, command: ["sleep", "infinity"]}]
`;

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-fqdn}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules:
        dns: [{matchPattern: "*.kube-system.svc.cluster.local"}]
  - toCIDR: [${WORLD_DNS}/32]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules:
        dns: [{matchPattern: "*.prod.svc.ext.test"}]
  - toCIDR: [${STABLE_DNS}/32]
    toPorts:
    - ports: [{port: "53", protocol: UDP}]
      rules:
        dns: [{matchPattern: "**.stable.test"}]
  - toFQDNs: [{matchName: api.prod.svc.ext.test}, {matchPattern: "*.prod.svc.stable.test"}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`;

/**
 * Runs in the pod: `dns SERVER NAME udp|tcp` prints {rcode, ips, ttl}; `fuzz SERVER` sends random
 * and truncated datagrams to SERVER:53; `connect IP PORT` prints ok or the error.
 */
const POD_SCRIPT = `
const [mode, a, b, c] = process.argv.slice(1);
const dgram = require('node:dgram'), net = require('node:net'), crypto = require('node:crypto');
function query(name, id) {
  const parts = [Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of name.split('.').filter(Boolean)) parts.push(Buffer.from([l.length]), Buffer.from(l));
  parts.push(Buffer.from([0, 0, 1, 0, 1]));
  return Buffer.concat(parts);
}
function skipName(m, o) {
  while (m[o] !== 0) { if ((m[o] & 0xc0) === 0xc0) return o + 2; o += m[o] + 1; }
  return o + 1;
}
function parse(m) {
  const an = m.readUInt16BE(6), ips = []; let o = skipName(m, 12) + 4, ttl;
  for (let i = 0; i < an; i++) {
    o = skipName(m, o);
    const type = m.readUInt16BE(o), t = m.readUInt32BE(o + 4), len = m.readUInt16BE(o + 8);
    if (type === 1 && len === 4) { ips.push([...m.subarray(o + 10, o + 14)].join('.')); ttl = t; }
    o += 10 + len;
  }
  return { rcode: m[3] & 15, ips, ttl };
}
const out = (x) => { console.log(JSON.stringify(x)); process.exit(0); };
setTimeout(() => out({ error: 'timeout' }), 3000);
if (mode === 'dns' && c === 'udp') {
  const s = dgram.createSocket('udp4');
  s.on('message', (m) => out(parse(m)));
  s.send(query(b, 0x1234), 53, a);
} else if (mode === 'dns') {
  const s = net.connect(53, a, () => { const q = query(b, 0x4321), l = Buffer.alloc(2); l.writeUInt16BE(q.length); s.write(Buffer.concat([l, q])); });
  let buf = Buffer.alloc(0);
  s.on('data', (d) => { buf = Buffer.concat([buf, d]); if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) out(parse(buf.subarray(2))); });
  s.on('error', (e) => out({ error: e.code }));
} else if (mode === 'fuzz') {
  const s = dgram.createSocket('udp4');
  const valid = query('api.prod.svc.ext.test', 7);
  for (let i = 0; i < 300; i++) s.send(crypto.randomBytes(i % 90), 53, a);
  for (let n = 0; n < valid.length; n++) s.send(valid.subarray(0, n), 53, a);
  setTimeout(() => out({ sent: 300 + valid.length }), 500);
} else if (mode === 'connect') {
  const s = net.connect(Number(b), a, () => out({ ok: true }));
  s.setTimeout(1000, () => out({ ok: false, error: 'timeout' }));
  s.on('error', (e) => out({ ok: false, error: e.code }));
}
`;

async function inPod<T>(...args: string[]): Promise<T> {
  const o = await cliOk(['lab', 'exec', 'client', '--', 'node', '-e', POD_SCRIPT, ...args], { lab: LAB });
  return JSON.parse(o.trim().split('\n').pop()!) as T;
}
type DnsResult = { rcode?: number; ips?: string[]; ttl?: number; error?: string };
const ask = (server: string, name: string, transport: 'udp' | 'tcp' = 'udp') =>
  inPod<DnsResult>('dns', server, name, transport);
const connects = async (ip: string) => (await inPod<{ ok: boolean }>('connect', ip, '8080')).ok;

const svc = (name: string, ip: string) => ({
  name,
  namespace: 'prod',
  clusterIPs: [ip],
  headless: false,
  ports: [{ port: 8080, protocol: 'TCP' as const }],
  endpoints: [],
});

function records(apiIp: string): DnsRecords {
  return { services: [svc('api', apiIp), svc('blocked', EXT.blocked)], pods: [] };
}

describe('privileged: DNS proxy and toFQDNs in a lab', {
  skip: process.getuid?.() !== 0 && 'needs root',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cts-fqdn-e2e-'));
  const recordsFile = join(dir, 'records.json');
  const stableFile = join(dir, 'stable.json');
  const children: ChildProcess[] = [];
  const inWorld = (args: string[]) => {
    const p = spawn('nsenter', [`--net=${WORLD_NETNS}`, process.execPath, cliPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(p);
    return p;
  };

  /** `cilium-ts dns serve` in the world namespace; resolves once it serves. */
  const serveDns = (at: string, zone: string, ttl: string, file: string) => {
    const dns = inWorld([
      'dns',
      'serve',
      '--listen',
      `${at}:53`,
      '--zone',
      zone,
      '--ttl',
      ttl,
      '--records',
      file,
    ]);
    return new Promise<void>((resolve, reject) => {
      let out = '';
      dns.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(`serving ${zone}`)) resolve();
      });
      dns.on('exit', (code) => reject(new Error(`dns serve exited ${code}: ${out}`)));
    });
  };

  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '--dns', '-f', manifest(MANIFESTS)]);
    for (const ip of Object.values(EXT))
      spawnSync('ip', ['-n', `cts-${LAB}-world`, 'addr', 'add', `${ip}/32`, 'dev', 'br0']);
    spawnSync('ip', ['-n', `cts-${LAB}-world`, 'addr', 'add', `${STABLE_DNS}/32`, 'dev', 'br0']);
    writeRecordsFile(recordsFile, records(EXT.api));
    writeRecordsFile(stableFile, { services: [svc('web', EXT.stable)], pods: [] });
    await serveDns(WORLD_DNS, 'ext.test', '6', recordsFile);
    await serveDns(STABLE_DNS, 'stable.test', '600', stableFile);
    inWorld(['workload', 'serve', '--tcp', '8080']);
    await cliOk(['policy', 'import', manifest(POLICY)], { lab: LAB });
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await cli(['lab', 'down', '--name', LAB]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('an IP no DNS answer gave stays blocked', async () => {
    assert.equal(await connects(EXT.api), false);
  });

  it('an allowed name resolves through the proxy and its IP is reachable at once', async () => {
    const r = await ask(WORLD_DNS, 'api.prod.svc.ext.test');
    assert.deepEqual([r.rcode, r.ips], [0, [EXT.api]]);
    assert.equal(await connects(EXT.api), true, 'allowed before the answer was released');
  });

  it('a name no DNS rule allows gets REFUSED; one outside toFQDNs resolves but stays blocked', async () => {
    assert.equal((await ask(WORLD_DNS, 'db.other.svc.ext.test')).rcode, 5);
    assert.equal((await ask(WORLD_DNS, 'a.b.prod.svc.ext.test')).rcode, 5, '* does not cross a dot');
    const r = await ask(WORLD_DNS, 'blocked.prod.svc.ext.test');
    assert.deepEqual([r.rcode, r.ips], [0, [EXT.blocked]]);
    assert.equal(await connects(EXT.blocked), false);
  });

  it('over TCP too', async () => {
    const r = await ask(WORLD_DNS, 'api.prod.svc.ext.test', 'tcp');
    assert.deepEqual([r.rcode, r.ips], [0, [EXT.api]]);
    assert.equal((await ask(WORLD_DNS, 'db.other.svc.ext.test', 'tcp')).rcode, 5);
  });

  it('the lab cluster DNS: names the rules allow resolve, others are refused', async () => {
    const r = await ask('10.96.0.10', 'kube-dns.kube-system.svc.cluster.local');
    assert.deepEqual([r.rcode, r.ips], [0, ['10.96.0.10']]);
    assert.equal((await ask('10.96.0.10', 'kubernetes.default.svc.cluster.local')).rcode, 5);
  });

  it('toFQDNs follows a changing answer; the old IP goes when its TTL runs out', async () => {
    writeRecordsFile(recordsFile, records(EXT.moved));
    await waitFor(
      'the new answer',
      async () => (await ask(WORLD_DNS, 'api.prod.svc.ext.test')).ips?.[0] === EXT.moved,
      10_000,
      300,
    );
    assert.equal(await connects(EXT.moved), true);
    // The pod keeps asking (each answer refreshes the new IP): the old IP, no longer in any answer,
    // goes when its TTL runs out.
    await waitFor(
      'the old IP to expire',
      async () => {
        assert.deepEqual((await ask(WORLD_DNS, 'api.prod.svc.ext.test')).ips, [EXT.moved]);
        return !(await connects(EXT.api));
      },
      20_000,
      200,
    );
    // The new IP stays allowed while its answer is fresh (retried: a loaded machine may miss a
    // 1 s connect timeout), and the old one stays out.
    await waitFor(
      'the new IP to stay reachable',
      async () => {
        await ask(WORLD_DNS, 'api.prod.svc.ext.test');
        return connects(EXT.moved);
      },
      8000,
      200,
    );
    assert.equal(await connects(EXT.api), false);
  });

  it('an agent restart keeps the IPs DNS allowed; queries work again after it', async () => {
    const r = await ask(STABLE_DNS, 'web.prod.svc.stable.test');
    assert.deepEqual([r.rcode, r.ips], [0, [EXT.stable]]);
    assert.equal(await connects(EXT.stable), true);
    await cliOk(['lab', 'agent', 'restart'], { lab: LAB });
    assert.equal(await connects(EXT.stable), true, 'allowed without asking again (state/fqdn.json)');
    assert.equal(await connects(EXT.blocked), false, 'and nothing more');
    await waitFor(
      'the DNS proxy after the restart',
      async () => (await ask(STABLE_DNS, 'web.prod.svc.stable.test')).rcode === 0,
      10_000,
      300,
    );
    assert.equal((await ask(STABLE_DNS, 'other.test')).rcode, 5);
  });

  it('random and truncated datagrams from the pod leave the proxy answering', async () => {
    await inPod('fuzz', WORLD_DNS);
    await inPod('fuzz', '10.96.0.10');
    const r = await ask(WORLD_DNS, 'api.prod.svc.ext.test');
    assert.equal(r.rcode, 0);
  });

  it('fqdn cache list shows the names and IPs the pod learnt', async () => {
    const rows = JSON.parse(await cliOk(['fqdn', 'cache', 'list', '-o', 'json'], { lab: LAB })) as {
      name: string;
      ips: { ip: string }[];
    }[];
    const api = rows.find((r) => r.name === 'api.prod.svc.ext.test.');
    assert.ok(api, `api in ${JSON.stringify(rows)}`);
    assert.ok(api.ips.some((i) => i.ip === EXT.moved));
    const table = await cliOk(['fqdn', 'cache', 'list'], { lab: LAB });
    assert.match(table, /^Endpoint\s+Source\s+FQDN\s+TTL\s+ExpirationTime\s+IPs/);
    assert.match(table, /api\.prod\.svc\.ext\.test\..*192\.168\.211\.103/);
  });

  it('Hubble shows DNS requests and responses, the refused ones dropped; the dns metrics count them', async () => {
    // Flows and counters since the agent restart above (both live in the agent's memory).
    const flows = (await cliOk(['hubble', 'observe', '--last', '1000', '-o', 'json'], { lab: LAB }))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { flow?: Record<string, unknown> })
      .map(
        (x) =>
          (x.flow ?? x) as {
            verdict: string;
            Type: string;
            l7?: { type: string; dns?: { query?: string; ips?: string[]; rcode?: number } };
          },
      )
      .filter((f) => f.Type === 'L7' && f.l7?.dns);
    const api = flows.filter((f) => f.l7!.dns!.query === 'api.prod.svc.ext.test.');
    assert.ok(api.some((f) => f.l7!.type === 'REQUEST' && f.verdict === 'FORWARDED'));
    assert.ok(api.some((f) => f.l7!.type === 'RESPONSE' && f.l7!.dns!.ips?.includes(EXT.moved)));
    assert.ok(
      flows.some((f) => f.l7!.dns!.query === 'other.test.' && f.verdict === 'DROPPED'),
      'the refused query is a dropped flow',
    );
    // --protocol dns keeps exactly the DNS flows.
    const dnsOnly = (
      await cliOk(['hubble', 'observe', '--last', '1000', '--protocol', 'dns', '-o', 'json'], { lab: LAB })
    )
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { flow?: { l7?: { dns?: unknown } } });
    assert.ok(dnsOnly.length > 0);
    assert.ok(dnsOnly.every((x) => (x.flow ?? (x as { l7?: { dns?: unknown } })).l7?.dns !== undefined));
    const status = JSON.parse(await cliOk(['status', '-o', 'json'], { lab: LAB })) as { metrics: string };
    const text = await (await fetch(status.metrics)).text();
    assert.match(text, /hubble_dns_queries_total\{rcode="Policy denied",qtypes="A",ips_returned="0"\} [1-9]/);
    assert.match(text, /hubble_dns_responses_total\{rcode="No Error",qtypes="A",ips_returned="1"\} [1-9]/);
  });
});
