/*
 * GENERATED FILE, DO NOT EDIT. Regenerate with `node dist/scripts/codegen-datapath.js`;
 * CI runs it with --check.
 * Structs: BTF of build/bpf/abi.o.
 * Maps, programs, constants: build/bpf/bpf_host.o, build/bpf/bpf_lxc.o, build/bpf/bpf_overlay.o, build/bpf/bpf_sock.o.
 * #defines: bpf/lib/defs.h, bpf/lib/common.h, bpf/lib/policy.h, bpf/lib/config/node.h, bpf/lib/config/sizes.h.
 */
import { type MapDescriptor, type ObjectDescriptor, putBytes, shortBuffer, type StructLayout, view } from '../codec.js';

/** struct ipcache_key (24 bytes) */
export interface IpcacheKey {
  /** prefixlen @0, 4 B */
  prefixlen: number;
  /** cluster_id @4, 2 B */
  clusterId: number;
  /** pad1 @6, 1 B */
  pad1: number;
  /** family @7, 1 B */
  family: number;
  /** ip4 @8, 4 B, union u0 */
  ip4: number;
  /** ip6 @8, 16 B, union u0 */
  ip6: Uint8Array;
}

/** What ipcacheKey.encode accepts: padding and union members may be left out (zero). */
export interface IpcacheKeyInit {
  prefixlen: number;
  clusterId: number;
  pad1?: number;
  family: number;
  ip4?: number;
  ip6?: Uint8Array;
}

export const ipcacheKey: StructLayout<IpcacheKey, IpcacheKeyInit> = {
  name: 'ipcache_key',
  size: 24,
  fingerprint: 'ipcache_key:24{prefixlen@0:4:int:u,cluster_id@4:2:int:u,pad1@6:1:int:u,family@7:1:int:u,ip4@8:4:int:u|u0,ip6@8:16:bytes|u0}',
  fields: {
    prefixlen: { cName: 'prefixlen', offset: 0, size: 4, kind: 'int', bigEndian: false },
    clusterId: { cName: 'cluster_id', offset: 4, size: 2, kind: 'int', bigEndian: false },
    pad1: { cName: 'pad1', offset: 6, size: 1, kind: 'int', bigEndian: false },
    family: { cName: 'family', offset: 7, size: 1, kind: 'int', bigEndian: false },
    ip4: { cName: 'ip4', offset: 8, size: 4, kind: 'int', bigEndian: false, union: 'u0' },
    ip6: { cName: 'ip6', offset: 8, size: 16, kind: 'bytes', bigEndian: false, union: 'u0' },
  },
  encode(value: IpcacheKeyInit): Uint8Array {
    const out = new Uint8Array(24);
    ipcacheKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: IpcacheKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 24);
    const d = view(out);
    d.setUint32(o + 0, value.prefixlen, true);
    d.setUint16(o + 4, value.clusterId, true);
    if (value.pad1 !== undefined) d.setUint8(o + 6, value.pad1);
    d.setUint8(o + 7, value.family);
    if (value.ip4 !== undefined) d.setUint32(o + 8, value.ip4, true);
    if (value.ip6 !== undefined) putBytes(out, o + 8, 16, value.ip6, 'ipcache_key.ip6');
  },
  decode(b: Uint8Array, o = 0): IpcacheKey {
    if (b.length < o + 24) throw shortBuffer('ipcache_key', 24, b.length - o);
    const d = view(b);
    return {
      prefixlen: d.getUint32(o + 0, true),
      clusterId: d.getUint16(o + 4, true),
      pad1: d.getUint8(o + 6),
      family: d.getUint8(o + 7),
      ip4: d.getUint32(o + 8, true),
      ip6: b.slice(o + 8, o + 8 + 16),
    };
  },
};

/** struct remote_endpoint_info (12 bytes) */
export interface RemoteEndpointInfo {
  /** sec_identity @0, 4 B */
  secIdentity: number;
  /** tunnel_endpoint @4, 4 B */
  tunnelEndpoint: number;
  /** encrypt_key @8, 1 B */
  encryptKey: number;
  /** flags @9, 1 B */
  flags: number;
  /** pad @10, 2 B */
  pad: number;
}

/** What remoteEndpointInfo.encode accepts: padding and union members may be left out (zero). */
export interface RemoteEndpointInfoInit {
  secIdentity: number;
  tunnelEndpoint: number;
  encryptKey: number;
  flags: number;
  pad?: number;
}

export const remoteEndpointInfo: StructLayout<RemoteEndpointInfo, RemoteEndpointInfoInit> = {
  name: 'remote_endpoint_info',
  size: 12,
  fingerprint: 'remote_endpoint_info:12{sec_identity@0:4:int:u,tunnel_endpoint@4:4:int:u,encrypt_key@8:1:int:u,flags@9:1:int:u,pad@10:2:int:u}',
  fields: {
    secIdentity: { cName: 'sec_identity', offset: 0, size: 4, kind: 'int', bigEndian: false },
    tunnelEndpoint: { cName: 'tunnel_endpoint', offset: 4, size: 4, kind: 'int', bigEndian: false },
    encryptKey: { cName: 'encrypt_key', offset: 8, size: 1, kind: 'int', bigEndian: false },
    flags: { cName: 'flags', offset: 9, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 10, size: 2, kind: 'int', bigEndian: false },
  },
  encode(value: RemoteEndpointInfoInit): Uint8Array {
    const out = new Uint8Array(12);
    remoteEndpointInfo.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: RemoteEndpointInfoInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 12);
    const d = view(out);
    d.setUint32(o + 0, value.secIdentity, true);
    d.setUint32(o + 4, value.tunnelEndpoint, true);
    d.setUint8(o + 8, value.encryptKey);
    d.setUint8(o + 9, value.flags);
    if (value.pad !== undefined) d.setUint16(o + 10, value.pad, true);
  },
  decode(b: Uint8Array, o = 0): RemoteEndpointInfo {
    if (b.length < o + 12) throw shortBuffer('remote_endpoint_info', 12, b.length - o);
    const d = view(b);
    return {
      secIdentity: d.getUint32(o + 0, true),
      tunnelEndpoint: d.getUint32(o + 4, true),
      encryptKey: d.getUint8(o + 8),
      flags: d.getUint8(o + 9),
      pad: d.getUint16(o + 10, true),
    };
  },
};

/** struct endpoint_key (20 bytes) */
export interface EndpointKey {
  /** ip4 @0, 4 B, union u0 */
  ip4: number;
  /** ip6 @0, 16 B, union u0 */
  ip6: Uint8Array;
  /** family @16, 1 B */
  family: number;
  /** pad @17, 3 B */
  pad: Uint8Array;
}

/** What endpointKey.encode accepts: padding and union members may be left out (zero). */
export interface EndpointKeyInit {
  ip4?: number;
  ip6?: Uint8Array;
  family: number;
  pad?: Uint8Array;
}

export const endpointKey: StructLayout<EndpointKey, EndpointKeyInit> = {
  name: 'endpoint_key',
  size: 20,
  fingerprint: 'endpoint_key:20{ip4@0:4:int:u|u0,ip6@0:16:bytes|u0,family@16:1:int:u,pad@17:3:bytes}',
  fields: {
    ip4: { cName: 'ip4', offset: 0, size: 4, kind: 'int', bigEndian: false, union: 'u0' },
    ip6: { cName: 'ip6', offset: 0, size: 16, kind: 'bytes', bigEndian: false, union: 'u0' },
    family: { cName: 'family', offset: 16, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 17, size: 3, kind: 'bytes', bigEndian: false },
  },
  encode(value: EndpointKeyInit): Uint8Array {
    const out = new Uint8Array(20);
    endpointKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: EndpointKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 20);
    const d = view(out);
    if (value.ip4 !== undefined) d.setUint32(o + 0, value.ip4, true);
    if (value.ip6 !== undefined) putBytes(out, o + 0, 16, value.ip6, 'endpoint_key.ip6');
    d.setUint8(o + 16, value.family);
    if (value.pad !== undefined) putBytes(out, o + 17, 3, value.pad, 'endpoint_key.pad');
  },
  decode(b: Uint8Array, o = 0): EndpointKey {
    if (b.length < o + 20) throw shortBuffer('endpoint_key', 20, b.length - o);
    const d = view(b);
    return {
      ip4: d.getUint32(o + 0, true),
      ip6: b.slice(o + 0, o + 0 + 16),
      family: d.getUint8(o + 16),
      pad: b.slice(o + 17, o + 17 + 3),
    };
  },
};

/** struct endpoint_info (24 bytes) */
export interface EndpointInfo {
  /** ifindex @0, 4 B */
  ifindex: number;
  /** lxc_id @4, 2 B */
  lxcId: number;
  /** flags @6, 2 B */
  flags: number;
  /** mac @8, 6 B */
  mac: Uint8Array;
  /** node_mac @14, 6 B */
  nodeMac: Uint8Array;
  /** sec_identity @20, 4 B */
  secIdentity: number;
}

/** What endpointInfo.encode accepts: padding and union members may be left out (zero). */
export interface EndpointInfoInit {
  ifindex: number;
  lxcId: number;
  flags: number;
  mac: Uint8Array;
  nodeMac: Uint8Array;
  secIdentity: number;
}

export const endpointInfo: StructLayout<EndpointInfo, EndpointInfoInit> = {
  name: 'endpoint_info',
  size: 24,
  fingerprint: 'endpoint_info:24{ifindex@0:4:int:u,lxc_id@4:2:int:u,flags@6:2:int:u,mac@8:6:bytes,node_mac@14:6:bytes,sec_identity@20:4:int:u}',
  fields: {
    ifindex: { cName: 'ifindex', offset: 0, size: 4, kind: 'int', bigEndian: false },
    lxcId: { cName: 'lxc_id', offset: 4, size: 2, kind: 'int', bigEndian: false },
    flags: { cName: 'flags', offset: 6, size: 2, kind: 'int', bigEndian: false },
    mac: { cName: 'mac', offset: 8, size: 6, kind: 'bytes', bigEndian: false },
    nodeMac: { cName: 'node_mac', offset: 14, size: 6, kind: 'bytes', bigEndian: false },
    secIdentity: { cName: 'sec_identity', offset: 20, size: 4, kind: 'int', bigEndian: false },
  },
  encode(value: EndpointInfoInit): Uint8Array {
    const out = new Uint8Array(24);
    endpointInfo.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: EndpointInfoInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 24);
    const d = view(out);
    d.setUint32(o + 0, value.ifindex, true);
    d.setUint16(o + 4, value.lxcId, true);
    d.setUint16(o + 6, value.flags, true);
    putBytes(out, o + 8, 6, value.mac, 'endpoint_info.mac');
    putBytes(out, o + 14, 6, value.nodeMac, 'endpoint_info.node_mac');
    d.setUint32(o + 20, value.secIdentity, true);
  },
  decode(b: Uint8Array, o = 0): EndpointInfo {
    if (b.length < o + 24) throw shortBuffer('endpoint_info', 24, b.length - o);
    const d = view(b);
    return {
      ifindex: d.getUint32(o + 0, true),
      lxcId: d.getUint16(o + 4, true),
      flags: d.getUint16(o + 6, true),
      mac: b.slice(o + 8, o + 8 + 6),
      nodeMac: b.slice(o + 14, o + 14 + 6),
      secIdentity: d.getUint32(o + 20, true),
    };
  },
};

/** struct policy_key (12 bytes) */
export interface PolicyKey {
  /** prefixlen @0, 4 B */
  prefixlen: number;
  /** sec_label @4, 4 B */
  secLabel: number;
  /** egress @8, 1 B */
  egress: number;
  /** protocol @9, 1 B */
  protocol: number;
  /** dport @10, 2 B */
  dport: number;
}

/** What policyKey.encode accepts: padding and union members may be left out (zero). */
export interface PolicyKeyInit {
  prefixlen: number;
  secLabel: number;
  egress: number;
  protocol: number;
  dport: number;
}

export const policyKey: StructLayout<PolicyKey, PolicyKeyInit> = {
  name: 'policy_key',
  size: 12,
  fingerprint: 'policy_key:12{prefixlen@0:4:int:u,sec_label@4:4:int:u,egress@8:1:int:u,protocol@9:1:int:u,dport@10:2:int:u}',
  fields: {
    prefixlen: { cName: 'prefixlen', offset: 0, size: 4, kind: 'int', bigEndian: false },
    secLabel: { cName: 'sec_label', offset: 4, size: 4, kind: 'int', bigEndian: false },
    egress: { cName: 'egress', offset: 8, size: 1, kind: 'int', bigEndian: false },
    protocol: { cName: 'protocol', offset: 9, size: 1, kind: 'int', bigEndian: false },
    dport: { cName: 'dport', offset: 10, size: 2, kind: 'int', bigEndian: false },
  },
  encode(value: PolicyKeyInit): Uint8Array {
    const out = new Uint8Array(12);
    policyKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: PolicyKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 12);
    const d = view(out);
    d.setUint32(o + 0, value.prefixlen, true);
    d.setUint32(o + 4, value.secLabel, true);
    d.setUint8(o + 8, value.egress);
    d.setUint8(o + 9, value.protocol);
    d.setUint16(o + 10, value.dport, true);
  },
  decode(b: Uint8Array, o = 0): PolicyKey {
    if (b.length < o + 12) throw shortBuffer('policy_key', 12, b.length - o);
    const d = view(b);
    return {
      prefixlen: d.getUint32(o + 0, true),
      secLabel: d.getUint32(o + 4, true),
      egress: d.getUint8(o + 8),
      protocol: d.getUint8(o + 9),
      dport: d.getUint16(o + 10, true),
    };
  },
};

/** struct policy_entry (8 bytes) */
export interface PolicyEntry {
  /** proxy_port @0, 2 B */
  proxyPort: number;
  /** flags @2, 1 B */
  flags: number;
  /** auth_type @3, 1 B */
  authType: number;
  /** rule_cookie @4, 4 B */
  ruleCookie: number;
}

/** What policyEntry.encode accepts: padding and union members may be left out (zero). */
export interface PolicyEntryInit {
  proxyPort: number;
  flags: number;
  authType: number;
  ruleCookie: number;
}

export const policyEntry: StructLayout<PolicyEntry, PolicyEntryInit> = {
  name: 'policy_entry',
  size: 8,
  fingerprint: 'policy_entry:8{proxy_port@0:2:int:u,flags@2:1:int:u,auth_type@3:1:int:u,rule_cookie@4:4:int:u}',
  fields: {
    proxyPort: { cName: 'proxy_port', offset: 0, size: 2, kind: 'int', bigEndian: false },
    flags: { cName: 'flags', offset: 2, size: 1, kind: 'int', bigEndian: false },
    authType: { cName: 'auth_type', offset: 3, size: 1, kind: 'int', bigEndian: false },
    ruleCookie: { cName: 'rule_cookie', offset: 4, size: 4, kind: 'int', bigEndian: false },
  },
  encode(value: PolicyEntryInit): Uint8Array {
    const out = new Uint8Array(8);
    policyEntry.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: PolicyEntryInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 8);
    const d = view(out);
    d.setUint16(o + 0, value.proxyPort, true);
    d.setUint8(o + 2, value.flags);
    d.setUint8(o + 3, value.authType);
    d.setUint32(o + 4, value.ruleCookie, true);
  },
  decode(b: Uint8Array, o = 0): PolicyEntry {
    if (b.length < o + 8) throw shortBuffer('policy_entry', 8, b.length - o);
    const d = view(b);
    return {
      proxyPort: d.getUint16(o + 0, true),
      flags: d.getUint8(o + 2),
      authType: d.getUint8(o + 3),
      ruleCookie: d.getUint32(o + 4, true),
    };
  },
};

