/**
 * Hubble end to end: real traffic between lab pods becomes flows with the right verdicts, drop
 * reasons, pods and labels; `hubble observe` filters select exactly the expected flows; metrics
 * count them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Flow } from '../../../src/hubble/types.js';
import { cli, cliOk, labName, manifest, pods, probe } from '../../helpers/cli.js';

const LAB = labName('hub');

const PODS = `
apiVersion: v1
kind: Pod
metadata: {name: deathstar, labels: {org: empire, class: deathstar}}
spec:
  containers: [{name: s, command: ["cilium-ts", "workload", "serve", "--tcp", "80", "--udp", "53"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: tiefighter, labels: {org: empire, class: tiefighter}}
spec:
  containers: [{name: s, command: ["sleep", "infinity"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: xwing, labels: {org: alliance, class: xwing}}
spec:
  containers: [{name: s, command: ["sleep", "infinity"]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}, {port: "53", protocol: UDP}]}]
`;

async function observe(args: string[]): Promise<Flow[]> {
  const out = await cliOk(['hubble', 'observe', '-o', 'json', ...args], { lab: LAB });
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Flow);
}

describe('privileged: Hubble flows from real traffic', () => {
  let ds = '';
  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '-f', manifest(PODS)]);
    ds = (await pods(LAB)).get('default/deathstar')!.ip;
    assert.equal(await probe(LAB, 'tiefighter', `${ds}:80`), true);
    assert.equal(await probe(LAB, 'tiefighter', `${ds}:53`, 'udp'), true);
    assert.equal(await probe(LAB, 'xwing', `${ds}:80`, 'tcp', 'default', '400ms'), false);
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('allowed traffic is FORWARDED with pods, identities and labels resolved', async () => {
    const flows = await observe([
      '--from-pod',
      'default/tiefighter',
      '--verdict',
      'FORWARDED',
      '--protocol',
      'tcp',
    ]);
    assert.ok(flows.length > 0);
    for (const f of flows) {
      assert.equal(f.verdict, 'FORWARDED');
      assert.equal(f.source?.pod_name, 'tiefighter');
      assert.equal(f.source?.namespace, 'default');
      assert.ok(f.source?.labels?.includes('k8s:org=empire'));
      assert.equal(f.destination?.pod_name, 'deathstar');
      assert.equal(f.l4?.TCP?.destination_port, 80);
      assert.ok((f.source?.identity ?? 0) >= 256);
    }
    const syn = flows.find((f) => f.l4?.TCP?.flags?.SYN && f.event_type.type === 4);
    assert.ok(syn, 'the SYN trace');
    assert.equal(syn.trace_observation_point, 'TO_ENDPOINT');
    assert.equal(syn.traffic_direction, 'INGRESS');
    assert.equal(syn.is_reply, false);
    const replies = await observe(['--to-pod', 'default/tiefighter', '--protocol', 'tcp']);
    assert.ok(
      replies.some((f) => f.is_reply === true && f.source?.pod_name === 'deathstar'),
      'replies are marked is_reply',
    );
  });

  it('a long connection is reported again after 5 s without a report, each direction', async () => {
    // One connection for 11.5 s, a byte every 250 ms, from a port of its own; then a reset.
    const client = `const s = require('net').connect({ host: '${ds}', port: 80, localPort: 47123 }, () => {
      const t = setInterval(() => s.write('x'), 250);
      setTimeout(() => { clearInterval(t); s.resetAndDestroy(); }, 11500);
    });
    s.on('data', () => {}); s.on('error', () => {}); s.on('close', () => process.exit(0));`;
    await cliOk(['lab', 'exec', 'tiefighter', '--', 'node', '-e', client], { lab: LAB });
    const plain = (f: Flow) => {
      const fl = f.l4?.TCP?.flags ?? {};
      return !fl.SYN && !fl.FIN && !fl.RST;
    };
    for (const args of [
      ['--from-port', '47123'],
      ['--to-port', '47123'],
    ]) {
      const flows = (await observe(args)).filter((f) => f.event_type.type === 4);
      const again = flows.filter(plain).map((f) => Date.parse(f.time!));
      // the SYN (or SYN-ACK) opens, then reports at ~5 s and ~10 s, none in between
      assert.equal(again.length, 2, `${args.join(' ')}: ${flows.length} trace flows`);
      const opened = Date.parse(flows.find((f) => f.l4?.TCP?.flags?.SYN)!.time!);
      assert.ok(again[0]! - opened >= 4900 && again[1]! - again[0]! >= 4900, JSON.stringify(again));
    }
  });

  it('denied traffic is DROPPED with the upstream drop reason', async () => {
    const flows = await observe(['--verdict', 'DROPPED', '--type', 'drop']);
    assert.ok(flows.length > 0);
    for (const f of flows) {
      assert.equal(f.source?.pod_name, 'xwing');
      assert.equal(f.destination?.pod_name, 'deathstar');
      assert.equal(f.drop_reason_desc, 'POLICY_DENIED');
      assert.equal(f.drop_reason, 133);
      assert.equal(f.event_type.type, 1);
    }
  });

  it('filters select exactly the expected flows (labels, ports, protocol, policy verdicts, blacklist)', async () => {
    const udp = await observe(['--protocol', 'udp']);
    assert.ok(udp.length > 0 && udp.every((f) => f.l4?.UDP !== undefined));
    const byLabel = await observe(['--label', 'org=alliance']);
    assert.ok(
      byLabel.length > 0 &&
        byLabel.every((f) => f.source?.pod_name === 'xwing' || f.destination?.pod_name === 'xwing'),
    );
    const port = await observe(['--to-port', '53']);
    assert.ok(port.length > 0 && port.every((f) => (f.l4?.UDP ?? f.l4?.TCP)?.destination_port === 53));
    const verdicts = await observe(['--type', 'policy-verdict']);
    assert.ok(verdicts.some((f) => f.verdict === 'FORWARDED' && f.source?.pod_name === 'tiefighter'));
    assert.ok(verdicts.some((f) => f.verdict === 'DROPPED' && f.source?.pod_name === 'xwing'));
    const notXwing = await observe(['--not', '--from-pod', 'default/xwing']);
    assert.ok(notXwing.length > 0 && notXwing.every((f) => f.source?.pod_name !== 'xwing'));
  });

  it('compact output reads like upstream hubble', async () => {
    const out = await cliOk(['hubble', 'observe', '--from-pod', 'default/xwing', '--type', 'drop'], {
      lab: LAB,
    });
    assert.match(
      out,
      /default\/xwing:\d+ \(ID:\d+\) <> default\/deathstar:80 \(ID:\d+\) Policy denied DROPPED \(TCP Flags: SYN\)/,
    );
    const st = await cliOk(['hubble', 'status'], { lab: LAB });
    assert.match(st, /Healthcheck .*Ok/);
    assert.match(st, /Current\/Max Flows: \d+\/4,095/);
  });

  it('Prometheus metrics count flows and drops', async () => {
    // The address `status` prints answers from where the CLI runs (the machine's own namespace).
    const status = JSON.parse(await cliOk(['status', '-o', 'json'], { lab: LAB })) as { metrics: string };
    assert.match(status.metrics, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const r = { stdout: await (await fetch(status.metrics)).text() };
    assert.match(r.stdout, /hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} \d+/);
    assert.match(
      r.stdout,
      /hubble_flows_processed_total\{type="Trace",subtype="to-endpoint",verdict="FORWARDED"\} \d+/,
    );
    assert.match(r.stdout, /cilium_drop_count_total\{reason="Policy denied",direction="INGRESS"\} \d+/);
    assert.match(r.stdout, /cilium_endpoint 3/);
  });
});
