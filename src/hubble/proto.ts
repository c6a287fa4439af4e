/**
 * Loading proto/ with proto-loader (keepCase, enums as names) and converting
 * between our JSON-style flows and the shapes protobufjs encodes/decodes
 * (Timestamp as {seconds, nanos}, BoolValue as {value}).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { formatTimestamp, parseTimestamp } from './parser.js';
import type { Flow, LostEvent } from './types.js';

/** Repository's proto/ folder (this file runs from dist/src/hubble/). */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let cached: grpc.GrpcObject | undefined;

/** observer.Observer, flow.*, relay.*, grpc.health.v1.Health from our proto files. */
export function loadHubbleProtos(): grpc.GrpcObject {
  if (!cached) {
    const def = protoLoader.loadSync(
      ['observer/observer.proto', 'grpc/health/v1/health.proto'],
      LOADER_OPTIONS,
    );
    cached = grpc.loadPackageDefinition(def);
  }
  return cached;
}

/** `cilium-ts` version from package.json. */
export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

export interface ProtoTimestamp {
  seconds?: number | string;
  nanos?: number;
}

export function timestampToProto(sec: number, nsec: number): ProtoTimestamp {
  return { seconds: sec, nanos: nsec };
}

export function timestampFromProto(
  ts: ProtoTimestamp | null | undefined,
): { sec: number; nsec: number } | undefined {
  if (!ts) return undefined;
  return { sec: Number(ts.seconds ?? 0), nsec: ts.nanos ?? 0 };
}

export function timestampToMs(ts: ProtoTimestamp | null | undefined): number | undefined {
  const t = timestampFromProto(ts);
  return t ? t.sec * 1000 + t.nsec / 1e6 : undefined;
}

/** JSON-style flow → the object protobufjs serialises as flow.Flow. */
export function flowToProto(flow: Flow, sec?: number, nsec?: number): Record<string, unknown> {
  const out: Record<string, unknown> = { ...flow };
  const t = sec !== undefined && nsec !== undefined ? { sec, nsec } : parseTimestamp(flow.time);
  out.time = timestampToProto(t.sec, t.nsec);
  if (flow.is_reply !== undefined) out.is_reply = { value: flow.is_reply };
  return out;
}

export function lostToProto(lost: LostEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { source: lost.source, num_events_lost: lost.num_events_lost };
  if (lost.cpu !== undefined) out.cpu = { value: lost.cpu };
  for (const k of ['first', 'last'] as const) {
    const v = lost[k];
    if (v) {
      const t = parseTimestamp(v);
      out[k] = timestampToProto(t.sec, t.nsec);
    }
  }
  return out;
}

function stripOneofMarkers(o: unknown): void {
  if (!o || typeof o !== 'object') return;
  if (Array.isArray(o)) {
    for (const x of o) stripOneofMarkers(x);
    return;
  }
  const rec = o as Record<string, unknown>;
  // proto-loader's `oneofs: true` adds the name of the set member under the oneof's name
  if (typeof rec.protocol === 'string' && (rec.TCP || rec.UDP || rec.ICMPv4 || rec.ICMPv6 || rec.SCTP)) {
    delete rec.protocol;
  }
  if (typeof rec.record === 'string' && (rec.http || rec.dns || rec.kafka)) delete rec.record;
  for (const v of Object.values(rec)) stripOneofMarkers(v);
}

/** Decoded flow.Flow (proto-loader object) → JSON-style flow, as upstream's protojson prints it. */
export function flowFromProto(obj: Record<string, unknown>): Flow {
  const out: Record<string, unknown> = { ...obj };
  const t = timestampFromProto(obj.time as ProtoTimestamp | undefined);
  if (t) out.time = formatTimestamp(t.sec, t.nsec);
  if (obj.is_reply !== undefined && obj.is_reply !== null) {
    out.is_reply = Boolean((obj.is_reply as { value?: boolean }).value);
  }
  if (!out.event_type) out.event_type = {};
  stripOneofMarkers(out);
  return out as unknown as Flow;
}

export function lostFromProto(obj: Record<string, unknown>): LostEvent {
  const out: Record<string, unknown> = { ...obj };
  for (const k of ['first', 'last']) {
    const t = timestampFromProto(obj[k] as ProtoTimestamp | undefined);
    if (t) out[k] = formatTimestamp(t.sec, t.nsec);
  }
  if (obj.cpu) out.cpu = (obj.cpu as { value?: number }).value ?? 0;
  return out as unknown as LostEvent;
}
