/**
 * The DNS proxy's cost, on loopback: queries/s and latency of a client asking a DNS server (the
 * cluster DNS server of src/dns) directly — the baseline — and through the proxy (rule check,
 * forward to the server asked, answer handed to the FQDN subsystem before release), rounds
 * interleaved. Then the time from an answer to a toFQDNs-allowed IP: the agent's control plane
 * (cells against in-memory maps) from learn() to the ipcache and policy map holding the IP,
 * against the same answer repeated (nothing to change) as the baseline.
 *
 * As root, a lab too: a pod asks DNS servers in the world namespace for names it has never asked
 * (one IP each) and connects to the answer at once: the DNS round trip through the proxy (the IP
 * learnt and allowed before the answer comes back) against the same query to a server without DNS
 * rules (not proxied), and the connect right after the answer against a connect to an IP allowed
 * long before.
 *
 *   node dist/bench/dns-proxy.js [--seconds 2] [--rounds 3] [--concurrency 32] [--names 100]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { DnsProxyT } from '../src/agent/cells/fqdn-proxy.js';
import { PolicyT, SerialT } from '../src/agent/cells/tokens.js';
import { cliPath } from '../src/common/paths.js';
import { MemoryRecordSource, startDnsServer, writeRecordsFile } from '../src/dns/index.js';
import { selectorPattern } from '../src/fqdn/match.js';
import { DnsProxyHandler } from '../src/proxy/dns/handler.js';
import { startDnsProxyServer } from '../src/proxy/dns/server.js';
import { fakeDatapath } from '../test/unit/agent/fake-targets.js';
import { addClient, controlPlane } from '../test/unit/fqdn/control-plane.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SECONDS = arg('seconds', 2);
const ROUNDS = arg('rounds', 3);
const CONCURRENCY = arg('concurrency', 32);
const NAMES = arg('names', 100);

const NAME = 'web.default.svc.cluster.local';

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A client on one UDP socket: queries with their own IDs, answers matched by ID. */
class Client {
  readonly #s: Socket = createSocket('udp4');
  readonly #waiting = new Map<number, () => void>();
  #id = 0;
  readonly #queries = new Map<number, Buffer>();
  constructor() {
    this.#s.on('message', (m: Buffer) => {
      const done = this.#waiting.get(m.readUInt16BE(0));
      if (done) {
        this.#waiting.delete(m.readUInt16BE(0));
        done();
      }
    });
  }
  async ready(): Promise<void> {
    await new Promise<void>((r) => this.#s.bind(0, '127.0.0.1', () => r()));
  }
  ask(port: number): Promise<void> {
    this.#id = (this.#id + 1) & 0xffff;
    const id = this.#id;
    let q = this.#queries.get(id);
    if (q === undefined) {
      q = dnsPacket.encode({
        type: 'query',
        id,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ name: NAME, type: 'A' }],
      });
      this.#queries.set(id, q);
    }
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`query ${id} unanswered`));
      }, 2000);
      this.#waiting.set(id, () => {
        clearTimeout(t);
        resolve();
      });
      this.#s.send(q, port, '127.0.0.1');
    });
  }
  close(): void {
    this.#s.close();
  }
}

/** One at a time: per-query latency in µs. */
async function latency(c: Client, port: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await c.ask(port);
    out.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return out.sort((a, b) => a - b);
}

