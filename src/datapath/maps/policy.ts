/**
 * cilium_policy_maps: endpoint ID → that endpoint's policy LPM trie (bpf/README.md "Policy
 * encoding"). Takes the control plane's shapes (src/policy/mapstate.ts) and writes them with the
 * datapath's flags: POLICY_F_DENY, POLICY_F_L4 on keys naming a protocol, POLICY_F_UNENFORCED on
 * the identity-0/prefix-40 allow of a direction no rule enforces.
 *
 * An endpoint's trie is filled completely before it is published in the outer map, and a full
 * replacement swaps in a new trie with one outer-map update: the datapath never sees a half-written
 * policy (an empty trie would mean default-deny in both directions).
 */
import { BpfMap, type MapSpec, NotSupportedError } from '../../ebpf/index.js';
import type { MapDiff, MapEntry, PolicyEntry, PolicyKey } from '../../policy/mapstate.js';
import { fromNet, toNet } from './codec.js';
import { DEFS, MAPS, policyEntry, policyKey } from './generated/layouts.js';

/** Which directions some rule enforces (EndpointPolicy.ingressEnforced / egressEnforced). */
export interface PolicyEnforcement {
  ingressEnforced: boolean;
  egressEnforced: boolean;
}

export interface PolicyMapEntry {
  key: PolicyKey;
  entry: PolicyEntry;
  /** POLICY_F_* as stored. */
  flags: number;
}

export interface ApplyResult {
  written: number;
  deleted: number;
  /** True when the endpoint had no trie and a new one was published. */
  created: boolean;
}

const KS = policyKey.size;
const VS = policyEntry.size;
const KF = policyKey.fields;
const VF = policyEntry.fields;
const IDENTITY_DIR_PREFIX = DEFS.POLICY_IDENTITY_DIR_PREFIX;
const INNER = MAPS.cilium_policy_maps.inner;

function isWildcardAllow(k: PolicyKey, e: PolicyEntry): boolean {
  return k.identity === 0 && k.prefixLen === IDENTITY_DIR_PREFIX && !e.deny;
}

/** POLICY_F_* for an entry; without `enforcement`, a cookie-0 wildcard allow counts as unenforced. */
export function policyFlags(k: PolicyKey, e: PolicyEntry, enforcement?: PolicyEnforcement): number {
  let f = 0;
  if (e.deny) f |= DEFS.POLICY_F_DENY;
  if (k.prefixLen > IDENTITY_DIR_PREFIX && k.protocol !== 0) f |= DEFS.POLICY_F_L4;
  if (isWildcardAllow(k, e)) {
    const enforced = enforcement
      ? k.egress
        ? enforcement.egressEnforced
        : enforcement.ingressEnforced
      : e.ruleCookie !== 0;
    if (!enforced) f |= DEFS.POLICY_F_UNENFORCED;
  }
  return f;
}

/** Encodes a key; bits past the prefix length are cleared so equal keys are equal bytes. */
export function encodePolicyKey(k: PolicyKey, out: Uint8Array = new Uint8Array(KS), off = 0): Uint8Array {
  if (k.prefixLen < 0 || k.prefixLen > DEFS.POLICY_FULL_PREFIX)
    throw new RangeError(`bad prefixLen ${k.prefixLen}`);
  const portBits = Math.max(0, Math.min(16, k.prefixLen - DEFS.POLICY_PROTO_PREFIX));
  const dport = portBits === 0 ? 0 : k.dport & ((0xffff << (16 - portBits)) & 0xffff);
  policyKey.encodeInto(
    {
      prefixlen: k.prefixLen,
      secLabel: toNet(KF.secLabel, k.identity >>> 0),
      egress: k.egress,
      protocol: k.prefixLen > IDENTITY_DIR_PREFIX ? k.protocol : 0,
      dport: toNet(KF.dport, dport),
    },
    out,
    off,
  );
  return out;
}

export function decodePolicyKey(b: Uint8Array, off = 0): PolicyKey {
  const k = policyKey.decode(b, off);
  return {
    identity: fromNet(KF.secLabel, k.secLabel),
    egress: k.egress ? 1 : 0,
    protocol: k.protocol,
    dport: fromNet(KF.dport, k.dport),
    prefixLen: k.prefixlen,
  };
}

function encodeEntry(e: PolicyEntry, flags: number, out: Uint8Array, off: number): void {
  policyEntry.encodeInto({ proxyPort: e.proxyPort, flags, authType: 0, ruleCookie: e.ruleCookie }, out, off);
}

/**
 * Keys and values of a batch written straight into the batch buffers (one view each, no per-entry
 * objects): the same bytes as encodePolicyKey / the policy_entry codec, which the unit tests check.
 */
