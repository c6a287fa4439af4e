/**
 * The service load-balancing maps (bpf/lib/lb.h), both families behind one API: the family of an
 * address picks the IPv4 or the IPv6 map. Entries are given in host values (addresses as strings,
 * protocols, scopes and states as their numbers in DEFS); the codecs store them as upstream does
 * (bpf/lib/defs.h): addresses, ports and rev-NAT indexes in network order, backend IDs, counts and
 * slots in host order. Rev-NAT indexes and backend IDs are unique across both families.
 *
 * Two ways in:
 *  - one entry at a time (`upsertServiceEntry`, `upsertBackend`, ...), and `targets(keys)`, the same
 *    per entry as string-keyed `KeyedMap`s for the statedb reconcilers (the caller orders them:
 *    backends before the slots naming them, slots before their master entry, the reverse on
 *    removal);
 *  - a whole frontend at once (`upsertService` / `deleteService`), in that order already: slots
 *    first, then the master entry with the new count, then the slots it no longer has.
 * A datapath reader that found a master entry finds every slot it may pick.
 */
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { getOrInsert } from '../../common/collections.js';
import {
  BatchUpdateError,
  BpfMap,
  BpfSyscallError,
  Errno,
  type MapSpec,
  NotSupportedError,
} from '../../ebpf/index.js';
import { ipv4Value } from '../../service/ip.js';
import type { KeyedMap } from '../../statedb/map-target.js';
import type { BatchErrors } from '../../statedb/reconciler.js';
import { LbMapError } from '../errors.js';
import { AddressError, be32, be32Bytes, type Family, formatIp, parseIp, parsePrefix } from './addr.js';
import type { MapDescriptor } from './codec.js';
import {
  DEFS,
  lb4AffinityKey,
  lb4Backend,
  lb4Key,
  lb4ReverseNat,
  lb4ReverseSk,
  lb4ReverseSkKey,
  lb4SrcRangeKey,
  lb6AffinityKey,
  lb6Backend,
  lb6Key,
  lb6ReverseNat,
  lb6ReverseSk,
  lb6ReverseSkKey,
  lb6SrcRangeKey,
  lbAffinityMatch,
  lbAffinityVal,
  lbService,
  MAPS,
} from './generated/layouts.js';
import { type OpenMapOptions, openPinnedMap } from './open.js';

// ---- entries (host values; `family` may be left out: the address says it) ----

/** Key of a services-map entry (`struct lb4_key` / `lb6_key`). */
export interface LbServiceKey {
  family?: Family;
  /** Frontend address; 0.0.0.0 / :: for a NodePort or HostPort surrogate. */
  address: string;
  port: number;
  /** 0: the master entry; 1..count+qcount: backend slots. */
  backendSlot: number;
  /** IPPROTO_TCP / IPPROTO_UDP, or LB_PROTO_ANY (0). */
  protocol: number;
  /** LB_LOOKUP_SCOPE_EXT (0) / LB_LOOKUP_SCOPE_INT (1). */
  scope: number;
}

/** Value of a services-map entry (`struct lb_service`). */
export interface LbServiceValue {
  /** Slots: the backend ID. Master: LB_ALGORITHM_* << 24 | affinity timeout (s). */
  backendId: number;
  /** Master: slots new connections pick from (1..count); 0 on slots. */
  count: number;
  revNatIndex: number;
  /** SVC_FLAG_* */
  flags: number;
  /** SVC_FLAG2_*: only INT_LOCAL_SCOPE and TWO_SCOPES exist. */
  flags2: number;
  /** Master: slots after the count (terminating, quarantined). */
  qcount: number;
}

export interface LbServiceEntry {
  key: LbServiceKey;
  value: LbServiceValue;
}

export interface LbBackendEntry {
  id: number;
  family?: Family;
  address: string;
  port: number;
  protocol: number;
  /** BE_STATE_* */
  state: number;
  clusterId?: number;
  zone?: number;
}

/** rev-NAT index → the address replies of the service carry. */
export interface LbRevNatEntry {
  revNatIndex: number;
  family?: Family;
  address: string;
  port: number;
}

/** A service's Maglev table: M backend IDs, M the node's table size. */
export interface LbMaglevEntry {
  revNatIndex: number;
  family: Family;
  backendIds: Uint32Array;
}

/** (backend, service): affinity entries may lead there (an active backend of the service). */
export interface LbAffinityMatchEntry {
  backendId: number;
  revNatIndex: number;
}

/** A client prefix loadBalancerSourceRanges allow for a service. */
export interface LbSourceRangeEntry {
  revNatIndex: number;
  family?: Family;
  /** The prefix's network address. */
  address: string;
  prefixLen: number;
}

/** An affinity entry the datapath made. */
export interface LbAffinityEntry {
  revNatIndex: number;
  backendId: number;
  /** CLOCK_MONOTONIC seconds of the last use. */
  lastUsed: bigint;
  /** Socket-LB clients are network namespaces; per-packet clients are addresses. */
  client: { netnsCookie: bigint } | { ip: string };
}

/** A socket-LB reverse entry: a socket's backend and the service it stands for. */
export interface LbReverseSkEntry {
  cookie: bigint;
  backend: { address: string; port: number };
  service: { address: string; port: number };
  revNatIndex: number;
}

/** A frontend as a whole (`upsertService`). */
export interface LbFrontend {
  address: string;
  port: number;
  protocol: number;
  /** Default LB_LOOKUP_SCOPE_EXT. */
  scope?: number;
}

