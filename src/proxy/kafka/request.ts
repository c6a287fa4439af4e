/**
 * Kafka request decoding for policy: the request header (v1, and v2 of flexible versions, whose tagged
 * fields follow the client id) and, for the API keys that name topics, the topics and partitions of
 * the body. Bodies are decoded in the non-flexible versions (what kafkajs and older clients send, and
 * what the proxy caps ApiVersions answers to); a topic-bearing request in a version the proxy does not
 * decode has `topics: null`, which no topic rule matches.
 */
import { ApiKey } from './apikeys.js';
import { KafkaDecodeError, Reader } from './wire.js';

/** The highest version of each key whose body (request and error response) this module handles. */
export const MAX_DECODED_VERSION: ReadonlyMap<number, number> = new Map([
  [ApiKey.Produce, 8],
  [ApiKey.Fetch, 11],
  [ApiKey.ListOffsets, 5],
  [ApiKey.Metadata, 8],
  [ApiKey.OffsetCommit, 7],
  [ApiKey.OffsetFetch, 5],
  [ApiKey.FindCoordinator, 2],
  [ApiKey.JoinGroup, 5],
  [ApiKey.Heartbeat, 3],
  [ApiKey.LeaveGroup, 3],
  [ApiKey.SyncGroup, 3],
  [ApiKey.ApiVersions, 3],
]);

/** Keys whose requests never name a topic (group, transaction-less and handshake requests). */
const TOPICLESS = new Set([10, 11, 12, 13, 14, 15, 16, 17, 18, 22, 25, 26, 36, 42]);

export interface TopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

export interface KafkaRequest {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  /**
   * The topics the request names (deduplicated, in order); [] for a request that names none (for
   * Metadata: all topics); null when the body was not decoded (unknown key or version).
   */
  readonly topics: readonly string[] | null;
  /** Topic and partition lists as sent, for building a per-partition error response. */
  readonly topicPartitions: readonly TopicPartitions[];
  /** Produce only: 0 means the client expects no response. */
  readonly acks?: number;
}

/** Whether the request expects a response (a Produce with acks=0 does not). */
export function expectsResponse(req: KafkaRequest): boolean {
  return !(req.apiKey === ApiKey.Produce && req.acks === 0);
}

/** Decodes one request frame (without its 4-byte size). Throws KafkaDecodeError on a bad header. */
export function decodeRequest(frame: Buffer): KafkaRequest {
  const r = new Reader(frame);
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  if (apiKey < 0) throw new KafkaDecodeError(`negative api key ${apiKey}`);
  if (apiVersion < 0) throw new KafkaDecodeError(`negative api version ${apiVersion}`);
  const clientId = r.nullableString();
  const base = { apiKey, apiVersion, correlationId, clientId };
  if (TOPICLESS.has(apiKey)) return { ...base, topics: [], topicPartitions: [] };
  const max = MAX_DECODED_VERSION.get(apiKey);
  if (max === undefined || apiVersion > max) return { ...base, topics: null, topicPartitions: [] };
  const body = decodeTopicBody(apiKey, apiVersion, r);
  const topics = [...new Set(body.tps.map((t) => t.topic))];
  return {
    ...base,
    topics,
    topicPartitions: body.tps,
    ...(body.acks !== undefined ? { acks: body.acks } : {}),
  };
}

interface Body {
  tps: TopicPartitions[];
  acks?: number;
}

function decodeTopicBody(apiKey: number, v: number, r: Reader): Body {
  switch (apiKey) {
    case ApiKey.Produce: {
      if (v >= 3) r.nullableString(); // transactional_id
      const acks = r.int16();
      r.int32(); // timeout
      const tps = r.array(() => {
        const topic = r.string();
        const partitions = r.array(() => {
          const p = r.int32();
          r.bytes(); // records
          return p;
        }, 8);
        return { topic, partitions };
      }, 6);
      return { tps, acks };
    }
    case ApiKey.Fetch: {
      r.skip(12, 'fetch header'); // replica_id, max_wait_ms, min_bytes
      if (v >= 3) r.int32(); // max_bytes
      if (v >= 4) r.int8(); // isolation_level
      if (v >= 7) r.skip(8, 'fetch session'); // session_id, session_epoch
      // partition, current_leader_epoch (v9+), fetch_offset, log_start_offset (v5+), partition_max_bytes
      const tps = fixedPartitions(r, 4 + (v >= 9 ? 4 : 0) + 8 + (v >= 5 ? 8 : 0) + 4);
      // forgotten_topics_data (v7+) and rack_id (v11+) follow; they widen nothing, so they are not read.
      return { tps };
    }
    case ApiKey.ListOffsets: {
      r.int32(); // replica_id
      if (v >= 2) r.int8(); // isolation_level
      // partition, (v4+) current_leader_epoch, timestamp, (v0) max_num_offsets
      return { tps: fixedPartitions(r, v === 0 ? 16 : 12 + (v >= 4 ? 4 : 0)) };
    }
    case ApiKey.Metadata: {
      // v0: an empty list means all topics; v1+: null means all topics, an empty list none.
      const n = r.arrayLength(2);
      const tps: TopicPartitions[] = [];
      for (let i = 0; i < n; i++) tps.push({ topic: r.string(), partitions: [] });
      return { tps };
    }
    case ApiKey.OffsetCommit: {
      r.string(); // group_id
      if (v >= 1) {
        r.int32(); // generation_id
        r.string(); // member_id
      }
      if (v >= 7) r.nullableString(); // group_instance_id
      if (v >= 2 && v <= 4) r.int64(); // retention_time_ms
      const tps = r.array(() => {
        const topic = r.string();
        const partitions = r.array(() => {
          const p = r.int32();
          r.int64(); // committed_offset
          if (v >= 6) r.int32(); // committed_leader_epoch
          if (v === 1) r.int64(); // commit_timestamp
          r.nullableString(); // committed_metadata
          return p;
        }, 14);
        return { topic, partitions };
      }, 6);
      return { tps };
    }
    case ApiKey.OffsetFetch: {
      r.string(); // group_id
      const n = r.arrayLength(6);
      const tps: TopicPartitions[] = [];
      for (let i = 0; i < n; i++) {
        const topic = r.string();
        tps.push({ topic, partitions: r.array(() => r.int32(), 4) });
      }
      return { tps };
    }
    default:
      throw new KafkaDecodeError(`api key ${apiKey}: no body decoder`);
  }
}

/** A topic array whose partition entries have a fixed size: the partition index, then fields skipped. */
function fixedPartitions(r: Reader, perPartition: number): TopicPartitions[] {
  return r.array(() => {
    const topic = r.string();
    const partitions = r.array(() => {
      const p = r.int32();
      r.skip(perPartition - 4, 'partition');
      return p;
    }, perPartition);
    return { topic, partitions };
  }, 6);
}

/** The correlation id of a response frame (the first field of every response header). */
export function responseCorrelationId(frame: Buffer): number {
  if (frame.length < 4) throw new KafkaDecodeError(`response of ${frame.length} bytes has no correlation id`);
  return frame.readInt32BE(0);
}
