/**
 * An independent client: Debian's python3-grpcio + python3-grpc-tools compile
 * the UPSTREAM reference protos (shared/reference/hubble-proto) and call our
 * server's GetFlows and ServerStatus. Requires: apt-get install -y
 * python3-grpcio python3-grpc-tools (uses /usr/bin/python3).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type Fixture, startFixture } from './fixture.js';
import { compileUpstreamProtos, PY } from './python.js';

const SCRIPT = String.raw`
import json, sys
sys.path.insert(0, sys.argv[1])
import grpc
from google.protobuf import json_format
from observer import observer_pb2, observer_pb2_grpc
from flow import flow_pb2

target = sys.argv[2]
channel = grpc.insecure_channel(target)
stub = observer_pb2_grpc.ObserverStub(channel)
out = {}
st = stub.ServerStatus(observer_pb2.ServerStatusRequest(), timeout=10)
out["status"] = {"num_flows": st.num_flows, "max_flows": st.max_flows, "seen_flows": st.seen_flows,
                 "uptime_ns": st.uptime_ns, "connected": st.num_connected_nodes.value,
                 "has_connected": st.HasField("num_connected_nodes"), "version": st.version}
req = observer_pb2.GetFlowsRequest(number=10)
flows = []
for resp in stub.GetFlows(req, timeout=10):
    if resp.HasField("flow"):
        f = resp.flow
        l4 = f.l4.WhichOneof("protocol")
        ports = None
        if l4 in ("TCP", "UDP"):
            p = getattr(f.l4, l4)
            ports = [p.source_port, p.destination_port]
        flows.append({
            "verdict": flow_pb2.Verdict.Name(f.verdict),
            "drop_reason_desc": flow_pb2.DropReason.Name(f.drop_reason_desc),
            "src_ip": f.IP.source, "dst_ip": f.IP.destination,
            "ip_version": flow_pb2.IPVersion.Name(f.IP.ipVersion),
            "l4": l4, "ports": ports,
            "syn": f.l4.TCP.flags.SYN if l4 == "TCP" else None,
            "src_pod": f.source.namespace + "/" + f.source.pod_name,
            "dst_pod": f.destination.namespace + "/" + f.destination.pod_name,
            "src_identity": f.source.identity, "src_labels": list(f.source.labels),
            "event_type": [f.event_type.type, f.event_type.sub_type],
            "obs_point": flow_pb2.TraceObservationPoint.Name(f.trace_observation_point),
            "direction": flow_pb2.TrafficDirection.Name(f.traffic_direction),
            "is_reply": f.is_reply.value if f.HasField("is_reply") else None,
            "summary": f.Summary, "node_name": f.node_name,
            "time_s": f.time.seconds, "time_ns": f.time.nanos,
            "json": json_format.MessageToDict(f, preserving_proto_field_name=True),
            "resp_node": resp.node_name,
        })
out["flows"] = flows
# a filtered request: only drops
req = observer_pb2.GetFlowsRequest(whitelist=[flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED])])
out["drops"] = [flow_pb2.DropReason.Name(r.flow.drop_reason_desc) for r in stub.GetFlows(req, timeout=10)]
print(json.dumps(out))
`;

interface PyFlow {
  verdict: string;
  drop_reason_desc: string;
  src_ip: string;
  dst_ip: string;
  ip_version: string;
  l4: string;
  ports: number[] | null;
  syn: boolean | null;
  src_pod: string;
  dst_pod: string;
  src_identity: number;
  src_labels: string[];
  event_type: number[];
  obs_point: string;
  direction: string;
  is_reply: boolean | null;
  summary: string;
  node_name: string;
  time_s: number;
  time_ns: number;
  json: Record<string, unknown>;
  resp_node: string;
}

describe('independent client: python grpcio with the upstream reference protos', () => {
  let fx: Fixture;
  let gen: string;
  before(async () => {
    fx = await startFixture();
    gen = join(fx.dir, 'py');
    compileUpstreamProtos(gen, ['flow/flow.proto', 'observer/observer.proto', 'relay/relay.proto']);
    writeFileSync(join(gen, 'client.py'), SCRIPT);
  });
  after(async () => {
    await fx?.close();
  });

  for (const via of ['unix', 'tcp'] as const) {
    it(`GetFlows and ServerStatus decode with upstream's generated code (${via})`, async () => {
      const target = via === 'unix' ? fx.server.addresses.unix! : fx.server.addresses.tcp!;
      // async: the server runs in this process and must keep serving while python runs
      const { stdout } = await promisify(execFile)(PY, [join(gen, 'client.py'), gen, target], {
        timeout: 60_000,
      });
      const out = JSON.parse(stdout) as { status: Record<string, unknown>; flows: PyFlow[]; drops: string[] };
      assert.equal(out.status.num_flows, 6);
      assert.equal(out.status.max_flows, 4095);
      assert.equal(out.status.seen_flows, 6);
      assert.ok((out.status.uptime_ns as number) > 0);
      assert.equal(out.status.has_connected, true);
      assert.equal(out.status.connected, 1);
      assert.equal(out.flows.length, 6);
      const [verdict, fwd, reply, drop, udp6, icmp] = out.flows as [
        PyFlow,
        PyFlow,
        PyFlow,
        PyFlow,
        PyFlow,
        PyFlow,
      ];
      assert.equal(verdict.event_type[0], 5);
      assert.equal(verdict.direction, 'INGRESS');
      assert.equal(fwd.verdict, 'FORWARDED');
      assert.equal(fwd.src_ip, '10.0.1.10');
      assert.equal(fwd.dst_ip, '10.0.1.20');
      assert.equal(fwd.ip_version, 'IPv4');
      assert.equal(fwd.l4, 'TCP');
      assert.deepEqual(fwd.ports, [51234, 80]);
      assert.equal(fwd.syn, true);
      assert.equal(fwd.src_pod, 'default/tiefighter');
      assert.equal(fwd.dst_pod, 'default/deathstar-6f87c5b7f6-abcde');
      assert.equal(fwd.src_identity, 1234);
      assert.ok(fwd.src_labels.includes('k8s:app=tiefighter'));
      assert.deepEqual(fwd.event_type, [4, 0]);
      assert.equal(fwd.obs_point, 'TO_ENDPOINT');
      assert.equal(fwd.is_reply, false);
      assert.equal(fwd.summary, 'TCP Flags: SYN');
      assert.equal(fwd.node_name, 'node1');
      assert.equal(fwd.resp_node, 'node1');
      assert.equal(fwd.time_s, 1700596863);
      assert.equal(reply.is_reply, true);
      assert.deepEqual(reply.ports, [80, 51234]);
      assert.equal(drop.verdict, 'DROPPED');
      assert.equal(drop.drop_reason_desc, 'POLICY_DENIED');
      assert.equal(drop.src_pod, 'default/xwing');
      assert.equal(drop.is_reply, null);
      assert.deepEqual(drop.event_type, [1, 133]);
      assert.equal(udp6.ip_version, 'IPv6');
      assert.equal(udp6.src_ip, 'fd00::10');
      assert.equal(udp6.l4, 'UDP');
      assert.deepEqual(udp6.ports, [33333, 53]);
      assert.equal(udp6.dst_pod, 'kube-system/coredns-7db6d8ff4d-xyz');
      assert.equal(icmp.l4, 'ICMPv4');
      assert.equal(icmp.obs_point, 'TO_STACK');
      // protojson of upstream's own code reads with the same field names as ours
      assert.equal(drop.json.drop_reason_desc, 'POLICY_DENIED');
      assert.equal((drop.json.IP as Record<string, unknown>).ipVersion, 'IPv4');
      assert.equal((drop.json.source as Record<string, unknown>).pod_name, 'xwing');
      assert.deepEqual(out.drops, ['POLICY_DENIED']);
    });
  }
});