export interface LbService {
  revNatIndex: number;
  /** Backend IDs in slot order (slot 1 first). */
  backends: readonly number[];
  /** How many of `backends`, from the first, new connections pick from; the rest are terminating or
   * quarantined. Default: all. */
  count?: number;
  flags?: number;
  flags2?: number;
  /** sessionAffinity: ClientIP timeout in seconds; needs SVC_FLAG_AFFINITY. */
  affinityTimeout?: number;
  /** LB_ALGORITHM_*; unset (0) = the node's default. */
  algorithm?: number;
}

/** A frontend as listed: its master entry and the backend IDs of its slots (0 = slot missing). */
export interface LbFrontendEntry {
  frontend: Required<LbFrontend> & { family: Family };
  master: LbServiceValue;
  backends: number[];
}

// ---- validation: every entry is checked whole before anything is written ----

function intIn(v: unknown, min: number, max: number, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new LbMapError(`${field}: expected an integer in ${min}..${max}, got ${JSON.stringify(v)}`, field);
  return v;
}

interface Ip {
  family: Family;
  bytes: Uint8Array;
}

function ipOf(address: unknown, family: Family | undefined, field: string): Ip {
  if (typeof address !== 'string') throw new LbMapError(`${field}: expected an IP address`, field);
  let ip: Ip;
  try {
    ip = parseIp(address);
  } catch (err) {
    if (err instanceof AddressError) throw new LbMapError(`${field}: ${err.message}`, field);
    throw err;
  }
  if (family !== undefined && family !== ip.family)
    throw new LbMapError(`${field}: ${address} is not an IPv${family} address (family ${family})`, field);
  return ip;
}

/** The family an entry's address is written to (checked when it is encoded). */
function familyOf(address: unknown, family: Family | undefined): Family {
  return family ?? (typeof address === 'string' && address.includes(':') ? 6 : 4);
}

/** An IPv4 address of an entry as its 32-bit value, with ipOf's errors. */
function ipv4Of(address: unknown, family: Family | undefined, field: string): number {
  // The fast path (no allocations): a dotted quad as validation lets it through.
  const w = typeof address === 'string' ? ipv4Value(address) : undefined;
  if (w !== undefined && family !== 6) return w;
  const ip = ipOf(address, family, field);
  if (ip.family !== 4) throw new LbMapError(`${field}: ${String(address)} is not an IPv4 address`, field);
  return be32(ip.bytes);
}

const PROTOCOLS = new Set<number>([DEFS.LB_PROTO_ANY, DEFS.CIL_IPPROTO_TCP, DEFS.CIL_IPPROTO_UDP]);

function protoOf(p: unknown, field: string): number {
  if (!PROTOCOLS.has(p as number))
    throw new LbMapError(
      `${field}: expected ${[...PROTOCOLS].join(', ')} (any, TCP, UDP), got ${JSON.stringify(p)}`,
      field,
    );
  return p as number;
}

function scopeOf(s: unknown, field: string): number {
  if (s !== DEFS.LB_LOOKUP_SCOPE_EXT && s !== DEFS.LB_LOOKUP_SCOPE_INT)
    throw new LbMapError(
      `${field}: expected LB_LOOKUP_SCOPE_EXT (0) or _INT (1), got ${JSON.stringify(s)}`,
      field,
    );
  return s;
}

/** flags2 bits the datapath implements. */
const KNOWN_FLAGS2 = DEFS.SVC_FLAG2_INT_LOCAL_SCOPE | DEFS.SVC_FLAG2_TWO_SCOPES;

function flags2Of(v: unknown, field: string): number {
  const f = intIn(v, 0, 0xff, field);
  if (f & ~KNOWN_FLAGS2)
    throw new LbMapError(
      `${field}: bits ${f & ~KNOWN_FLAGS2} are not implemented (only INT_LOCAL_SCOPE, TWO_SCOPES)`,
      field,
    );
  return f;
}

interface CheckedKey {
  ip: Ip;
  port: number;
  slot: number;
  proto: number;
  scope: number;
}

function checkKey(k: LbServiceKey): CheckedKey {
  return {
    ip: ipOf(k.address, k.family, 'service.address'),
    port: intIn(k.port, 0, 0xffff, 'service.port'),
    slot: intIn(k.backendSlot, 0, 0xffff, 'service.backendSlot'),
    proto: protoOf(k.protocol, 'service.protocol'),
    scope: scopeOf(k.scope, 'service.scope'),
  };
}

/** Checks a services-map value; returns it as it is (no copy: 100,000 slots per batch). */
function checkValue(v: LbServiceValue): LbServiceValue {
  intIn(v.backendId, 0, 0xffffffff, 'service.backendId');
  intIn(v.count, 0, 0xffff, 'service.count');
  intIn(v.revNatIndex, 1, 0xffff, 'service.revNatIndex');
  intIn(v.flags, 0, 0xff, 'service.flags');
  flags2Of(v.flags2, 'service.flags2');
  intIn(v.qcount, 0, 0xffff, 'service.qcount');
  return v;
}

