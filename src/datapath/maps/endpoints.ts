/** cilium_lxc: local endpoint address → delivery info (ifindex, endpoint ID, MACs, identity). */
import type { BpfMap } from '../../ebpf/index.js';
import { be32, be32Bytes, type Family, formatIp, formatMac, parseIp, parseMac } from './addr.js';
import { toNet } from './codec.js';
import { DEFS, type EndpointKey, endpointInfo, endpointKey } from './generated/layouts.js';

export interface EndpointMapInfo {
  /** Host-side veth ifindex (the datapath redirects to its peer). */
  ifindex: number;
  /** Endpoint ID. */
  endpointId: number;
  /** Security identity. */
  identity: number;
  /** Pod MAC (eth0 in the pod). */
  mac: string;
  /** Host-side veth MAC: the router MAC the pod sees. */
  nodeMac: string;
  /** ENDPOINT_F_* (ENDPOINT_F_HOST = the node itself). */
  flags?: number;
}

export interface EndpointMapEntry extends Required<EndpointMapInfo> {
  ip: string;
}

export function endpointKeyOf(ip: string): Uint8Array {
  const a = parseIp(ip);
  if (a.family === 4)
    return endpointKey.encode({
      ip4: toNet(endpointKey.fields.ip4, be32(a.bytes)),
      family: DEFS.ENDPOINT_KEY_IPV4,
    });
  return endpointKey.encode({ ip6: a.bytes, family: DEFS.ENDPOINT_KEY_IPV6 });
}

function ipOfKey(k: EndpointKey): string {
  const family: Family = k.family === DEFS.ENDPOINT_KEY_IPV6 ? 6 : 4;
  return formatIp(family, family === 4 ? be32Bytes(toNet(endpointKey.fields.ip4, k.ip4)) : k.ip6);
}

export class EndpointsMap {
  constructor(readonly map: BpfMap) {}

  upsert(ip: string, info: EndpointMapInfo): void {
    this.map.update(
      endpointKeyOf(ip),
      endpointInfo.encode({
        ifindex: info.ifindex,
        lxcId: info.endpointId,
        flags: info.flags ?? 0,
        mac: parseMac(info.mac),
        nodeMac: parseMac(info.nodeMac),
        secIdentity: info.identity,
      }),
    );
  }

  delete(ip: string): boolean {
    return this.map.delete(endpointKeyOf(ip));
  }

  get(ip: string): EndpointMapEntry | undefined {
    const v = this.map.lookup(endpointKeyOf(ip));
    return v ? { ip: ipOfKey(endpointKey.decode(endpointKeyOf(ip))), ...decodeInfo(v) } : undefined;
  }

  list(): EndpointMapEntry[] {
    const out: EndpointMapEntry[] = [];
    for (const [k, v] of this.map.entries())
      out.push({ ip: ipOfKey(endpointKey.decode(k)), ...decodeInfo(v) });
    return out;
  }
}

function decodeInfo(b: Uint8Array): Required<EndpointMapInfo> {
  const v = endpointInfo.decode(b);
  return {
    ifindex: v.ifindex,
    endpointId: v.lxcId,
    identity: v.secIdentity,
    mac: formatMac(v.mac),
    nodeMac: formatMac(v.nodeMac),
    flags: v.flags,
  };
}
