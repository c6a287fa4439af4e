import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { loadHubbleProtos } from '../../../src/hubble/proto.js';
import { responseMeta, WireError, withNodeName } from '../../../src/hubble/relay/wire.js';

// The real (protobufjs) codec of observer.GetFlowsResponse, as the nodes and clients use it.
const def = ((loadHubbleProtos().observer as grpc.GrpcObject).Observer as grpc.ServiceClientConstructor)
  .service.GetFlows!;
const encode = (msg: object) => def.responseSerialize(msg);
const decode = (buf: Buffer) => def.responseDeserialize(buf) as Record<string, unknown>;

const flow = {
  time: { seconds: 1700596863, nanos: 123456789 },
  verdict: 'DROPPED',
  node_name: 'node2',
  l4: { TCP: { source_port: 1, destination_port: 80 } },
  Summary: 'TCP Flags: SYN',
};

describe('relay wire scan of GetFlowsResponse', () => {
  it('reads kind, time and node name of a flow response', () => {
    const buf = encode({ flow, node_name: 'node2', time: { seconds: 1700596863, nanos: 123456789 } });
    assert.deepEqual(responseMeta(buf), {
      kind: 'flow',
      sec: 1700596863,
      nsec: 123456789,
      nodeName: 'node2',
    });
  });

  it("falls back to the flow's own time when the response has none", () => {
    const buf = encode({ flow });
    assert.deepEqual(responseMeta(buf), {
      kind: 'flow',
      sec: 1700596863,
      nsec: 123456789,
      nodeName: undefined,
    });
  });

  it('knows loss notices and node status events; an empty message is "none"', () => {
    const lost = encode({
      lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: 3 },
      node_name: 'n',
      time: { seconds: 5, nanos: 0 },
    });
    assert.deepEqual(responseMeta(lost), { kind: 'lost_events', sec: 5, nsec: 0, nodeName: 'n' });
    const st = encode({ node_status: { state_change: 'NODE_CONNECTED', node_names: ['a', 'b'] } });
    assert.equal(responseMeta(st).kind, 'node_status');
    assert.equal(responseMeta(Buffer.alloc(0)).kind, 'none');
  });

  it('times past 2^31 seconds and multi-byte names', () => {
    const buf = encode({ flow, node_name: 'nœud-ünïcode', time: { seconds: 4102444800, nanos: 999999999 } });
    assert.deepEqual(responseMeta(buf), {
      kind: 'flow',
      sec: 4102444800,
      nsec: 999999999,
      nodeName: 'nœud-ünïcode',
    });
  });

  it('withNodeName appends field 1000; the codec reads the new name and the rest unchanged', () => {
    const buf = encode({ flow, time: { seconds: 7, nanos: 8 } });
    const named = withNodeName(buf, 'node9');
    assert.equal(responseMeta(named).nodeName, 'node9');
    const out = decode(named);
    assert.equal(out.node_name, 'node9');
    assert.equal((out.flow as { verdict: string }).verdict, 'DROPPED');
    assert.equal((out.flow as { Summary: string }).Summary, 'TCP Flags: SYN');
    assert.deepEqual(out.time, { seconds: 7, nanos: 8 });
  });

  it('truncated or malformed bytes are a WireError', () => {
    const buf = encode({ flow, node_name: 'node2' });
    assert.throws(() => responseMeta(buf.subarray(0, buf.length - 2)), WireError);
    assert.throws(() => responseMeta(Buffer.from([0x0b])), /unsupported wire type 3/);
    assert.throws(() => responseMeta(Buffer.from([0x08, 0xff])), /truncated varint/);
  });
});
