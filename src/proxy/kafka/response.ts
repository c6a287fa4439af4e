/**
 * Responses the proxy writes itself: the error answer to a denied request, shaped as the broker's
 * response to that API key and version (every topic and partition of the request carries the error),
 * and the version cap applied to the broker's ApiVersions answer so that clients choose versions whose
 * bodies the proxy decodes.
 */
import { ApiKey } from './apikeys.js';
import { type KafkaRequest, MAX_DECODED_VERSION } from './request.js';
import { KafkaDecodeError, Reader, Writer } from './wire.js';

const NO_OPERATIONS = -2147483648; // authorized_operations "not requested"

/**
 * The complete response frame (size prefix included) answering `req` with `errorCode`, or null when
 * the proxy cannot shape a response for that key and version (the caller closes the connection).
 */
export function buildErrorResponse(req: KafkaRequest, errorCode: number): Buffer | null {
  const v = req.apiVersion;
  const max = MAX_DECODED_VERSION.get(req.apiKey);
  if (max === undefined || v > max) return null;
  const w = new Writer().int32(req.correlationId);
  const throttle = (from: number) => {
    if (v >= from) w.int32(0);
  };
  const tps = req.topicPartitions;
  switch (req.apiKey) {
    case ApiKey.Produce:
      w.array(tps, (t) => {
        w.string(t.topic).array(t.partitions, (p) => {
          w.int32(p).int16(errorCode).int64(-1n);
          if (v >= 2) w.int64(-1n); // log_append_time_ms
          if (v >= 5) w.int64(-1n); // log_start_offset
          if (v >= 8) w.array([], () => {}).string(null); // record_errors, error_message
        });
      });
      throttle(1);
      break;
    case ApiKey.Fetch:
      throttle(1);
      if (v >= 7) w.int16(0).int32(0); // error_code, session_id
      w.array(tps, (t) => {
        w.string(t.topic).array(t.partitions, (p) => {
          w.int32(p).int16(errorCode).int64(-1n); // partition, error, high_watermark
          if (v >= 4) w.int64(-1n); // last_stable_offset
          if (v >= 5) w.int64(-1n); // log_start_offset
          if (v >= 4) w.array([], () => {}); // aborted_transactions
          if (v >= 11) w.int32(-1); // preferred_read_replica
          w.bytes(Buffer.alloc(0));
        });
      });
      break;
    case ApiKey.ListOffsets:
      throttle(2);
      w.array(tps, (t) => {
        w.string(t.topic).array(t.partitions, (p) => {
          w.int32(p).int16(errorCode);
          if (v === 0) w.array([], () => {});
          else {
            w.int64(-1n).int64(-1n); // timestamp, offset
            if (v >= 4) w.int32(-1); // leader_epoch
          }
        });
      });
      break;
    case ApiKey.Metadata:
      throttle(3);
      w.array([], () => {}); // brokers
      if (v >= 2) w.string(null); // cluster_id
      if (v >= 1) w.int32(-1); // controller_id
      w.array(tps, (t) => {
        w.int16(errorCode).string(t.topic);
        if (v >= 1) w.bool(false); // is_internal
        w.array([], () => {}); // partitions
        if (v >= 8) w.int32(NO_OPERATIONS);
      });
      if (v >= 8) w.int32(NO_OPERATIONS);
      break;
    case ApiKey.OffsetCommit:
      throttle(3);
      w.array(tps, (t) => {
        w.string(t.topic).array(t.partitions, (p) => {
          w.int32(p).int16(errorCode);
        });
      });
      break;
    case ApiKey.OffsetFetch:
      throttle(3);
      w.array(tps, (t) => {
        w.string(t.topic).array(t.partitions, (p) => {
          w.int32(p).int64(-1n);
          if (v >= 5) w.int32(-1); // committed_leader_epoch
          w.string('').int16(errorCode);
        });
      });
      if (v >= 2) w.int16(tps.length === 0 ? errorCode : 0);
      break;
    case ApiKey.FindCoordinator:
      throttle(1);
      w.int16(errorCode);
      if (v >= 1) w.string(null); // error_message
      w.int32(-1).string('').int32(-1); // node_id, host, port
      break;
    case ApiKey.JoinGroup:
      throttle(2);
      w.int16(errorCode)
        .int32(-1)
        .string('')
        .string('')
        .string('')
        .array([], () => {});
      break;
    case ApiKey.Heartbeat:
      throttle(1);
      w.int16(errorCode);
      break;
    case ApiKey.LeaveGroup:
      throttle(1);
      w.int16(errorCode);
      if (v >= 3) w.array([], () => {});
      break;
    case ApiKey.SyncGroup:
      throttle(1);
      w.int16(errorCode).bytes(Buffer.alloc(0));
      break;
    case ApiKey.ApiVersions:
      // The response header of ApiVersions stays v0 even in its flexible version 3.
      w.int16(errorCode);
      if (v >= 3)
        w.compactArray([], () => {})
          .int32(0)
          .noTags();
      else {
        w.array([], () => {});
        throttle(1);
      }
      break;
    default:
      return null;
  }
  return w.toFrame();
}

/**
 * Lowers, in place, the max versions of an ApiVersions response body (frame without its size) to what
 * the proxy decodes, for the keys it decodes bodies of. Returns how many entries it lowered.
 */
export function capApiVersions(frame: Buffer, requestVersion: number): number {
  const r = new Reader(frame);
  r.int32(); // correlation id (response header v0)
  if (r.int16() !== 0) return 0;
  const flexible = requestVersion >= 3;
  const n = flexible ? r.compactArrayLength(7) : r.arrayLength(6);
  let lowered = 0;
  for (let i = 0; i < n; i++) {
    const key = r.int16();
    const min = r.int16();
    const maxPos = r.pos;
    const max = r.int16();
    if (flexible) r.taggedFields();
    const cap = MAX_DECODED_VERSION.get(key);
    if (cap !== undefined && max > cap) {
      frame.writeInt16BE(Math.max(cap, min), maxPos);
      lowered++;
    }
  }
  if (n < 0) throw new KafkaDecodeError('null api_keys array in ApiVersions response');
  return lowered;
}
