/**
 * The flows table's filters, spelled as `hubble observe`'s flags and turned into FlowFilters the
 * way it does (a namespace, pod or label matches either side: one filter per side, OR'ed; verdict
 * and protocol apply to both), then compiled by Hubble's own filter code. On top of them the UI's
 * own: a map node, a map edge and free text. Also the table's row: what the browser shows of a flow
 * before it asks for its full JSON. Pure.
 */

import { compileFilters, type FlowPredicate } from '../filter.js';
import type { FlowFilter, Verdict } from '../types.js';
import { UiError } from './errors.js';
import { dropReason, type FlowPlace, type FlowRow, l4Of, l7Summary, type UiFlow } from './model.js';

export type { FlowRow };

export interface UiQuery {
  namespace?: string;
  pod?: string;
  verdict?: string[];
  protocol?: string;
  label?: string;
  /** Free text, case-insensitive, over the row's columns. */
  q?: string;
  /** A map node id: flows from or to it. */
  node?: string;
  /** A map edge id: flows counted on it. */
  edge?: string;
}

/** The query parameters the backend and the page's URL use. */
export const QUERY_KEYS = ['namespace', 'pod', 'verdict', 'protocol', 'label', 'q', 'node', 'edge'] as const;

const VERDICTS = new Set(['FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED']);
const PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'icmp', 'icmpv4', 'icmpv6']);

/** Reads a query from URL parameters; a bad value fails naming its parameter. */
export function parseQuery(params: URLSearchParams): UiQuery {
  const q: UiQuery = {};
  for (const key of QUERY_KEYS) {
    if (key === 'verdict') continue;
    const v = params.get(key);
    if (v !== null && v !== '') q[key] = v;
  }
  const verdicts = params
    .getAll('verdict')
    .flatMap((v) => v.split(','))
    .filter(Boolean);
  if (verdicts.length > 0) {
    q.verdict = verdicts.map((v) => {
      const u = v.toUpperCase();
      if (!VERDICTS.has(u)) throw new UiError(`verdict: unknown verdict "${v}"`, 'verdict');
      return u;
    });
  }
  if (q.protocol !== undefined) {
    q.protocol = q.protocol.toLowerCase();
    if (!PROTOCOLS.has(q.protocol))
      throw new UiError(`protocol: "${q.protocol}" is not one of ${[...PROTOCOLS].join(', ')}`, 'protocol');
  }
  return q;
}

/** The observe-style part of a query as a whitelist (empty: every flow). */
export function queryFilters(q: UiQuery): FlowFilter[] {
  const left: FlowFilter = {};
  const right: FlowFilter = {};
  const both = (f: (x: FlowFilter) => void) => {
    f(left);
    f(right);
  };
  const ns = q.namespace;
  if (q.pod !== undefined) {
    const pod = q.pod.includes('/') ? q.pod : `${ns ?? 'default'}/${q.pod}`;
    left.source_pod = [pod];
    right.destination_pod = [pod];
  } else if (ns !== undefined) {
    left.source_pod = [`${ns}/`];
    right.destination_pod = [`${ns}/`];
  }
  if (q.label !== undefined) {
    left.source_label = [q.label];
    right.destination_label = [q.label];
  }
  if (q.verdict) both((f) => (f.verdict = q.verdict as Verdict[]));
  if (q.protocol !== undefined) both((f) => (f.protocol = [q.protocol!]));
  const out = [left, right].filter((f) => Object.keys(f).length > 0);
  if (out.length === 2 && JSON.stringify(left) === JSON.stringify(right)) return [left];
  return out;
}

function podOrIp(f: UiFlow, side: 'source' | 'destination'): string {
  const ep = f[side];
  if (ep?.pod_name) return `${ep.namespace ?? ''}/${ep.pod_name}`;
  return (side === 'source' ? f.IP?.source : f.IP?.destination) ?? '';
}

export function flowRow(seq: number, f: UiFlow, place: FlowPlace): FlowRow {
  const l4 = l4Of(f);
  const row: FlowRow = {
    seq,
    time: f.time,
    source: place.source.namespace ? `${place.source.namespace}/${place.source.name}` : place.source.name,
    destination: place.destination.namespace
      ? `${place.destination.namespace}/${place.destination.name}`
      : place.destination.name,
    sourcePod: podOrIp(f, 'source'),
    destinationPod: podOrIp(f, 'destination'),
    sourceNode: place.source.id,
    destinationNode: place.destination.id,
    protocol: l4?.protocol ?? '',
    port: l4?.port ?? 0,
    l7: l7Summary(f),
    verdict: f.verdict,
    dropReason: f.verdict === 'DROPPED' ? dropReason(f) : '',
    reply: f.is_reply === true,
    summary: f.Summary ?? '',
  };
  if (place.edge) row.edge = place.edge;
  return row;
}

/** The text free-text search looks in. */
function searchText(r: FlowRow): string {
  return [
    r.source,
    r.destination,
    r.sourcePod,
    r.destinationPod,
    r.protocol,
    r.port,
    r.l7,
    r.verdict,
    r.dropReason,
    r.summary,
  ]
    .join(' ')
    .toLowerCase();
}

/** The whole query as one predicate over a flow and its row. Throws UiError on a malformed filter. */
export function compileQuery(q: UiQuery): (f: UiFlow, row: FlowRow) => boolean {
  let observe: FlowPredicate;
  try {
    observe = compileFilters(queryFilters(q), []);
  } catch (err) {
    throw new UiError((err as Error).message, q.label !== undefined ? 'label' : 'pod');
  }
  const text = q.q?.toLowerCase();
  const { node, edge } = q;
  return (f, row) => {
    if (edge !== undefined && row.edge !== edge) return false;
    if (node !== undefined && row.sourceNode !== node && row.destinationNode !== node) return false;
    if (!observe(f)) return false;
    if (text && !searchText(row).includes(text)) return false;
    return true;
  };
}
