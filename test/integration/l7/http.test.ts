/**
 * L7 HTTP policy end to end in a two-node lab: the datapath redirects the connections a policy's
 * http rules cover to the node's proxy (ingress on the same node and across nodes, egress across
 * nodes), curl sees 200 and `403 Access denied` on one keep-alive connection, the proxy's
 * upstream connection keeps the client's identity (the server's ingress policy drops a peer it
 * does not allow), Hubble shows the requests through the gRPC API and Prometheus counts them,
 * an allow-all rule gives visibility without enforcement, and an agent killed with connections in
 * flight lets nothing through while it is down and serves new connections once back.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath, runRoot } from '../../../src/common/paths.js';
import type { Flow } from '../../../src/hubble/types.js';
import { cli, cliOk, labName, manifest, pods } from '../../helpers/cli.js';

const LAB = labName('l7h');

const SERVE = '["cilium-ts", "workload", "serve", "--tcp", "80", "--http"]';
const PODS = `
apiVersion: v1
kind: Pod
metadata: {name: server1, labels: {app: server, at: node1}}
spec: {nodeName: node1, containers: [{name: s, command: ${SERVE}}]}
---
apiVersion: v1
kind: Pod
metadata: {name: server2, labels: {app: server, at: node2}}
spec: {nodeName: node2, containers: [{name: s, command: ${SERVE}}]}
---
apiVersion: v1
kind: Pod
metadata: {name: visible, labels: {app: visible}}
spec: {nodeName: node2, containers: [{name: s, command: ${SERVE}}]}
---
apiVersion: v1
kind: Pod
metadata: {name: h2server, labels: {app: server, proto: h2}}
spec:
  nodeName: node2
  containers:
  - name: s
    command: ["node", "-e", "require('node:http2').createServer((q, r) => r.end('h2 ' + q.method + ' ' + q.url)).listen(80)"]
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec: {nodeName: node1, containers: [{name: s, command: ["sleep", "infinity"]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: intruder, labels: {app: intruder}}
spec: {nodeName: node1, containers: [{name: s, command: ["sleep", "infinity"]}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server-l7}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/public/.*"}
        - {method: POST, path: /v1/request-landing, headers: ["X-Ship tiefighter"]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: visible-l7}
spec:
  endpointSelector: {matchLabels: {app: visible}}
  ingress:
  - toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: intruder-egress}
spec:
  endpointSelector: {matchLabels: {app: intruder}}
  egress:
  - toEndpoints: [{matchLabels: {app: server}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{method: GET}]}
`;

/** curl in a pod: `code:connects` per URL (one invocation reuses its connection). */
async function curl(pod: string, args: string[]): Promise<string[]> {
  const sink = args.filter((a) => a.startsWith('http://')).flatMap(() => ['-o', '/dev/null']);
  const r = await cli(
    [
      'lab',
      'exec',
      pod,
      '--',
      'curl',
      '-s',
      '-m',
      '4',
      ...sink,
      '-w',
      '%{http_code}:%{num_connects} ',
      ...args,
    ],
    { lab: LAB },
  );
  return r.stdout.trim().split(/\s+/);
}

async function body(pod: string, args: string[]): Promise<string> {
  return (await cli(['lab', 'exec', pod, '--', 'curl', '-s', '-m', '4', ...args], { lab: LAB })).stdout;
}

async function observe(node: string, args: string[]): Promise<Flow[]> {
  const out = await cliOk(['hubble', 'observe', '--node', node, '-o', 'json', '--last', '1000', ...args], {
    lab: LAB,
  });
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Flow);
}

function agentPid(node: string): number {
  const s = JSON.parse(readFileSync(join(runRoot, LAB, 'lab.json'), 'utf8')) as {
    nodes: { name: string; agentPid?: number }[];
  };
  return s.nodes.find((n) => n.name === node)!.agentPid!;
}