/** struct ct_key (40 bytes) */
export interface CtKey {
  /** saddr4 @0, 4 B, union u0 */
  saddr4: number;
  /** saddr6 @0, 16 B, union u0 */
  saddr6: Uint8Array;
  /** daddr4 @16, 4 B, union u1 */
  daddr4: number;
  /** daddr6 @16, 16 B, union u1 */
  daddr6: Uint8Array;
  /** sport @32, 2 B */
  sport: number;
  /** dport @34, 2 B */
  dport: number;
  /** nexthdr @36, 1 B */
  nexthdr: number;
  /** flags @37, 1 B */
  flags: number;
  /** pad @38, 2 B */
  pad: number;
}

/** What ctKey.encode accepts: padding and union members may be left out (zero). */
export interface CtKeyInit {
  saddr4?: number;
  saddr6?: Uint8Array;
  daddr4?: number;
  daddr6?: Uint8Array;
  sport: number;
  dport: number;
  nexthdr: number;
  flags: number;
  pad?: number;
}

export const ctKey: StructLayout<CtKey, CtKeyInit> = {
  name: 'ct_key',
  size: 40,
  fingerprint: 'ct_key:40{saddr4@0:4:int:u|u0,saddr6@0:16:bytes|u0,daddr4@16:4:int:u|u1,daddr6@16:16:bytes|u1,sport@32:2:int:u,dport@34:2:int:u,nexthdr@36:1:int:u,flags@37:1:int:u,pad@38:2:int:u}',
  fields: {
    saddr4: { cName: 'saddr4', offset: 0, size: 4, kind: 'int', bigEndian: false, union: 'u0' },
    saddr6: { cName: 'saddr6', offset: 0, size: 16, kind: 'bytes', bigEndian: false, union: 'u0' },
    daddr4: { cName: 'daddr4', offset: 16, size: 4, kind: 'int', bigEndian: false, union: 'u1' },
    daddr6: { cName: 'daddr6', offset: 16, size: 16, kind: 'bytes', bigEndian: false, union: 'u1' },
    sport: { cName: 'sport', offset: 32, size: 2, kind: 'int', bigEndian: false },
    dport: { cName: 'dport', offset: 34, size: 2, kind: 'int', bigEndian: false },
    nexthdr: { cName: 'nexthdr', offset: 36, size: 1, kind: 'int', bigEndian: false },
    flags: { cName: 'flags', offset: 37, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 38, size: 2, kind: 'int', bigEndian: false },
  },
  encode(value: CtKeyInit): Uint8Array {
    const out = new Uint8Array(40);
    ctKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: CtKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 40);
    const d = view(out);
    if (value.saddr4 !== undefined) d.setUint32(o + 0, value.saddr4, true);
    if (value.saddr6 !== undefined) putBytes(out, o + 0, 16, value.saddr6, 'ct_key.saddr6');
    if (value.daddr4 !== undefined) d.setUint32(o + 16, value.daddr4, true);
    if (value.daddr6 !== undefined) putBytes(out, o + 16, 16, value.daddr6, 'ct_key.daddr6');
    d.setUint16(o + 32, value.sport, true);
    d.setUint16(o + 34, value.dport, true);
    d.setUint8(o + 36, value.nexthdr);
    d.setUint8(o + 37, value.flags);
    if (value.pad !== undefined) d.setUint16(o + 38, value.pad, true);
  },
  decode(b: Uint8Array, o = 0): CtKey {
    if (b.length < o + 40) throw shortBuffer('ct_key', 40, b.length - o);
    const d = view(b);
    return {
      saddr4: d.getUint32(o + 0, true),
      saddr6: b.slice(o + 0, o + 0 + 16),
      daddr4: d.getUint32(o + 16, true),
      daddr6: b.slice(o + 16, o + 16 + 16),
      sport: d.getUint16(o + 32, true),
      dport: d.getUint16(o + 34, true),
      nexthdr: d.getUint8(o + 36),
      flags: d.getUint8(o + 37),
      pad: d.getUint16(o + 38, true),
    };
  },
};

/** struct ct_entry (64 bytes) */
export interface CtEntry {
  /** lifetime_ns @0, 8 B */
  lifetimeNs: bigint;
  /** rx_packets @8, 8 B */
  rxPackets: bigint;
  /** rx_bytes @16, 8 B */
  rxBytes: bigint;
  /** tx_packets @24, 8 B */
  txPackets: bigint;
  /** tx_bytes @32, 8 B */
  txBytes: bigint;
  /** src_sec_id @40, 4 B */
  srcSecId: number;
  /** rev_nat_index @44, 2 B, big-endian */
  revNatIndex: number;
  /** tcp_flags_seen @46, 1 B */
  tcpFlagsSeen: number;
  /** flags @47, 1 B */
  flags: number;
  /** proxy_port @48, 2 B */
  proxyPort: number;
  /** reply_tcp_flags_seen @50, 1 B */
  replyTcpFlagsSeen: number;
  /** pad @51, 1 B */
  pad: number;
  /** backend_id @52, 4 B */
  backendId: number;
  /** last_tx_report @56, 4 B */
  lastTxReport: number;
  /** last_rx_report @60, 4 B */
  lastRxReport: number;
}

/** What ctEntry.encode accepts: padding and union members may be left out (zero). */
export interface CtEntryInit {
  lifetimeNs: bigint | number;
  rxPackets: bigint | number;
  rxBytes: bigint | number;
  txPackets: bigint | number;
  txBytes: bigint | number;
  srcSecId: number;
  revNatIndex: number;
  tcpFlagsSeen: number;
  flags: number;
  proxyPort: number;
  replyTcpFlagsSeen: number;
  pad?: number;
  backendId: number;
  lastTxReport: number;
  lastRxReport: number;
}

export const ctEntry: StructLayout<CtEntry, CtEntryInit> = {
  name: 'ct_entry',
  size: 64,
  fingerprint: 'ct_entry:64{lifetime_ns@0:8:int:u,rx_packets@8:8:int:u,rx_bytes@16:8:int:u,tx_packets@24:8:int:u,tx_bytes@32:8:int:u,src_sec_id@40:4:int:u,rev_nat_index@44:2:int:ube,tcp_flags_seen@46:1:int:u,flags@47:1:int:u,proxy_port@48:2:int:u,reply_tcp_flags_seen@50:1:int:u,pad@51:1:int:u,backend_id@52:4:int:u,last_tx_report@56:4:int:u,last_rx_report@60:4:int:u}',
  fields: {
    lifetimeNs: { cName: 'lifetime_ns', offset: 0, size: 8, kind: 'int', bigEndian: false },
    rxPackets: { cName: 'rx_packets', offset: 8, size: 8, kind: 'int', bigEndian: false },
    rxBytes: { cName: 'rx_bytes', offset: 16, size: 8, kind: 'int', bigEndian: false },
    txPackets: { cName: 'tx_packets', offset: 24, size: 8, kind: 'int', bigEndian: false },
    txBytes: { cName: 'tx_bytes', offset: 32, size: 8, kind: 'int', bigEndian: false },
    srcSecId: { cName: 'src_sec_id', offset: 40, size: 4, kind: 'int', bigEndian: false },
    revNatIndex: { cName: 'rev_nat_index', offset: 44, size: 2, kind: 'int', bigEndian: true },
    tcpFlagsSeen: { cName: 'tcp_flags_seen', offset: 46, size: 1, kind: 'int', bigEndian: false },
    flags: { cName: 'flags', offset: 47, size: 1, kind: 'int', bigEndian: false },
    proxyPort: { cName: 'proxy_port', offset: 48, size: 2, kind: 'int', bigEndian: false },
    replyTcpFlagsSeen: { cName: 'reply_tcp_flags_seen', offset: 50, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 51, size: 1, kind: 'int', bigEndian: false },
    backendId: { cName: 'backend_id', offset: 52, size: 4, kind: 'int', bigEndian: false },
    lastTxReport: { cName: 'last_tx_report', offset: 56, size: 4, kind: 'int', bigEndian: false },
    lastRxReport: { cName: 'last_rx_report', offset: 60, size: 4, kind: 'int', bigEndian: false },
  },
  encode(value: CtEntryInit): Uint8Array {
    const out = new Uint8Array(64);
    ctEntry.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: CtEntryInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 64);
    const d = view(out);
    d.setBigUint64(o + 0, BigInt(value.lifetimeNs), true);
    d.setBigUint64(o + 8, BigInt(value.rxPackets), true);
    d.setBigUint64(o + 16, BigInt(value.rxBytes), true);
    d.setBigUint64(o + 24, BigInt(value.txPackets), true);
    d.setBigUint64(o + 32, BigInt(value.txBytes), true);
    d.setUint32(o + 40, value.srcSecId, true);
    d.setUint16(o + 44, value.revNatIndex, false);
    d.setUint8(o + 46, value.tcpFlagsSeen);
    d.setUint8(o + 47, value.flags);
    d.setUint16(o + 48, value.proxyPort, true);
    d.setUint8(o + 50, value.replyTcpFlagsSeen);
    if (value.pad !== undefined) d.setUint8(o + 51, value.pad);
    d.setUint32(o + 52, value.backendId, true);
    d.setUint32(o + 56, value.lastTxReport, true);
    d.setUint32(o + 60, value.lastRxReport, true);
  },
  decode(b: Uint8Array, o = 0): CtEntry {
    if (b.length < o + 64) throw shortBuffer('ct_entry', 64, b.length - o);
    const d = view(b);
    return {
      lifetimeNs: d.getBigUint64(o + 0, true),
      rxPackets: d.getBigUint64(o + 8, true),
      rxBytes: d.getBigUint64(o + 16, true),
      txPackets: d.getBigUint64(o + 24, true),
      txBytes: d.getBigUint64(o + 32, true),
      srcSecId: d.getUint32(o + 40, true),
      revNatIndex: d.getUint16(o + 44, false),
      tcpFlagsSeen: d.getUint8(o + 46),
      flags: d.getUint8(o + 47),
      proxyPort: d.getUint16(o + 48, true),
      replyTcpFlagsSeen: d.getUint8(o + 50),
      pad: d.getUint8(o + 51),
      backendId: d.getUint32(o + 52, true),
      lastTxReport: d.getUint32(o + 56, true),
      lastRxReport: d.getUint32(o + 60, true),
    };
  },
};

/** struct metrics_key (8 bytes) */
export interface MetricsKey {
  /** reason @0, 1 B */
  reason: number;
  /** dir @1, 1 B */
  dir: number;
  /** lxc_id @2, 2 B */
  lxcId: number;
  /** pad @4, 4 B */
  pad: number;
}

/** What metricsKey.encode accepts: padding and union members may be left out (zero). */
export interface MetricsKeyInit {
  reason: number;
  dir: number;
  lxcId: number;
  pad?: number;
}

export const metricsKey: StructLayout<MetricsKey, MetricsKeyInit> = {
  name: 'metrics_key',
  size: 8,
  fingerprint: 'metrics_key:8{reason@0:1:int:u,dir@1:1:int:u,lxc_id@2:2:int:u,pad@4:4:int:u}',
  fields: {
    reason: { cName: 'reason', offset: 0, size: 1, kind: 'int', bigEndian: false },
    dir: { cName: 'dir', offset: 1, size: 1, kind: 'int', bigEndian: false },
    lxcId: { cName: 'lxc_id', offset: 2, size: 2, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 4, size: 4, kind: 'int', bigEndian: false },
  },
  encode(value: MetricsKeyInit): Uint8Array {
    const out = new Uint8Array(8);
    metricsKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: MetricsKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 8);
    const d = view(out);
    d.setUint8(o + 0, value.reason);
    d.setUint8(o + 1, value.dir);
    d.setUint16(o + 2, value.lxcId, true);
    if (value.pad !== undefined) d.setUint32(o + 4, value.pad, true);
  },
  decode(b: Uint8Array, o = 0): MetricsKey {
    if (b.length < o + 8) throw shortBuffer('metrics_key', 8, b.length - o);
    const d = view(b);
    return {
      reason: d.getUint8(o + 0),
      dir: d.getUint8(o + 1),
      lxcId: d.getUint16(o + 2, true),
      pad: d.getUint32(o + 4, true),
    };
  },
};

/** struct metrics_value (16 bytes) */
export interface MetricsValue {
  /** packets @0, 8 B */
  packets: bigint;
  /** bytes @8, 8 B */
  bytes: bigint;
}

/** What metricsValue.encode accepts: padding and union members may be left out (zero). */
export interface MetricsValueInit {
  packets: bigint | number;
  bytes: bigint | number;
}

export const metricsValue: StructLayout<MetricsValue, MetricsValueInit> = {
  name: 'metrics_value',
  size: 16,
  fingerprint: 'metrics_value:16{packets@0:8:int:u,bytes@8:8:int:u}',
  fields: {
    packets: { cName: 'packets', offset: 0, size: 8, kind: 'int', bigEndian: false },
    bytes: { cName: 'bytes', offset: 8, size: 8, kind: 'int', bigEndian: false },
  },
  encode(value: MetricsValueInit): Uint8Array {
    const out = new Uint8Array(16);
    metricsValue.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: MetricsValueInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 16);
    const d = view(out);
    d.setBigUint64(o + 0, BigInt(value.packets), true);
    d.setBigUint64(o + 8, BigInt(value.bytes), true);
  },
  decode(b: Uint8Array, o = 0): MetricsValue {
    if (b.length < o + 16) throw shortBuffer('metrics_value', 16, b.length - o);
    const d = view(b);
    return {
      packets: d.getBigUint64(o + 0, true),
      bytes: d.getBigUint64(o + 8, true),
    };
  },
};

/** struct event_hdr (16 bytes) */
export interface EventHdr {
  /** type @0, 1 B */
  type: number;
  /** subtype @1, 1 B */
  subtype: number;
  /** source @2, 2 B */
  source: number;
  /** hash @4, 4 B */
  hash: number;
  /** len_orig @8, 4 B */
  lenOrig: number;
  /** len_cap @12, 2 B */
  lenCap: number;
  /** version @14, 2 B */
  version: number;
}

/** What eventHdr.encode accepts: padding and union members may be left out (zero). */
export interface EventHdrInit {
  type: number;
  subtype: number;
  source: number;
  hash: number;
  lenOrig: number;
  lenCap: number;
  version: number;
}

export const eventHdr: StructLayout<EventHdr, EventHdrInit> = {
  name: 'event_hdr',
  size: 16,
  fingerprint: 'event_hdr:16{type@0:1:int:u,subtype@1:1:int:u,source@2:2:int:u,hash@4:4:int:u,len_orig@8:4:int:u,len_cap@12:2:int:u,version@14:2:int:u}',
  fields: {
    type: { cName: 'type', offset: 0, size: 1, kind: 'int', bigEndian: false },
    subtype: { cName: 'subtype', offset: 1, size: 1, kind: 'int', bigEndian: false },
    source: { cName: 'source', offset: 2, size: 2, kind: 'int', bigEndian: false },
    hash: { cName: 'hash', offset: 4, size: 4, kind: 'int', bigEndian: false },
    lenOrig: { cName: 'len_orig', offset: 8, size: 4, kind: 'int', bigEndian: false },
    lenCap: { cName: 'len_cap', offset: 12, size: 2, kind: 'int', bigEndian: false },
    version: { cName: 'version', offset: 14, size: 2, kind: 'int', bigEndian: false },
  },
  encode(value: EventHdrInit): Uint8Array {
    const out = new Uint8Array(16);
    eventHdr.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: EventHdrInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 16);
    const d = view(out);
    d.setUint8(o + 0, value.type);
    d.setUint8(o + 1, value.subtype);
    d.setUint16(o + 2, value.source, true);
    d.setUint32(o + 4, value.hash, true);
    d.setUint32(o + 8, value.lenOrig, true);
    d.setUint16(o + 12, value.lenCap, true);
    d.setUint16(o + 14, value.version, true);
  },
  decode(b: Uint8Array, o = 0): EventHdr {
    if (b.length < o + 16) throw shortBuffer('event_hdr', 16, b.length - o);
    const d = view(b);
    return {
      type: d.getUint8(o + 0),
      subtype: d.getUint8(o + 1),
      source: d.getUint16(o + 2, true),
      hash: d.getUint32(o + 4, true),
      lenOrig: d.getUint32(o + 8, true),
      lenCap: d.getUint16(o + 12, true),
      version: d.getUint16(o + 14, true),
    };
  },
};

