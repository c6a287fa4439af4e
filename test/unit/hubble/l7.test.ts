/**
 * L7 flows: an HTTP proxy event becomes a Type L7 flow with upstream's fields, survives the real
 * protobuf codec of GetFlowsResponse, is selected by the L7 filters (--type l7, --http-status,
 * --http-method, --http-path, --protocol http) and counted by the http metric with upstream's
 * names and labels; compact output reads like upstream's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { buildFilters } from '../../../src/cli/hubble.js';
import { compileFilters } from '../../../src/hubble/filter.js';
import { formatCompact } from '../../../src/hubble/format.js';
import { type L7Event, L7Recorder, l7Flow, recordL7 } from '../../../src/hubble/l7.js';
import { HubbleMetrics, parseMetricsConfig } from '../../../src/hubble/metrics.js';
import { Observer } from '../../../src/hubble/observer.js';
import type { ParserContext } from '../../../src/hubble/parser.js';
import { flowFromProto, flowToProto, loadHubbleProtos } from '../../../src/hubble/proto.js';
import type { Flow } from '../../../src/hubble/types.js';

const ctx: ParserContext = {
  nodeName: 'node1',
  bootTime: { sec: 0, nsec: 0 } as unknown as ParserContext['bootTime'],
  uuid: false,
  endpointByIp: (ip) =>
    ip === '10.0.0.3'
      ? { id: 3, identity: 285, namespace: 'default', podName: 'tiefighter', labels: ['k8s:org=empire'] }
      : ip === '10.0.0.6'
        ? {
            id: 5,
            identity: 284,
            namespace: 'default',
            podName: 'deathstar-1',
            labels: ['k8s:class=deathstar'],
          }
        : undefined,
};

const info = {
  protocol: 'tcp' as const,
  client: { address: '10.0.0.3', port: 40000 },
  original: { address: '10.0.0.6', port: 80 },
  egress: false,
  srcIdentity: 285,
  dstIdentity: 284,
  proxyPort: 10080,
};

function ev(
  type: 'request' | 'response',
  verdict: L7Event['verdict'],
  method: string,
  path: string,
  code?: number,
): L7Event {
  return {
    type,
    verdict,
    time: new Date('2026-12-01T01:00:00.250Z'),
    info,
    ...(type === 'response' ? { latencyNs: 2_500_000n } : {}),
    http: {
      method,
      url: `http://deathstar.default.svc.cluster.local${path}`,
      protocol: 'HTTP/1.1',
      headers: [{ key: 'user-agent', value: 'curl/7.88.1' }],
      ...(code !== undefined ? { code } : {}),
    },
  };
}

const landReq = l7Flow(ev('request', 'forwarded', 'POST', '/v1/request-landing'), ctx);
const landResp = l7Flow(ev('response', 'forwarded', 'POST', '/v1/request-landing', 200), ctx);
const exhaustReq = l7Flow(ev('request', 'denied', 'PUT', '/v1/exhaust-port'), ctx);
const exhaustResp = l7Flow(ev('response', 'denied', 'PUT', '/v1/exhaust-port', 403), ctx);
const all = [landReq, landResp, exhaustReq, exhaustResp];

type Entry = { flag: string; value: string; negated: boolean };
const e = (flag: string, value: string): Entry => ({ flag, value, negated: false });
function select(flags: Entry[]): Flow[] {
  const f = buildFilters(flags);
  const p = compileFilters(f.whitelist, f.blacklist);
  return all.filter(p);
}

describe('L7 flows', () => {
  it('carry upstream fields: Type L7, event type 129, REQUEST/RESPONSE, latency, http, endpoints', () => {
    assert.equal(landReq.Type, 'L7');
    assert.equal(landReq.event_type.type, 129);
    assert.equal(landReq.verdict, 'FORWARDED');
    assert.equal(landReq.l7?.type, 'REQUEST');
    assert.equal(landReq.l7?.latency_ns, undefined);
    assert.deepEqual(landReq.IP, { source: '10.0.0.3', destination: '10.0.0.6', ipVersion: 'IPv4' });
    assert.equal(landReq.source?.pod_name, 'tiefighter');
    assert.equal(landReq.destination?.identity, 284);
    assert.equal(landReq.traffic_direction, 'INGRESS');
    assert.equal(landReq.proxy_port, 10080);
    assert.equal(landResp.l7?.type, 'RESPONSE');
    assert.equal(landResp.l7?.latency_ns, 2_500_000);
    assert.equal(landResp.is_reply, true);
    assert.deepEqual(landResp.IP, { source: '10.0.0.6', destination: '10.0.0.3', ipVersion: 'IPv4' });
    assert.equal(landResp.l7?.http?.code, 200);
    assert.equal(exhaustReq.verdict, 'DROPPED');
    assert.deepEqual(exhaustReq.l7?.http?.headers, [{ key: 'user-agent', value: 'curl/7.88.1' }]);
  });

  it('survive the GetFlowsResponse protobuf codec', () => {
    const def = ((loadHubbleProtos().observer as grpc.GrpcObject).Observer as grpc.ServiceClientConstructor)
      .service.GetFlows!;
    const buf = def.responseSerialize({ flow: flowToProto(exhaustResp), node_name: 'node1' });
    const back = flowFromProto((def.responseDeserialize(buf) as { flow: Record<string, unknown> }).flow);
    assert.equal(back.Type, 'L7');
    assert.deepEqual(back.l7, exhaustResp.l7);
    assert.equal(back.verdict, 'DROPPED');
  });

  it('are selected by --type l7, --protocol http, --http-status, --http-method, --http-path', () => {
    assert.equal(select([e('type', 'l7')]).length, 4);
    assert.equal(select([e('protocol', 'http')]).length, 4);
    assert.equal(select([e('protocol', 'dns')]).length, 0);
    assert.deepEqual(select([e('http-status', '403')]), [exhaustResp]);
    assert.deepEqual(select([e('http-status', '2+')]), [landResp]);
    assert.deepEqual(select([e('http-status', '40+')]), [exhaustResp]);
    assert.deepEqual(select([e('http-method', 'put')]), [exhaustReq, exhaustResp]);
    assert.deepEqual(select([e('http-path', '^/v1/request-.*$')]), [landReq, landResp]);
    assert.deepEqual(select([e('verdict', 'DROPPED'), e('type', 'l7')]), [exhaustReq, exhaustResp]);
    assert.throws(() => buildFilters([e('http-status', '99')]), /http-status/);
  });

  it('print like upstream in compact form', () => {
    const line = formatCompact(exhaustReq);
    assert.match(
      line,
      /default\/tiefighter:40000 \(ID:285\) -> default\/deathstar-1:80 \(ID:284\) http-request DROPPED/,
    );
    assert.match(
      line,
      /\(HTTP\/1\.1 PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port\)$/,
    );
    assert.match(formatCompact(landResp), /http-response FORWARDED \(HTTP\/1\.1 200 3ms \(POST /);
  });

  it('are counted by the http metric with upstream names and labels', async () => {
    assert.deepEqual(
      parseMetricsConfig('http').map((c) => c.name),
      ['http'],
    );
    const m = new HubbleMetrics({ metrics: 'http' });
    for (const f of all) m.processFlow(f);
    const text = await m.registry.metrics();
    assert.match(
      text,
      /hubble_http_requests_total\{method="POST",protocol="HTTP\/1\.1",reporter="server"\} 1/,
    );
    assert.match(
      text,
      /hubble_http_requests_total\{method="PUT",protocol="HTTP\/1\.1",reporter="server"\} 1/,
    );
    assert.match(
      text,
      /hubble_http_responses_total\{method="PUT",protocol="HTTP\/1\.1",status="403",reporter="server"\} 1/,
    );
    assert.match(
      text,
      /hubble_http_request_duration_seconds_bucket\{le="0\.005",method="POST",reporter="server"\} 1/,
    );
    assert.match(text, /hubble_http_request_duration_seconds_count\{method="PUT",reporter="server"\} 1/);
  });

  it('are recorded in the observer at the event time, as l7Flow builds them, and counted', async () => {
    const metrics = new HubbleMetrics({ metrics: 'http' });
    const obs = new Observer({
      nodeName: 'node1',
      uuid: false,
      metrics,
      ...(ctx.endpointByIp ? { endpointByIp: ctx.endpointByIp } : {}),
    });
    const events = [
      ev('request', 'forwarded', 'POST', '/v1/request-landing'),
      ev('response', 'forwarded', 'POST', '/v1/request-landing', 200),
    ];
    for (const x of events) recordL7(obs, x);
    const held = [...obs.ring.oldestFirst()];
    assert.equal(held.length, 2);
    for (const [i, h] of held.entries()) {
      assert.deepEqual(h.flow, l7Flow(events[i]!, obs.parserContext));
      assert.equal(h.flow?.time, '2026-12-01T01:00:00.250Z');
      assert.equal(h.sec, Date.parse('2026-12-01T01:00:00Z') / 1000);
      assert.equal(h.nsec, 250_000_000);
      assert.equal(h.timeMs, Date.parse('2026-12-01T01:00:00.250Z'));
    }
    assert.equal(obs.status().seen_flows, 2);
    assert.match(
      await metrics.registry.metrics(),
      /hubble_http_responses_total\{method="POST",protocol="HTTP\/1\.1",status="200",reporter="server"\} 1/,
    );
  });

  it('are held as events: the flow is built when read, between the endpoints known when recorded', () => {
    let deleted = false;
    const obs = new Observer({
      nodeName: 'node1',
      uuid: false,
      endpointByIp: (ip) => (deleted ? undefined : ctx.endpointByIp!(ip)),
    });
    // a connection of its own: its ends are not cached from the other tests
    const own = { ...info, client: { address: '10.0.0.3', port: 40999 } };
    const e = { ...ev('request', 'forwarded', 'GET', '/v1'), info: own };
    recordL7(obs, e);
    deleted = true; // the client pod is gone before anyone reads the flow
    const [held] = [...obs.ring.oldestFirst()];
    const flow = held!.flow!;
    assert.equal(flow.source?.pod_name, 'tiefighter');
    assert.equal(flow.destination?.pod_name, 'deathstar-1');
    assert.equal(flow.l7?.http?.url, 'http://deathstar.default.svc.cluster.local/v1');
    assert.equal(held!.flow, flow, 'built once, then kept');
  });

  it('carry the DNS and Kafka parts with only the fields given', () => {
    const base = { verdict: 'forwarded' as const, time: new Date('2026-12-01T01:00:00Z'), info };
    const dns = l7Flow(
      {
        ...base,
        type: 'response',
        dns: { query: 'cilium.io.', ips: ['10.1.1.1'], ttl: 30, rcode: 0, qtypes: ['A'], rrtypes: ['A'] },
      },
      ctx,
    );
    assert.deepEqual(dns.l7?.dns, {
      query: 'cilium.io.',
      ips: ['10.1.1.1'],
      ttl: 30,
      rcode: 0,
      qtypes: ['A'],
      rrtypes: ['A'],
      observation_source: 'proxy',
    });
    const refused = l7Flow({ ...base, type: 'request', verdict: 'denied', dns: { query: 'x.io.' } }, ctx);
    assert.deepEqual(refused.l7?.dns, { query: 'x.io.', observation_source: 'proxy' });
    const kafka = l7Flow(
      {
        ...base,
        type: 'response',
        kafka: {
          apiKey: 'produce',
          apiVersion: 9,
          correlationId: 4,
          topic: 'empire-announce',
          errorCode: 29,
        },
      },
      ctx,
    );
    assert.deepEqual(kafka.l7?.kafka, {
      api_key: 'produce',
      api_version: 9,
      correlation_id: 4,
      topic: 'empire-announce',
      error_code: 29,
    });
    const plain = l7Flow(
      { ...base, type: 'request', kafka: { apiKey: 'fetch', apiVersion: 11, correlationId: 5 } },
      ctx,
    );
    assert.deepEqual(plain.l7?.kafka, { api_key: 'fetch', api_version: 11, correlation_id: 5 });
  });

  it('are recorded in batches, in order: after the batch time, or at once when a batch is full', async () => {
    const obs = new Observer({ nodeName: 'node1', uuid: false });
    const rec = new L7Recorder(obs, undefined, 20, 3);
    const paths = ['/a', '/b', '/c', '/d', '/e'];
    rec.add(ev('request', 'forwarded', 'GET', paths[0]!));
    rec.add(ev('request', 'forwarded', 'GET', paths[1]!));
    assert.equal(rec.pending, 2);
    assert.equal(obs.status().seen_flows, 0);
    for (let i = 0; i < 1000 && obs.status().seen_flows < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(obs.status().seen_flows, 2);
    assert.equal(rec.pending, 0);
    for (const p of paths.slice(2)) rec.add(ev('request', 'forwarded', 'GET', p));
    // three waiting: the batch goes in the next turn of the event loop, not after the batch time
    await new Promise((r) => setImmediate(r));
    assert.equal(rec.pending, 0);
    const urls = [...obs.ring.oldestFirst()].map((h) => h.flow?.l7?.http?.url);
    assert.deepEqual(
      urls,
      paths.map((p) => `http://deathstar.default.svc.cluster.local${p}`),
    );
  });

  it('get version 4 uuids, all different, across the runs that share a prefix', () => {
    const withUuid: ParserContext = { ...ctx, uuid: true };
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const u = l7Flow(ev('request', 'forwarded', 'GET', '/'), withUuid).uuid!;
      assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(u);
    }
    assert.equal(seen.size, 10_000);
  });
});
