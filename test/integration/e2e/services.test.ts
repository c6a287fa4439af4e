/**
 * Services through the real datapath in a lab: real sockets in pods connect to ClusterIPs and
 * socket-LB sends each connection straight to a backend. Spread over backends (chi-square),
 * getpeername()/recvfrom() report the service address, a UDP socket sticks to one backend,
 * ClientIP affinity pins a client, a service without backends fails fast, scaling under live
 * connections breaks none of the surviving ones and sends nothing to a removed backend, policy
 * applies to the backend reached through a service, services keep working while the agent is down
 * and after its restart, and names resolve through the cluster DNS.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { cliPath } from '../../../src/common/paths.js';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('svce2e');

const MANIFESTS = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: srv
        command: ["cilium-ts", "workload", "serve", "--tcp", "80", "--udp", "53"]
        ports: [{name: echo, containerPort: 80}, {name: dns, containerPort: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.1.10
  selector: {app: web}
  ports: [{name: echo, port: 80, targetPort: echo}, {name: dns, port: 53, targetPort: dns, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  clusterIP: 10.96.1.11
  selector: {app: web}
  sessionAffinity: ClientIP
  ports: [{port: 8080, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  clusterIP: 10.96.1.12
  selector: {app: nothing-has-this}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {role: client}}
spec:
  containers: [{name: c, command: ["sleep", "infinity"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {role: other}}
spec:
  containers: [{name: c, command: ["sleep", "infinity"]}]
`;

/** Runs inside a pod: talks to a service and prints one JSON line of what it saw. */
const CLIENT = String.raw`
const net = require('node:net'), dgram = require('node:dgram');
const [mode, host, port, n] = process.argv.slice(1);
const who = (line) => (/hello from (\S+)/.exec(line) || [])[1];
const one = () => new Promise((resolve) => {
  const t0 = Date.now();
  const s = net.connect({ host, port: +port });
  s.setTimeout(3000, () => { s.destroy(); resolve({ error: 'timeout', ms: Date.now() - t0 }); });
  s.once('error', (e) => resolve({ error: e.code, ms: Date.now() - t0 }));
  s.once('data', (d) => { const peer = s.remoteAddress; s.destroy(); resolve({ who: who(String(d)), peer }); });
});
(async () => {
  if (mode === 'tcp') {
    const counts = {}, peers = new Set(), errors = [];
    for (let i = 0; i < +n; i++) {
      const r = await one();
      if (r.error) errors.push(r.error); else { counts[r.who] = (counts[r.who] || 0) + 1; peers.add(r.peer); }
    }
    console.log(JSON.stringify({ counts, peers: [...peers], errors }));
  } else if (mode === 'fail') {
    console.log(JSON.stringify(await one()));
  } else if (mode === 'udp') {
    const socks = [];
    for (let k = 0; k < 3; k++) {
      const s = dgram.createSocket('udp4'), seen = new Set(), from = new Set();
      s.on('message', (m, r) => { seen.add(who(String(m))); from.add(r.address); });
      for (let i = 0; i < +n; i++) { s.send('x', +port, host); await new Promise((r) => setTimeout(r, 10)); }
      await new Promise((r) => setTimeout(r, 300));
      socks.push({ backends: [...seen], from: [...from] }); s.close();
    }
    console.log(JSON.stringify(socks));
  } else if (mode === 'hold') {
    // Open n connections, report their backends, then on each stdin line check they still echo.
    const conns = [];
    for (let i = 0; i < +n; i++) {
      const s = net.connect({ host, port: +port }); s.on('error', () => {});
      const banner = await new Promise((r) => s.once('data', (d) => r(who(String(d)))));
      conns.push({ s, banner });
    }
    console.log(JSON.stringify(conns.map((c) => c.banner)));
    require('node:readline').createInterface({ input: process.stdin }).on('line', async () => {
      const alive = await Promise.all(conns.map((c) => new Promise((r) => {
        if (c.s.destroyed) return r(false);
        const t = setTimeout(() => r(false), 2000);
        c.s.once('data', (d) => { clearTimeout(t); r(String(d).includes('ping')); });
        c.s.write('ping\n');
      })));
      console.log(JSON.stringify(alive));
    });
  }
})();
`;