/** The master entry's backend_id word: LB_ALGORITHM_* << 24 | affinity timeout. */
function masterWord(s: LbService, flags: number): number {
  const affinity = (flags & DEFS.SVC_FLAG_AFFINITY) !== 0;
  if (affinity !== (s.affinityTimeout !== undefined))
    throw new LbMapError(
      `service.affinityTimeout: ${affinity ? 'required with' : 'set without'} SVC_FLAG_AFFINITY`,
      'service.affinityTimeout',
    );
  const timeout = affinity
    ? intIn(s.affinityTimeout, 1, DEFS.LB_AFFINITY_TIMEOUT_MASK, 'service.affinityTimeout')
    : 0;
  const alg = s.algorithm ?? 0;
  if (alg !== 0 && alg !== DEFS.LB_ALGORITHM_RANDOM && alg !== DEFS.LB_ALGORITHM_MAGLEV)
    throw new LbMapError(
      `service.algorithm: expected LB_ALGORITHM_RANDOM or _MAGLEV, got ${JSON.stringify(alg)}`,
      'service.algorithm',
    );
  return ((alg << DEFS.LB_ALGORITHM_SHIFT) | timeout) >>> 0;
}

// ---- byte codecs ----

function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function readU32le(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
}

/** rev-NAT index keys (reverse NAT, maglev): network order. */
function be16Key(n: number): Uint8Array {
  return Uint8Array.of(n >>> 8, n & 0xff);
}

function readBe16(b: Uint8Array): number {
  return (b[0]! << 8) | b[1]!;
}

function ipText(family: Family, v: number | Uint8Array): string {
  return formatIp(family, typeof v === 'number' ? be32Bytes(v) : v);
}

function encodeServiceKey(k: CheckedKey): Uint8Array {
  const f = { dport: k.port, backendSlot: k.slot, proto: k.proto, scope: k.scope };
  return k.ip.family === 4
    ? lb4Key.encode({ ...f, address: be32(k.ip.bytes) })
    : lb6Key.encode({ ...f, address: k.ip.bytes });
}

function decodeServiceKey(family: Family, b: Uint8Array): Required<LbServiceKey> {
  const k = family === 4 ? lb4Key.decode(b) : lb6Key.decode(b);
  return {
    family,
    address: ipText(family, k.address),
    port: k.dport,
    backendSlot: k.backendSlot,
    protocol: k.proto,
    scope: k.scope,
  };
}

function decodeServiceValue(b: Uint8Array): LbServiceValue {
  const v = lbService.decode(b);
  return {
    backendId: v.backendId,
    count: v.count,
    revNatIndex: v.revNatIndex,
    flags: v.flags,
    flags2: v.flags2,
    qcount: v.qcount,
  };
}

/**
 * Every entry of a map, read with BPF_MAP_LOOKUP_BATCH (a few syscalls for the whole map) where the
 * kernel has it for the map's type, else key by key. Keys and values are views into two buffers.
 */
function dump(m: BpfMap): [Uint8Array, Uint8Array][] {
  let batch: ReturnType<BpfMap['lookupBatch']>;
  try {
    batch = m.lookupBatch(4096);
  } catch (err) {
    if (err instanceof NotSupportedError) return [...m.entries()];
    throw err;
  }
  const ks = m.keySize;
  const vs = m.userValueSize;
  const out: [Uint8Array, Uint8Array][] = new Array(batch.count);
  for (let i = 0; i < batch.count; i++)
    out[i] = [batch.keys.subarray(i * ks, (i + 1) * ks), batch.values.subarray(i * vs, (i + 1) * vs)];
  return out;
}

// ---- maglev maps ----

/** The largest Maglev table upstream accepts (which sizes are allowed is the service model's rule;
 * the maps take any size up to this). */
export const MAX_MAGLEV_TABLE_SIZE = 131071;

/** The descriptor of a maglev map whose inner tables hold `tableSize` backend IDs. */
export function maglevDescriptor(d: MapDescriptor, tableSize: number): MapDescriptor {
  intIn(tableSize, 1, MAX_MAGLEV_TABLE_SIZE, 'maglev.tableSize');
  return { ...d, inner: { ...d.inner!, valueSize: 4 * tableSize } };
}

/** The inner map of a maglev table of `tableSize` entries (the template of maglevDescriptor). */
export function maglevInnerSpec(name: string, tableSize: number): MapSpec {
  const i = MAPS.cilium_lb4_maglev.inner;
  return {
    name,
    type: i.type as MapSpec['type'],
    keySize: i.keySize,
    valueSize: 4 * tableSize,
    maxEntries: i.maxEntries,
    flags: i.flags,
    pinning: 'none',
  };
}

/**
 * Opens (or creates) a maglev map for tables of `tableSize` entries. The kernel does not report a
 * map-in-map's inner template, so a trial insert at rev-NAT index 0 (never a service's) tells
 * whether a pinned map takes tables of that size; one that does not (the node's table size changed)
 * is replaced by a new empty map: tables derive from the services and are written again.
 */
export function openMaglevMap(
  pinDir: string,
  d: MapDescriptor,
  tableSize: number,
  opts: OpenMapOptions = {},
): BpfMap {
  const want = maglevDescriptor(d, tableSize);
  const m = openPinnedMap(pinDir, want, opts);
  if (opts.create === false || fitsTables(m, tableSize)) return m;
  m.close();
  unlinkSync(join(pinDir, d.name));
  return openPinnedMap(pinDir, want, opts);
}

function fitsTables(m: BpfMap, tableSize: number): boolean {
  using probe = BpfMap.create(maglevInnerSpec('lb_mgl_probe', tableSize));
  try {
    m.update(be16Key(0), u32le(probe.fd.value));
  } catch (err) {
    if (err instanceof BpfSyscallError && err.errno === Errno.EINVAL) return false;
    throw err;
  }
  m.delete(be16Key(0));
  return true;
}

// ---- the maps ----