/** struct trace_notify (192 bytes) */
export interface TraceNotify {
  /** hdr @0, 16 B */
  hdr: EventHdr;
  /** src_label @16, 4 B */
  srcLabel: number;
  /** dst_label @20, 4 B */
  dstLabel: number;
  /** dst_id @24, 2 B */
  dstId: number;
  /** reason @26, 1 B */
  reason: number;
  /** ipv6 @27, 1 B */
  ipv6: number;
  /** ifindex @28, 4 B */
  ifindex: number;
  /** ktime_ns @32, 8 B */
  ktimeNs: bigint;
  /** data @40, 128 B */
  data: Uint8Array;
  /** rev_nat_index @168, 2 B, big-endian */
  revNatIndex: number;
  /** orig_port @170, 2 B, big-endian */
  origPort: number;
  /** pad @172, 4 B */
  pad: number;
  /** orig_ip4 @176, 4 B, big-endian, union u0 */
  origIp4: number;
  /** orig_ip6 @176, 16 B, union u0 */
  origIp6: Uint8Array;
}

/** What traceNotify.encode accepts: padding and union members may be left out (zero). */
export interface TraceNotifyInit {
  hdr: EventHdrInit;
  srcLabel: number;
  dstLabel: number;
  dstId: number;
  reason: number;
  ipv6: number;
  ifindex: number;
  ktimeNs: bigint | number;
  data: Uint8Array;
  revNatIndex: number;
  origPort: number;
  pad?: number;
  origIp4?: number;
  origIp6?: Uint8Array;
}

export const traceNotify: StructLayout<TraceNotify, TraceNotifyInit> = {
  name: 'trace_notify',
  size: 192,
  fingerprint: 'trace_notify:192{hdr@0:16:struct:event_hdr,src_label@16:4:int:u,dst_label@20:4:int:u,dst_id@24:2:int:u,reason@26:1:int:u,ipv6@27:1:int:u,ifindex@28:4:int:u,ktime_ns@32:8:int:u,data@40:128:bytes,rev_nat_index@168:2:int:ube,orig_port@170:2:int:ube,pad@172:4:int:u,orig_ip4@176:4:int:ube|u0,orig_ip6@176:16:bytes|u0}',
  fields: {
    hdr: { cName: 'hdr', offset: 0, size: 16, kind: 'struct', bigEndian: false, struct: 'event_hdr' },
    srcLabel: { cName: 'src_label', offset: 16, size: 4, kind: 'int', bigEndian: false },
    dstLabel: { cName: 'dst_label', offset: 20, size: 4, kind: 'int', bigEndian: false },
    dstId: { cName: 'dst_id', offset: 24, size: 2, kind: 'int', bigEndian: false },
    reason: { cName: 'reason', offset: 26, size: 1, kind: 'int', bigEndian: false },
    ipv6: { cName: 'ipv6', offset: 27, size: 1, kind: 'int', bigEndian: false },
    ifindex: { cName: 'ifindex', offset: 28, size: 4, kind: 'int', bigEndian: false },
    ktimeNs: { cName: 'ktime_ns', offset: 32, size: 8, kind: 'int', bigEndian: false },
    data: { cName: 'data', offset: 40, size: 128, kind: 'bytes', bigEndian: false },
    revNatIndex: { cName: 'rev_nat_index', offset: 168, size: 2, kind: 'int', bigEndian: true },
    origPort: { cName: 'orig_port', offset: 170, size: 2, kind: 'int', bigEndian: true },
    pad: { cName: 'pad', offset: 172, size: 4, kind: 'int', bigEndian: false },
    origIp4: { cName: 'orig_ip4', offset: 176, size: 4, kind: 'int', bigEndian: true, union: 'u0' },
    origIp6: { cName: 'orig_ip6', offset: 176, size: 16, kind: 'bytes', bigEndian: false, union: 'u0' },
  },
  encode(value: TraceNotifyInit): Uint8Array {
    const out = new Uint8Array(192);
    traceNotify.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: TraceNotifyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 192);
    const d = view(out);
    eventHdr.encodeInto(value.hdr, out, o + 0);
    d.setUint32(o + 16, value.srcLabel, true);
    d.setUint32(o + 20, value.dstLabel, true);
    d.setUint16(o + 24, value.dstId, true);
    d.setUint8(o + 26, value.reason);
    d.setUint8(o + 27, value.ipv6);
    d.setUint32(o + 28, value.ifindex, true);
    d.setBigUint64(o + 32, BigInt(value.ktimeNs), true);
    putBytes(out, o + 40, 128, value.data, 'trace_notify.data');
    d.setUint16(o + 168, value.revNatIndex, false);
    d.setUint16(o + 170, value.origPort, false);
    if (value.pad !== undefined) d.setUint32(o + 172, value.pad, true);
    if (value.origIp4 !== undefined) d.setUint32(o + 176, value.origIp4, false);
    if (value.origIp6 !== undefined) putBytes(out, o + 176, 16, value.origIp6, 'trace_notify.orig_ip6');
  },
  decode(b: Uint8Array, o = 0): TraceNotify {
    if (b.length < o + 192) throw shortBuffer('trace_notify', 192, b.length - o);
    const d = view(b);
    return {
      hdr: eventHdr.decode(b, o + 0),
      srcLabel: d.getUint32(o + 16, true),
      dstLabel: d.getUint32(o + 20, true),
      dstId: d.getUint16(o + 24, true),
      reason: d.getUint8(o + 26),
      ipv6: d.getUint8(o + 27),
      ifindex: d.getUint32(o + 28, true),
      ktimeNs: d.getBigUint64(o + 32, true),
      data: b.slice(o + 40, o + 40 + 128),
      revNatIndex: d.getUint16(o + 168, false),
      origPort: d.getUint16(o + 170, false),
      pad: d.getUint32(o + 172, true),
      origIp4: d.getUint32(o + 176, false),
      origIp6: b.slice(o + 176, o + 176 + 16),
    };
  },
};

/** struct drop_notify (176 bytes) */
export interface DropNotify {
  /** hdr @0, 16 B */
  hdr: EventHdr;
  /** src_label @16, 4 B */
  srcLabel: number;
  /** dst_label @20, 4 B */
  dstLabel: number;
  /** dst_id @24, 2 B */
  dstId: number;
  /** file @26, 1 B */
  file: number;
  /** ipv6 @27, 1 B */
  ipv6: number;
  /** ifindex @28, 4 B */
  ifindex: number;
  /** ktime_ns @32, 8 B */
  ktimeNs: bigint;
  /** ext_error @40, 4 B */
  extError: number;
  /** rev_nat_index @44, 2 B, big-endian */
  revNatIndex: number;
  /** pad @46, 2 B */
  pad: number;
  /** data @48, 128 B */
  data: Uint8Array;
}

/** What dropNotify.encode accepts: padding and union members may be left out (zero). */
export interface DropNotifyInit {
  hdr: EventHdrInit;
  srcLabel: number;
  dstLabel: number;
  dstId: number;
  file: number;
  ipv6: number;
  ifindex: number;
  ktimeNs: bigint | number;
  extError: number;
  revNatIndex: number;
  pad?: number;
  data: Uint8Array;
}

export const dropNotify: StructLayout<DropNotify, DropNotifyInit> = {
  name: 'drop_notify',
  size: 176,
  fingerprint: 'drop_notify:176{hdr@0:16:struct:event_hdr,src_label@16:4:int:u,dst_label@20:4:int:u,dst_id@24:2:int:u,file@26:1:int:u,ipv6@27:1:int:u,ifindex@28:4:int:u,ktime_ns@32:8:int:u,ext_error@40:4:int:s,rev_nat_index@44:2:int:ube,pad@46:2:int:u,data@48:128:bytes}',
  fields: {
    hdr: { cName: 'hdr', offset: 0, size: 16, kind: 'struct', bigEndian: false, struct: 'event_hdr' },
    srcLabel: { cName: 'src_label', offset: 16, size: 4, kind: 'int', bigEndian: false },
    dstLabel: { cName: 'dst_label', offset: 20, size: 4, kind: 'int', bigEndian: false },
    dstId: { cName: 'dst_id', offset: 24, size: 2, kind: 'int', bigEndian: false },
    file: { cName: 'file', offset: 26, size: 1, kind: 'int', bigEndian: false },
    ipv6: { cName: 'ipv6', offset: 27, size: 1, kind: 'int', bigEndian: false },
    ifindex: { cName: 'ifindex', offset: 28, size: 4, kind: 'int', bigEndian: false },
    ktimeNs: { cName: 'ktime_ns', offset: 32, size: 8, kind: 'int', bigEndian: false },
    extError: { cName: 'ext_error', offset: 40, size: 4, kind: 'int', bigEndian: false },
    revNatIndex: { cName: 'rev_nat_index', offset: 44, size: 2, kind: 'int', bigEndian: true },
    pad: { cName: 'pad', offset: 46, size: 2, kind: 'int', bigEndian: false },
    data: { cName: 'data', offset: 48, size: 128, kind: 'bytes', bigEndian: false },
  },
  encode(value: DropNotifyInit): Uint8Array {
    const out = new Uint8Array(176);
    dropNotify.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: DropNotifyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 176);
    const d = view(out);
    eventHdr.encodeInto(value.hdr, out, o + 0);
    d.setUint32(o + 16, value.srcLabel, true);
    d.setUint32(o + 20, value.dstLabel, true);
    d.setUint16(o + 24, value.dstId, true);
    d.setUint8(o + 26, value.file);
    d.setUint8(o + 27, value.ipv6);
    d.setUint32(o + 28, value.ifindex, true);
    d.setBigUint64(o + 32, BigInt(value.ktimeNs), true);
    d.setInt32(o + 40, value.extError, true);
    d.setUint16(o + 44, value.revNatIndex, false);
    if (value.pad !== undefined) d.setUint16(o + 46, value.pad, true);
    putBytes(out, o + 48, 128, value.data, 'drop_notify.data');
  },
  decode(b: Uint8Array, o = 0): DropNotify {
    if (b.length < o + 176) throw shortBuffer('drop_notify', 176, b.length - o);
    const d = view(b);
    return {
      hdr: eventHdr.decode(b, o + 0),
      srcLabel: d.getUint32(o + 16, true),
      dstLabel: d.getUint32(o + 20, true),
      dstId: d.getUint16(o + 24, true),
      file: d.getUint8(o + 26),
      ipv6: d.getUint8(o + 27),
      ifindex: d.getUint32(o + 28, true),
      ktimeNs: d.getBigUint64(o + 32, true),
      extError: d.getInt32(o + 40, true),
      revNatIndex: d.getUint16(o + 44, false),
      pad: d.getUint16(o + 46, true),
      data: b.slice(o + 48, o + 48 + 128),
    };
  },
};

/** struct policy_verdict_notify (176 bytes) */
export interface PolicyVerdictNotify {
  /** hdr @0, 16 B */
  hdr: EventHdr;
  /** remote_label @16, 4 B */
  remoteLabel: number;
  /** verdict @20, 4 B */
  verdict: number;
  /** dst_port @24, 2 B */
  dstPort: number;
  /** proto @26, 1 B */
  proto: number;
  /** dir @27, 1 B */
  dir: number;
  /** ipv6 @28, 1 B */
  ipv6: number;
  /** match_type @29, 1 B */
  matchType: number;
  /** audited @30, 1 B */
  audited: number;
  /** pad @31, 1 B */
  pad: number;
  /** rule_cookie @32, 4 B */
  ruleCookie: number;
  /** ktime_ns @40, 8 B */
  ktimeNs: bigint;
  /** data @48, 128 B */
  data: Uint8Array;
}

/** What policyVerdictNotify.encode accepts: padding and union members may be left out (zero). */
export interface PolicyVerdictNotifyInit {
  hdr: EventHdrInit;
  remoteLabel: number;
  verdict: number;
  dstPort: number;
  proto: number;
  dir: number;
  ipv6: number;
  matchType: number;
  audited: number;
  pad?: number;
  ruleCookie: number;
  ktimeNs: bigint | number;
  data: Uint8Array;
}

export const policyVerdictNotify: StructLayout<PolicyVerdictNotify, PolicyVerdictNotifyInit> = {
  name: 'policy_verdict_notify',
  size: 176,
  fingerprint: 'policy_verdict_notify:176{hdr@0:16:struct:event_hdr,remote_label@16:4:int:u,verdict@20:4:int:s,dst_port@24:2:int:u,proto@26:1:int:u,dir@27:1:int:u,ipv6@28:1:int:u,match_type@29:1:int:u,audited@30:1:int:u,pad@31:1:int:u,rule_cookie@32:4:int:u,ktime_ns@40:8:int:u,data@48:128:bytes}',
  fields: {
    hdr: { cName: 'hdr', offset: 0, size: 16, kind: 'struct', bigEndian: false, struct: 'event_hdr' },
    remoteLabel: { cName: 'remote_label', offset: 16, size: 4, kind: 'int', bigEndian: false },
    verdict: { cName: 'verdict', offset: 20, size: 4, kind: 'int', bigEndian: false },
    dstPort: { cName: 'dst_port', offset: 24, size: 2, kind: 'int', bigEndian: false },
    proto: { cName: 'proto', offset: 26, size: 1, kind: 'int', bigEndian: false },
    dir: { cName: 'dir', offset: 27, size: 1, kind: 'int', bigEndian: false },
    ipv6: { cName: 'ipv6', offset: 28, size: 1, kind: 'int', bigEndian: false },
    matchType: { cName: 'match_type', offset: 29, size: 1, kind: 'int', bigEndian: false },
    audited: { cName: 'audited', offset: 30, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 31, size: 1, kind: 'int', bigEndian: false },
    ruleCookie: { cName: 'rule_cookie', offset: 32, size: 4, kind: 'int', bigEndian: false },
    ktimeNs: { cName: 'ktime_ns', offset: 40, size: 8, kind: 'int', bigEndian: false },
    data: { cName: 'data', offset: 48, size: 128, kind: 'bytes', bigEndian: false },
  },
  encode(value: PolicyVerdictNotifyInit): Uint8Array {
    const out = new Uint8Array(176);
    policyVerdictNotify.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: PolicyVerdictNotifyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 176);
    const d = view(out);
    eventHdr.encodeInto(value.hdr, out, o + 0);
    d.setUint32(o + 16, value.remoteLabel, true);
    d.setInt32(o + 20, value.verdict, true);
    d.setUint16(o + 24, value.dstPort, true);
    d.setUint8(o + 26, value.proto);
    d.setUint8(o + 27, value.dir);
    d.setUint8(o + 28, value.ipv6);
    d.setUint8(o + 29, value.matchType);
    d.setUint8(o + 30, value.audited);
    if (value.pad !== undefined) d.setUint8(o + 31, value.pad);
    d.setUint32(o + 32, value.ruleCookie, true);
    d.setBigUint64(o + 40, BigInt(value.ktimeNs), true);
    putBytes(out, o + 48, 128, value.data, 'policy_verdict_notify.data');
  },
  decode(b: Uint8Array, o = 0): PolicyVerdictNotify {
    if (b.length < o + 176) throw shortBuffer('policy_verdict_notify', 176, b.length - o);
    const d = view(b);
    return {
      hdr: eventHdr.decode(b, o + 0),
      remoteLabel: d.getUint32(o + 16, true),
      verdict: d.getInt32(o + 20, true),
      dstPort: d.getUint16(o + 24, true),
      proto: d.getUint8(o + 26),
      dir: d.getUint8(o + 27),
      ipv6: d.getUint8(o + 28),
      matchType: d.getUint8(o + 29),
      audited: d.getUint8(o + 30),
      pad: d.getUint8(o + 31),
      ruleCookie: d.getUint32(o + 32, true),
      ktimeNs: d.getBigUint64(o + 40, true),
      data: b.slice(o + 48, o + 48 + 128),
    };
  },
};

