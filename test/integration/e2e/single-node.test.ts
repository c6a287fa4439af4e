/**
 * End to end on one node: a lab (node namespace + agent), pods wired by the CNI plugin, identities,
 * and L3/L4 policy enforced by the eBPF datapath on real TCP, UDP and ICMP probes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { cliPath } from '../../../src/common/paths.js';
import type { Flow } from '../../../src/hubble/types.js';
import { cli, cliOk, labName, manifest, ping, pods, probe } from '../../helpers/cli.js';

const LAB = labName('e2e');

const PODS = `
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: blue}}
---
${['a', 'b', 'c']
  .map(
    (p) => `apiVersion: v1
kind: Pod
metadata: {name: ${p}, namespace: x, labels: {role: ${p}}}
spec:
  containers:
  - name: server
    command: ["cilium-ts", "workload", "serve", "--tcp", "80,81", "--udp", "80"]
    ports: [{name: web, containerPort: 80}]`,
  )
  .join('\n---\n')}
`;

const ALLOW_B_TO_A_80 = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: a-ingress, namespace: x}
spec:
  endpointSelector: {matchLabels: {role: a}}
  ingress:
  - fromEndpoints: [{matchLabels: {role: b}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`;

const ALLOW_BC_TO_A_WEB = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: a-ingress, namespace: x}
spec:
  endpointSelector: {matchLabels: {role: a}}
  ingress:
  - fromEndpoints:
    - matchExpressions: [{key: role, operator: In, values: [b, c]}]
    toPorts: [{ports: [{port: web, protocol: TCP}]}]
`;

const B_EGRESS_ONLY_A = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: b-egress, namespace: x}
spec:
  endpointSelector: {matchLabels: {role: b}}
  egress:
  - toEndpoints: [{matchLabels: {role: a}}]
`;

const DENY_C_TO_A = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-c, namespace: x}
spec:
  endpointSelector: {matchLabels: {role: a}}
  ingressDeny:
  - fromEndpoints: [{matchLabels: {role: c}}]
`;

describe('privileged: single node end to end (lab, CNI, identities, L3/L4 policy in eBPF)', () => {
  let ip: Record<string, string> = {};
  const t = (p: string, port: number) => `${ip[p]}:${port}`;

  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '-f', manifest(PODS)]);
    const rows = await pods(LAB);
    ip = Object.fromEntries([...rows.values()].map((r) => [r.name, r.ip]));
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('gives every pod an IP from the node CIDR, an endpoint and an identity from its labels', async () => {
    const rows = await pods(LAB);
    assert.equal(rows.size, 3);
    for (const r of rows.values()) {
      assert.equal(r.status, 'Running');
      assert.match(r.ip, /^10\.200\.\d+\.\d+$/);
      assert.ok(r.endpoint > 0);
      assert.ok(r.identity >= 256, `cluster identity for ${r.name}: ${r.identity}`);
    }
    const ids = new Set([...rows.values()].map((r) => r.identity));
    assert.equal(ids.size, 3, 'different labels, different identities');
    const idList = JSON.parse(await cliOk(['identity', 'list', '-o', 'json'], { lab: LAB })) as {
      id: number;
      labels: string[];
    }[];
    const a = idList.find((i) => i.id === rows.get('x/a')!.identity)!;
    assert.ok(a.labels.includes('k8s:role=a'));
    assert.ok(a.labels.includes('k8s:io.kubernetes.pod.namespace=x'));
    assert.ok(
      a.labels.includes('k8s:io.cilium.k8s.namespace.labels.team=blue'),
      'namespace labels are part of the identity',
    );
    assert.ok(
      idList.some((i) => i.id === 2 && i.labels.includes('reserved:world')),
      'reserved identities exist',
    );
  });

  it('one node routes natively: no overlay, pods at MTU 1500, IPv4 BIG TCP on', async () => {
    const status = await cliOk(['status'], { lab: LAB });
    assert.match(status, /^Routing:\s+Network: Native$/m);
    assert.match(status, /^BIG TCP:\s+IPv4 \(GSO\/GRO 196608 bytes\)$/m);
    const link = await cliOk(['lab', 'exec', '-n', 'x', 'a', '--', 'ip', '-d', 'link', 'show', 'eth0'], {
      lab: LAB,
    });
    assert.match(link, / mtu 1500 /);
  });

  it('default-allow: TCP, UDP and ICMP pass while no policy selects the pods', async () => {
    assert.equal(await probe(LAB, 'b', t('a', 80), 'tcp', 'x'), true);
    assert.equal(await probe(LAB, 'b', t('a', 80), 'udp', 'x'), true);
    assert.equal(await ping(LAB, 'b', ip.a!, 'x'), true);
    assert.equal(await probe(LAB, 'a', t('c', 81), 'tcp', 'x'), true);
  });

  it('ingress policy: only role=b on TCP 80 reaches a; replies flow back; the rest is dropped', async () => {
    await cliOk(['lab', 'apply', '-f', manifest(ALLOW_B_TO_A_80)], { lab: LAB });
    assert.equal(await probe(LAB, 'b', t('a', 80), 'tcp', 'x'), true, 'b -> a:80 allowed (and its replies)');
    assert.equal(await probe(LAB, 'b', t('a', 81), 'tcp', 'x'), false, 'b -> a:81 not in the policy');
    assert.equal(await probe(LAB, 'b', t('a', 80), 'udp', 'x'), false, 'UDP 80 not allowed');
    assert.equal(await probe(LAB, 'c', t('a', 80), 'tcp', 'x'), false, 'c is not selected');
    assert.equal(await ping(LAB, 'b', ip.a!, 'x'), false, 'ICMP not allowed');
    assert.equal(await probe(LAB, 'a', t('b', 80), 'tcp', 'x'), true, "a's egress is not enforced");
    const eps = JSON.parse(await cliOk(['endpoint', 'list', '-o', 'json'], { lab: LAB })) as {
      podName: string;
      policyEnabled: { ingress: boolean; egress: boolean };
    }[];
    const a = eps.find((e) => e.podName === 'a')!;
    assert.deepEqual(a.policyEnabled, { ingress: true, egress: false });
  });

  it('the monitor reports drops with pods, identities, ports and the drop reason', async () => {
    const mon = spawn(process.execPath, [cliPath, 'monitor', '-o', 'json'], {
      env: { ...process.env, CILIUM_TS_LAB: LAB },
    });
    let out = '';
    mon.stdout.on('data', (d) => (out += d));
    await new Promise((r) => setTimeout(r, 500));
    await probe(LAB, 'c', t('a', 80), 'tcp', 'x', '400ms');
    await probe(LAB, 'b', t('a', 80), 'tcp', 'x');
    await new Promise((r) => setTimeout(r, 300));
    mon.kill();
    const events = out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { kind: string; text: string; flow: Flow });
    const drop = events.find((e) => e.kind === 'drop' && e.flow.source?.pod_name === 'c');
    assert.ok(drop, `a drop event for c; got:\n${events.map((e) => e.text).join('\n')}`);
    assert.equal(drop.flow.destination?.pod_name, 'a');
    assert.equal(drop.flow.drop_reason_desc, 'POLICY_DENIED');
    assert.equal(drop.flow.l4?.TCP?.destination_port, 80);
    assert.match(drop.text, /drop \(Policy denied\).*x\/c.*-> x\/a/);
    const fwd = events.find(
      (e) => e.kind === 'trace' && e.flow.source?.pod_name === 'b' && e.flow.verdict === 'FORWARDED',
    );
    assert.ok(fwd, 'a forwarded trace for b');
    assert.ok((fwd.flow.source?.identity ?? 0) >= 256);
  });

  it('policy update takes effect without resetting an established allowed connection', async () => {
    const stream = spawn(
      process.execPath,
      [cliPath, 'lab', 'exec', '-n', 'x', 'b', '--', 'node', '-e', streamScript(ip.a!, 80, 60)],
      {
        env: { ...process.env, CILIUM_TS_LAB: LAB },
      },
    );
    let out = '';
    stream.stdout.on('data', (d) => (out += d));
    // Listen for the end right away: on a busy machine the stream may finish before the probes do.
    const closed = new Promise<number>((r) => stream.on('close', (c) => r(c ?? 1)));
    await new Promise((r) => setTimeout(r, 700));
    // Named port "web" resolves to 80; c is now allowed too.
    await cliOk(['lab', 'apply', '-f', manifest(ALLOW_BC_TO_A_WEB)], { lab: LAB });
    assert.equal(await probe(LAB, 'c', t('a', 80), 'tcp', 'x'), true, 'c allowed after the update');
    assert.equal(await probe(LAB, 'c', t('a', 81), 'tcp', 'x'), false);
    const code = await closed;
    assert.equal(code, 0, `long-lived connection survived the update: ${out}`);
    assert.match(out, /echoes 60/);
  });

  it('egress policy: b may only talk to a', async () => {
    await cliOk(['lab', 'apply', '-f', manifest(B_EGRESS_ONLY_A)], { lab: LAB });
    assert.equal(await probe(LAB, 'b', t('a', 80), 'tcp', 'x'), true);
    assert.equal(await probe(LAB, 'b', t('c', 80), 'tcp', 'x'), false, 'b -> c denied by egress');
    assert.equal(
      await probe(LAB, 'c', t('b', 80), 'tcp', 'x'),
      true,
      "b's ingress is not enforced; replies pass its egress",
    );
  });

  it('deny rules win over allow rules', async () => {
    await cliOk(['lab', 'apply', '-f', manifest(DENY_C_TO_A)], { lab: LAB });
    assert.equal(
      await probe(LAB, 'c', t('a', 80), 'tcp', 'x'),
      false,
      'denied although allowed by a-ingress',
    );
    assert.equal(await probe(LAB, 'b', t('a', 80), 'tcp', 'x'), true);
    const entries = JSON.parse(await cliOk(['bpf', 'policy', 'get', 'x/a', '-o', 'json'], { lab: LAB })) as {
      entries: { action: string }[];
    };
    assert.ok(entries.entries.some((e) => e.action === 'deny'));
  });

  it('rejects bad policy input with the field named, and applies nothing', async () => {
    const before = JSON.parse(await cliOk(['policy', 'get', '-o', 'json'], { lab: LAB })) as {
      revision: number;
    };
    const bad = `${ALLOW_B_TO_A_80.replace('a-ingress', 'other')}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: broken, namespace: x}
spec:
  endpointSelector: {matchLabels: {role: a}}
  ingress:
  - toPorts: [{ports: [{port: "70000", protocol: TCP}]}]
`;
    const r = await cli(['lab', 'apply', '-f', manifest(bad)], { lab: LAB });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port/);
    assert.match(r.stderr, /nothing applied/);
    const r2 = await cli(
      [
        'policy',
        'import',
        manifest(
          'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: y}\nspec:\n  endpointSelector: {matchExpressions: [{key: a, operator: Sometimes}]}\n  ingress: [{}]\n',
        ),
      ],
      { lab: LAB },
    );
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /operator/);
    const r3 = await cli(['policy', 'import', manifest('kind: [unclosed')], { lab: LAB });
    assert.notEqual(r3.code, 0);
    assert.match(r3.stderr, /YAML/);
    const afterGet = JSON.parse(await cliOk(['policy', 'get', '-o', 'json'], { lab: LAB })) as {
      revision: number;
      policies: { name: string }[];
    };
    assert.equal(afterGet.revision, before.revision);
    assert.ok(!afterGet.policies.some((p) => p.name === 'other' || p.name === 'broken'));
  });

  it('agent killed and restarted during a long-lived connection: it survives, policy still enforced', async () => {
    await cliOk(['policy', 'delete', '--all'], { lab: LAB });
    await cliOk(['lab', 'apply', '-f', manifest(ALLOW_B_TO_A_80)], { lab: LAB });
    const stream = spawn(
      process.execPath,
      [cliPath, 'lab', 'exec', '-n', 'x', 'b', '--', 'node', '-e', streamScript(ip.a!, 80, 50)],
      {
        env: { ...process.env, CILIUM_TS_LAB: LAB },
      },
    );
    let out = '';
    stream.stdout.on('data', (d) => (out += d));
    const closed = new Promise<number>((r) => stream.on('close', (c) => r(c ?? 1)));
    await new Promise((r) => setTimeout(r, 500));
    const state = JSON.parse(readFileSync(`/run/cilium-ts/${LAB}/lab.json`, 'utf8')) as {
      nodes: { agentPid: number }[];
    };
    process.kill(state.nodes[0]!.agentPid, 'SIGKILL');
    // While the agent is down, the pinned datapath keeps enforcing.
    assert.equal(
      await probe(LAB, 'c', t('a', 80), 'tcp', 'x', '400ms'),
      false,
      'still denied with the agent down',
    );
    await cliOk(['lab', 'up', '--name', LAB]);
    const code = await closed;
    assert.equal(code, 0, `connection survived the agent restart: ${out}`);
    assert.equal(await probe(LAB, 'c', t('a', 80), 'tcp', 'x'), false, 'policy enforced after restart');
    assert.equal(await probe(LAB, 'b', t('a', 80), 'tcp', 'x'), true);
    const eps = JSON.parse(await cliOk(['endpoint', 'list', '-o', 'json'], { lab: LAB })) as unknown[];
    assert.equal(eps.length, 3, 'endpoints restored from state');
    // Removing the policy after the restart returns a to default-allow.
    await cliOk(['policy', 'delete', '--all'], { lab: LAB });
    assert.equal(await probe(LAB, 'c', t('a', 81), 'tcp', 'x'), true, 'default-allow again');
  });

  it('CNI CHECK passes for a running pod and the plugin answers bad input with a CNI error', async () => {
    const state = JSON.parse(readFileSync(`/run/cilium-ts/${LAB}/lab.json`, 'utf8')) as {
      nodes: { netns: string }[];
      pods: Record<string, { containerId: string; netns: string; cniResult: unknown }>;
    };
    const pod = state.pods['x/a']!;
    const plugin = cliPath.replace('cli/main.js', 'cni/plugin.js');
    const conf = {
      cniVersion: '1.0.0',
      name: 'cilium-ts',
      type: 'cilium-ts-cni',
      agentSocket: `/run/cilium-ts/${LAB}/node1/agent.sock`,
    };
    const env = (cmd: string) => ({
      PATH: process.env.PATH!,
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: `/run/netns/${pod.netns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
    });
    const run = (cmd: string, input: string) =>
      spawnSync('nsenter', [`--net=/run/netns/${state.nodes[0]!.netns}`, process.execPath, plugin], {
        env: env(cmd),
        input,
        encoding: 'utf8',
      });
    const check = run('CHECK', JSON.stringify({ ...conf, prevResult: pod.cniResult }));
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const bad = run('ADD', '{"cniVersion": "1.0.0", "name": ');
    assert.notEqual(bad.status, 0);
    const err = JSON.parse(bad.stdout) as { code: number; msg: string };
    assert.equal(err.code, 6, 'failed to decode content');
    const ver = spawnSync(process.execPath, [plugin], {
      env: { ...env('VERSION') },
      input: '{"cniVersion":"1.0.0"}',
      encoding: 'utf8',
    });
    assert.deepEqual(JSON.parse(ver.stdout).supportedVersions.includes('1.0.0'), true);
  });
});

describe('privileged: lab down cleans up after a crash', () => {
  it('removes namespaces, mounts, processes and state even when the agent was killed', async () => {
    const lab = labName('crash');
    await cliOk(['lab', 'up', '--name', lab, '-f', manifest(PODS)]);
    const state = JSON.parse(readFileSync(`/run/cilium-ts/${lab}/lab.json`, 'utf8')) as {
      nodes: { agentPid: number }[];
      pods: Record<string, { containers: { pid: number }[] }>;
    };
    const pids = [
      state.nodes[0]!.agentPid,
      ...Object.values(state.pods).flatMap((p) => p.containers.map((c) => c.pid)),
    ];
    process.kill(state.nodes[0]!.agentPid, 'SIGKILL');
    await cliOk(['lab', 'down', '--name', lab]);
    const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    assert.ok(!netns.includes(`cts-${lab}-`), `no namespaces left: ${netns}`);
    assert.ok(
      !readFileSync('/proc/mounts', 'utf8').includes(`/run/cilium-ts/${lab}/`),
      'no bpffs mounts left',
    );
    const deadline = Date.now() + 3000;
    while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(pids.filter(isAlive), [], 'every process is gone');
    assert.throws(() => readFileSync(`/run/cilium-ts/${lab}/lab.json`), 'state removed');
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2]!.startsWith('Z');
  } catch {
    return false;
  }
}

/** A client that keeps one TCP connection, sends a line every 50 ms and counts the echoes. */
function streamScript(host: string, port: number, lines: number): string {
  return `const net=require('net');const c=net.connect(${port},'${host}');let n=0,got='';
c.on('data',d=>{got+=d});c.on('error',e=>{console.log('error '+e.code);process.exit(2)});
c.on('close',()=>{console.log('closed after '+n);process.exit(3)});
const t=setInterval(()=>{c.write('ping\\n');if(++n===${lines}){clearInterval(t);setTimeout(()=>{const e=got.split('\\n').filter(l=>l==='ping').length;console.log('echoes '+e);process.exit(e===${lines}?0:4)},300)}},50);`;
}