/** The LB maps of one family, by role. */
export interface LbFamilyMaps {
  services: BpfMap;
  backends: BpfMap;
  revNat: BpfMap;
  affinity: BpfMap;
  sourceRange: BpfMap;
  maglev: BpfMap;
  reverseSk: BpfMap;
}

/** Names of the LB maps of each family (pinned by name, bpf/lib/lb.h). */
export const LB_MAP_NAMES = {
  4: {
    services: 'cilium_lb4_services_v2',
    backends: 'cilium_lb4_backends_v3',
    revNat: 'cilium_lb4_reverse_nat',
    affinity: 'cilium_lb4_affinity',
    sourceRange: 'cilium_lb4_source_range',
    maglev: 'cilium_lb4_maglev',
    reverseSk: 'cilium_lb4_reverse_sk',
  },
  6: {
    services: 'cilium_lb6_services_v2',
    backends: 'cilium_lb6_backends_v3',
    revNat: 'cilium_lb6_reverse_nat',
    affinity: 'cilium_lb6_affinity',
    sourceRange: 'cilium_lb6_source_range',
    maglev: 'cilium_lb6_maglev',
    reverseSk: 'cilium_lb6_reverse_sk',
  },
} as const satisfies Record<Family, Record<keyof LbFamilyMaps, keyof typeof MAPS>>;

const FAMILIES = [4, 6] as const;
const other = (f: Family): Family => (f === 4 ? 6 : 4);

/**
 * The key and value buffers of batch writes to one map, kept from one batch to the next (grown,
 * never shrunk): a batch encodes straight into them, with no per-entry allocation.
 */
class BatchBuffer {
  keys = new Uint8Array(0);
  values = new Uint8Array(0);
  keyView = new DataView(this.keys.buffer);
  /** Index in the caller's batch of each element encoded. */
  readonly rows: number[] = [];

  constructor(readonly map: BpfMap) {}

  get count(): number {
    return this.rows.length;
  }

  /** Starts a batch of up to `n` elements. */
  reset(n: number): void {
    this.rows.length = 0;
    if (this.keys.length < n * this.map.keySize) {
      this.keys = new Uint8Array(n * this.map.keySize);
      this.values = new Uint8Array(n * this.map.userValueSize);
      this.keyView = new DataView(this.keys.buffer);
    }
  }

  /** Where the next element's key and value go. */
  get keyOffset(): number {
    return this.rows.length * this.map.keySize;
  }

  get valueOffset(): number {
    return this.rows.length * this.map.userValueSize;
  }

  /** Writes the encoded elements in order; an element the kernel refuses is reported, the rest go on. */
  write(errors: Map<number, unknown>): void {
    const ks = this.map.keySize;
    const vs = this.map.userValueSize;
    for (let at = 0; at < this.count; ) {
      try {
        this.map.updateMany(this.keys.subarray(at * ks), this.values.subarray(at * vs), this.count - at);
        return;
      } catch (err) {
        if (!(err instanceof BatchUpdateError)) throw err;
        errors.set(this.rows[at + err.index]!, err);
        at += err.index + 1;
      }
    }
  }
}

/** Encodes one entry at the buffer's next element (throws LbMapError for a bad entry, writing nothing). */
type BatchEncoder<E> = (e: E, buf: BatchBuffer) => void;

export class LbMaps {
  private readonly fam: Record<Family, LbFamilyMaps>;

  private readonly batches = new Map<BpfMap, BatchBuffer>();

  constructor(
    v4: LbFamilyMaps,
    v6: LbFamilyMaps,
    readonly affinityMatch: BpfMap,
    /** M: backend IDs per Maglev table (the maglev maps' inner template). */
    readonly maglevTableSize: number = DEFS.LB_MAGLEV_LUT_SIZE,
  ) {
    this.fam = { 4: v4, 6: v6 };
  }