async function inPod<T>(pod: string, ...args: string[]): Promise<T> {
  const out = await cliOk(['lab', 'exec', pod, '--', 'node', '-e', CLIENT, ...args], { lab: LAB });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

interface Spread {
  counts: Record<string, number>;
  peers: string[];
  errors: string[];
}

async function webPods(): Promise<string[]> {
  const out = await cliOk(['lab', 'get', 'pods', '-o', 'name'], { lab: LAB });
  return out
    .split('\n')
    .filter((l) => l.startsWith('pod/web-'))
    .map((l) => l.slice(4));
}

describe('privileged: services through socket-LB in a lab', () => {
  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '--dns', '-f', manifest(MANIFESTS)]);
    await waitFor('three web backends', async () => (await webPods()).length === 3, 20_000);
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('spreads 1,000 connections over the backends (chi-square) and getpeername() reports the VIP', async () => {
    const r = await inPod<Spread>('client', 'tcp', '10.96.1.10', '80', '1000');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.peers, ['10.96.1.10'], 'the socket sees the service address');
    const pods = await webPods();
    assert.deepEqual(Object.keys(r.counts).sort(), pods.sort());
    const expected = 1000 / pods.length;
    const chi2 = Object.values(r.counts).reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // 2 degrees of freedom: P(chi2 > 13.8) = 0.001 for a fair pick.
    assert.ok(chi2 < 13.8, `chi-square ${chi2.toFixed(2)} over ${JSON.stringify(r.counts)}`);
  });

  it('Hubble flows name the service, and hubble observe --to-service filters on it', async () => {
    const out = await cliOk(
      ['hubble', 'observe', '--last', '20', '--to-service', 'default/web', '-o', 'json'],
      { lab: LAB },
    );
    const flows = out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(
        (l) => JSON.parse(l) as { IP?: unknown; destination_service?: { name: string; namespace: string } },
      )
      .filter((f) => f.IP !== undefined); // flows, not notices such as lost events
    assert.ok(flows.length > 0, 'flows to the web service');
    for (const f of flows) assert.deepEqual(f.destination_service, { name: 'web', namespace: 'default' });
  });

  it('a UDP socket sticks to one backend, and recvfrom() reports the service address', async () => {
    const socks = await inPod<{ backends: string[]; from: string[] }[]>(
      'client',
      'udp',
      '10.96.1.10',
      '53',
      '20',
    );
    for (const s of socks) {
      assert.equal(s.backends.length, 1, `one backend per socket: ${s.backends}`);
      assert.deepEqual(s.from, ['10.96.1.10']);
    }
  });

  it('sessionAffinity: ClientIP sends every connection of a client to one backend', async () => {
    const r = await inPod<Spread>('client', 'tcp', '10.96.1.11', '8080', '60');
    assert.deepEqual(r.errors, []);
    assert.equal(Object.keys(r.counts).length, 1, JSON.stringify(r.counts));
  });

  it('a service without backends fails connect() at once with EHOSTUNREACH', async () => {
    const r = await inPod<{ error?: string; ms: number }>('client', 'fail', '10.96.1.12', '80');
    assert.equal(r.error, 'EHOSTUNREACH');
    assert.ok(r.ms < 500, `${r.ms} ms`);
  });

  it('names resolve through the cluster DNS to the ClusterIP', async () => {
    const out = await cliOk(['lab', 'exec', 'client', '--', 'getent', 'hosts', 'web'], { lab: LAB });
    assert.match(out, /^10\.96\.1\.10\s+web\.default\.svc\.cluster\.local/m);
  });

  it('scaling down under live connections: survivors keep working, nothing new reaches the removed pod', async () => {
    const hold: ChildProcessWithoutNullStreams = spawn(
      process.execPath,
      [cliPath, 'lab', 'exec', 'client', '--', 'node', '-e', CLIENT, 'hold', '10.96.1.10', '80', '12'],
      { env: { ...process.env, CILIUM_TS_LAB: LAB } },
    );
    const lines: string[] = [];
    hold.stdout.on('data', (d) => lines.push(...String(d).trim().split('\n')));
    try {
      await waitFor('held connections', async () => lines.length >= 1, 20_000);
      const banners = JSON.parse(lines[0]!) as string[];
      const before = new Set(await webPods());
      await cliOk(['lab', 'scale', 'deployment', 'web', '--replicas', '2'], { lab: LAB });
      // the removed pod stays listed (Terminating) until its processes have exited
      let removed: string[] = [];
      await waitFor(
        'one web pod gone',
        async () => {
          const after = new Set(await webPods());
          removed = [...before].filter((p) => !after.has(p));
          return removed.length === 1 && after.size === 2;
        },
        20_000,
      );
      hold.stdin.write('check\n');
      await waitFor('check answer', async () => lines.length >= 2, 10_000);
      const alive = JSON.parse(lines[1]!) as boolean[];
      banners.forEach((b, i) => {
        if (b === removed[0]) return; // that backend's process ended
        assert.ok(alive[i], `connection ${i} to ${b} survived the scale-down`);
      });
      const r = await inPod<Spread>('client', 'tcp', '10.96.1.10', '80', '200');
      assert.deepEqual(r.errors, []);
      assert.ok(
        !(removed[0]! in r.counts),
        `no new connection to ${removed[0]}: ${JSON.stringify(r.counts)}`,
      );
      assert.equal(Object.keys(r.counts).length, 2);
    } finally {
      hold.kill();
    }
  });

  it('policy applies to the backend reached through the service', async () => {
    await cliOk(
      [
        'lab',
        'apply',
        '-f',
        manifest(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-clients}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {role: client}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`),
      ],
      { lab: LAB },
    );
    const ok = await inPod<Spread>('client', 'tcp', '10.96.1.10', '80', '20');
    assert.deepEqual(ok.errors, []);
    const denied = await inPod<{ error?: string }>('other', 'fail', '10.96.1.10', '80');
    assert.equal(denied.error, 'timeout', 'role=other is dropped at the backend');
    await cliOk(['policy', 'delete', '--all'], { lab: LAB });
  });

  it('services keep working while the agent is down and after its restart, with the same IDs', async () => {
    const before = JSON.parse(await cliOk(['service', 'list', '-o', 'json'], { lab: LAB })) as {
      id: number;
      frontend: string;
    }[];
    const state = JSON.parse(readFileSync(`/run/cilium-ts/${LAB}/lab.json`, 'utf8')) as {
      nodes: { agentPid: number }[];
    };
    process.kill(state.nodes[0]!.agentPid, 'SIGKILL');
    const down = await inPod<Spread>('client', 'tcp', '10.96.1.10', '80', '30');
    assert.deepEqual(down.errors, [], 'the pinned socket-LB programs translate while the agent is down');
    await cliOk(['lab', 'up', '--name', LAB]);
    const up = await inPod<Spread>('client', 'tcp', '10.96.1.10', '80', '30');
    assert.deepEqual(up.errors, []);
    const afterList = JSON.parse(await cliOk(['service', 'list', '-o', 'json'], { lab: LAB })) as {
      id: number;
      frontend: string;
    }[];
    const ids = (l: { id: number; frontend: string }[]) => l.map((s) => `${s.id} ${s.frontend}`).sort();
    assert.deepEqual(ids(afterList), ids(before), 'rev-NAT IDs kept across the restart');
    const lb = await cliOk(['bpf', 'lb', 'list'], { lab: LAB });
    assert.match(lb, /10\.96\.1\.10:80\/TCP\s+0\.0\.0\.0:0 \(\d+\) \(0\) \[ClusterIP, non-routable\]/);
  });
});