/** struct lb4_key (12 bytes) */
export interface Lb4Key {
  /** address @0, 4 B, big-endian */
  address: number;
  /** dport @4, 2 B, big-endian */
  dport: number;
  /** backend_slot @6, 2 B */
  backendSlot: number;
  /** proto @8, 1 B */
  proto: number;
  /** scope @9, 1 B */
  scope: number;
  /** pad @10, 2 B */
  pad: Uint8Array;
}

/** What lb4Key.encode accepts: padding and union members may be left out (zero). */
export interface Lb4KeyInit {
  address: number;
  dport: number;
  backendSlot: number;
  proto: number;
  scope: number;
  pad?: Uint8Array;
}

export const lb4Key: StructLayout<Lb4Key, Lb4KeyInit> = {
  name: 'lb4_key',
  size: 12,
  fingerprint: 'lb4_key:12{address@0:4:int:ube,dport@4:2:int:ube,backend_slot@6:2:int:u,proto@8:1:int:u,scope@9:1:int:u,pad@10:2:bytes}',
  fields: {
    address: { cName: 'address', offset: 0, size: 4, kind: 'int', bigEndian: true },
    dport: { cName: 'dport', offset: 4, size: 2, kind: 'int', bigEndian: true },
    backendSlot: { cName: 'backend_slot', offset: 6, size: 2, kind: 'int', bigEndian: false },
    proto: { cName: 'proto', offset: 8, size: 1, kind: 'int', bigEndian: false },
    scope: { cName: 'scope', offset: 9, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 10, size: 2, kind: 'bytes', bigEndian: false },
  },
  encode(value: Lb4KeyInit): Uint8Array {
    const out = new Uint8Array(12);
    lb4Key.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb4KeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 12);
    const d = view(out);
    d.setUint32(o + 0, value.address, false);
    d.setUint16(o + 4, value.dport, false);
    d.setUint16(o + 6, value.backendSlot, true);
    d.setUint8(o + 8, value.proto);
    d.setUint8(o + 9, value.scope);
    if (value.pad !== undefined) putBytes(out, o + 10, 2, value.pad, 'lb4_key.pad');
  },
  decode(b: Uint8Array, o = 0): Lb4Key {
    if (b.length < o + 12) throw shortBuffer('lb4_key', 12, b.length - o);
    const d = view(b);
    return {
      address: d.getUint32(o + 0, false),
      dport: d.getUint16(o + 4, false),
      backendSlot: d.getUint16(o + 6, true),
      proto: d.getUint8(o + 8),
      scope: d.getUint8(o + 9),
      pad: b.slice(o + 10, o + 10 + 2),
    };
  },
};

/** struct lb6_key (24 bytes) */
export interface Lb6Key {
  /** address @0, 16 B */
  address: Uint8Array;
  /** dport @16, 2 B, big-endian */
  dport: number;
  /** backend_slot @18, 2 B */
  backendSlot: number;
  /** proto @20, 1 B */
  proto: number;
  /** scope @21, 1 B */
  scope: number;
  /** pad @22, 2 B */
  pad: Uint8Array;
}

/** What lb6Key.encode accepts: padding and union members may be left out (zero). */
export interface Lb6KeyInit {
  address: Uint8Array;
  dport: number;
  backendSlot: number;
  proto: number;
  scope: number;
  pad?: Uint8Array;
}

export const lb6Key: StructLayout<Lb6Key, Lb6KeyInit> = {
  name: 'lb6_key',
  size: 24,
  fingerprint: 'lb6_key:24{address@0:16:bytes,dport@16:2:int:ube,backend_slot@18:2:int:u,proto@20:1:int:u,scope@21:1:int:u,pad@22:2:bytes}',
  fields: {
    address: { cName: 'address', offset: 0, size: 16, kind: 'bytes', bigEndian: false },
    dport: { cName: 'dport', offset: 16, size: 2, kind: 'int', bigEndian: true },
    backendSlot: { cName: 'backend_slot', offset: 18, size: 2, kind: 'int', bigEndian: false },
    proto: { cName: 'proto', offset: 20, size: 1, kind: 'int', bigEndian: false },
    scope: { cName: 'scope', offset: 21, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 22, size: 2, kind: 'bytes', bigEndian: false },
  },
  encode(value: Lb6KeyInit): Uint8Array {
    const out = new Uint8Array(24);
    lb6Key.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb6KeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 24);
    const d = view(out);
    putBytes(out, o + 0, 16, value.address, 'lb6_key.address');
    d.setUint16(o + 16, value.dport, false);
    d.setUint16(o + 18, value.backendSlot, true);
    d.setUint8(o + 20, value.proto);
    d.setUint8(o + 21, value.scope);
    if (value.pad !== undefined) putBytes(out, o + 22, 2, value.pad, 'lb6_key.pad');
  },
  decode(b: Uint8Array, o = 0): Lb6Key {
    if (b.length < o + 24) throw shortBuffer('lb6_key', 24, b.length - o);
    const d = view(b);
    return {
      address: b.slice(o + 0, o + 0 + 16),
      dport: d.getUint16(o + 16, false),
      backendSlot: d.getUint16(o + 18, true),
      proto: d.getUint8(o + 20),
      scope: d.getUint8(o + 21),
      pad: b.slice(o + 22, o + 22 + 2),
    };
  },
};

/** struct lb_service (12 bytes) */
export interface LbService {
  /** backend_id @0, 4 B, union u0 */
  backendId: number;
  /** affinity_timeout @0, 4 B, union u0 */
  affinityTimeout: number;
  /** count @4, 2 B */
  count: number;
  /** rev_nat_index @6, 2 B, big-endian */
  revNatIndex: number;
  /** flags @8, 1 B */
  flags: number;
  /** flags2 @9, 1 B */
  flags2: number;
  /** qcount @10, 2 B */
  qcount: number;
}

/** What lbService.encode accepts: padding and union members may be left out (zero). */
export interface LbServiceInit {
  backendId?: number;
  affinityTimeout?: number;
  count: number;
  revNatIndex: number;
  flags: number;
  flags2: number;
  qcount: number;
}

export const lbService: StructLayout<LbService, LbServiceInit> = {
  name: 'lb_service',
  size: 12,
  fingerprint: 'lb_service:12{backend_id@0:4:int:u|u0,affinity_timeout@0:4:int:u|u0,count@4:2:int:u,rev_nat_index@6:2:int:ube,flags@8:1:int:u,flags2@9:1:int:u,qcount@10:2:int:u}',
  fields: {
    backendId: { cName: 'backend_id', offset: 0, size: 4, kind: 'int', bigEndian: false, union: 'u0' },
    affinityTimeout: { cName: 'affinity_timeout', offset: 0, size: 4, kind: 'int', bigEndian: false, union: 'u0' },
    count: { cName: 'count', offset: 4, size: 2, kind: 'int', bigEndian: false },
    revNatIndex: { cName: 'rev_nat_index', offset: 6, size: 2, kind: 'int', bigEndian: true },
    flags: { cName: 'flags', offset: 8, size: 1, kind: 'int', bigEndian: false },
    flags2: { cName: 'flags2', offset: 9, size: 1, kind: 'int', bigEndian: false },
    qcount: { cName: 'qcount', offset: 10, size: 2, kind: 'int', bigEndian: false },
  },
  encode(value: LbServiceInit): Uint8Array {
    const out = new Uint8Array(12);
    lbService.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: LbServiceInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 12);
    const d = view(out);
    if (value.backendId !== undefined) d.setUint32(o + 0, value.backendId, true);
    if (value.affinityTimeout !== undefined) d.setUint32(o + 0, value.affinityTimeout, true);
    d.setUint16(o + 4, value.count, true);
    d.setUint16(o + 6, value.revNatIndex, false);
    d.setUint8(o + 8, value.flags);
    d.setUint8(o + 9, value.flags2);
    d.setUint16(o + 10, value.qcount, true);
  },
  decode(b: Uint8Array, o = 0): LbService {
    if (b.length < o + 12) throw shortBuffer('lb_service', 12, b.length - o);
    const d = view(b);
    return {
      backendId: d.getUint32(o + 0, true),
      affinityTimeout: d.getUint32(o + 0, true),
      count: d.getUint16(o + 4, true),
      revNatIndex: d.getUint16(o + 6, false),
      flags: d.getUint8(o + 8),
      flags2: d.getUint8(o + 9),
      qcount: d.getUint16(o + 10, true),
    };
  },
};

/** struct lb4_backend (12 bytes) */
export interface Lb4Backend {
  /** address @0, 4 B, big-endian */
  address: number;
  /** port @4, 2 B, big-endian */
  port: number;
  /** proto @6, 1 B */
  proto: number;
  /** flags @7, 1 B */
  flags: number;
  /** cluster_id @8, 2 B */
  clusterId: number;
  /** zone @10, 1 B */
  zone: number;
  /** pad @11, 1 B */
  pad: number;
}

/** What lb4Backend.encode accepts: padding and union members may be left out (zero). */
export interface Lb4BackendInit {
  address: number;
  port: number;
  proto: number;
  flags: number;
  clusterId: number;
  zone: number;
  pad?: number;
}

export const lb4Backend: StructLayout<Lb4Backend, Lb4BackendInit> = {
  name: 'lb4_backend',
  size: 12,
  fingerprint: 'lb4_backend:12{address@0:4:int:ube,port@4:2:int:ube,proto@6:1:int:u,flags@7:1:int:u,cluster_id@8:2:int:u,zone@10:1:int:u,pad@11:1:int:u}',
  fields: {
    address: { cName: 'address', offset: 0, size: 4, kind: 'int', bigEndian: true },
    port: { cName: 'port', offset: 4, size: 2, kind: 'int', bigEndian: true },
    proto: { cName: 'proto', offset: 6, size: 1, kind: 'int', bigEndian: false },
    flags: { cName: 'flags', offset: 7, size: 1, kind: 'int', bigEndian: false },
    clusterId: { cName: 'cluster_id', offset: 8, size: 2, kind: 'int', bigEndian: false },
    zone: { cName: 'zone', offset: 10, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 11, size: 1, kind: 'int', bigEndian: false },
  },
  encode(value: Lb4BackendInit): Uint8Array {
    const out = new Uint8Array(12);
    lb4Backend.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb4BackendInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 12);
    const d = view(out);
    d.setUint32(o + 0, value.address, false);
    d.setUint16(o + 4, value.port, false);
    d.setUint8(o + 6, value.proto);
    d.setUint8(o + 7, value.flags);
    d.setUint16(o + 8, value.clusterId, true);
    d.setUint8(o + 10, value.zone);
    if (value.pad !== undefined) d.setUint8(o + 11, value.pad);
  },
  decode(b: Uint8Array, o = 0): Lb4Backend {
    if (b.length < o + 12) throw shortBuffer('lb4_backend', 12, b.length - o);
    const d = view(b);
    return {
      address: d.getUint32(o + 0, false),
      port: d.getUint16(o + 4, false),
      proto: d.getUint8(o + 6),
      flags: d.getUint8(o + 7),
      clusterId: d.getUint16(o + 8, true),
      zone: d.getUint8(o + 10),
      pad: d.getUint8(o + 11),
    };
  },
};

/** struct lb6_backend (24 bytes) */
export interface Lb6Backend {
  /** address @0, 16 B */
  address: Uint8Array;
  /** port @16, 2 B, big-endian */
  port: number;
  /** proto @18, 1 B */
  proto: number;
  /** flags @19, 1 B */
  flags: number;
  /** cluster_id @20, 2 B */
  clusterId: number;
  /** zone @22, 1 B */
  zone: number;
  /** pad @23, 1 B */
  pad: number;
}

/** What lb6Backend.encode accepts: padding and union members may be left out (zero). */
export interface Lb6BackendInit {
  address: Uint8Array;
  port: number;
  proto: number;
  flags: number;
  clusterId: number;
  zone: number;
  pad?: number;
}

export const lb6Backend: StructLayout<Lb6Backend, Lb6BackendInit> = {
  name: 'lb6_backend',
  size: 24,
  fingerprint: 'lb6_backend:24{address@0:16:bytes,port@16:2:int:ube,proto@18:1:int:u,flags@19:1:int:u,cluster_id@20:2:int:u,zone@22:1:int:u,pad@23:1:int:u}',
  fields: {
    address: { cName: 'address', offset: 0, size: 16, kind: 'bytes', bigEndian: false },
    port: { cName: 'port', offset: 16, size: 2, kind: 'int', bigEndian: true },
    proto: { cName: 'proto', offset: 18, size: 1, kind: 'int', bigEndian: false },
    flags: { cName: 'flags', offset: 19, size: 1, kind: 'int', bigEndian: false },
    clusterId: { cName: 'cluster_id', offset: 20, size: 2, kind: 'int', bigEndian: false },
    zone: { cName: 'zone', offset: 22, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 23, size: 1, kind: 'int', bigEndian: false },
  },
  encode(value: Lb6BackendInit): Uint8Array {
    const out = new Uint8Array(24);
    lb6Backend.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb6BackendInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 24);
    const d = view(out);
    putBytes(out, o + 0, 16, value.address, 'lb6_backend.address');
    d.setUint16(o + 16, value.port, false);
    d.setUint8(o + 18, value.proto);
    d.setUint8(o + 19, value.flags);
    d.setUint16(o + 20, value.clusterId, true);
    d.setUint8(o + 22, value.zone);
    if (value.pad !== undefined) d.setUint8(o + 23, value.pad);
  },
  decode(b: Uint8Array, o = 0): Lb6Backend {
    if (b.length < o + 24) throw shortBuffer('lb6_backend', 24, b.length - o);
    const d = view(b);
    return {
      address: b.slice(o + 0, o + 0 + 16),
      port: d.getUint16(o + 16, false),
      proto: d.getUint8(o + 18),
      flags: d.getUint8(o + 19),
      clusterId: d.getUint16(o + 20, true),
      zone: d.getUint8(o + 22),
      pad: d.getUint8(o + 23),
    };
  },
};

/** struct lb4_reverse_nat (8 bytes) */
export interface Lb4ReverseNat {
  /** address @0, 4 B, big-endian */
  address: number;
  /** port @4, 2 B, big-endian */
  port: number;
  /** pad @6, 2 B */
  pad: number;
}

/** What lb4ReverseNat.encode accepts: padding and union members may be left out (zero). */
export interface Lb4ReverseNatInit {
  address: number;
  port: number;
  pad?: number;
}

export const lb4ReverseNat: StructLayout<Lb4ReverseNat, Lb4ReverseNatInit> = {
  name: 'lb4_reverse_nat',
  size: 8,
  fingerprint: 'lb4_reverse_nat:8{address@0:4:int:ube,port@4:2:int:ube,pad@6:2:int:u}',
  fields: {
    address: { cName: 'address', offset: 0, size: 4, kind: 'int', bigEndian: true },
    port: { cName: 'port', offset: 4, size: 2, kind: 'int', bigEndian: true },
    pad: { cName: 'pad', offset: 6, size: 2, kind: 'int', bigEndian: false },
  },
  encode(value: Lb4ReverseNatInit): Uint8Array {
    const out = new Uint8Array(8);
    lb4ReverseNat.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb4ReverseNatInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 8);
    const d = view(out);
    d.setUint32(o + 0, value.address, false);
    d.setUint16(o + 4, value.port, false);
    if (value.pad !== undefined) d.setUint16(o + 6, value.pad, true);
  },
  decode(b: Uint8Array, o = 0): Lb4ReverseNat {
    if (b.length < o + 8) throw shortBuffer('lb4_reverse_nat', 8, b.length - o);
    const d = view(b);
    return {
      address: d.getUint32(o + 0, false),
      port: d.getUint16(o + 4, false),
      pad: d.getUint16(o + 6, true),
    };
  },
};

/** struct lb6_reverse_nat (20 bytes) */
export interface Lb6ReverseNat {
  /** address @0, 16 B */
  address: Uint8Array;
  /** port @16, 2 B, big-endian */
  port: number;
  /** pad @18, 2 B */
  pad: number;
}