  /**
   * Writes entries into a map of each family, in order: every entry is checked and encoded into
   * the family's batch buffer, then each buffer goes to the kernel in one batch. Returns the error
   * of each entry that was refused (by the checks or by the kernel), by index; the others are
   * written.
   */
  #writeMany<E>(
    entries: readonly E[],
    role: keyof LbFamilyMaps,
    familyOfEntry: (e: E) => Family,
    encode: Record<Family, BatchEncoder<E>>,
  ): BatchErrors {
    const errors = new Map<number, unknown>();
    const bufs = FAMILIES.map((f) => {
      const m = this.fam[f][role];
      const b = getOrInsert(this.batches, m, () => new BatchBuffer(m));
      b.reset(entries.length);
      return b;
    });
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      try {
        const f = familyOfEntry(e);
        const b = bufs[f === 4 ? 0 : 1]!;
        encode[f](e, b);
        b.rows.push(i);
      } catch (err) {
        if (!(err instanceof LbMapError)) throw err;
        errors.set(i, err);
      }
    }
    for (const b of bufs) b.write(errors);
    return errors;
  }

  /** Services-map entries at once (`upsertServiceEntry` for each, in order, batched). */
  upsertServiceEntries(entries: readonly LbServiceEntry[]): BatchErrors {
    // One key object for the whole batch: each entry's fields go in and are encoded at once.
    const key = { address: 0, dport: 0, backendSlot: 0, proto: 0, scope: 0 };
    return this.#writeMany(entries, 'services', (e) => familyOf(e.key?.address, e.key?.family), {
      4: (e, b) => {
        const k = e.key;
        const v = checkValue(e.value);
        key.address = ipv4Of(k.address, k.family, 'service.address');
        key.dport = intIn(k.port, 0, 0xffff, 'service.port');
        key.backendSlot = intIn(k.backendSlot, 0, 0xffff, 'service.backendSlot');
        key.proto = protoOf(k.protocol, 'service.protocol');
        key.scope = scopeOf(k.scope, 'service.scope');
        lb4Key.encodeInto(key, b.keys, b.keyOffset);
        lbService.encodeInto(v, b.values, b.valueOffset);
      },
      6: (e, b) => {
        const k = checkKey(e.key);
        if (k.ip.family !== 6)
          throw new LbMapError('service.address: not an IPv6 address', 'service.address');
        b.keys.set(encodeServiceKey(k), b.keyOffset);
        lbService.encodeInto(checkValue(e.value), b.values, b.valueOffset);
      },
    });
  }

  /**
   * Backends at once, each into its family's map only (a reconciler removes an ID from the other
   * family through that family's key). Returns the errors by index.
   */
  upsertBackends(entries: readonly LbBackendEntry[]): BatchErrors {
    const value = <A>(b: LbBackendEntry, address: A) => ({
      address,
      port: intIn(b.port, 0, 0xffff, 'backend.port'),
      proto: protoOf(b.protocol, 'backend.protocol'),
      flags: intIn(b.state, DEFS.BE_STATE_ACTIVE, DEFS.BE_STATE_MAINTENANCE, 'backend.state'),
      clusterId: intIn(b.clusterId ?? 0, 0, 0xffff, 'backend.clusterId'),
      zone: intIn(b.zone ?? 0, 0, 0xff, 'backend.zone'),
    });
    const key = (b: LbBackendEntry, buf: BatchBuffer) =>
      buf.keyView.setUint32(buf.keyOffset, intIn(b.id, 1, 0xffffffff, 'backend.id'), true);
    return this.#writeMany(entries, 'backends', (b) => familyOf(b.address, b.family), {
      4: (b, buf) => {
        const v = value(b, ipv4Of(b.address, b.family, 'backend.address'));
        key(b, buf);
        lb4Backend.encodeInto(v, buf.values, buf.valueOffset);
      },
      6: (b, buf) => {
        const v = value(b, ipOf(b.address, 6, 'backend.address').bytes);
        key(b, buf);
        lb6Backend.encodeInto(v, buf.values, buf.valueOffset);
      },
    });
  }

  /** Rev-NAT entries at once, each into its family's map only. Returns the errors by index. */
  upsertRevNats(entries: readonly LbRevNatEntry[]): BatchErrors {
    const key = (r: LbRevNatEntry, buf: BatchBuffer) => {
      const rev = intIn(r.revNatIndex, 1, 0xffff, 'revNat.revNatIndex');
      buf.keys[buf.keyOffset] = rev >>> 8;
      buf.keys[buf.keyOffset + 1] = rev & 0xff;
    };
    return this.#writeMany(entries, 'revNat', (r) => familyOf(r.address, r.family), {
      4: (r, buf) => {
        const v = {
          address: ipv4Of(r.address, r.family, 'revNat.address'),
          port: intIn(r.port, 0, 0xffff, 'revNat.port'),
        };
        key(r, buf);
        lb4ReverseNat.encodeInto(v, buf.values, buf.valueOffset);
      },
      6: (r, buf) => {
        const v = {
          address: ipOf(r.address, 6, 'revNat.address').bytes,
          port: intIn(r.port, 0, 0xffff, 'revNat.port'),
        };
        key(r, buf);
        lb6ReverseNat.encodeInto(v, buf.values, buf.valueOffset);
      },
    });
  }

  /** The raw maps of a family. */
  family(f: Family): LbFamilyMaps {
    return this.fam[f];
  }

  // ---- services, one entry at a time ----

  upsertServiceEntry(e: LbServiceEntry): void {
    const k = checkKey(e.key);
    const v = checkValue(e.value);
    this.fam[k.ip.family].services.update(encodeServiceKey(k), lbService.encode(v));
  }

  deleteServiceEntry(key: LbServiceKey): boolean {
    const k = checkKey(key);
    return this.fam[k.ip.family].services.delete(encodeServiceKey(k));
  }

  listServiceEntries(): (LbServiceEntry & { key: Required<LbServiceKey> })[] {
    return FAMILIES.flatMap((family) =>
      dump(this.fam[family].services).map(([k, v]) => ({
        key: decodeServiceKey(family, k),
        value: decodeServiceValue(v),
      })),
    );
  }

  // ---- services, a frontend at once ----

  /** Writes a frontend's slots, then its master entry, then deletes the slots it no longer has. */
  upsertService(frontend: LbFrontend, service: LbService): void {
    const fe = checkKey({ ...frontend, scope: frontend.scope ?? DEFS.LB_LOOKUP_SCOPE_EXT, backendSlot: 0 });
    const n = service.backends.length;
    const master = checkValue({
      backendId: 0,
      count: service.count ?? n,
      revNatIndex: service.revNatIndex,
      flags: service.flags ?? 0,
      flags2: service.flags2 ?? 0,
      qcount: 0,
    });
    intIn(n, 0, 0xffff, 'service.backends.length');
    intIn(master.count, 0, n, 'service.count');
    for (const [i, id] of service.backends.entries()) intIn(id, 1, 0xffffffff, `service.backends[${i}]`);
    master.backendId = masterWord(service, master.flags);
    master.qcount = n - master.count;

    const m = this.fam[fe.ip.family].services;
    const before = this.#slotsOf(m, fe);
    const slot = { ...master, count: 0, qcount: 0 };
    for (let s = 1; s <= n; s++)
      m.update(
        encodeServiceKey({ ...fe, slot: s }),
        lbService.encode({ ...slot, backendId: service.backends[s - 1]! }),
      );
    m.update(encodeServiceKey(fe), lbService.encode(master));
    for (let s = n + 1; s <= before; s++) m.delete(encodeServiceKey({ ...fe, slot: s }));
  }

  /** Deletes the master entry first (no new connection picks the frontend), then its slots. */
  deleteService(frontend: LbFrontend): boolean {
    const fe = checkKey({ ...frontend, scope: frontend.scope ?? DEFS.LB_LOOKUP_SCOPE_EXT, backendSlot: 0 });
    const m = this.fam[fe.ip.family].services;
    const before = this.#slotsOf(m, fe);
    const found = m.delete(encodeServiceKey(fe));
    for (let s = 1; s <= before; s++) m.delete(encodeServiceKey({ ...fe, slot: s }));
    return found;
  }

  /** Every frontend with its master entry and backend IDs by slot (0 where a slot is missing). */
  listFrontends(): LbFrontendEntry[] {
    const masters = new Map<string, LbFrontendEntry>();
    const slots = new Map<string, Map<number, number>>();
    for (const { key, value } of this.listServiceEntries()) {
      const id = `${key.address}|${key.port}|${key.protocol}|${key.scope}`;
      if (key.backendSlot !== 0)
        getOrInsert(slots, id, () => new Map()).set(key.backendSlot, value.backendId);
      else {
        const { backendSlot: _, ...frontend } = key;
        masters.set(id, { frontend, master: value, backends: [] });
      }
    }
    for (const [id, e] of masters)
      e.backends = Array.from(
        { length: e.master.count + e.master.qcount },
        (_, i) => slots.get(id)?.get(i + 1) ?? 0,
      );
    return [...masters.values()];
  }

  /** Slots a frontend has now: the master's count + qcount (0 without a master). */
  #slotsOf(m: BpfMap, fe: CheckedKey): number {
    const v = m.lookup(encodeServiceKey(fe));
    if (!v) return 0;
    const s = lbService.decode(v);
    return s.count + s.qcount;
  }

  // ---- backends ----

  /** Writes a backend into its family's map (and removes the ID from the other family's). */
  upsertBackend(b: LbBackendEntry): void {
    const id = intIn(b.id, 1, 0xffffffff, 'backend.id');
    const ip = ipOf(b.address, b.family, 'backend.address');
    const v = {
      port: intIn(b.port, 0, 0xffff, 'backend.port'),
      proto: protoOf(b.protocol, 'backend.protocol'),
      flags: intIn(b.state, DEFS.BE_STATE_ACTIVE, DEFS.BE_STATE_MAINTENANCE, 'backend.state'),
      clusterId: intIn(b.clusterId ?? 0, 0, 0xffff, 'backend.clusterId'),
      zone: intIn(b.zone ?? 0, 0, 0xff, 'backend.zone'),
    };
    const value =
      ip.family === 4
        ? lb4Backend.encode({ ...v, address: be32(ip.bytes) })
        : lb6Backend.encode({ ...v, address: ip.bytes });
    this.fam[ip.family].backends.update(u32le(id), value);
    this.fam[other(ip.family)].backends.delete(u32le(id));
  }

  deleteBackend(id: number): boolean {
    const k = u32le(intIn(id, 1, 0xffffffff, 'backend.id'));
    const a = this.fam[4].backends.delete(k);
    return this.fam[6].backends.delete(k) || a;
  }

  listBackends(): Required<LbBackendEntry>[] {
    return FAMILIES.flatMap((family) =>
      dump(this.fam[family].backends).map(([k, v]) => {
        const b = family === 4 ? lb4Backend.decode(v) : lb6Backend.decode(v);
        return {
          id: readU32le(k),
          family,
          address: ipText(family, b.address),
          port: b.port,
          protocol: b.proto,
          state: b.flags,
          clusterId: b.clusterId,
          zone: b.zone,
        };
      }),
    );
  }

  // ---- reverse NAT ----

  upsertRevNat(r: LbRevNatEntry): void {
    const rev = be16Key(intIn(r.revNatIndex, 1, 0xffff, 'revNat.revNatIndex'));
    const ip = ipOf(r.address, r.family, 'revNat.address');
    const port = intIn(r.port, 0, 0xffff, 'revNat.port');
    const value =
      ip.family === 4
        ? lb4ReverseNat.encode({ address: be32(ip.bytes), port })
        : lb6ReverseNat.encode({ address: ip.bytes, port });
    this.fam[ip.family].revNat.update(rev, value);
    this.fam[other(ip.family)].revNat.delete(rev);
  }

  deleteRevNat(revNatIndex: number): boolean {
    const k = be16Key(intIn(revNatIndex, 1, 0xffff, 'revNat.revNatIndex'));
    const a = this.fam[4].revNat.delete(k);
    return this.fam[6].revNat.delete(k) || a;
  }

  listRevNat(): Required<LbRevNatEntry>[] {
    return FAMILIES.flatMap((family) =>
      dump(this.fam[family].revNat).map(([k, v]) => {
        const r = family === 4 ? lb4ReverseNat.decode(v) : lb6ReverseNat.decode(v);
        return { revNatIndex: readBe16(k), family, address: ipText(family, r.address), port: r.port };
      }),
    );
  }

  // ---- session affinity ----

  addAffinityMatch(m: LbAffinityMatchEntry): void {
    this.affinityMatch.update(affinityMatchKey(m), Uint8Array.of(1));
  }

  deleteAffinityMatch(m: LbAffinityMatchEntry): boolean {
    return this.affinityMatch.delete(affinityMatchKey(m));
  }

  listAffinityMatch(): LbAffinityMatchEntry[] {
    return [...this.affinityMatch.keys()].map((k) => {
      const m = lbAffinityMatch.decode(k);
      return { backendId: m.backendId, revNatIndex: m.revNatId };
    });
  }

  /** The affinity entries the datapath made. */
  listAffinity(): LbAffinityEntry[] {
    return FAMILIES.flatMap((family) =>
      dump(this.fam[family].affinity).map(([k, v]) => {
        const key = family === 4 ? lb4AffinityKey.decode(k) : lb6AffinityKey.decode(k);
        const val = lbAffinityVal.decode(v);
        return {
          revNatIndex: key.revNatId,
          backendId: val.backendId,
          lastUsed: val.lastUsed,
          client: key.netns ? { netnsCookie: key.netnsCookie } : { ip: ipText(family, key.clientIp) },
        };
      }),
    );
  }

  /** Deletes the affinity entries of a service (of every service without an index); returns how many. */
  flushAffinity(revNatIndex?: number): number {
    let n = 0;
    for (const family of FAMILIES) {
      const m = this.fam[family].affinity;
      for (const k of [...m.keys()]) {
        const key = family === 4 ? lb4AffinityKey.decode(k) : lb6AffinityKey.decode(k);
        if ((revNatIndex === undefined || key.revNatId === revNatIndex) && m.delete(k)) n++;
      }
    }
    return n;
  }

  // ---- source ranges ----

  addSourceRange(r: LbSourceRangeEntry): void {
    const { map, key } = this.#sourceRangeKey(r);
    map.update(key, Uint8Array.of(1));
  }

  deleteSourceRange(r: LbSourceRangeEntry): boolean {
    const { map, key } = this.#sourceRangeKey(r);
    return map.delete(key);
  }

  listSourceRanges(): Required<LbSourceRangeEntry>[] {
    return FAMILIES.flatMap((family) =>
      [...this.fam[family].sourceRange.keys()].map((k) => {
        const r = family === 4 ? lb4SrcRangeKey.decode(k) : lb6SrcRangeKey.decode(k);
        return {
          revNatIndex: r.revNatId,
          family,
          address: ipText(family, r.address),
          prefixLen: r.prefixlen - DEFS.LB_SRC_RANGE_PREFIX_HDR_BITS,
        };
      }),
    );
  }

  #sourceRangeKey(r: LbSourceRangeEntry): { map: BpfMap; key: Uint8Array } {
    const revNatId = intIn(r.revNatIndex, 1, 0xffff, 'sourceRange.revNatIndex');
    const ip = ipOf(r.address, r.family, 'sourceRange.address');
    const len = intIn(r.prefixLen, 0, ip.family === 4 ? 32 : 128, 'sourceRange.prefixLen');
    const p = parsePrefix(`${r.address}/${len}`); // host bits cleared
    const k = { prefixlen: DEFS.LB_SRC_RANGE_PREFIX_HDR_BITS + len, revNatId };
    const key =
      ip.family === 4
        ? lb4SrcRangeKey.encode({ ...k, address: be32(p.bytes) })
        : lb6SrcRangeKey.encode({ ...k, address: p.bytes });
    return { map: this.fam[ip.family].sourceRange, key };
  }

  // ---- maglev ----

  /**
   * Writes a service's table. A service with a table has it overwritten in place (one write, no wait
   * for the datapath to let go of an old inner map; a reader meanwhile gets an old or a new backend
   * ID per entry, as upstream); a new one gets its inner map filled before it is published.
   */
  setMaglev(e: LbMaglevEntry): void {
    const rev = intIn(e.revNatIndex, 1, 0xffff, 'maglev.revNatIndex');
    if (e.family !== 4 && e.family !== 6)
      throw new LbMapError(
        `maglev.family: expected 4 or 6, got ${JSON.stringify(e.family)}`,
        'maglev.family',
      );
    const m = this.maglevTableSize;
    if (!(e.backendIds instanceof Uint32Array) || e.backendIds.length !== m)
      throw new LbMapError(
        `maglev.backendIds: expected a Uint32Array of ${m} backend IDs (the node's table size), got ${e.backendIds?.length}`,
        'maglev.backendIds',
      );
    // Host-order u32s, as the Uint32Array holds them.
    const value = new Uint8Array(e.backendIds.buffer, e.backendIds.byteOffset, 4 * m);
    const outer = this.fam[e.family].maglev;
    const cur = outer.lookup(be16Key(rev));
    if (cur) {
      using inner = BpfMap.fromId(readU32le(cur));
      inner.update(u32le(0), value);
    } else {
      using inner = BpfMap.create(maglevInnerSpec(`lb${e.family}_mgl_${rev}`, m));
      inner.update(u32le(0), value);
      outer.update(be16Key(rev), u32le(inner.fd.value)); // the outer map holds it from here
    }
    this.fam[other(e.family)].maglev.delete(be16Key(rev));
  }

  deleteMaglev(revNatIndex: number): boolean {
    const k = be16Key(intIn(revNatIndex, 1, 0xffff, 'maglev.revNatIndex'));
    const a = this.fam[4].maglev.delete(k);
    return this.fam[6].maglev.delete(k) || a;
  }

  /** A service's table as stored, or undefined. */
  maglevTable(revNatIndex: number): LbMaglevEntry | undefined {
    for (const family of FAMILIES) {
      const v = this.fam[family].maglev.lookup(be16Key(revNatIndex));
      if (!v) continue;
      using inner = BpfMap.fromId(readU32le(v));
      const b = inner.lookup(u32le(0))!;
      return { revNatIndex, family, backendIds: new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4) };
    }
    return undefined;
  }

  /** Rev-NAT indexes with a table, by family. */
  maglevIndexes(): { family: Family; revNatIndex: number }[] {
    return FAMILIES.flatMap((family) =>
      [...this.fam[family].maglev.keys()].map((k) => ({ family, revNatIndex: readBe16(k) })),
    );
  }

  // ---- socket-LB reverse entries ----

  listReverseSk(): LbReverseSkEntry[] {
    return FAMILIES.flatMap((family) =>
      dump(this.fam[family].reverseSk).map(([k, v]) => {
        const key = family === 4 ? lb4ReverseSkKey.decode(k) : lb6ReverseSkKey.decode(k);
        const val = family === 4 ? lb4ReverseSk.decode(v) : lb6ReverseSk.decode(v);
        return {
          cookie: key.cookie,
          backend: { address: ipText(family, key.address), port: key.port },
          service: { address: ipText(family, val.address), port: val.port },
          revNatIndex: val.revNatIndex,
        };
      }),
    );
  }

  // ---- reconciler targets ----

  /**
   * Each map as a string-keyed target of the statedb reconcilers, one entry per key. The caller
   * names the key encoding (its tables' keys): set() writes the row it is given, delete() parses
   * the key back into the map key, keys() encodes every entry the map holds.
   */
  targets(keys: LbTargetKeys): LbTargets {
    return {
      services: {
        set: (_, e) => this.upsertServiceEntry(e),
        setMany: (rows) => this.upsertServiceEntries(rows.map(([, e]) => e)),
        delete: (key) => void this.deleteServiceEntry(keys.parseService(key)),
        keys: () => this.listServiceEntries().map((e) => keys.service(e.key)),
      },
      // Keys name the family: a row is written to and removed from its family's map only.
      backends: {
        set: (_, b) => throwFirst(this.upsertBackends([b])),
        setMany: (rows) => this.upsertBackends(rows.map(([, b]) => b)),
        delete: (key) => {
          const { family, id } = keys.parseFamilyId(key);
          this.fam[family].backends.delete(u32le(intIn(id, 1, 0xffffffff, 'backend.id')));
        },
        keys: () => this.listBackends().map((b) => keys.familyId(b.family, b.id)),
      },
      revNat: {
        set: (_, r) => throwFirst(this.upsertRevNats([r])),
        setMany: (rows) => this.upsertRevNats(rows.map(([, r]) => r)),
        delete: (key) => {
          const { family, id } = keys.parseFamilyId(key);
          this.fam[family].revNat.delete(be16Key(intIn(id, 1, 0xffff, 'revNat.revNatIndex')));
        },
        keys: () => this.listRevNat().map((r) => keys.familyId(r.family, r.revNatIndex)),
      },
      maglev: {
        set: (_, t) => this.setMaglev(t),
        delete: (key) => void this.deleteMaglev(keys.parseFamilyId(key).id),
        keys: () => this.maglevIndexes().map((m) => keys.familyId(m.family, m.revNatIndex)),
      },
      affinityMatch: {
        set: (_, m) => this.addAffinityMatch(m),
        delete: (key) => void this.deleteAffinityMatch(keys.parseAffinityMatch(key)),
        keys: () => this.listAffinityMatch().map((m) => keys.affinityMatch(m.backendId, m.revNatIndex)),
      },
      sourceRange: {
        set: (_, r) => this.addSourceRange(r),
        delete: (key) => void this.deleteSourceRange(keys.parseSourceRange(key)),
        keys: () => this.listSourceRanges().map((r) => keys.sourceRange(r)),
      },
    };
  }
}

