/** cilium_ipcache: LPM trie, remote prefix → remote_endpoint_info (security identity, tunnel endpoint, flags). */
import { type BpfMap, NotSupportedError } from '../../ebpf/index.js';
import { AddressError, be32, be32Bytes, type Family, formatIp, parseIp, parsePrefix } from './addr.js';
import { toNet } from './codec.js';
import { DEFS, type IpcacheKey, ipcacheKey, remoteEndpointInfo } from './generated/layouts.js';

export interface IpcacheInfo {
  identity: number;
  /** IPv4 address of the node hosting the prefix; undefined = local / none. */
  tunnelEndpoint?: string | undefined;
  encryptKey?: number;
  flags?: number;
}

export interface IpcacheEntry extends Required<Omit<IpcacheInfo, 'tunnelEndpoint'>> {
  /** Normalised prefix, e.g. "10.1.2.0/24", "fd00::5/128". */
  prefix: string;
  tunnelEndpoint?: string;
}

/** Bits of the key after `prefixlen` that are not the address: cluster_id, pad, family. */
const STATIC_PREFIX = DEFS.IPCACHE_PREFIX_HDR_BITS;
const F = ipcacheKey.fields;

/** The key for a prefix ("10.0.0.0/8", "fd00::/64", or a bare address = host route). */
export function ipcacheKeyOf(prefix: string): Uint8Array {
  const p = parsePrefix(prefix);
  const k = p.family === 4 ? { ip4: toNet(F.ip4, be32(p.bytes)) } : { ip6: p.bytes };
  return ipcacheKey.encode({
    prefixlen: STATIC_PREFIX + p.len,
    clusterId: 0,
    family: p.family === 4 ? DEFS.ENDPOINT_KEY_IPV4 : DEFS.ENDPOINT_KEY_IPV6,
    ...k,
  });
}

function prefixOfKey(k: IpcacheKey): string {
  const family: Family = k.family === DEFS.ENDPOINT_KEY_IPV6 ? 6 : 4;
  const bytes = family === 4 ? be32Bytes(toNet(F.ip4, k.ip4)) : k.ip6;
  return `${formatIp(family, bytes)}/${k.prefixlen - STATIC_PREFIX}`;
}

function encodeValue(info: IpcacheInfo, out?: { buf: Uint8Array; off: number }): Uint8Array {
  let tunnel = 0;
  if (info.tunnelEndpoint) {
    const ip = parseIp(info.tunnelEndpoint);
    if (ip.family !== 4) throw new AddressError(`tunnel endpoint must be IPv4: ${info.tunnelEndpoint}`);
    tunnel = toNet(remoteEndpointInfo.fields.tunnelEndpoint, be32(ip.bytes));
  }
  const v = {
    secIdentity: info.identity,
    tunnelEndpoint: tunnel,
    encryptKey: info.encryptKey ?? 0,
    flags: info.flags ?? 0,
  };
  if (out) {
    remoteEndpointInfo.encodeInto(v, out.buf, out.off);
    return out.buf;
  }
  return remoteEndpointInfo.encode(v);
}

function decodeValue(b: Uint8Array, off = 0): Omit<IpcacheEntry, 'prefix'> {
  const v = remoteEndpointInfo.decode(b, off);
  const e: Omit<IpcacheEntry, 'prefix'> = {
    identity: v.secIdentity,
    encryptKey: v.encryptKey,
    flags: v.flags,
  };
  if (v.tunnelEndpoint !== 0)
    e.tunnelEndpoint = formatIp(
      4,
      be32Bytes(toNet(remoteEndpointInfo.fields.tunnelEndpoint, v.tunnelEndpoint)),
    );
  return e;
}

export class IpcacheMap {
  constructor(readonly map: BpfMap) {}

  upsert(prefix: string, info: IpcacheInfo): void {
    this.map.update(ipcacheKeyOf(prefix), encodeValue(info));
  }

  /** Writes many entries, in batches where the kernel supports it. */
  upsertMany(entries: readonly { prefix: string; info: IpcacheInfo }[]): void {
    if (entries.length === 0) return;
    const ks = ipcacheKey.size;
    const vs = remoteEndpointInfo.size;
    const keys = new Uint8Array(entries.length * ks);
    const values = new Uint8Array(entries.length * vs);
    entries.forEach((e, i) => {
      keys.set(ipcacheKeyOf(e.prefix), i * ks);
      encodeValue(e.info, { buf: values, off: i * vs });
    });
    try {
      this.map.updateBatch(keys, values, entries.length);
    } catch (err) {
      if (!(err instanceof NotSupportedError)) throw err;
      for (let i = 0; i < entries.length; i++)
        this.map.update(keys.subarray(i * ks, (i + 1) * ks), values.subarray(i * vs, (i + 1) * vs));
    }
  }

  /** Removes exactly this prefix; false when it was not present. */
  delete(prefix: string): boolean {
    return this.map.delete(ipcacheKeyOf(prefix));
  }

  /** Longest-prefix match for an address, as the datapath resolves it. */
  lookup(ip: string): Omit<IpcacheEntry, 'prefix'> | undefined {
    const v = this.map.lookup(ipcacheKeyOf(ip));
    return v ? decodeValue(v) : undefined;
  }

  list(): IpcacheEntry[] {
    const out: IpcacheEntry[] = [];
    for (const [k, v] of this.map.entries())
      out.push({ prefix: prefixOfKey(ipcacheKey.decode(k)), ...decodeValue(v) });
    return out;
  }
}