export function encodeBatch(
  entries: readonly MapEntry[],
  keys: Uint8Array,
  values: Uint8Array,
  enforcement?: PolicyEnforcement,
): void {
  const kv = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
  const vv = new DataView(values.buffer, values.byteOffset, values.byteLength);
  for (let i = 0; i < entries.length; i++) {
    const { key: k, entry: e } = entries[i]!;
    if (k.prefixLen < 0 || k.prefixLen > DEFS.POLICY_FULL_PREFIX)
      throw new RangeError(`bad prefixLen ${k.prefixLen}`);
    const portBits = Math.max(0, Math.min(16, k.prefixLen - DEFS.POLICY_PROTO_PREFIX));
    const ko = i * KS;
    // sec_label and dport are network order (toNet): written big-endian here.
    kv.setUint32(ko + KF.prefixlen!.offset, k.prefixLen, true);
    kv.setUint32(ko + KF.secLabel!.offset, k.identity >>> 0, false);
    kv.setUint8(ko + KF.egress!.offset, k.egress);
    kv.setUint8(ko + KF.protocol!.offset, k.prefixLen > IDENTITY_DIR_PREFIX ? k.protocol : 0);
    kv.setUint16(
      ko + KF.dport!.offset,
      portBits === 0 ? 0 : k.dport & ((0xffff << (16 - portBits)) & 0xffff),
      false,
    );
    const vo = i * VS;
    vv.setUint16(vo + VF.proxyPort!.offset, e.proxyPort, true);
    vv.setUint8(vo + VF.flags!.offset, policyFlags(k, e, enforcement));
    vv.setUint32(vo + VF.ruleCookie!.offset, e.ruleCookie, true);
  }
}

/**
 * Encoded batches of frozen entry lists, per enforcement: the policy engine hands every endpoint a
 * new policy selects the same frozen list as its upserts, which is then encoded once.
 */
const encodedLists = new WeakMap<
  readonly MapEntry[],
  Map<number, { keys: Uint8Array; values: Uint8Array }>
>();