/** How the caller's tables name the entries of each map (format and parse). */
export interface LbTargetKeys {
  service(k: Required<LbServiceKey>): string;
  parseService(s: string): LbServiceKey;
  /** Backends, rev-NAT entries and Maglev tables: a family and a number. */
  familyId(family: Family, id: number): string;
  parseFamilyId(s: string): { family: Family; id: number };
  affinityMatch(backendId: number, revNatIndex: number): string;
  parseAffinityMatch(s: string): LbAffinityMatchEntry;
  sourceRange(r: Required<LbSourceRangeEntry>): string;
  parseSourceRange(s: string): LbSourceRangeEntry;
}

/** The LB maps as reconciler targets; each takes the whole row as the value. */
export interface LbTargets {
  services: KeyedMap<LbServiceEntry>;
  backends: KeyedMap<LbBackendEntry>;
  revNat: KeyedMap<LbRevNatEntry>;
  maglev: KeyedMap<LbMaglevEntry>;
  affinityMatch: KeyedMap<LbAffinityMatchEntry>;
  sourceRange: KeyedMap<LbSourceRangeEntry>;
}

function throwFirst(errors: BatchErrors): void {
  for (const err of errors.values()) throw err;
}

function affinityMatchKey(m: LbAffinityMatchEntry): Uint8Array {
  return lbAffinityMatch.encode({
    backendId: intIn(m.backendId, 1, 0xffffffff, 'affinityMatch.backendId'),
    revNatId: intIn(m.revNatIndex, 1, 0xffff, 'affinityMatch.revNatIndex'),
  });
}