/** What lb6ReverseNat.encode accepts: padding and union members may be left out (zero). */
export interface Lb6ReverseNatInit {
  address: Uint8Array;
  port: number;
  pad?: number;
}

export const lb6ReverseNat: StructLayout<Lb6ReverseNat, Lb6ReverseNatInit> = {
  name: 'lb6_reverse_nat',
  size: 20,
  fingerprint: 'lb6_reverse_nat:20{address@0:16:bytes,port@16:2:int:ube,pad@18:2:int:u}',
  fields: {
    address: { cName: 'address', offset: 0, size: 16, kind: 'bytes', bigEndian: false },
    port: { cName: 'port', offset: 16, size: 2, kind: 'int', bigEndian: true },
    pad: { cName: 'pad', offset: 18, size: 2, kind: 'int', bigEndian: false },
  },
  encode(value: Lb6ReverseNatInit): Uint8Array {
    const out = new Uint8Array(20);
    lb6ReverseNat.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb6ReverseNatInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 20);
    const d = view(out);
    putBytes(out, o + 0, 16, value.address, 'lb6_reverse_nat.address');
    d.setUint16(o + 16, value.port, false);
    if (value.pad !== undefined) d.setUint16(o + 18, value.pad, true);
  },
  decode(b: Uint8Array, o = 0): Lb6ReverseNat {
    if (b.length < o + 20) throw shortBuffer('lb6_reverse_nat', 20, b.length - o);
    const d = view(b);
    return {
      address: b.slice(o + 0, o + 0 + 16),
      port: d.getUint16(o + 16, false),
      pad: d.getUint16(o + 18, true),
    };
  },
};

/** struct lb4_affinity_key (16 bytes) */
export interface Lb4AffinityKey {
  /** client_ip @0, 4 B, big-endian, union u0 */
  clientIp: number;
  /** netns_cookie @0, 8 B, union u0 */
  netnsCookie: bigint;
  /** rev_nat_id @8, 2 B, big-endian */
  revNatId: number;
  /** netns @10, 1 B */
  netns: number;
  /** pad1 @11, 1 B */
  pad1: number;
  /** pad2 @12, 4 B */
  pad2: number;
}

/** What lb4AffinityKey.encode accepts: padding and union members may be left out (zero). */
export interface Lb4AffinityKeyInit {
  clientIp?: number;
  netnsCookie?: bigint | number;
  revNatId: number;
  netns: number;
  pad1?: number;
  pad2?: number;
}

export const lb4AffinityKey: StructLayout<Lb4AffinityKey, Lb4AffinityKeyInit> = {
  name: 'lb4_affinity_key',
  size: 16,
  fingerprint: 'lb4_affinity_key:16{client_ip@0:4:int:ube|u0,netns_cookie@0:8:int:u|u0,rev_nat_id@8:2:int:ube,netns@10:1:int:u,pad1@11:1:int:u,pad2@12:4:int:u}',
  fields: {
    clientIp: { cName: 'client_ip', offset: 0, size: 4, kind: 'int', bigEndian: true, union: 'u0' },
    netnsCookie: { cName: 'netns_cookie', offset: 0, size: 8, kind: 'int', bigEndian: false, union: 'u0' },
    revNatId: { cName: 'rev_nat_id', offset: 8, size: 2, kind: 'int', bigEndian: true },
    netns: { cName: 'netns', offset: 10, size: 1, kind: 'int', bigEndian: false },
    pad1: { cName: 'pad1', offset: 11, size: 1, kind: 'int', bigEndian: false },
    pad2: { cName: 'pad2', offset: 12, size: 4, kind: 'int', bigEndian: false },
  },
  encode(value: Lb4AffinityKeyInit): Uint8Array {
    const out = new Uint8Array(16);
    lb4AffinityKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb4AffinityKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 16);
    const d = view(out);
    if (value.clientIp !== undefined) d.setUint32(o + 0, value.clientIp, false);
    if (value.netnsCookie !== undefined) d.setBigUint64(o + 0, BigInt(value.netnsCookie), true);
    d.setUint16(o + 8, value.revNatId, false);
    d.setUint8(o + 10, value.netns);
    if (value.pad1 !== undefined) d.setUint8(o + 11, value.pad1);
    if (value.pad2 !== undefined) d.setUint32(o + 12, value.pad2, true);
  },
  decode(b: Uint8Array, o = 0): Lb4AffinityKey {
    if (b.length < o + 16) throw shortBuffer('lb4_affinity_key', 16, b.length - o);
    const d = view(b);
    return {
      clientIp: d.getUint32(o + 0, false),
      netnsCookie: d.getBigUint64(o + 0, true),
      revNatId: d.getUint16(o + 8, false),
      netns: d.getUint8(o + 10),
      pad1: d.getUint8(o + 11),
      pad2: d.getUint32(o + 12, true),
    };
  },
};

/** struct lb6_affinity_key (24 bytes) */
export interface Lb6AffinityKey {
  /** client_ip @0, 16 B, union u0 */
  clientIp: Uint8Array;
  /** netns_cookie @0, 8 B, union u0 */
  netnsCookie: bigint;
  /** rev_nat_id @16, 2 B, big-endian */
  revNatId: number;
  /** netns @18, 1 B */
  netns: number;
  /** pad1 @19, 1 B */
  pad1: number;
  /** pad2 @20, 4 B */
  pad2: number;
}

/** What lb6AffinityKey.encode accepts: padding and union members may be left out (zero). */
export interface Lb6AffinityKeyInit {
  clientIp?: Uint8Array;
  netnsCookie?: bigint | number;
  revNatId: number;
  netns: number;
  pad1?: number;
  pad2?: number;
}

export const lb6AffinityKey: StructLayout<Lb6AffinityKey, Lb6AffinityKeyInit> = {
  name: 'lb6_affinity_key',
  size: 24,
  fingerprint: 'lb6_affinity_key:24{client_ip@0:16:bytes|u0,netns_cookie@0:8:int:u|u0,rev_nat_id@16:2:int:ube,netns@18:1:int:u,pad1@19:1:int:u,pad2@20:4:int:u}',
  fields: {
    clientIp: { cName: 'client_ip', offset: 0, size: 16, kind: 'bytes', bigEndian: false, union: 'u0' },
    netnsCookie: { cName: 'netns_cookie', offset: 0, size: 8, kind: 'int', bigEndian: false, union: 'u0' },
    revNatId: { cName: 'rev_nat_id', offset: 16, size: 2, kind: 'int', bigEndian: true },
    netns: { cName: 'netns', offset: 18, size: 1, kind: 'int', bigEndian: false },
    pad1: { cName: 'pad1', offset: 19, size: 1, kind: 'int', bigEndian: false },
    pad2: { cName: 'pad2', offset: 20, size: 4, kind: 'int', bigEndian: false },
  },
  encode(value: Lb6AffinityKeyInit): Uint8Array {
    const out = new Uint8Array(24);
    lb6AffinityKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb6AffinityKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 24);
    const d = view(out);
    if (value.clientIp !== undefined) putBytes(out, o + 0, 16, value.clientIp, 'lb6_affinity_key.client_ip');
    if (value.netnsCookie !== undefined) d.setBigUint64(o + 0, BigInt(value.netnsCookie), true);
    d.setUint16(o + 16, value.revNatId, false);
    d.setUint8(o + 18, value.netns);
    if (value.pad1 !== undefined) d.setUint8(o + 19, value.pad1);
    if (value.pad2 !== undefined) d.setUint32(o + 20, value.pad2, true);
  },
  decode(b: Uint8Array, o = 0): Lb6AffinityKey {
    if (b.length < o + 24) throw shortBuffer('lb6_affinity_key', 24, b.length - o);
    const d = view(b);
    return {
      clientIp: b.slice(o + 0, o + 0 + 16),
      netnsCookie: d.getBigUint64(o + 0, true),
      revNatId: d.getUint16(o + 16, false),
      netns: d.getUint8(o + 18),
      pad1: d.getUint8(o + 19),
      pad2: d.getUint32(o + 20, true),
    };
  },
};

/** struct lb_affinity_val (16 bytes) */
export interface LbAffinityVal {
  /** last_used @0, 8 B */
  lastUsed: bigint;
  /** backend_id @8, 4 B */
  backendId: number;
  /** pad @12, 4 B */
  pad: number;
}

/** What lbAffinityVal.encode accepts: padding and union members may be left out (zero). */
export interface LbAffinityValInit {
  lastUsed: bigint | number;
  backendId: number;
  pad?: number;
}

export const lbAffinityVal: StructLayout<LbAffinityVal, LbAffinityValInit> = {
  name: 'lb_affinity_val',
  size: 16,
  fingerprint: 'lb_affinity_val:16{last_used@0:8:int:u,backend_id@8:4:int:u,pad@12:4:int:u}',
  fields: {
    lastUsed: { cName: 'last_used', offset: 0, size: 8, kind: 'int', bigEndian: false },
    backendId: { cName: 'backend_id', offset: 8, size: 4, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 12, size: 4, kind: 'int', bigEndian: false },
  },
  encode(value: LbAffinityValInit): Uint8Array {
    const out = new Uint8Array(16);
    lbAffinityVal.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: LbAffinityValInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 16);
    const d = view(out);
    d.setBigUint64(o + 0, BigInt(value.lastUsed), true);
    d.setUint32(o + 8, value.backendId, true);
    if (value.pad !== undefined) d.setUint32(o + 12, value.pad, true);
  },
  decode(b: Uint8Array, o = 0): LbAffinityVal {
    if (b.length < o + 16) throw shortBuffer('lb_affinity_val', 16, b.length - o);
    const d = view(b);
    return {
      lastUsed: d.getBigUint64(o + 0, true),
      backendId: d.getUint32(o + 8, true),
      pad: d.getUint32(o + 12, true),
    };
  },
};

/** struct lb_affinity_match (8 bytes) */
export interface LbAffinityMatch {
  /** backend_id @0, 4 B */
  backendId: number;
  /** rev_nat_id @4, 2 B, big-endian */
  revNatId: number;
  /** pad @6, 2 B */
  pad: number;
}

/** What lbAffinityMatch.encode accepts: padding and union members may be left out (zero). */
export interface LbAffinityMatchInit {
  backendId: number;
  revNatId: number;
  pad?: number;
}

export const lbAffinityMatch: StructLayout<LbAffinityMatch, LbAffinityMatchInit> = {
  name: 'lb_affinity_match',
  size: 8,
  fingerprint: 'lb_affinity_match:8{backend_id@0:4:int:u,rev_nat_id@4:2:int:ube,pad@6:2:int:u}',
  fields: {
    backendId: { cName: 'backend_id', offset: 0, size: 4, kind: 'int', bigEndian: false },
    revNatId: { cName: 'rev_nat_id', offset: 4, size: 2, kind: 'int', bigEndian: true },
    pad: { cName: 'pad', offset: 6, size: 2, kind: 'int', bigEndian: false },
  },
  encode(value: LbAffinityMatchInit): Uint8Array {
    const out = new Uint8Array(8);
    lbAffinityMatch.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: LbAffinityMatchInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 8);
    const d = view(out);
    d.setUint32(o + 0, value.backendId, true);
    d.setUint16(o + 4, value.revNatId, false);
    if (value.pad !== undefined) d.setUint16(o + 6, value.pad, true);
  },
  decode(b: Uint8Array, o = 0): LbAffinityMatch {
    if (b.length < o + 8) throw shortBuffer('lb_affinity_match', 8, b.length - o);
    const d = view(b);
    return {
      backendId: d.getUint32(o + 0, true),
      revNatId: d.getUint16(o + 4, false),
      pad: d.getUint16(o + 6, true),
    };
  },
};

/** struct lb4_src_range_key (12 bytes) */
export interface Lb4SrcRangeKey {
  /** prefixlen @0, 4 B */
  prefixlen: number;
  /** rev_nat_id @4, 2 B, big-endian */
  revNatId: number;
  /** pad @6, 2 B */
  pad: number;
  /** address @8, 4 B, big-endian */
  address: number;
}

/** What lb4SrcRangeKey.encode accepts: padding and union members may be left out (zero). */
export interface Lb4SrcRangeKeyInit {
  prefixlen: number;
  revNatId: number;
  pad?: number;
  address: number;
}

export const lb4SrcRangeKey: StructLayout<Lb4SrcRangeKey, Lb4SrcRangeKeyInit> = {
  name: 'lb4_src_range_key',
  size: 12,
  fingerprint: 'lb4_src_range_key:12{prefixlen@0:4:int:u,rev_nat_id@4:2:int:ube,pad@6:2:int:u,address@8:4:int:ube}',
  fields: {
    prefixlen: { cName: 'prefixlen', offset: 0, size: 4, kind: 'int', bigEndian: false },
    revNatId: { cName: 'rev_nat_id', offset: 4, size: 2, kind: 'int', bigEndian: true },
    pad: { cName: 'pad', offset: 6, size: 2, kind: 'int', bigEndian: false },
    address: { cName: 'address', offset: 8, size: 4, kind: 'int', bigEndian: true },
  },
  encode(value: Lb4SrcRangeKeyInit): Uint8Array {
    const out = new Uint8Array(12);
    lb4SrcRangeKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb4SrcRangeKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 12);
    const d = view(out);
    d.setUint32(o + 0, value.prefixlen, true);
    d.setUint16(o + 4, value.revNatId, false);
    if (value.pad !== undefined) d.setUint16(o + 6, value.pad, true);
    d.setUint32(o + 8, value.address, false);
  },
  decode(b: Uint8Array, o = 0): Lb4SrcRangeKey {
    if (b.length < o + 12) throw shortBuffer('lb4_src_range_key', 12, b.length - o);
    const d = view(b);
    return {
      prefixlen: d.getUint32(o + 0, true),
      revNatId: d.getUint16(o + 4, false),
      pad: d.getUint16(o + 6, true),
      address: d.getUint32(o + 8, false),
    };
  },
};

/** struct lb6_src_range_key (24 bytes) */
export interface Lb6SrcRangeKey {
  /** prefixlen @0, 4 B */
  prefixlen: number;
  /** rev_nat_id @4, 2 B, big-endian */
  revNatId: number;
  /** pad @6, 2 B */
  pad: number;
  /** address @8, 16 B */
  address: Uint8Array;
}

/** What lb6SrcRangeKey.encode accepts: padding and union members may be left out (zero). */
export interface Lb6SrcRangeKeyInit {
  prefixlen: number;
  revNatId: number;
  pad?: number;
  address: Uint8Array;
}

export const lb6SrcRangeKey: StructLayout<Lb6SrcRangeKey, Lb6SrcRangeKeyInit> = {
  name: 'lb6_src_range_key',
  size: 24,
  fingerprint: 'lb6_src_range_key:24{prefixlen@0:4:int:u,rev_nat_id@4:2:int:ube,pad@6:2:int:u,address@8:16:bytes}',
  fields: {
    prefixlen: { cName: 'prefixlen', offset: 0, size: 4, kind: 'int', bigEndian: false },
    revNatId: { cName: 'rev_nat_id', offset: 4, size: 2, kind: 'int', bigEndian: true },
    pad: { cName: 'pad', offset: 6, size: 2, kind: 'int', bigEndian: false },
    address: { cName: 'address', offset: 8, size: 16, kind: 'bytes', bigEndian: false },
  },
  encode(value: Lb6SrcRangeKeyInit): Uint8Array {
    const out = new Uint8Array(24);
    lb6SrcRangeKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb6SrcRangeKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 24);
    const d = view(out);
    d.setUint32(o + 0, value.prefixlen, true);
    d.setUint16(o + 4, value.revNatId, false);
    if (value.pad !== undefined) d.setUint16(o + 6, value.pad, true);
    putBytes(out, o + 8, 16, value.address, 'lb6_src_range_key.address');
  },
  decode(b: Uint8Array, o = 0): Lb6SrcRangeKey {
    if (b.length < o + 24) throw shortBuffer('lb6_src_range_key', 24, b.length - o);
    const d = view(b);
    return {
      prefixlen: d.getUint32(o + 0, true),
      revNatId: d.getUint16(o + 4, false),
      pad: d.getUint16(o + 6, true),
      address: b.slice(o + 8, o + 8 + 16),
    };
  },
};