function encodedBatch(
  entries: readonly MapEntry[],
  enforcement?: PolicyEnforcement,
): { keys: Uint8Array; values: Uint8Array } {
  const n = entries.length;
  const encode = () => {
    const keys = new Uint8Array(n * KS);
    const values = new Uint8Array(n * VS);
    encodeBatch(entries, keys, values, enforcement);
    return { keys, values };
  };
  if (!Object.isFrozen(entries)) return encode();
  const how =
    enforcement === undefined ? 4 : +enforcement.ingressEnforced | (+enforcement.egressEnforced << 1);
  let byHow = encodedLists.get(entries);
  if (byHow === undefined) {
    byHow = new Map();
    encodedLists.set(entries, byHow);
  }
  let b = byHow.get(how);
  if (b === undefined) {
    b = encode();
    byHow.set(how, b);
  }
  return b;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

export class PolicyMaps implements Disposable {
  private readonly inner = new Map<number, BpfMap>();

  constructor(readonly outer: BpfMap) {}

  /** Endpoint IDs that have a policy trie. */
  endpoints(): number[] {
    return [...this.outer.keys()].map((k) => new DataView(k.buffer, k.byteOffset).getUint32(0, true));
  }

  has(endpointId: number): boolean {
    return this.outer.lookup(u32(endpointId)) !== undefined;
  }

  /**
   * Builds a new trie holding exactly `entries` and publishes it for the endpoint in one outer-map
   * update (creating or atomically replacing the previous trie).
   */
  replace(endpointId: number, entries: Iterable<MapEntry>, enforcement?: PolicyEnforcement): number {
    const list = [...entries];
    const m = BpfMap.create({
      name: `pol_ep${endpointId}`,
      type: INNER.type as MapSpec['type'],
      keySize: INNER.keySize,
      valueSize: INNER.valueSize,
      maxEntries: INNER.maxEntries,
      flags: INNER.flags,
      pinning: 'none',
    });
    try {
      this.write(m, list, enforcement);
      this.outer.update(u32(endpointId), u32(m.fd.value));
    } catch (err) {
      m.close();
      throw err;
    }
    this.inner.get(endpointId)?.close();
    this.inner.set(endpointId, m);
    return list.length;
  }

  /**
   * Applies a diff (upserts, then deletes). An endpoint without a trie gets a new one holding the
   * upserts. With `enforcement`, the wildcard allow's UNENFORCED flag is also brought in line when
   * enforcement changed without the entry changing.
   */
  apply(endpointId: number, diff: MapDiff, enforcement?: PolicyEnforcement): ApplyResult {
    const m = this.open(endpointId);
    if (!m) {
      const written = this.replace(endpointId, diff.upserts, enforcement);
      return { written, deleted: 0, created: true };
    }
    this.write(m, diff.upserts, enforcement);
    const deleted = this.deleteKeys(m, diff.deletes);
    if (enforcement) this.fixWildcards(m, enforcement);
    return { written: diff.upserts.length, deleted, created: false };
  }

  /** The endpoint's entries as stored, or undefined without a trie. */
  dump(endpointId: number): PolicyMapEntry[] | undefined {
    const m = this.open(endpointId);
    if (!m) return undefined;
    const out: PolicyMapEntry[] = [];
    const push = (k: Uint8Array, ko: number, v: Uint8Array, vo: number): void => {
      const e = policyEntry.decode(v, vo);
      out.push({
        key: decodePolicyKey(k, ko),
        entry: {
          deny: (e.flags & DEFS.POLICY_F_DENY) !== 0,
          proxyPort: e.proxyPort,
          ruleCookie: e.ruleCookie,
        },
        flags: e.flags,
      });
    };
    try {
      const { keys, values, count } = m.lookupBatch(1024);
      for (let i = 0; i < count; i++) push(keys, i * KS, values, i * VS);
    } catch (err) {
      if (!(err instanceof NotSupportedError)) throw err;
      for (const [k, v] of m.entries()) push(k, 0, v, 0);
    }
    return out;
  }

  /** Removes the endpoint's trie (its policy is then no longer enforced). */
  delete(endpointId: number): boolean {
    this.inner.get(endpointId)?.close();
    this.inner.delete(endpointId);
    return this.outer.delete(u32(endpointId));
  }

  close(): void {
    for (const m of this.inner.values()) m.close();
    this.inner.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The endpoint's trie (cached; re-resolved when the outer map points elsewhere). */
  private open(endpointId: number): BpfMap | undefined {
    const v = this.outer.lookup(u32(endpointId));
    const cached = this.inner.get(endpointId);
    if (!v) {
      cached?.close();
      this.inner.delete(endpointId);
      return undefined;
    }
    const id = new DataView(v.buffer, v.byteOffset).getUint32(0, true);
    if (cached && cached.info().id === id) return cached;
    cached?.close();
    const m = BpfMap.fromId(id);
    this.inner.set(endpointId, m);
    return m;
  }

  private write(m: BpfMap, entries: readonly MapEntry[], enforcement?: PolicyEnforcement): void {
    const n = entries.length;
    if (n === 0) return;
    const { keys, values } = encodedBatch(entries, enforcement);
    try {
      m.updateBatch(keys, values, n);
    } catch (err) {
      if (!(err instanceof NotSupportedError)) throw err;
      for (let i = 0; i < n; i++)
        m.update(keys.subarray(i * KS, (i + 1) * KS), values.subarray(i * VS, (i + 1) * VS));
    }
  }

  private deleteKeys(m: BpfMap, keys: readonly PolicyKey[]): number {
    const n = keys.length;
    if (n === 0) return 0;
    const buf = new Uint8Array(n * KS);
    for (const [i, k] of keys.entries()) encodePolicyKey(k, buf, i * KS);
    let deleted = 0;
    let at = 0;
    while (at < n) {
      let done: number;
      try {
        done = m.deleteBatch(buf.subarray(at * KS), n - at);
      } catch (err) {
        if (!(err instanceof NotSupportedError)) throw err;
        for (; at < n; at++) if (m.delete(buf.subarray(at * KS, (at + 1) * KS))) deleted++;
        return deleted;
      }
      deleted += done;
      at += done + 1; // the batch stops at an absent key: skip it
    }
    return deleted;
  }

  private fixWildcards(m: BpfMap, enforcement: PolicyEnforcement): void {
    for (const egress of [0, 1] as const) {
      const key: PolicyKey = { identity: 0, egress, protocol: 0, dport: 0, prefixLen: IDENTITY_DIR_PREFIX };
      const kb = encodePolicyKey(key);
      const v = m.lookup(kb);
      if (!v) continue;
      const e = policyEntry.decode(v);
      // An LPM lookup at prefix 40 can only hit the prefix-40 entry itself (or a shorter one, none exist).
      const entry: PolicyEntry = {
        deny: (e.flags & DEFS.POLICY_F_DENY) !== 0,
        proxyPort: e.proxyPort,
        ruleCookie: e.ruleCookie,
      };
      const want = policyFlags(key, entry, enforcement);
      if (want !== e.flags) {
        const out = new Uint8Array(VS);
        encodeEntry(entry, want, out, 0);
        m.update(kb, out);
      }
    }
  }
}
