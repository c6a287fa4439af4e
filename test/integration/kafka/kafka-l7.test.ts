/**
 * Kafka L7 policy end to end in a lab: a broker pod (the Kafka-protocol broker workload), client pods
 * running kafkajs (the Kafka client workload), and upstream's demo policy on the broker's ingress
 * (empire-hq may produce to two topics, outposts may consume one). The datapath redirects the
 * connections to the node's Kafka proxy, which lets allowed requests through and answers the others
 * with TOPIC_AUTHORIZATION_FAILED; Hubble shows the L7 flows with api key, version, topic and error code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Flow } from '../../../src/hubble/types.js';
import { isRunning } from '../../../src/lab/process.js';
import { loadLab } from '../../../src/lab/state.js';
import { cli, cliOk, labName, manifest, pods } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('kfk');
const node = process.execPath;
const brokerJs = fileURLToPath(new URL('../../../src/workload/kafka-broker.js', import.meta.url));
const clientJs = fileURLToPath(new URL('../../../src/workload/kafka-client.js', import.meta.url));

const pod = (name: string, labels: string, command: string[]) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {${labels}}}
spec:
  containers: [{name: c, command: ${JSON.stringify(command)}}]
`;

const MANIFEST = [
  pod('kafka-broker', 'app: kafka', [node, brokerJs, '--port', '9092']),
  pod('empire-hq', 'app: empire-hq', ['sleep', 'infinity']),
  pod('empire-outpost', 'app: empire-outpost', ['sleep', 'infinity']),
  pod('empire-backup', 'app: empire-backup', ['sleep', 'infinity']),
  pod('probe-droid', 'app: probe-droid', ['sleep', 'infinity']),
  `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: secure-empire-kafka}
spec:
  endpointSelector: {matchLabels: {app: kafka}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: empire-hq}}]
    toPorts:
    - ports: [{port: "9092", protocol: TCP}]
      rules:
        kafka:
        - {role: produce, topic: deathstar-plans}
        - {role: produce, topic: empire-announce}
  - fromEndpoints: [{matchLabels: {app: empire-outpost}}]
    toPorts:
    - ports: [{port: "9092", protocol: TCP}]
      rules:
        kafka:
        - {role: consume, topic: empire-announce}
  - fromEndpoints: [{matchLabels: {app: probe-droid}}]
    toPorts: [{ports: [{port: "9092", protocol: TCP}]}]
`,
  `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: probe-droid-egress}
spec:
  endpointSelector: {matchLabels: {app: probe-droid}}
  egress:
  - toEndpoints: [{matchLabels: {app: kafka}}]
    toPorts:
    - ports: [{port: "9092", protocol: TCP}]
      rules:
        kafka:
        - {role: produce, topic: droid-reports}
`,
].join('---\n');

interface ClientResult {
  ok: boolean;
  produced?: number;
  consumed?: string[];
  error?: string;
  code?: number;
}

let broker = '';

async function client(from: string, args: string[]): Promise<ClientResult> {
  const r = await cli(['lab', 'exec', from, '--', node, clientJs, ...args, '--brokers', `${broker}:9092`], {
    lab: LAB,
    timeoutMs: 60_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ClientResult;
  } catch {
    throw new Error(`client in ${from} printed no result (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

async function l7Flows(): Promise<Flow[]> {
  const out = await cliOk(
    ['hubble', 'observe', '--type', 'l7', '--protocol', 'kafka', '-o', 'json', '--last', '1000'],
    {
      lab: LAB,
    },
  );
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Flow);
}

describe('privileged: Kafka L7 policy through the node proxy', () => {
  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '-f', manifest(MANIFEST)]);
    broker = (await pods(LAB)).get('default/kafka-broker')!.ip;
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('the policy map entry for port 9092 carries the Kafka proxy port', async () => {
    const out = await cliOk(['bpf', 'policy', 'get', 'default/kafka-broker', '-o', 'json'], { lab: LAB });
    assert.match(out, /10092/, out);
  });

  it('empire-hq produces to an allowed topic', async () => {
    const r = await client('empire-hq', ['produce', '--topic', 'empire-announce', '--count', '3']);
    assert.deepEqual(r, { ok: true, produced: 3 });
  });

  it('empire-hq producing to another topic gets TOPIC_AUTHORIZATION_FAILED', async () => {
    const r = await client('empire-hq', ['produce', '--topic', 'rebel-plans', '--count', '1']);
    assert.deepEqual([r.ok, r.error, r.code], [false, 'TOPIC_AUTHORIZATION_FAILED', 29]);
  });

  it('the outpost consumes the allowed topic, may not produce to it, nor consume deathstar-plans', async () => {
    const c = await client('empire-outpost', [
      'consume',
      '--topic',
      'empire-announce',
      '--count',
      '3',
      '--timeout',
      '20000',
    ]);
    assert.equal(c.ok, true, JSON.stringify(c));
    assert.deepEqual(
      c.consumed?.map((v) => v.split(':')[0]),
      ['0', '1', '2'],
    );
    const p = await client('empire-outpost', ['produce', '--topic', 'empire-announce']);
    assert.deepEqual([p.ok, p.code], [false, 29]);
    const d = await client('empire-outpost', [
      'consume',
      '--topic',
      'deathstar-plans',
      '--group',
      'spy',
      '--timeout',
      '8000',
    ]);
    assert.deepEqual([d.ok, d.code], [false, 29]);
  });

  it('egress rules of the client pod: the same proxy, the client side of the connection', async () => {
    const ok = await client('probe-droid', ['produce', '--topic', 'droid-reports', '--count', '2']);
    assert.deepEqual(ok, { ok: true, produced: 2 });
    const denied = await client('probe-droid', ['produce', '--topic', 'empire-announce']);
    assert.deepEqual([denied.ok, denied.error, denied.code], [false, 'TOPIC_AUTHORIZATION_FAILED', 29]);
  });

  it('a pod no rule selects cannot connect at all', async () => {
    const r = await client('empire-backup', ['produce', '--topic', 'empire-announce']);
    assert.equal(r.ok, false);
    assert.notEqual(r.code, 29, 'dropped by the datapath, not answered by the proxy');
  });

  it('malformed Kafka from a pod: the proxy closes that connection and keeps serving others', async () => {
    // A frame whose header lies about its client id, then random bytes of a plausible size.
    const script = `
      const net = require('node:net');
      const frames = [
        Buffer.from([0, 0, 0, 10, 0, 0, 0, 7, 0, 0, 0, 1, 0x7f, 0x7f]),
        Buffer.concat([Buffer.from([0, 0, 0, 64]), require('node:crypto').randomBytes(64)]),
        Buffer.from([0xff, 0xff, 0xff, 0xf0]),
      ];
      let closed = 0;
      for (const f of frames) {
        const s = net.connect(9092, process.argv[1], () => s.write(f));
        s.on('error', () => {});
        s.on('close', () => { if (++closed === frames.length) console.log('closed ' + closed); });
        s.setTimeout(5000, () => { console.log('stalled'); process.exit(1); });
      }`;
    const r = await cli(['lab', 'exec', 'empire-hq', '--', node, '-e', script, broker], {
      lab: LAB,
      timeoutMs: 30_000,
    });
    assert.equal(r.stdout.trim(), 'closed 3', r.stdout + r.stderr);
    const ok = await client('empire-hq', ['produce', '--topic', 'deathstar-plans', '--count', '1']);
    assert.deepEqual(ok, { ok: true, produced: 1 });
  });

  it('Hubble shows the Kafka L7 flows: api key, version, topic, error code', async () => {
    const flows = await l7Flows();
    const kafka = flows.filter((f) => f.l7?.kafka !== undefined);
    assert.ok(kafka.length > 0, 'kafka L7 flows');
    assert.equal(kafka.length, flows.length, '--protocol kafka selects Kafka flows only');
    for (const f of kafka) assert.equal(f.Type, 'L7');
    const produced = kafka.find(
      (f) =>
        f.l7?.type === 'REQUEST' &&
        f.l7.kafka?.api_key === 'produce' &&
        f.l7.kafka.topic === 'empire-announce' &&
        f.source?.pod_name === 'empire-hq',
    );
    assert.ok(produced, 'the allowed produce request');
    assert.equal(produced.destination?.pod_name, 'kafka-broker');
    assert.equal(produced.l7?.kafka?.api_version, 7);
    const denied = kafka.find(
      (f) =>
        f.l7?.kafka?.error_code === 29 &&
        f.l7.kafka.topic === 'rebel-plans' &&
        f.l7.kafka.api_key === 'metadata',
    );
    assert.ok(denied, 'the denied metadata request for rebel-plans');
    assert.equal(produced.traffic_direction, 'INGRESS', "the broker's ingress rules");
    const droid = kafka.find(
      (f) => f.source?.pod_name === 'probe-droid' && f.l7?.kafka?.topic === 'droid-reports',
    );
    assert.equal(droid?.traffic_direction, 'EGRESS', "the droid's egress rules");
    const responses = kafka.filter((f) => f.l7?.type === 'RESPONSE' && f.l7.kafka?.api_key === 'produce');
    assert.ok(responses.some((f) => (f.l7?.latency_ns ?? 0) > 0));
  });

  it('the proxy down (agent SIGKILLed): connections fail closed; restarted: rules enforced again', async () => {
    const n = loadLab(LAB)!.nodes[0]!;
    process.kill(n.agentPid!, 'SIGKILL');
    await waitFor('the agent gone', () => !isRunning({ pid: n.agentPid!, startTime: n.agentStartTime! }));
    // The datapath still redirects port 9092; with no proxy listening the connection is dropped.
    const down = await client('empire-hq', ['produce', '--topic', 'empire-announce']);
    assert.equal(down.ok, false, 'no bypass while the proxy is down');
    assert.notEqual(down.code, 29);
    await cliOk(['lab', 'agent', 'restart'], { lab: LAB });
    await waitFor(
      'produce through the restarted proxy',
      async () => (await client('empire-hq', ['produce', '--topic', 'empire-announce'])).ok,
      30_000,
      500,
    );
    const denied = await client('empire-hq', ['produce', '--topic', 'rebel-plans']);
    assert.deepEqual([denied.ok, denied.code], [false, 29]);
  });
});