/** struct lb4_reverse_sk_key (16 bytes) */
export interface Lb4ReverseSkKey {
  /** cookie @0, 8 B */
  cookie: bigint;
  /** address @8, 4 B, big-endian */
  address: number;
  /** port @12, 2 B, big-endian */
  port: number;
  /** pad @14, 2 B */
  pad: number;
}

/** What lb4ReverseSkKey.encode accepts: padding and union members may be left out (zero). */
export interface Lb4ReverseSkKeyInit {
  cookie: bigint | number;
  address: number;
  port: number;
  pad?: number;
}

export const lb4ReverseSkKey: StructLayout<Lb4ReverseSkKey, Lb4ReverseSkKeyInit> = {
  name: 'lb4_reverse_sk_key',
  size: 16,
  fingerprint: 'lb4_reverse_sk_key:16{cookie@0:8:int:u,address@8:4:int:ube,port@12:2:int:ube,pad@14:2:int:u}',
  fields: {
    cookie: { cName: 'cookie', offset: 0, size: 8, kind: 'int', bigEndian: false },
    address: { cName: 'address', offset: 8, size: 4, kind: 'int', bigEndian: true },
    port: { cName: 'port', offset: 12, size: 2, kind: 'int', bigEndian: true },
    pad: { cName: 'pad', offset: 14, size: 2, kind: 'int', bigEndian: false },
  },
  encode(value: Lb4ReverseSkKeyInit): Uint8Array {
    const out = new Uint8Array(16);
    lb4ReverseSkKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb4ReverseSkKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 16);
    const d = view(out);
    d.setBigUint64(o + 0, BigInt(value.cookie), true);
    d.setUint32(o + 8, value.address, false);
    d.setUint16(o + 12, value.port, false);
    if (value.pad !== undefined) d.setUint16(o + 14, value.pad, true);
  },
  decode(b: Uint8Array, o = 0): Lb4ReverseSkKey {
    if (b.length < o + 16) throw shortBuffer('lb4_reverse_sk_key', 16, b.length - o);
    const d = view(b);
    return {
      cookie: d.getBigUint64(o + 0, true),
      address: d.getUint32(o + 8, false),
      port: d.getUint16(o + 12, false),
      pad: d.getUint16(o + 14, true),
    };
  },
};

/** struct lb4_reverse_sk (8 bytes) */
export interface Lb4ReverseSk {
  /** address @0, 4 B, big-endian */
  address: number;
  /** port @4, 2 B, big-endian */
  port: number;
  /** rev_nat_index @6, 2 B, big-endian */
  revNatIndex: number;
}

/** What lb4ReverseSk.encode accepts: padding and union members may be left out (zero). */
export interface Lb4ReverseSkInit {
  address: number;
  port: number;
  revNatIndex: number;
}

export const lb4ReverseSk: StructLayout<Lb4ReverseSk, Lb4ReverseSkInit> = {
  name: 'lb4_reverse_sk',
  size: 8,
  fingerprint: 'lb4_reverse_sk:8{address@0:4:int:ube,port@4:2:int:ube,rev_nat_index@6:2:int:ube}',
  fields: {
    address: { cName: 'address', offset: 0, size: 4, kind: 'int', bigEndian: true },
    port: { cName: 'port', offset: 4, size: 2, kind: 'int', bigEndian: true },
    revNatIndex: { cName: 'rev_nat_index', offset: 6, size: 2, kind: 'int', bigEndian: true },
  },
  encode(value: Lb4ReverseSkInit): Uint8Array {
    const out = new Uint8Array(8);
    lb4ReverseSk.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb4ReverseSkInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 8);
    const d = view(out);
    d.setUint32(o + 0, value.address, false);
    d.setUint16(o + 4, value.port, false);
    d.setUint16(o + 6, value.revNatIndex, false);
  },
  decode(b: Uint8Array, o = 0): Lb4ReverseSk {
    if (b.length < o + 8) throw shortBuffer('lb4_reverse_sk', 8, b.length - o);
    const d = view(b);
    return {
      address: d.getUint32(o + 0, false),
      port: d.getUint16(o + 4, false),
      revNatIndex: d.getUint16(o + 6, false),
    };
  },
};

/** struct lb6_reverse_sk_key (32 bytes) */
export interface Lb6ReverseSkKey {
  /** cookie @0, 8 B */
  cookie: bigint;
  /** address @8, 16 B */
  address: Uint8Array;
  /** port @24, 2 B, big-endian */
  port: number;
  /** pad @26, 2 B */
  pad: number;
  /** pad2 @28, 4 B */
  pad2: number;
}

/** What lb6ReverseSkKey.encode accepts: padding and union members may be left out (zero). */
export interface Lb6ReverseSkKeyInit {
  cookie: bigint | number;
  address: Uint8Array;
  port: number;
  pad?: number;
  pad2?: number;
}

export const lb6ReverseSkKey: StructLayout<Lb6ReverseSkKey, Lb6ReverseSkKeyInit> = {
  name: 'lb6_reverse_sk_key',
  size: 32,
  fingerprint: 'lb6_reverse_sk_key:32{cookie@0:8:int:u,address@8:16:bytes,port@24:2:int:ube,pad@26:2:int:u,pad2@28:4:int:u}',
  fields: {
    cookie: { cName: 'cookie', offset: 0, size: 8, kind: 'int', bigEndian: false },
    address: { cName: 'address', offset: 8, size: 16, kind: 'bytes', bigEndian: false },
    port: { cName: 'port', offset: 24, size: 2, kind: 'int', bigEndian: true },
    pad: { cName: 'pad', offset: 26, size: 2, kind: 'int', bigEndian: false },
    pad2: { cName: 'pad2', offset: 28, size: 4, kind: 'int', bigEndian: false },
  },
  encode(value: Lb6ReverseSkKeyInit): Uint8Array {
    const out = new Uint8Array(32);
    lb6ReverseSkKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb6ReverseSkKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 32);
    const d = view(out);
    d.setBigUint64(o + 0, BigInt(value.cookie), true);
    putBytes(out, o + 8, 16, value.address, 'lb6_reverse_sk_key.address');
    d.setUint16(o + 24, value.port, false);
    if (value.pad !== undefined) d.setUint16(o + 26, value.pad, true);
    if (value.pad2 !== undefined) d.setUint32(o + 28, value.pad2, true);
  },
  decode(b: Uint8Array, o = 0): Lb6ReverseSkKey {
    if (b.length < o + 32) throw shortBuffer('lb6_reverse_sk_key', 32, b.length - o);
    const d = view(b);
    return {
      cookie: d.getBigUint64(o + 0, true),
      address: b.slice(o + 8, o + 8 + 16),
      port: d.getUint16(o + 24, false),
      pad: d.getUint16(o + 26, true),
      pad2: d.getUint32(o + 28, true),
    };
  },
};

/** struct lb6_reverse_sk (20 bytes) */
export interface Lb6ReverseSk {
  /** address @0, 16 B */
  address: Uint8Array;
  /** port @16, 2 B, big-endian */
  port: number;
  /** rev_nat_index @18, 2 B, big-endian */
  revNatIndex: number;
}

/** What lb6ReverseSk.encode accepts: padding and union members may be left out (zero). */
export interface Lb6ReverseSkInit {
  address: Uint8Array;
  port: number;
  revNatIndex: number;
}

export const lb6ReverseSk: StructLayout<Lb6ReverseSk, Lb6ReverseSkInit> = {
  name: 'lb6_reverse_sk',
  size: 20,
  fingerprint: 'lb6_reverse_sk:20{address@0:16:bytes,port@16:2:int:ube,rev_nat_index@18:2:int:ube}',
  fields: {
    address: { cName: 'address', offset: 0, size: 16, kind: 'bytes', bigEndian: false },
    port: { cName: 'port', offset: 16, size: 2, kind: 'int', bigEndian: true },
    revNatIndex: { cName: 'rev_nat_index', offset: 18, size: 2, kind: 'int', bigEndian: true },
  },
  encode(value: Lb6ReverseSkInit): Uint8Array {
    const out = new Uint8Array(20);
    lb6ReverseSk.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: Lb6ReverseSkInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 20);
    const d = view(out);
    putBytes(out, o + 0, 16, value.address, 'lb6_reverse_sk.address');
    d.setUint16(o + 16, value.port, false);
    d.setUint16(o + 18, value.revNatIndex, false);
  },
  decode(b: Uint8Array, o = 0): Lb6ReverseSk {
    if (b.length < o + 20) throw shortBuffer('lb6_reverse_sk', 20, b.length - o);
    const d = view(b);
    return {
      address: b.slice(o + 0, o + 0 + 16),
      port: d.getUint16(o + 16, false),
      revNatIndex: d.getUint16(o + 18, false),
    };
  },
};

/** struct nodeport_nat_entry (56 bytes) */
export interface NodeportNatEntry {
  /** lifetime_ns @0, 8 B */
  lifetimeNs: bigint;
  /** to_addr4 @8, 4 B, big-endian, union u0 */
  toAddr4: number;
  /** to_addr6 @8, 16 B, union u0 */
  toAddr6: Uint8Array;
  /** svc_addr4 @24, 4 B, big-endian, union u1 */
  svcAddr4: number;
  /** svc_addr6 @24, 16 B, union u1 */
  svcAddr6: Uint8Array;
  /** to_port @40, 2 B, big-endian */
  toPort: number;
  /** svc_port @42, 2 B, big-endian */
  svcPort: number;
  /** rev_nat_index @44, 2 B, big-endian */
  revNatIndex: number;
  /** tcp_flags_seen @46, 1 B */
  tcpFlagsSeen: number;
  /** reply_tcp_flags_seen @47, 1 B */
  replyTcpFlagsSeen: number;
  /** ifindex @48, 4 B */
  ifindex: number;
  /** nat_flags @52, 1 B */
  natFlags: number;
  /** pad2 @53, 3 B */
  pad2: Uint8Array;
}

/** What nodeportNatEntry.encode accepts: padding and union members may be left out (zero). */
export interface NodeportNatEntryInit {
  lifetimeNs: bigint | number;
  toAddr4?: number;
  toAddr6?: Uint8Array;
  svcAddr4?: number;
  svcAddr6?: Uint8Array;
  toPort: number;
  svcPort: number;
  revNatIndex: number;
  tcpFlagsSeen: number;
  replyTcpFlagsSeen: number;
  ifindex: number;
  natFlags: number;
  pad2?: Uint8Array;
}

export const nodeportNatEntry: StructLayout<NodeportNatEntry, NodeportNatEntryInit> = {
  name: 'nodeport_nat_entry',
  size: 56,
  fingerprint: 'nodeport_nat_entry:56{lifetime_ns@0:8:int:u,to_addr4@8:4:int:ube|u0,to_addr6@8:16:bytes|u0,svc_addr4@24:4:int:ube|u1,svc_addr6@24:16:bytes|u1,to_port@40:2:int:ube,svc_port@42:2:int:ube,rev_nat_index@44:2:int:ube,tcp_flags_seen@46:1:int:u,reply_tcp_flags_seen@47:1:int:u,ifindex@48:4:int:u,nat_flags@52:1:int:u,pad2@53:3:bytes}',
  fields: {
    lifetimeNs: { cName: 'lifetime_ns', offset: 0, size: 8, kind: 'int', bigEndian: false },
    toAddr4: { cName: 'to_addr4', offset: 8, size: 4, kind: 'int', bigEndian: true, union: 'u0' },
    toAddr6: { cName: 'to_addr6', offset: 8, size: 16, kind: 'bytes', bigEndian: false, union: 'u0' },
    svcAddr4: { cName: 'svc_addr4', offset: 24, size: 4, kind: 'int', bigEndian: true, union: 'u1' },
    svcAddr6: { cName: 'svc_addr6', offset: 24, size: 16, kind: 'bytes', bigEndian: false, union: 'u1' },
    toPort: { cName: 'to_port', offset: 40, size: 2, kind: 'int', bigEndian: true },
    svcPort: { cName: 'svc_port', offset: 42, size: 2, kind: 'int', bigEndian: true },
    revNatIndex: { cName: 'rev_nat_index', offset: 44, size: 2, kind: 'int', bigEndian: true },
    tcpFlagsSeen: { cName: 'tcp_flags_seen', offset: 46, size: 1, kind: 'int', bigEndian: false },
    replyTcpFlagsSeen: { cName: 'reply_tcp_flags_seen', offset: 47, size: 1, kind: 'int', bigEndian: false },
    ifindex: { cName: 'ifindex', offset: 48, size: 4, kind: 'int', bigEndian: false },
    natFlags: { cName: 'nat_flags', offset: 52, size: 1, kind: 'int', bigEndian: false },
    pad2: { cName: 'pad2', offset: 53, size: 3, kind: 'bytes', bigEndian: false },
  },
  encode(value: NodeportNatEntryInit): Uint8Array {
    const out = new Uint8Array(56);
    nodeportNatEntry.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: NodeportNatEntryInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 56);
    const d = view(out);
    d.setBigUint64(o + 0, BigInt(value.lifetimeNs), true);
    if (value.toAddr4 !== undefined) d.setUint32(o + 8, value.toAddr4, false);
    if (value.toAddr6 !== undefined) putBytes(out, o + 8, 16, value.toAddr6, 'nodeport_nat_entry.to_addr6');
    if (value.svcAddr4 !== undefined) d.setUint32(o + 24, value.svcAddr4, false);
    if (value.svcAddr6 !== undefined) putBytes(out, o + 24, 16, value.svcAddr6, 'nodeport_nat_entry.svc_addr6');
    d.setUint16(o + 40, value.toPort, false);
    d.setUint16(o + 42, value.svcPort, false);
    d.setUint16(o + 44, value.revNatIndex, false);
    d.setUint8(o + 46, value.tcpFlagsSeen);
    d.setUint8(o + 47, value.replyTcpFlagsSeen);
    d.setUint32(o + 48, value.ifindex, true);
    d.setUint8(o + 52, value.natFlags);
    if (value.pad2 !== undefined) putBytes(out, o + 53, 3, value.pad2, 'nodeport_nat_entry.pad2');
  },
  decode(b: Uint8Array, o = 0): NodeportNatEntry {
    if (b.length < o + 56) throw shortBuffer('nodeport_nat_entry', 56, b.length - o);
    const d = view(b);
    return {
      lifetimeNs: d.getBigUint64(o + 0, true),
      toAddr4: d.getUint32(o + 8, false),
      toAddr6: b.slice(o + 8, o + 8 + 16),
      svcAddr4: d.getUint32(o + 24, false),
      svcAddr6: b.slice(o + 24, o + 24 + 16),
      toPort: d.getUint16(o + 40, false),
      svcPort: d.getUint16(o + 42, false),
      revNatIndex: d.getUint16(o + 44, false),
      tcpFlagsSeen: d.getUint8(o + 46),
      replyTcpFlagsSeen: d.getUint8(o + 47),
      ifindex: d.getUint32(o + 48, true),
      natFlags: d.getUint8(o + 52),
      pad2: b.slice(o + 53, o + 53 + 3),
    };
  },
};

/** struct proxy_key (20 bytes) */
export interface ProxyKey {
  /** saddr6 @0, 16 B */
  saddr6: Uint8Array;
  /** sport @16, 2 B */
  sport: number;
  /** nexthdr @18, 1 B */
  nexthdr: number;
  /** family @19, 1 B */
  family: number;
}

/** What proxyKey.encode accepts: padding and union members may be left out (zero). */
export interface ProxyKeyInit {
  saddr6: Uint8Array;
  sport: number;
  nexthdr: number;
  family: number;
}

