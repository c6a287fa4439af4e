/**
 * Just enough of the protobuf wire format to pass `observer.GetFlowsResponse` messages through the
 * relay without decoding them: which response it is, its time (field 1001, else the flow's own
 * time) and its node name (field 1000). The relay forwards the nodes' bytes unchanged and only
 * appends a node_name when a node left it out (protobuf keeps the last value of a repeated scalar
 * field, so appending is enough).
 */
import { HubbleError } from '../errors.js';

export class WireError extends HubbleError {
  override readonly code = 'internal';
}

/** What the relay needs to know of a GetFlowsResponse. */
export interface ResponseMeta {
  kind: 'flow' | 'node_status' | 'lost_events' | 'none';
  /** Seconds and nanoseconds since the epoch (0, 0 when the message carries no time). */
  sec: number;
  nsec: number;
  nodeName: string | undefined;
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const KIND_BY_FIELD: Record<number, ResponseMeta['kind']> = { 1: 'flow', 2: 'node_status', 3: 'lost_events' };
const FIELD_NODE_NAME = 1000;
const FIELD_TIME = 1001;
const FLOW_FIELD_TIME = 1;

/** Reads a varint at `pos`; returns [value, next position]. Values above 2^53 lose precision. */
function varint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new WireError('truncated varint');
    const b = buf[pos++]!;
    value += (b & 0x7f) * mul;
    if (b < 0x80) return [value, pos];
    mul *= 128;
  }
  throw new WireError('varint longer than 10 bytes');
}

/** Calls `field(number, wireType, start, end)` for each top-level field of buf[from, to). */
function fields(
  buf: Uint8Array,
  from: number,
  to: number,
  field: (num: number, wire: number, start: number, end: number) => void,
): void {
  let pos = from;
  while (pos < to) {
    const [key, afterKey] = varint(buf, pos);
    const num = Math.floor(key / 8);
    const wire = key % 8;
    let start = afterKey;
    let end: number;
    switch (wire) {
      case WIRE_VARINT:
        end = varint(buf, afterKey)[1];
        break;
      case WIRE_I64:
        end = afterKey + 8;
        break;
      case WIRE_I32:
        end = afterKey + 4;
        break;
      case WIRE_LEN: {
        const [len, afterLen] = varint(buf, afterKey);
        start = afterLen;
        end = afterLen + len;
        break;
      }
      default:
        throw new WireError(`unsupported wire type ${wire} (field ${num})`);
    }
    if (end > to) throw new WireError(`field ${num} runs past the end of the message`);
    field(num, wire, start, end);
    pos = end;
  }
}

/** google.protobuf.Timestamp in buf[start, end). */
function timestamp(buf: Uint8Array, start: number, end: number): [number, number] {
  let sec = 0;
  let nsec = 0;
  fields(buf, start, end, (num, wire, s) => {
    if (wire !== WIRE_VARINT) return;
    if (num === 1) sec = varint(buf, s)[0];
    else if (num === 2) nsec = varint(buf, s)[0];
  });
  return [sec, nsec];
}

const utf8 = new TextDecoder();

/** Scans a serialized GetFlowsResponse (top level, and the flow's time when the response has none). */
export function responseMeta(buf: Uint8Array): ResponseMeta {
  const meta: ResponseMeta = { kind: 'none', sec: 0, nsec: 0, nodeName: undefined };
  let hasTime = false;
  let flow: [number, number] | undefined;
  fields(buf, 0, buf.length, (num, wire, start, end) => {
    if (wire !== WIRE_LEN) return;
    const kind = KIND_BY_FIELD[num];
    if (kind) {
      meta.kind = kind;
      if (kind === 'flow') flow = [start, end];
    } else if (num === FIELD_NODE_NAME) meta.nodeName = utf8.decode(buf.subarray(start, end));
    else if (num === FIELD_TIME) {
      [meta.sec, meta.nsec] = timestamp(buf, start, end);
      hasTime = true;
    }
  });
  if (!hasTime && flow) {
    const [fs, fe] = flow;
    fields(buf, fs, fe, (num, wire, start, end) => {
      if (num === FLOW_FIELD_TIME && wire === WIRE_LEN) [meta.sec, meta.nsec] = timestamp(buf, start, end);
    });
  }
  return meta;
}

function encodeVarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** The message with `node_name` (field 1000) set to `name`. */
export function withNodeName(buf: Uint8Array, name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  const head = Buffer.from([...encodeVarint(FIELD_NODE_NAME * 8 + WIRE_LEN), ...encodeVarint(bytes.length)]);
  return Buffer.concat([buf, head, bytes]);
}
