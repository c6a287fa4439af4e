import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

process.env.TZ = 'UTC';

import { type FlowsResponse, type GetFlowsRequestInput, ObserverClient } from '../../../src/hubble/index.js';
import { PODS, packet, traceEvent } from '../../unit/hubble/helpers/events.js';
import { runHubbleCli } from './cli.js';
import { BOOT_SEC, type Fixture, startFixture } from './fixture.js';

async function collect(client: ObserverClient, req: GetFlowsRequestInput): Promise<FlowsResponse[]> {
  const out: FlowsResponse[] = [];
  for await (const r of client.getFlows(req)) out.push(r);
  return out;
}
const summaries = (rs: FlowsResponse[]) => rs.map((r) => `${r.flow?.verdict}:${r.flow?.Summary}`);

describe('Observer gRPC server (grpc-js client)', () => {
  let fx: Fixture;
  let unix: ObserverClient;
  let tcp: ObserverClient;
  before(async () => {
    fx = await startFixture();
    unix = new ObserverClient(fx.server.addresses.unix!);
    tcp = new ObserverClient(fx.server.addresses.tcp!);
  });
  after(async () => {
    unix.close();
    tcp.close();
    await fx.close();
  });

  it('listens on the unix socket and a loopback TCP port', () => {
    assert.ok(existsSync(fx.socket));
    assert.match(fx.server.addresses.tcp!, /^127\.0\.0\.1:\d+$/);
    assert.notEqual(fx.server.addresses.tcp, '127.0.0.1:0');
  });

  it('ServerStatus, GetNodes and the health check', async () => {
    for (const c of [unix, tcp]) {
      const st = await c.serverStatus();
      assert.equal(st.num_flows, 6);
      assert.equal(st.max_flows, 4095);
      assert.equal(st.seen_flows, 6);
      assert.ok(st.uptime_ns > 0);
      assert.equal(st.num_connected_nodes, 1);
      assert.match(st.version ?? '', /^cilium-ts /);
      assert.equal(await c.healthCheck(), 'SERVING');
    }
    const nodes = await unix.getNodes();
    assert.equal(nodes.length, 1);
    assert.equal(nodes[0]!.name, 'node1');
    assert.equal(nodes[0]!.state, 'NODE_CONNECTED');
  });

  it('GetFlows: last N, first N, decoded with upstream field names and time', async () => {
    const last = await collect(unix, { number: 2 });
    assert.deepEqual(summaries(last), ['FORWARDED:UDP', 'FORWARDED:ICMPv4 EchoRequest']);
    assert.equal(last[0]!.node_name, 'node1');
    const first = await collect(tcp, { number: 2, first: true });
    const v = first[0]!.flow!;
    assert.equal(v.time, '2023-11-21T20:01:02Z');
    assert.deepEqual(v.event_type, { type: 5 });
    assert.equal(v.traffic_direction, 'INGRESS');
    assert.equal(v.policy_match_type, 2);
    assert.equal(v.is_reply, false);
    const t = first[1]!.flow!;
    assert.equal(t.trace_observation_point, 'TO_ENDPOINT');
    assert.deepEqual(t.l4, { TCP: { source_port: 51234, destination_port: 80, flags: { SYN: true } } });
    assert.equal(t.source?.pod_name, 'tiefighter');
    assert.deepEqual(t.source?.labels, [...PODS.tiefighter.labels]);
    assert.equal(t.destination?.ID, PODS.deathstar.ep);
    assert.equal(first[1]!.time, '2023-11-21T20:01:03Z');
  });

  it('GetFlows: white/blacklists', async () => {
    const drops = await collect(unix, { whitelist: [{ verdict: ['DROPPED'] }] });
    assert.equal(drops.length, 1);
    const d = drops[0]!.flow!;
    assert.equal(d.drop_reason_desc, 'POLICY_DENIED');
    assert.equal(d.drop_reason, 133);
    assert.equal(d.source?.pod_name, 'xwing');
    const notTcp = await collect(unix, { blacklist: [{ protocol: ['tcp'] }] });
    assert.deepEqual(summaries(notTcp), ['FORWARDED:UDP', 'FORWARDED:ICMPv4 EchoRequest']);
    const podEither = await collect(unix, {
      whitelist: [{ source_pod: ['kube-system/'] }, { destination_pod: ['kube-system/'] }],
    });
    assert.deepEqual(summaries(podEither), ['FORWARDED:UDP']);
    assert.equal(podEither[0]!.flow!.IP?.ipVersion, 'IPv6');
    const labels = await collect(unix, {
      whitelist: [{ source_label: ['k8s:org=alliance'] }, { destination_label: ['reserved:world'] }],
    });
    assert.equal(labels.length, 2);
  });

  it('GetFlows: since/until', async () => {
    const r = await collect(unix, {
      since: { seconds: BOOT_SEC + 2, nanos: 0 },
      until: { seconds: BOOT_SEC + 3, nanos: 0 },
    });
    assert.deepEqual(summaries(r), ['FORWARDED:TCP Flags: SYN, ACK', 'DROPPED:TCP Flags: SYN']);
  });

  it('GetFlows: a bad filter is INVALID_ARGUMENT', async () => {
    await assert.rejects(
      collect(unix, { whitelist: [{ source_ip: ['not-an-ip'] }] }),
      (e: { code?: number; details?: string }) => {
        assert.equal(e.code, 3);
        assert.match(e.details ?? '', /source_ip/);
        return true;
      },
    );
  });

  it('GetFlows follow: history then live flows matching the filter; cancel ends the stream', async () => {
    const ac = new AbortController();
    const got: string[] = [];
    const done = (async () => {
      for await (const r of unix.getFlows(
        { number: 1, follow: true, whitelist: [{ source_pod: ['default/tiefighter'] }] },
        ac.signal,
      )) {
        got.push(r.flow!.Summary!);
        if (got.length === 3) ac.abort();
      }
    })();
    await new Promise((res) => setTimeout(res, 200));
    const { tiefighter: tf, deathstar: ds } = PODS;
    fx.observer.ingest(
      traceEvent({
        obsPoint: 5,
        source: ds.ep,
        srcLabel: ds.id,
        dstLabel: tf.id,
        reason: 0,
        ktimeNs: 10n ** 10n,
        pkt: packet({ src: ds.ip, dst: tf.ip, proto: 'udp', sport: 1, dport: 2 }),
      }),
    );
    for (const dport of [81, 82]) {
      fx.observer.ingest(
        traceEvent({
          obsPoint: 5,
          source: tf.ep,
          srcLabel: tf.id,
          dstLabel: ds.id,
          reason: 0,
          ktimeNs: 10n ** 10n,
          pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 5, dport, flags: 2 }),
        }),
      );
    }
    await done;
    assert.deepEqual(got, ['ICMPv4 EchoRequest', 'TCP Flags: SYN', 'TCP Flags: SYN']);
  });

  it('cilium-ts hubble observe / status against the server', async () => {
    const run = runHubbleCli;
    const server = fx.server.addresses.unix!;
    const compact = await run(['observe', '--server', server, '--verdict', 'DROPPED']);
    assert.deepEqual(compact.out, [
      'Nov 21 20:01:05.000: default/xwing:40000 (ID:7000) <> default/deathstar-6f87c5b7f6-abcde:80 (ID:5678) Policy denied DROPPED (TCP Flags: SYN)',
    ]);
    const json = await run(['observe', '--server', fx.server.addresses.tcp!, '--first', '1', '-o', 'json']);
    assert.equal(JSON.parse(json.out[0]!).verdict, 'FORWARDED');
    const jsonpb = await run([
      'observe',
      '--server',
      server,
      '--last',
      '1',
      '-o',
      'jsonpb',
      '--not',
      '--to-port',
      '82',
    ]);
    const res = JSON.parse(jsonpb.out[0]!);
    assert.equal(res.node_name, 'node1');
    assert.equal(res.flow.l4.TCP.destination_port, 81);
    const table = await run(['observe', '--server', server, '-n', 'kube-system', '-o', 'table']);
    assert.equal(table.out.length, 1);
    assert.match(
      table.out[0]!,
      /^TIMESTAMP +SOURCE +DESTINATION +TYPE +VERDICT +SUMMARY\nNov 21 20:01:06\.000 +default\/tiefighter:33333 +kube-system\/coredns-7db6d8ff4d-xyz:53 +from-endpoint +FORWARDED +UDP$/,
    );
    const st = await run(['status', '--server', server]);
    assert.match(
      st.out[0]!,
      /^Healthcheck \(via unix:\/\/.*hubble\.sock\): Ok\nCurrent\/Max Flows: 9\/4,095 \(0\.22%\)\nFlows\/s: [\d.]+\nConnected Nodes: 1\/1$/,
    );
    const bad = await run(['status', '--server', 'unix:///nonexistent/hubble.sock']);
    assert.match(bad.err[0] ?? '', /^Error: cannot reach Hubble server/);
    const nodes = await run(['list', 'nodes', '--server', server]);
    assert.match(
      nodes.out[0]!,
      /^NAME +STATUS +AGE +FLOWS\/S +CURRENT\/MAX-FLOWS\nnode1 +Connected +\d+s +[\d.]+ +9\/4095 \(0\.22%\)$/,
    );
    const nodesJson = JSON.parse((await run(['list', 'nodes', '--server', server, '-o', 'json'])).out[0]!);
    assert.deepEqual(
      nodesJson.map((n: { name: string; state: string }) => [n.name, n.state]),
      [['node1', 'NODE_CONNECTED']],
    );
    const ns = await run(['list', 'namespaces', '--server', server]);
    assert.equal(ns.out[0], ['CLUSTER   NAMESPACE', 'default   default', 'default   kube-system'].join('\n'));
    const badList = await run(['list', 'nodes', '--server', 'unix:///nonexistent/hubble.sock']);
    assert.match(badList.err[0] ?? '', /^Error: cannot reach Hubble server/);
  });
});