export const proxyKey: StructLayout<ProxyKey, ProxyKeyInit> = {
  name: 'proxy_key',
  size: 20,
  fingerprint: 'proxy_key:20{saddr6@0:16:bytes,sport@16:2:int:u,nexthdr@18:1:int:u,family@19:1:int:u}',
  fields: {
    saddr6: { cName: 'saddr6', offset: 0, size: 16, kind: 'bytes', bigEndian: false },
    sport: { cName: 'sport', offset: 16, size: 2, kind: 'int', bigEndian: false },
    nexthdr: { cName: 'nexthdr', offset: 18, size: 1, kind: 'int', bigEndian: false },
    family: { cName: 'family', offset: 19, size: 1, kind: 'int', bigEndian: false },
  },
  encode(value: ProxyKeyInit): Uint8Array {
    const out = new Uint8Array(20);
    proxyKey.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: ProxyKeyInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 20);
    const d = view(out);
    putBytes(out, o + 0, 16, value.saddr6, 'proxy_key.saddr6');
    d.setUint16(o + 16, value.sport, true);
    d.setUint8(o + 18, value.nexthdr);
    d.setUint8(o + 19, value.family);
  },
  decode(b: Uint8Array, o = 0): ProxyKey {
    if (b.length < o + 20) throw shortBuffer('proxy_key', 20, b.length - o);
    const d = view(b);
    return {
      saddr6: b.slice(o + 0, o + 0 + 16),
      sport: d.getUint16(o + 16, true),
      nexthdr: d.getUint8(o + 18),
      family: d.getUint8(o + 19),
    };
  },
};

/** struct proxy_value (32 bytes) */
export interface ProxyValue {
  /** daddr6 @0, 16 B */
  daddr6: Uint8Array;
  /** dport @16, 2 B */
  dport: number;
  /** ep_id @18, 2 B */
  epId: number;
  /** src_identity @20, 4 B */
  srcIdentity: number;
  /** dst_identity @24, 4 B */
  dstIdentity: number;
  /** egress @28, 1 B */
  egress: number;
  /** pad @29, 3 B */
  pad: Uint8Array;
}

/** What proxyValue.encode accepts: padding and union members may be left out (zero). */
export interface ProxyValueInit {
  daddr6: Uint8Array;
  dport: number;
  epId: number;
  srcIdentity: number;
  dstIdentity: number;
  egress: number;
  pad?: Uint8Array;
}

export const proxyValue: StructLayout<ProxyValue, ProxyValueInit> = {
  name: 'proxy_value',
  size: 32,
  fingerprint: 'proxy_value:32{daddr6@0:16:bytes,dport@16:2:int:u,ep_id@18:2:int:u,src_identity@20:4:int:u,dst_identity@24:4:int:u,egress@28:1:int:u,pad@29:3:bytes}',
  fields: {
    daddr6: { cName: 'daddr6', offset: 0, size: 16, kind: 'bytes', bigEndian: false },
    dport: { cName: 'dport', offset: 16, size: 2, kind: 'int', bigEndian: false },
    epId: { cName: 'ep_id', offset: 18, size: 2, kind: 'int', bigEndian: false },
    srcIdentity: { cName: 'src_identity', offset: 20, size: 4, kind: 'int', bigEndian: false },
    dstIdentity: { cName: 'dst_identity', offset: 24, size: 4, kind: 'int', bigEndian: false },
    egress: { cName: 'egress', offset: 28, size: 1, kind: 'int', bigEndian: false },
    pad: { cName: 'pad', offset: 29, size: 3, kind: 'bytes', bigEndian: false },
  },
  encode(value: ProxyValueInit): Uint8Array {
    const out = new Uint8Array(32);
    proxyValue.encodeInto(value, out, 0);
    return out;
  },
  encodeInto(value: ProxyValueInit, out: Uint8Array, o: number): void {
    out.fill(0, o, o + 32);
    const d = view(out);
    putBytes(out, o + 0, 16, value.daddr6, 'proxy_value.daddr6');
    d.setUint16(o + 16, value.dport, true);
    d.setUint16(o + 18, value.epId, true);
    d.setUint32(o + 20, value.srcIdentity, true);
    d.setUint32(o + 24, value.dstIdentity, true);
    d.setUint8(o + 28, value.egress);
    if (value.pad !== undefined) putBytes(out, o + 29, 3, value.pad, 'proxy_value.pad');
  },
  decode(b: Uint8Array, o = 0): ProxyValue {
    if (b.length < o + 32) throw shortBuffer('proxy_value', 32, b.length - o);
    const d = view(b);
    return {
      daddr6: b.slice(o + 0, o + 0 + 16),
      dport: d.getUint16(o + 16, true),
      epId: d.getUint16(o + 18, true),
      srcIdentity: d.getUint32(o + 20, true),
      dstIdentity: d.getUint32(o + 24, true),
      egress: d.getUint8(o + 28),
      pad: b.slice(o + 29, o + 29 + 3),
    };
  },
};

/** Every struct codec by C name. */
export const STRUCTS = {
  ipcache_key: ipcacheKey,
  remote_endpoint_info: remoteEndpointInfo,
  endpoint_key: endpointKey,
  endpoint_info: endpointInfo,
  policy_key: policyKey,
  policy_entry: policyEntry,
  ct_key: ctKey,
  ct_entry: ctEntry,
  metrics_key: metricsKey,
  metrics_value: metricsValue,
  event_hdr: eventHdr,
  trace_notify: traceNotify,
  drop_notify: dropNotify,
  policy_verdict_notify: policyVerdictNotify,
  lb4_key: lb4Key,
  lb6_key: lb6Key,
  lb_service: lbService,
  lb4_backend: lb4Backend,
  lb6_backend: lb6Backend,
  lb4_reverse_nat: lb4ReverseNat,
  lb6_reverse_nat: lb6ReverseNat,
  lb4_affinity_key: lb4AffinityKey,
  lb6_affinity_key: lb6AffinityKey,
  lb_affinity_val: lbAffinityVal,
  lb_affinity_match: lbAffinityMatch,
  lb4_src_range_key: lb4SrcRangeKey,
  lb6_src_range_key: lb6SrcRangeKey,
  lb4_reverse_sk_key: lb4ReverseSkKey,
  lb4_reverse_sk: lb4ReverseSk,
  lb6_reverse_sk_key: lb6ReverseSkKey,
  lb6_reverse_sk: lb6ReverseSk,
  nodeport_nat_entry: nodeportNatEntry,
  proxy_key: proxyKey,
  proxy_value: proxyValue,
} as const;

/** Every map of the datapath objects (section .maps), by name: one definition per name. */
export const MAPS = {
  cilium_ct4_global: {
    name: 'cilium_ct4_global',
    type: 9,
    typeName: 'LRU_HASH',
    keySize: 40,
    valueSize: 64,
    maxEntries: 262144,
    flags: 0,
    pinning: 'by-name',
    key: 'ct_key',
    value: 'ct_entry',
  },
  cilium_ct6_global: {
    name: 'cilium_ct6_global',
    type: 9,
    typeName: 'LRU_HASH',
    keySize: 40,
    valueSize: 64,
    maxEntries: 262144,
    flags: 0,
    pinning: 'by-name',
    key: 'ct_key',
    value: 'ct_entry',
  },
  cilium_events: {
    name: 'cilium_events',
    type: 27,
    typeName: 'RINGBUF',
    keySize: 0,
    valueSize: 0,
    maxEntries: 1048576,
    flags: 0,
    pinning: 'by-name',
  },
  cilium_events_lost: {
    name: 'cilium_events_lost',
    type: 6,
    typeName: 'PERCPU_ARRAY',
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
    flags: 0,
    pinning: 'by-name',
  },
  cilium_ipcache: {
    name: 'cilium_ipcache',
    type: 11,
    typeName: 'LPM_TRIE',
    keySize: 24,
    valueSize: 12,
    maxEntries: 512000,
    flags: 1,
    pinning: 'by-name',
    key: 'ipcache_key',
    value: 'remote_endpoint_info',
  },
  cilium_lb_affinity_match: {
    name: 'cilium_lb_affinity_match',
    type: 1,
    typeName: 'HASH',
    keySize: 8,
    valueSize: 1,
    maxEntries: 65536,
    flags: 1,
    pinning: 'by-name',
    key: 'lb_affinity_match',
  },
  cilium_lb_sock_rev: {
    name: 'cilium_lb_sock_rev',
    type: 24,
    typeName: 'SK_STORAGE',
    keySize: 4,
    valueSize: 40,
    maxEntries: 0,
    flags: 1,
    pinning: 'by-name',
  },
  cilium_lb_sock_slot_rev: {
    name: 'cilium_lb_sock_slot_rev',
    type: 2,
    typeName: 'ARRAY',
    keySize: 4,
    valueSize: 40,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
  },
  cilium_lb_sock_slots: {
    name: 'cilium_lb_sock_slots',
    type: 2,
    typeName: 'ARRAY',
    keySize: 4,
    valueSize: 8,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
  },
  cilium_lb4_affinity: {
    name: 'cilium_lb4_affinity',
    type: 9,
    typeName: 'LRU_HASH',
    keySize: 16,
    valueSize: 16,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
    key: 'lb4_affinity_key',
    value: 'lb_affinity_val',
  },
  cilium_lb4_backends_v3: {
    name: 'cilium_lb4_backends_v3',
    type: 1,
    typeName: 'HASH',
    keySize: 4,
    valueSize: 12,
    maxEntries: 262144,
    flags: 1,
    pinning: 'by-name',
    value: 'lb4_backend',
  },
  cilium_lb4_maglev: {
    name: 'cilium_lb4_maglev',
    type: 13,
    typeName: 'HASH_OF_MAPS',
    keySize: 2,
    valueSize: 4,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
    inner: { type: 2, typeName: 'ARRAY', keySize: 4, valueSize: 65524, maxEntries: 1, flags: 0 },
  },
  cilium_lb4_reverse_nat: {
    name: 'cilium_lb4_reverse_nat',
    type: 1,
    typeName: 'HASH',
    keySize: 2,
    valueSize: 8,
    maxEntries: 65536,
    flags: 1,
    pinning: 'by-name',
    value: 'lb4_reverse_nat',
  },
  cilium_lb4_reverse_sk: {
    name: 'cilium_lb4_reverse_sk',
    type: 9,
    typeName: 'LRU_HASH',
    keySize: 16,
    valueSize: 8,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
    key: 'lb4_reverse_sk_key',
    value: 'lb4_reverse_sk',
  },
  cilium_lb4_services_v2: {
    name: 'cilium_lb4_services_v2',
    type: 1,
    typeName: 'HASH',
    keySize: 12,
    valueSize: 12,
    maxEntries: 262144,
    flags: 1,
    pinning: 'by-name',
    key: 'lb4_key',
    value: 'lb_service',
  },
  cilium_lb4_source_range: {
    name: 'cilium_lb4_source_range',
    type: 11,
    typeName: 'LPM_TRIE',
    keySize: 12,
    valueSize: 1,
    maxEntries: 65536,
    flags: 1,
    pinning: 'by-name',
    key: 'lb4_src_range_key',
  },
  cilium_lb6_affinity: {
    name: 'cilium_lb6_affinity',
    type: 9,
    typeName: 'LRU_HASH',
    keySize: 24,
    valueSize: 16,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
    key: 'lb6_affinity_key',
    value: 'lb_affinity_val',
  },
  cilium_lb6_backends_v3: {
    name: 'cilium_lb6_backends_v3',
    type: 1,
    typeName: 'HASH',
    keySize: 4,
    valueSize: 24,
    maxEntries: 262144,
    flags: 1,
    pinning: 'by-name',
    value: 'lb6_backend',
  },
  cilium_lb6_maglev: {
    name: 'cilium_lb6_maglev',
    type: 13,
    typeName: 'HASH_OF_MAPS',
    keySize: 2,
    valueSize: 4,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
    inner: { type: 2, typeName: 'ARRAY', keySize: 4, valueSize: 65524, maxEntries: 1, flags: 0 },
  },
  cilium_lb6_reverse_nat: {
    name: 'cilium_lb6_reverse_nat',
    type: 1,
    typeName: 'HASH',
    keySize: 2,
    valueSize: 20,
    maxEntries: 65536,
    flags: 1,
    pinning: 'by-name',
    value: 'lb6_reverse_nat',
  },
  cilium_lb6_reverse_sk: {
    name: 'cilium_lb6_reverse_sk',
    type: 9,
    typeName: 'LRU_HASH',
    keySize: 32,
    valueSize: 20,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
    key: 'lb6_reverse_sk_key',
    value: 'lb6_reverse_sk',
  },
  cilium_lb6_services_v2: {
    name: 'cilium_lb6_services_v2',
    type: 1,
    typeName: 'HASH',
    keySize: 24,
    valueSize: 12,
    maxEntries: 262144,
    flags: 1,
    pinning: 'by-name',
    key: 'lb6_key',
    value: 'lb_service',
  },
  cilium_lb6_source_range: {
    name: 'cilium_lb6_source_range',
    type: 11,
    typeName: 'LPM_TRIE',
    keySize: 24,
    valueSize: 1,
    maxEntries: 65536,
    flags: 1,
    pinning: 'by-name',
    key: 'lb6_src_range_key',
  },
  cilium_lxc: {
    name: 'cilium_lxc',
    type: 1,
    typeName: 'HASH',
    keySize: 20,
    valueSize: 24,
    maxEntries: 65535,
    flags: 0,
    pinning: 'by-name',
    key: 'endpoint_key',
    value: 'endpoint_info',
  },
  cilium_metrics: {
    name: 'cilium_metrics',
    type: 5,
    typeName: 'PERCPU_HASH',
    keySize: 8,
    valueSize: 16,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
    key: 'metrics_key',
    value: 'metrics_value',
  },
  cilium_metrics_fwd: {
    name: 'cilium_metrics_fwd',
    type: 6,
    typeName: 'PERCPU_ARRAY',
    keySize: 4,
    valueSize: 16,
    maxEntries: 8192,
    flags: 0,
    pinning: 'by-name',
    value: 'metrics_value',
  },
  cilium_nodeport_nat4: {
    name: 'cilium_nodeport_nat4',
    type: 9,
    typeName: 'LRU_HASH',
    keySize: 40,
    valueSize: 56,
    maxEntries: 131072,
    flags: 0,
    pinning: 'by-name',
    key: 'ct_key',
    value: 'nodeport_nat_entry',
  },
  cilium_policy_ep_layers: {
    name: 'cilium_policy_ep_layers',
    type: 1,
    typeName: 'HASH',
    keySize: 4,
    valueSize: 16,
    maxEntries: 65536,
    flags: 1,
    pinning: 'by-name',
  },
  cilium_policy_layers: {
    name: 'cilium_policy_layers',
    type: 13,
    typeName: 'HASH_OF_MAPS',
    keySize: 4,
    valueSize: 4,
    maxEntries: 4096,
    flags: 0,
    pinning: 'by-name',
    inner: { type: 11, typeName: 'LPM_TRIE', keySize: 12, valueSize: 8, maxEntries: 16384, flags: 1 },
  },
  cilium_policy_maps: {
    name: 'cilium_policy_maps',
    type: 13,
    typeName: 'HASH_OF_MAPS',
    keySize: 4,
    valueSize: 4,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
    inner: { type: 11, typeName: 'LPM_TRIE', keySize: 12, valueSize: 8, maxEntries: 16384, flags: 1 },
  },
  cilium_proxy: {
    name: 'cilium_proxy',
    type: 9,
    typeName: 'LRU_HASH',
    keySize: 20,
    valueSize: 32,
    maxEntries: 65536,
    flags: 0,
    pinning: 'by-name',
    key: 'proxy_key',
    value: 'proxy_value',
  },
} as const satisfies Record<string, MapDescriptor>;

