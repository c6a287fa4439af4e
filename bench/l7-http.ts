/**
 * What the HTTP proxy costs on the real path: a one-node lab, a client pod and a server pod
 * (keep-alive HTTP server on ports 80 and 81). Port 80 has an allowing L7 rule (`GET`), so the
 * datapath redirects its connections to the node's proxy; port 81 an L4 rule only — the direct
 * baseline, measured in the same rounds (interleaved, order alternating). The load runs in the
 * client pod: closed loop, `--concurrency` workers, keep-alive (one connection per worker) and
 * new-connection (one per request) modes for the request rate, then one keep-alive client for the
 * added latency (with 16 clients the p50 is mostly queueing). Then the proxy's memory: the
 * agent's RSS with 1,000 client connections held open through the proxy, against the same agent
 * before.
 *
 * The client pod reuses TIME_WAIT ports for its connections (net.ipv4.tcp_tw_reuse=1 in its
 * namespace): at a few thousand new connections a second its port range otherwise fills with
 * TIME_WAIT within seconds, connect() slows down for whichever path runs later, and the order of
 * the phases, not the proxy, decides the new-connection ratio.
 *
 * With `--follow 1`, a `hubble observe --follow` reads the node's flows all along (what the lab's relay
 * or a user watching does): the proxy's L7 flows then also go out over gRPC.
 *
 *   node dist/bench/l7-http.js [--seconds 3] [--rounds 3] [--concurrency 16] [--connections 1000] [--follow 0|1]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, runRoot } from '../src/common/paths.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SECONDS = arg('seconds', 3);
const ROUNDS = arg('rounds', 3);
const CONCURRENCY = arg('concurrency', 16);
const CONNECTIONS = arg('connections', 1000);
const FOLLOW = arg('follow', 0) === 1;
const LAB = `l7b${randomBytes(3).toString('hex')}`;

const SERVER = `
const http = require('node:http');
for (const port of [80, 81]) {
  const s = http.createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-length': 2 }); res.end('ok'); });
  s.keepAliveTimeout = 60000;
  s.listen(port);
}`;

/** Closed-loop load from inside the client pod; prints {rps, p50, p99} (µs). */
const LOAD = `
const http = require('node:http');
const [host, port, mode, seconds, conc] = process.argv.slice(1);
const lat = [];
const end = Date.now() + Number(seconds) * 1000;
const worker = async () => {
  const agent = new http.Agent({ keepAlive: mode === 'keep-alive', maxSockets: 1 });
  while (Date.now() < end) {
    const t = process.hrtime.bigint();
    await new Promise((resolve, reject) => {
      const req = http.get({ host, port: Number(port), path: '/bench', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
    });
    lat.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  agent.destroy();
};
const t0 = Date.now();
Promise.all(Array.from({ length: Number(conc) }, worker)).then(() => {
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  console.log(JSON.stringify({ n: lat.length, rps: lat.length / ((Date.now() - t0) / 1000), p50: q(0.5), p99: q(0.99) }));
});`;