/** `CONCURRENCY` in flight for SECONDS: answered queries per second. */
async function throughput(c: Client, port: number): Promise<number> {
  const end = Date.now() + SECONDS * 1000;
  let done = 0;
  const worker = async () => {
    while (Date.now() < end) {
      await c.ask(port);
      done++;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return done / ((Date.now() - t0) / 1000);
}

async function proxyCost(): Promise<void> {
  const upstream = await startDnsServer({
    listen: ['127.0.0.1:0'],
    source: new MemoryRecordSource({
      services: [
        {
          name: 'web',
          namespace: 'default',
          clusterIPs: ['10.96.0.10'],
          headless: false,
          ports: [],
          endpoints: [],
        },
      ],
      pods: [],
    }),
  });
  let handedOver = 0;
  const handler = new DnsProxyHandler({
    rules: () => ({
      endpointId: 1,
      patterns: [selectorPattern({ matchPattern: '*.default.svc.cluster.local' })],
    }),
    onAnswer: async () => {
      handedOver++;
    },
  });
  const proxy = await startDnsProxyServer({ port: 0, handler, destinationOf: () => upstream.addresses[0]! });
  const direct = upstream.addresses[0]!.port;
  const c = new Client();
  await c.ready();
  await latency(c, direct, 200);
  await latency(c, proxy.port, 200);
  const lat = { direct: [] as number[], proxy: [] as number[] };
  const qps = { direct: [] as number[], proxy: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    lat.direct.push(...(await latency(c, direct, 1000)));
    lat.proxy.push(...(await latency(c, proxy.port, 1000)));
    qps.direct.push(await throughput(c, direct));
    qps.proxy.push(await throughput(c, proxy.port));
  }
  c.close();
  await proxy.close();
  await upstream.close();
  const sortAll = (a: number[]) => a.sort((x, y) => x - y);
  const d = sortAll(lat.direct);
  const p = sortAll(lat.proxy);
  const med = (a: number[]) => sortAll([...a])[Math.floor(a.length / 2)]!;
  console.log(
    `# DNS proxy on loopback (UDP, ${ROUNDS} interleaved rounds; ${CONCURRENCY} in flight for ${SECONDS}s per throughput round)`,
  );
  console.log('path       queries/s   p50 µs   p99 µs');
  console.log(
    `direct     ${med(qps.direct).toFixed(0).padStart(9)}   ${pct(d, 50).toFixed(0).padStart(6)}   ${pct(d, 99).toFixed(0).padStart(6)}`,
  );
  console.log(
    `proxy      ${med(qps.proxy).toFixed(0).padStart(9)}   ${pct(p, 50).toFixed(0).padStart(6)}   ${pct(p, 99).toFixed(0).padStart(6)}`,
  );
  console.log(
    `proxy/direct queries/s ${(med(qps.proxy) / med(qps.direct)).toFixed(2)}x; added latency p50 ${(pct(p, 50) - pct(d, 50)).toFixed(0)} µs, p99 ${(pct(p, 99) - pct(d, 99)).toFixed(0)} µs; answers handed to the FQDN subsystem ${handedOver}`,
  );
}

async function answerToAllowed(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cts-bench-fqdn-'));
  const dp = fakeDatapath();
  const hive = await controlPlane(dp, dir);
  try {
    const ep = await addClient(hive, dp);
    const policy = hive.get(PolicyT);
    const egress443 = { toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] };
    await policy.importPolicies([
      {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: 'fqdn', namespace: 'default' },
        spec: {
          endpointSelector: { matchLabels: { app: 'client' } },
          egress: [{ toFQDNs: [{ matchPattern: '*.example.com' }], ...egress443 }],
        },
      },
    ]);
    const learn = hive.get(DnsProxyT).learn;
    const serial = hive.get(SerialT);
    // Each answer is timed on an idle agent: the endpoints' own follow-up (state saves) done first.
    const idle = async () => {
      await serial(async () => {});
      await serial(async () => {});
    };
    const N = 300;
    const newIp: number[] = [];
    const repeated: number[] = [];
    for (let i = 0; i < N; i++) {
      const ip = `198.18.${i >> 8}.${i & 255}`;
      const answer = { endpointId: ep.id, name: `h${i}.example.com.`, ips: [{ ip, ttl: 3600 }], cnames: [] };
      await idle();
      let t0 = process.hrtime.bigint();
      await learn(answer);
      newIp.push(Number(process.hrtime.bigint() - t0) / 1000);
      const id = dp.ipcache.data.get(`${ip}/32`)?.identity;
      const allowed = [...(dp.policy.tries.get(ep.id)?.values() ?? [])].some(
        (e) => e.key.identity === id && e.key.dport === 443 && !e.entry.deny,
      );
      if (id === undefined || !allowed) throw new Error(`${ip} not allowed in the maps after learn`);
      await idle();
      t0 = process.hrtime.bigint();
      await learn(answer);
      repeated.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    newIp.sort((a, b) => a - b);
    repeated.sort((a, b) => a - b);
    console.log(
      `# answer → allowed: the agent's control plane (cells, in-memory maps), ${N} answers each with a new IP for one endpoint, until ipcache and policy map hold it`,
    );
    console.log('answer                               p50 µs   p99 µs');
    console.log(
      `same IPs again (baseline: no change) ${pct(repeated, 50).toFixed(0).padStart(6)}   ${pct(repeated, 99).toFixed(0).padStart(6)}`,
    );
    console.log(
      `a new IP (identity, ipcache, policy) ${pct(newIp, 50).toFixed(0).padStart(6)}   ${pct(newIp, 99).toFixed(0).padStart(6)}`,
    );
    console.log(`new/baseline p50 ${(pct(newIp, 50) / pct(repeated, 50)).toFixed(1)}x`);
  } finally {
    await hive.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs in the lab's pod: per name, a direct and a proxied query, then connects; prints µs arrays. */
const POD_BENCH = `
const [proxied, direct, n] = process.argv.slice(1);
const dgram = require('node:dgram'), net = require('node:net');
const now = () => Number(process.hrtime.bigint()) / 1000;
function query(name, id) {
  const parts = [Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of name.split('.')) parts.push(Buffer.from([l.length]), Buffer.from(l));
  parts.push(Buffer.from([0, 0, 1, 0, 1]));
  return Buffer.concat(parts);
}
const s = dgram.createSocket('udp4');
let waiting;
s.on('message', (m) => waiting && waiting(m));
const ask = (server, name, id) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('no answer for ' + name)), 3000);
  waiting = (m) => { clearTimeout(t); resolve([...m.subarray(m.length - 4)].join('.')); };
  s.send(query(name, id), 53, server);
});
const connect = (ip) => new Promise((resolve, reject) => {
  const c = net.connect(8080, ip, () => { c.destroy(); resolve(); });
  c.setTimeout(3000, () => reject(new Error('connect timeout ' + ip)));
  c.on('error', reject);
});
(async () => {
  const out = { direct: [], proxied: [], afterAnswer: [], allowed: [] };
  for (let i = 0; i < Number(n); i++) {
    const name = 'h' + i + '.prod.svc.ext.test';
    let t = now();
    await ask(direct, name, 2 * i);
    out.direct.push(now() - t);
    t = now();
    const ip = await ask(proxied, name, 2 * i + 1);
    const answered = now();
    out.proxied.push(answered - t);
    await connect(ip);
    out.afterAnswer.push(now() - answered);
    t = now();
    await connect(ip);
    out.allowed.push(now() - t);
  }
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
`;

async function labAnswerToConnect(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('# answer → connection in a lab: skipped (a lab needs root)');
    return;
  }
  const lab = `fqb${randomBytes(2).toString('hex')}`;
  const world = `cts-${lab}-world`;
  const dir = mkdtempSync(join(tmpdir(), 'cts-bench-dns-'));
  const children: ReturnType<typeof spawn>[] = [];
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [cliPath, ...args], {
      encoding: 'utf8',
      timeout: 600_000,
      env: { ...process.env, CILIUM_TS_LAB: lab },
    });
    if (r.status !== 0) throw new Error(`cilium-ts ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const inWorld = (args: string[]) => {
    const p = spawn('nsenter', [`--net=/run/netns/${world}`, process.execPath, cliPath, ...args], {
      stdio: 'ignore',
    });
    children.push(p);
  };
  try {
    const pod = join(dir, 'pod.yaml');
    writeFileSync(
      pod,
      'apiVersion: v1\nkind: Pod\nmetadata: {name: client, labels: {app: client}}\nspec: {containers: [{name: c, command: [sleep, infinity]}]}\n',
    );
    cli(['lab', 'up', '--name', lab, '-f', pod]);
    // On the underlay /24, which every node reaches directly: .110 onwards (nodes use the low ones).
    const ips = Array.from({ length: Math.min(NAMES, 120) }, (_, i) => `192.168.211.${110 + i}`);
    // The world namespace answers for every name's IP (they are on its bridge).
    for (const ip of ips) spawnSync('ip', ['-n', world, 'addr', 'add', `${ip}/32`, 'dev', 'br0']);
    spawnSync('ip', ['-n', world, 'addr', 'add', '192.168.211.253/32', 'dev', 'br0']);
    const records = join(dir, 'records.json');
    writeRecordsFile(records, {
      services: ips.map((ip, i) => ({
        name: `h${i}`,
        namespace: 'prod',
        clusterIPs: [ip],
        headless: false,
        ports: [],
        endpoints: [],
      })),
      pods: [],
    });
    for (const at of ['192.168.211.254:53', '192.168.211.253:53'])
      inWorld(['dns', 'serve', '--listen', at, '--zone', 'ext.test', '--ttl', '600', '--records', records]);
    inWorld(['workload', 'serve', '--tcp', '8080']);
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench-fqdn}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toCIDR: [192.168.211.254/32]
    toPorts: [{ports: [{port: "53", protocol: UDP}], rules: {dns: [{matchPattern: "*.prod.svc.ext.test"}]}}]
  - toCIDR: [192.168.211.253/32]
    toPorts: [{ports: [{port: "53", protocol: UDP}]}]
  - toFQDNs: [{matchPattern: "*.prod.svc.ext.test"}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`,
    );
    cli(['policy', 'import', policy]);
    await new Promise((r) => setTimeout(r, 1000));
    const out = cli([
      'lab',
      'exec',
      'client',
      '--',
      'node',
      '-e',
      POD_BENCH,
      '192.168.211.254',
      '192.168.211.253',
      String(ips.length),
    ]);
    const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number[]> & { error?: string };
    if (r.error) throw new Error(r.error);
    const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
    const [d, p, a, b] = [r.direct!, r.proxied!, r.afterAnswer!, r.allowed!].map(sorted);
    console.log(
      `# answer → connection in a lab (${ips.length} names never asked before, one IP each; UDP; pod in a node, servers in the world namespace)`,
    );
    console.log('                                             p50 µs   p99 µs');
    const row = (label: string, x: number[]) =>
      console.log(
        `${label.padEnd(44)} ${pct(x, 50).toFixed(0).padStart(6)}   ${pct(x, 99).toFixed(0).padStart(6)}`,
      );
    row('DNS query, server without DNS rules (base)', d!);
    row('DNS query through the proxy (IP learnt)', p!);
    row('connect to an IP allowed long before (base)', b!);
    row('connect right after the answer', a!);
    console.log(
      `proxy/direct DNS p50 ${(pct(p!, 50) / pct(d!, 50)).toFixed(2)}x (+${(pct(p!, 50) - pct(d!, 50)).toFixed(0)} µs); connect after answer / allowed p50 ${(pct(a!, 50) / pct(b!, 50)).toFixed(2)}x; first connects that needed a SYN retry (>900 ms): ${a!.filter((x) => x > 900_000).length}`,
    );
  } finally {
    for (const c of children) c.kill('SIGKILL');
    spawnSync(process.execPath, [cliPath, 'lab', 'down', '--name', lab], {
      stdio: 'ignore',
      timeout: 300_000,
    });
    rmSync(dir, { recursive: true, force: true });
  }
}

await proxyCost();
console.log();
await answerToAllowed();
console.log();
await labAnswerToConnect();