/** The datapath objects by name: their programs (→ section), maps and load-time constants (→ size). */
export const OBJECTS = {
  bpf_host: {
    file: 'bpf_host.o',
    programs: {
      cil_from_netdev: 'tc',
    },
    maps: [
      'cilium_ct4_global',
      'cilium_ct6_global',
      'cilium_events',
      'cilium_events_lost',
      'cilium_ipcache',
      'cilium_lb4_affinity',
      'cilium_lb4_backends_v3',
      'cilium_lb4_maglev',
      'cilium_lb4_reverse_nat',
      'cilium_lb4_reverse_sk',
      'cilium_lb4_services_v2',
      'cilium_lb4_source_range',
      'cilium_lb6_affinity',
      'cilium_lb6_backends_v3',
      'cilium_lb6_maglev',
      'cilium_lb6_reverse_nat',
      'cilium_lb6_reverse_sk',
      'cilium_lb6_services_v2',
      'cilium_lb6_source_range',
      'cilium_lb_affinity_match',
      'cilium_lxc',
      'cilium_metrics',
      'cilium_metrics_fwd',
      'cilium_nodeport_nat4',
      'cilium_policy_ep_layers',
      'cilium_policy_layers',
      'cilium_policy_maps',
    ],
    constants: {
      ENCAP_IFINDEX: 4,
      NODE_IPV4: 4,
      MONITOR_AGGREGATION: 4,
      NODEPORT_SNAT_LOCAL: 4,
      HOST_EP_ID: 2,
      ALLOW_LOCALHOST: 4,
      LB_SELECTION: 4,
      MAGLEV_TABLE_SIZE: 4,
      HASH_INIT4_SEED: 4,
      CT_ACCOUNTING: 4,
    },
  },
  bpf_lxc: {
    file: 'bpf_lxc.o',
    programs: {
      cil_from_container: 'tc',
      cil_to_container: 'tc',
    },
    maps: [
      'cilium_ct4_global',
      'cilium_ct6_global',
      'cilium_events',
      'cilium_events_lost',
      'cilium_ipcache',
      'cilium_lb4_affinity',
      'cilium_lb4_backends_v3',
      'cilium_lb4_maglev',
      'cilium_lb4_reverse_nat',
      'cilium_lb4_reverse_sk',
      'cilium_lb4_services_v2',
      'cilium_lb4_source_range',
      'cilium_lb6_affinity',
      'cilium_lb6_backends_v3',
      'cilium_lb6_maglev',
      'cilium_lb6_reverse_nat',
      'cilium_lb6_reverse_sk',
      'cilium_lb6_services_v2',
      'cilium_lb6_source_range',
      'cilium_lb_affinity_match',
      'cilium_lxc',
      'cilium_metrics',
      'cilium_metrics_fwd',
      'cilium_nodeport_nat4',
      'cilium_policy_ep_layers',
      'cilium_policy_layers',
      'cilium_policy_maps',
      'cilium_proxy',
    ],
    constants: {
      POLICY_AUDIT_MODE: 4,
      SECLABEL: 4,
      LXC_ID: 2,
      LXC_IPV4: 4,
      LXC_IPV6: 16,
      LXC_MAC: 6,
      NODE_MAC: 6,
      ROUTER_IPV4: 4,
      ROUTER_IPV6: 16,
      LXC_IFINDEX: 4,
      MONITOR_AGGREGATION: 4,
      ENCAP_IFINDEX: 4,
      ALLOW_LOCALHOST: 4,
      LB_SELECTION: 4,
      MAGLEV_TABLE_SIZE: 4,
      HASH_INIT4_SEED: 4,
      CT_ACCOUNTING: 4,
    },
  },
  bpf_overlay: {
    file: 'bpf_overlay.o',
    programs: {
      cil_from_overlay: 'tc',
      cil_to_overlay: 'tc',
    },
    maps: [
      'cilium_ct4_global',
      'cilium_ct6_global',
      'cilium_events',
      'cilium_events_lost',
      'cilium_ipcache',
      'cilium_lxc',
      'cilium_metrics',
      'cilium_metrics_fwd',
    ],
    constants: {
      MONITOR_AGGREGATION: 4,
      ALLOW_LOCALHOST: 4,
      LB_SELECTION: 4,
      MAGLEV_TABLE_SIZE: 4,
      HASH_INIT4_SEED: 4,
      CT_ACCOUNTING: 4,
      ENCAP_IFINDEX: 4,
    },
  },
  bpf_sock: {
    file: 'bpf_sock.o',
    programs: {
      cil_sock_release: 'cgroup/sock_release',
      cil_sock4_connect: 'cgroup/connect4',
      cil_sock4_getpeername: 'cgroup/getpeername4',
      cil_sock4_recvmsg: 'cgroup/recvmsg4',
      cil_sock4_sendmsg: 'cgroup/sendmsg4',
      cil_sock6_connect: 'cgroup/connect6',
      cil_sock6_getpeername: 'cgroup/getpeername6',
      cil_sock6_recvmsg: 'cgroup/recvmsg6',
      cil_sock6_sendmsg: 'cgroup/sendmsg6',
    },
    maps: [
      'cilium_ipcache',
      'cilium_lb4_affinity',
      'cilium_lb4_backends_v3',
      'cilium_lb4_maglev',
      'cilium_lb4_reverse_nat',
      'cilium_lb4_reverse_sk',
      'cilium_lb4_services_v2',
      'cilium_lb4_source_range',
      'cilium_lb6_affinity',
      'cilium_lb6_backends_v3',
      'cilium_lb6_maglev',
      'cilium_lb6_reverse_nat',
      'cilium_lb6_reverse_sk',
      'cilium_lb6_services_v2',
      'cilium_lb6_source_range',
      'cilium_lb_affinity_match',
      'cilium_lb_sock_rev',
      'cilium_lb_sock_slot_rev',
      'cilium_lb_sock_slots',
    ],
    constants: {
      MONITOR_AGGREGATION: 4,
      ALLOW_LOCALHOST: 4,
      LB_SELECTION: 4,
      MAGLEV_TABLE_SIZE: 4,
      HASH_INIT4_SEED: 4,
      CT_ACCOUNTING: 4,
      ENCAP_IFINDEX: 4,
    },
  },
} as const satisfies Record<string, ObjectDescriptor>;

/** Integer #defines of the datapath headers. */
export const DEFS = {
  // bpf/lib/defs.h
  ENDPOINT_KEY_IPV4: 1,
  ENDPOINT_KEY_IPV6: 2,
  ID_UNKNOWN: 0,
  ID_HOST: 1,
  ID_WORLD: 2,
  ID_UNMANAGED: 3,
  ID_HEALTH: 4,
  ID_INIT: 5,
  ID_REMOTE_NODE: 6,
  ID_KUBE_APISERVER: 7,
  ID_INGRESS: 8,
  IPCACHE_PREFIX_HDR_BITS: 32,
  ENDPOINT_F_HOST: 1,
  POLICY_FULL_PREFIX: 64,
  POLICY_IDENTITY_DIR_PREFIX: 40,
  POLICY_PROTO_PREFIX: 48,
  POLICY_F_DENY: 1,
  POLICY_F_L4: 2,
  POLICY_MATCH_NONE: 0,
  POLICY_MATCH_L3_ONLY: 1,
  POLICY_MATCH_L3_L4: 2,
  POLICY_MATCH_L4_ONLY: 3,
  POLICY_MATCH_ALL: 4,
  CT_KEY_F_INGRESS: 1,
  CT_KEY_F_SERVICE: 2,
  CT_F_SEEN_NON_SYN: 1,
  CT_F_CLOSING: 2,
  CT_F_REPLY_SEEN: 4,
  CT_F_NODEPORT: 8,
  CT_F_PROXY_REDIRECT: 16,
  CT_F_FROM_PROXY: 32,
  CT_F_CLUSTER_PEER: 64,
  CT_SEEN_ANY: 128,
  CT_REPORT_DUE: 64,
  MARK_MAGIC_HOST_MASK: 3840,
  MARK_MAGIC_TO_PROXY: 512,
  MARK_MAGIC_PROXY_INGRESS: 2560,
  MARK_MAGIC_PROXY_EGRESS: 2816,
  CILIUM_NOTIFY_DROP: 1,
  CILIUM_NOTIFY_DBG_MSG: 2,
  CILIUM_NOTIFY_DBG_CAPTURE: 3,
  CILIUM_NOTIFY_TRACE: 4,
  CILIUM_NOTIFY_POLICY_VERDICT: 5,
  TRACE_TO_LXC: 0,
  TRACE_TO_PROXY: 1,
  TRACE_TO_HOST: 2,
  TRACE_TO_STACK: 3,
  TRACE_TO_OVERLAY: 4,
  TRACE_FROM_LXC: 5,
  TRACE_FROM_PROXY: 6,
  TRACE_FROM_HOST: 7,
  TRACE_FROM_STACK: 8,
  TRACE_FROM_OVERLAY: 9,
  TRACE_FROM_NETWORK: 10,
  TRACE_TO_NETWORK: 11,
  DROP_FILE_LXC: 1,
  DROP_FILE_HOST: 2,
  DROP_FILE_OVERLAY: 3,
  EVENT_CAPTURE_LEN: 128,
  CILIUM_TS_EVENT_VERSION: 1,
  TRACE_REASON_POLICY: 0,
  TRACE_REASON_CT_ESTABLISHED: 1,
  TRACE_REASON_CT_REPLY: 2,
  TRACE_REASON_CT_RELATED: 3,
  TRACE_REASON_UNKNOWN: 5,
  DROP_INVALID_SIP: 132,
  DROP_POLICY: 133,
  DROP_INVALID: 134,
  DROP_CT_INVALID_HDR: 135,
  DROP_CT_MISSING_ACK: 136,
  DROP_CT_UNKNOWN_PROTO: 137,
  DROP_UNKNOWN_L3: 139,
  DROP_MISSED_TAIL_CALL: 140,
  DROP_WRITE_ERROR: 141,
  DROP_UNKNOWN_L4: 142,
  DROP_UNKNOWN_ICMP_CODE: 143,
  DROP_UNKNOWN_ICMP_TYPE: 144,
  DROP_UNKNOWN_ICMP6_CODE: 145,
  DROP_UNKNOWN_ICMP6_TYPE: 146,
  DROP_NO_TUNNEL_KEY: 147,
  DROP_UNKNOWN_TARGET: 150,
  DROP_UNROUTABLE: 151,
  DROP_CSUM_L3: 153,
  DROP_CSUM_L4: 154,
  DROP_CT_CREATE_FAILED: 155,
  DROP_INVALID_EXTHDR: 156,
  DROP_FRAG_NOSUPPORT: 157,
  DROP_NO_SERVICE: 158,
  DROP_NO_TUNNEL_ENDPOINT: 160,
  DROP_PROXYMAP_CREATE_FAILED: 161,
  DROP_UNKNOWN_CT: 163,
  DROP_HOST_UNREACHABLE: 164,
  DROP_NO_CONFIG: 165,
  DROP_UNSUPPORTED_L2: 166,
  DROP_NAT_NO_MAPPING: 167,
  DROP_NAT_UNSUPP_PROTO: 168,
  DROP_NO_FIB: 169,
  DROP_INVALID_IDENTITY: 171,
  DROP_UNKNOWN_SENDER: 172,
  DROP_FORBIDDEN_ICMP6: 176,
  DROP_NOT_IN_SRC_RANGE: 177,
  DROP_PROXY_LOOKUP_FAILED: 178,
  DROP_PROXY_SET_FAILED: 179,
  DROP_PROXY_UNKNOWN_PROTO: 180,
  DROP_POLICY_DENY: 181,
  DROP_INVALID_VNI: 183,
  DROP_INVALID_TC_BUFFER: 184,
  DROP_POLICY_AUTH_REQUIRED: 189,
  DROP_CT_NO_MAP_FOUND: 190,
  DROP_TTL_EXCEEDED: 196,
  DROP_HOST_NOT_READY: 202,
  DROP_EP_NOT_READY: 203,
  LB_LOOKUP_SCOPE_EXT: 0,
  LB_LOOKUP_SCOPE_INT: 1,
  LB_PROTO_ANY: 0,
  SVC_FLAG_EXTERNAL_IP: 1,
  SVC_FLAG_NODEPORT: 2,
  SVC_FLAG_EXT_LOCAL_SCOPE: 4,
  SVC_FLAG_HOSTPORT: 8,
  SVC_FLAG_AFFINITY: 16,
  SVC_FLAG_LOADBALANCER: 32,
  SVC_FLAG_ROUTABLE: 64,
  SVC_FLAG_SOURCE_RANGE: 128,
  SVC_FLAG2_INT_LOCAL_SCOPE: 16,
  SVC_FLAG2_TWO_SCOPES: 32,
  LB_ALGORITHM_SHIFT: 24,
  LB_AFFINITY_TIMEOUT_MASK: 16777215,
  LB_ALGORITHM_RANDOM: 1,
  LB_ALGORITHM_MAGLEV: 2,
  BE_STATE_ACTIVE: 0,
  BE_STATE_TERMINATING: 1,
  BE_STATE_QUARANTINED: 2,
  BE_STATE_MAINTENANCE: 3,
  LB_SRC_RANGE_PREFIX_HDR_BITS: 32,
  NAT_KEY_F_FWD: 0,
  NAT_KEY_F_REV: 1,
  NAT_F_BACKEND_CLOSED_FIRST: 1,
  // bpf/lib/common.h
  TC_ACT_OK: 0,
  TC_ACT_SHOT: 2,
  TC_ACT_REDIRECT: 7,
  ETH_ALEN: 6,
  ETH_HLEN: 14,
  ETH_P_IP: 2048,
  ETH_P_ARP: 2054,
  ETH_P_IPV6: 34525,
  CIL_IPPROTO_HOPOPTS: 0,
  CIL_IPPROTO_ICMP: 1,
  CIL_IPPROTO_TCP: 6,
  CIL_IPPROTO_UDP: 17,
  CIL_IPPROTO_ROUTING: 43,
  CIL_IPPROTO_FRAGMENT: 44,
  CIL_IPPROTO_ICMPV6: 58,
  CIL_IPPROTO_NONE: 59,
  CIL_IPPROTO_DSTOPTS: 60,
  CIL_IPPROTO_SCTP: 132,
  TCP_FLAG_FIN: 1,
  TCP_FLAG_SYN: 2,
  TCP_FLAG_RST: 4,
  TCP_FLAG_PSH: 8,
  TCP_FLAG_ACK: 16,
  METRIC_INGRESS: 1,
  METRIC_EGRESS: 2,
  NSEC_PER_SEC: 1000000000,
  // bpf/lib/policy.h
  POLICY_F_UNENFORCED: 4,
  POLICY_MAX_LAYERS: 4,
  POLICY_LAYERS_SIZE: 4096,
  POLICY_LAYER_EXACT_DENY: 1,
  POLICY_LAYER_ANY_DENY: 2,
  POLICY_LAYER_EXACT_ALLOW: 3,
  // bpf/lib/config/node.h
  CT_SYN_TIMEOUT: 60,
  CT_CONNECTION_LIFETIME_TCP: 21600,
  CT_CONNECTION_LIFETIME_NONTCP: 60,
  CT_CLOSE_TIMEOUT: 10,
  NODEPORT_PORT_MIN: 30000,
  NODEPORT_PORT_MAX: 32767,
  NODEPORT_SNAT_PORT_MIN: 61000,
  NODEPORT_SNAT_PORT_MAX: 65535,
  NODEPORT_SNAT_RETRIES: 32,
  NODEPORT_TIME_WAIT: 65,
  // bpf/lib/config/sizes.h
  IPCACHE_MAP_SIZE: 512000,
  ENDPOINTS_MAP_SIZE: 65535,
  POLICY_MAP_SIZE: 16384,
  POLICY_MAPS_OUTER_SIZE: 65536,
  CT_MAP_SIZE_TCP: 262144,
  METRICS_MAP_SIZE: 65536,
  METRICS_FWD_MAP_SIZE: 8192,
  LB_MAP_SIZE: 65536,
  LB_SERVICE_MAP_SIZE: 262144,
  LB_BACKEND_MAP_SIZE: 262144,
  LB_SOCK_SLOTS: 65536,
  LB_MAGLEV_LUT_SIZE: 16381,
  NODEPORT_NAT_MAP_SIZE: 131072,
} as const;