/** Opens N keep-alive connections through the proxy, one request each, then holds them. */
const HOLD = `
const http = require('node:http');
const [host, n] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity });
let done = 0;
for (let i = 0; i < Number(n); i++) {
  http.get({ host, port: 80, path: '/hold', agent }, (res) => {
    res.resume();
    res.on('end', () => { if (++done === Number(n)) console.log('held'); });
  }).on('error', (e) => { console.log('error', e.message); process.exit(1); });
}
setTimeout(() => process.exit(0), 30000);`;

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CILIUM_TS_LAB: LAB },
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0)
    throw new Error(`cilium-ts ${args.slice(0, 4).join(' ')} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

interface Result {
  n: number;
  rps: number;
  p50: number;
  p99: number;
  /** The agent's (the proxy's) CPU time per request, µs, and its system (kernel) part. */
  cpu: number;
  sys: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function agentPid(): number {
  const s = JSON.parse(readFileSync(join(runRoot, LAB, 'lab.json'), 'utf8')) as {
    nodes: { agentPid: number }[];
  };
  return s.nodes[0]!.agentPid;
}

function agentRssKb(): number {
  const status = readFileSync(`/proc/${agentPid()}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

/**
 * The agent's CPU time so far (all threads), µs, user and system apart: wall time is noisy on a
 * shared machine, and system time is the kernel's share (the proxy's sends run the receiving
 * side's network stack and the datapath's programs in the agent's syscalls).
 */
function agentCpuUs(): { user: number; sys: number } {
  const f = readFileSync(`/proc/${agentPid()}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: (Number(f[11]) * 1e6) / 100, sys: (Number(f[12]) * 1e6) / 100 }; // clock ticks (USER_HZ 100)
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'l7bench-'));
  const manifest = join(dir, 'lab.yaml');
  writeFileSync(
    manifest,
    `apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: server}}
spec: {containers: [{name: s, command: ["node", "-e", ${JSON.stringify(SERVER)}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec: {containers: [{name: s, command: ["sleep", "infinity"]}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{method: GET}]}
    - ports: [{port: "81", protocol: TCP}]
`,
  );
  try {
    cli(['lab', 'up', '--name', LAB, '-f', manifest]);
    const pods = JSON.parse(cli(['lab', 'get', 'pods', '-o', 'json'])) as {
      items: { metadata: { name: string }; status: { podIP?: string } }[];
    };
    const server = pods.items.find((p) => p.metadata.name === 'server')!.status.podIP!;
    const follower = FOLLOW
      ? spawn(
          process.execPath,
          [
            cliPath,
            'hubble',
            'observe',
            '--follow',
            '-o',
            'json',
            '--server',
            `unix://${join(runRoot, LAB, 'node1', 'hubble.sock')}`,
          ],
          { stdio: ['ignore', 'ignore', 'inherit'] },
        )
      : undefined;
    const load = (port: number, mode: string, concurrency = CONCURRENCY): Result => {
      const cpu0 = agentCpuUs();
      const r = JSON.parse(
        cli([
          'lab',
          'exec',
          'client',
          '--',
          'node',
          '-e',
          LOAD,
          server,
          String(port),
          mode,
          String(SECONDS),
          String(concurrency),
        ]),
      ) as Omit<Result, 'cpu' | 'sys'>;
      const cpu1 = agentCpuUs();
      const n = Math.max(1, r.n);
      return { ...r, cpu: (cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) / n, sys: (cpu1.sys - cpu0.sys) / n };
    };
    cli(['lab', 'exec', 'client', '--', 'sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
    load(80, 'keep-alive'); // warm-up: JIT on both sides, the proxy's first connections
    load(81, 'keep-alive');
    console.log(
      `# bench l7-http: HTTP through the node proxy (allow rule) vs direct (L4 rule), one lab node`,
    );
    console.log(
      `# ${ROUNDS} rounds × ${SECONDS}s, ${CONCURRENCY} concurrent clients in a pod; medians of rounds${FOLLOW ? '; a hubble observe --follow reads the flows' : ''}`,
    );
    const phases = [
      { mode: 'keep-alive', clients: CONCURRENCY },
      { mode: 'new-connection', clients: CONCURRENCY },
      { mode: 'keep-alive', clients: 1 },
    ];
    for (const { mode, clients } of phases) {
      const got: Record<'proxy' | 'direct', Result[]> = { proxy: [], direct: [] };
      for (let r = 0; r < ROUNDS; r++) {
        const order: ('proxy' | 'direct')[] = r % 2 ? ['direct', 'proxy'] : ['proxy', 'direct'];
        for (const which of order) got[which].push(load(which === 'proxy' ? 80 : 81, mode, clients));
      }
      const m = (which: 'proxy' | 'direct', k: keyof Result) => median(got[which].map((x) => x[k]));
      const label = `${clients} ${mode}`.padEnd(18);
      for (const which of ['direct', 'proxy'] as const)
        console.log(
          `${label} ${which.padEnd(7)} ${m(which, 'rps').toFixed(0).padStart(7)} req/s   p50 ${m(which, 'p50').toFixed(0).padStart(6)} µs   p99 ${m(which, 'p99').toFixed(0).padStart(6)} µs   agent CPU ${m(which, 'cpu').toFixed(0).padStart(4)} µs/req (kernel ${m(which, 'sys').toFixed(0)})`,
        );
      // the targets: the request rate with many clients, the added latency with one
      const rate = `${(m('proxy', 'rps') / m('direct', 'rps')).toFixed(2)}× req/s${clients > 1 ? ' (target ≥ 0.5×)' : ''}`;
      const added = `added p50 ${(m('proxy', 'p50') - m('direct', 'p50')).toFixed(0)} µs${clients === 1 ? ' (target ≤ 200 µs)' : ''}`;
      console.log(
        `${label} ratio   ${rate}   ${added}   added p99 ${(m('proxy', 'p99') - m('direct', 'p99')).toFixed(0)} µs`,
      );
    }
    follower?.kill();
    const before = agentRssKb();
    const holder = spawn(
      process.execPath,
      [cliPath, 'lab', 'exec', 'client', '--', 'node', '-e', HOLD, server, String(CONNECTIONS)],
      {
        env: { ...process.env, CILIUM_TS_LAB: LAB },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let held = '';
    holder.stdout.on('data', (d) => {
      held += d;
    });
    holder.stderr.on('data', (d) => {
      held += d;
    });
    for (let i = 0; i < 300 && !held.includes('held') && holder.exitCode === null; i++) await sleep(100);
    await sleep(500);
    const conns = Number(
      spawnSync(
        'nsenter',
        [`--net=/run/netns/cts-${LAB}-node1`, 'ss', '-Htn', 'state', 'established', '( sport = :80 )'],
        {
          encoding: 'utf8',
        },
      )
        .stdout.trim()
        .split('\n')
        .filter(Boolean).length,
    );
    const rss = agentRssKb();
    holder.kill();
    if (!held.includes('held')) console.log(`# holding connections failed: ${held.trim()}`);
    console.log(
      `memory          agent RSS ${(before / 1024).toFixed(1)} MiB idle, ${(rss / 1024).toFixed(1)} MiB with ${conns} client connections held through the proxy: +${((rss - before) / 1024).toFixed(1)} MiB, ${((rss - before) / Math.max(1, conns)).toFixed(1)} KiB per connection (upstream connections pooled per client address)`,
    );
  } finally {
    spawnSync(process.execPath, [cliPath, 'lab', 'down', '--name', LAB], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