describe('privileged: L7 HTTP policy through the node proxies', () => {
  const ip: Record<string, string> = {};

  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '--nodes', '2', '-f', manifest(PODS)]);
    for (const [k, p] of await pods(LAB)) ip[k.replace('default/', '')] = p.ip;
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('policy map entries carry the proxy port; bpf policy get shows it', async () => {
    const eps = JSON.parse(
      await cliOk(['endpoint', 'list', '-o', 'json', '--node', 'node1'], { lab: LAB }),
    ) as {
      id: number;
      podName?: string;
    }[];
    const id = eps.find((e) => e.podName === 'server1')!.id;
    const out = await cliOk(['bpf', 'policy', 'get', String(id), '--node', 'node1'], { lab: LAB });
    assert.match(out, /Ingress\s+\d+\s+TCP\s+80\s+allow\s+\d+\s+10080/);
  });

  it('same node: allowed, denied (403 Access denied) and allowed again on one connection', async () => {
    const url = (p: string) => `http://${ip.server1}${p}`;
    const r = await curl('client', [url('/public/a'), url('/private'), url('/public/b')]);
    assert.deepEqual(r, ['200:1', '403:0', '200:0']);
    assert.equal(await body('client', [url('/private')]), 'Access denied\r\n');
    assert.match(await body('client', [url('/public/x')]), /hello from server1 port 80\/tcp GET \/public\/x/);
  });

  it('across nodes: method, path and header rules', async () => {
    const url = `http://${ip.server2}/v1/request-landing`;
    assert.deepEqual(await curl('client', ['-X', 'POST', '-H', 'X-Ship: tiefighter', url]), ['200:1']);
    assert.deepEqual(await curl('client', ['-X', 'POST', '-H', 'X-Ship: xwing', url]), ['403:1']);
    assert.deepEqual(await curl('client', ['-X', 'PUT', '-H', 'X-Ship: tiefighter', url]), ['403:1']);
    assert.deepEqual(await curl('client', [`http://${ip.server2}/public/deep/path?q=1`]), ['200:1']);
  });

  it('HTTP/2 (prior knowledge, as gRPC speaks it) across nodes: allowed and denied', async () => {
    // one URL per curl: curl 7.88 does not reuse an h2c connection to Node's HTTP/2 server even
    // without a proxy (several streams on one session are covered by test/unit/proxy)
    const url = (p: string) => `http://${ip.h2server}${p}`;
    assert.equal(await body('client', ['--http2-prior-knowledge', url('/public/x')]), 'h2 GET /public/x');
    assert.equal(await body('client', ['--http2-prior-knowledge', url('/private')]), 'Access denied\r\n');
    assert.deepEqual(await curl('client', ['--http2-prior-knowledge', '-X', 'DELETE', url('/public/x')]), [
      '403:1',
    ]);
  });

  it("egress rules; the proxy's connection keeps the client's identity", async () => {
    // the intruder's egress rule lets GET through its proxy, but the server's ingress policy
    // sees the intruder (not the node) and drops the proxy's connection
    // (its SYN is dropped: after the proxy's 5 s connect timeout the client gets 503)
    assert.deepEqual(await curl('intruder', ['-m', '9', `http://${ip.server2}/public/x`]), ['503:1']);
    assert.deepEqual(await curl('intruder', ['-X', 'DELETE', `http://${ip.server2}/public/x`]), ['403:1']);
    const drops = await observe('node2', [
      '--verdict',
      'DROPPED',
      '--to-pod',
      'default/server2',
      '--from-pod',
      'default/intruder',
    ]);
    assert.ok(drops.length > 0, 'the policy drop of the proxied connection at node2');
    assert.ok(drops.every((f) => f.IP?.source === ip.intruder));
  });

  it('Hubble: L7 flows through the gRPC API, filters and Prometheus metrics', async () => {
    await curl('client', [`http://${ip.server1}/public/m`, `http://${ip.server1}/admin`]);
    const denied = await observe('node1', [
      '--type',
      'l7',
      '--http-status',
      '403',
      '--to-pod',
      'default/client',
    ]);
    assert.ok(
      denied.some((f) => f.l7?.http?.url === `http://${ip.server1}/admin` && f.verdict === 'DROPPED'),
    );
    const posts = await observe('node1', [
      '--type',
      'l7',
      '--http-method',
      'GET',
      '--http-path',
      '^/public/m$',
    ]);
    assert.ok(posts.some((f) => f.l7?.type === 'REQUEST' && f.source?.pod_name === 'client'));
    assert.ok(
      posts.some((f) => f.l7?.type === 'RESPONSE' && (f.l7.latency_ns ?? 0) > 0 && f.l7.http?.code === 200),
    );
    const status = JSON.parse(await cliOk(['status', '-o', 'json', '--node', 'node1'], { lab: LAB })) as {
      metrics?: string;
    };
    const metricsUrl = status.metrics ?? '';
    assert.match(metricsUrl, /^http:/);
    const text = await (await fetch(metricsUrl)).text();
    assert.match(
      text,
      /hubble_http_requests_total\{method="GET",protocol="HTTP\/1\.1",reporter="server"\} \d+/,
    );
    assert.match(
      text,
      /hubble_http_responses_total\{method="GET",protocol="HTTP\/1\.1",status="403",reporter="server"\} \d+/,
    );
    assert.match(text, /hubble_http_request_duration_seconds_count\{method="GET",reporter="server"\} \d+/);
  });

  it('visibility without enforcement: an allow-all http rule lets everything through and shows it', async () => {
    const r = await curl('client', ['-X', 'PATCH', `http://${ip.visible}/anything`]);
    assert.deepEqual(r, ['200:1']);
    const flows = await observe('node2', ['--type', 'l7', '--http-method', 'PATCH']);
    assert.ok(flows.some((f) => f.destination?.pod_name === 'visible' || f.source?.pod_name === 'visible'));
  });

  it("a pod's connection on the tuple of the proxy's closed upstream connection still goes through the proxy", async () => {
    // The proxy connects upstream from the client's address with a port the kernel picks, and
    // the client can come to use that very port once that connection is closed (in TIME_WAIT on
    // the proxy's side or the server's, whichever closed first). The datapath must redirect the
    // client's connection like any other, never deliver it to the server past the proxy.
    const timeWait = async () => {
      const node = spawnSync(
        'nsenter',
        [`--net=/run/netns/cts-${LAB}-node1`, 'ss', '-Htn', 'state', 'time-wait'],
        {
          encoding: 'utf8',
        },
      ).stdout;
      const server = await cliOk(['lab', 'exec', 'server1', '--', 'ss', '-Htn', 'state', 'time-wait'], {
        lab: LAB,
      });
      const rows = (text: string) =>
        text.split('\n').map((l) => l.trim().replaceAll('[::ffff:', '').replaceAll(']', '').split(/\s+/));
      const port = (a: string) => a.slice(a.lastIndexOf(':') + 1);
      return new Set([
        // the proxy's side: from the client's address to the server
        ...rows(node)
          .filter(([, , l, p]) => l?.startsWith(`${ip.client}:`) && p === `${ip.server1}:80`)
          .map(([, , l]) => port(l!)),
        // the server's side: from the client's address
        ...rows(server)
          .filter(([, , , p]) => p?.startsWith(`${ip.client}:`))
          .map(([, , , p]) => port(p!)),
      ]);
    };
    const before = await timeWait();
    const url = (p: string) => `http://${ip.server1}${p}`;
    assert.deepEqual(await curl('client', [url('/public/first')]), ['200:1']);
    let port: string | undefined;
    for (let i = 0; i < 20 && port === undefined; i++) {
      port = [...(await timeWait())].find((p) => !before.has(p));
      if (port === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(port, "the proxy's upstream connection was closed (TIME_WAIT on one side)");
    assert.deepEqual(
      await curl('client', ['--local-port', port, url('/private'), url('/public/again')]),
      ['403:1', '200:0'],
      'denied by the proxy, never answered by the server past it',
    );
  });

  it('agent killed with connections in flight: nothing passes while it is down, new ones work after', async () => {
    // a client keeps one keep-alive connection busy through the proxy (allowed and denied paths)
    const script = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const t0 = Date.now();
let i = 0;
const tick = () => {
  if (Date.now() - t0 > 18000) return;
  const path = i++ % 2 ? '/private' : '/public/p';
  const req = http.get({ host: '${ip.server1}', port: 80, path, agent, timeout: 800 }, (res) => {
    res.resume();
    res.on('end', () => { console.log(Date.now(), path, res.statusCode); setTimeout(tick, 100); });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => { console.log(Date.now(), path, 'ERR', e.code || e.message); setTimeout(tick, 100); });
};
tick();`;
    const child = spawn(process.execPath, [cliPath, 'lab', 'exec', 'client', '--', 'node', '-e', script], {
      env: { ...process.env, CILIUM_TS_LAB: LAB },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const done = new Promise((r) => child.once('close', r));
    for (let i = 0; i < 100 && !/ 200\n/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    const killedAt = Date.now();
    process.kill(agentPid('node1'), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    // a new connection while the proxy is down: refused or dropped, never answered by the server
    const down = await curl('client', [`http://${ip.server1}/public/down`]);
    assert.match(down[0] ?? '', /^000:/);
    const restartAt = Date.now();
    await cliOk(['lab', 'agent', 'restart', 'node1'], { lab: LAB });
    await done;
    const lines = out
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([t, path, status]) => ({ t: Number(t), path: path!, status: status! }));
    assert.ok(
      lines.some((l) => l.t < killedAt && l.status === '200'),
      'served before the kill',
    );
    // the denied path is never served; nothing is served while the agent is down
    assert.ok(lines.every((l) => l.path !== '/private' || l.status !== '200'));
    const whileDown = lines.filter((l) => l.t > killedAt + 200 && l.t < restartAt);
    assert.ok(whileDown.length > 0);
    assert.ok(
      whileDown.every((l) => l.status !== '200'),
      JSON.stringify(whileDown),
    );
    // after the restart, new connections work again
    assert.deepEqual(
      await curl('client', [`http://${ip.server1}/public/after`, `http://${ip.server1}/private`]),
      ['200:1', '403:0'],
    );
  });
});