describe('Observer gRPC server: health and ServerStatus follow the ring-buffer reader', () => {
  let fx: Fixture;
  let client: ObserverClient;
  let up: boolean | 'throw' = true;
  before(async () => {
    fx = await startFixture({
      readerUp: () => {
        if (up === 'throw') throw new Error('monitor gone');
        return up;
      },
    });
    client = new ObserverClient(fx.server.addresses.unix!);
  });
  after(async () => {
    client.close();
    await fx.close();
  });

  it('SERVING and one connected node while the reader runs', async () => {
    up = true;
    assert.equal(await client.healthCheck(), 'SERVING');
    assert.equal(await client.healthCheck(5000, 'hubble.server.Observer'), 'SERVING');
    const st = await client.serverStatus();
    assert.deepEqual(
      [st.num_connected_nodes, st.num_unavailable_nodes, st.unavailable_nodes],
      [1, 0, undefined],
    );
    assert.equal((await client.getNodes())[0]!.state, 'NODE_CONNECTED');
  });

  it('NOT_SERVING, the node unavailable and NODE_ERROR while the reader is down; back when it returns', async () => {
    for (const state of [false, 'throw'] as const) {
      up = state;
      assert.equal(await client.healthCheck(), 'NOT_SERVING');
      assert.equal(await client.healthCheck(5000, 'hubble.server.Observer'), 'NOT_SERVING');
      const st = await client.serverStatus();
      assert.deepEqual([st.num_connected_nodes, st.num_unavailable_nodes], [0, 1]);
      assert.deepEqual(st.unavailable_nodes, ['node1']);
      assert.equal(st.num_flows, 6, 'flows already held are still served');
      assert.equal((await client.getNodes())[0]!.state, 'NODE_ERROR');
    }
    up = true;
    assert.equal(await client.healthCheck(), 'SERVING');
    assert.equal(fx.observer.status().reader_up, true);
  });

  it('an unknown service is NOT_FOUND, as grpc.health.v1 says', async () => {
    await assert.rejects(client.healthCheck(5000, 'no.such.Service'), (e: { code?: number }) => {
      assert.equal(e.code, 5);
      return true;
    });
  });

  it('GetFlows decodes the interface filter from the wire', async () => {
    const flows: FlowsResponse[] = [];
    for await (const r of client.getFlows({ whitelist: [{ interface: [{ name: 'lxc-nonexistent' }] }] }))
      flows.push(r);
    assert.equal(flows.length, 0, 'no flow carries that interface (the filter is not ignored)');
    const all: FlowsResponse[] = [];
    for await (const r of client.getFlows({ blacklist: [{ interface: [{}] }] })) all.push(r);
    assert.equal(all.length, 6, 'the fixture flows carry no interface, so none is blacklisted');
  });
});
