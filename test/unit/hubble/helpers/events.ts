/**
 * Test encoder for datapath events, written from bpf/lib/defs.h directly (its
 * own offsets, not src/hubble/layout.ts), plus a packet builder for the
 * captured bytes (Ethernet + IPv4/IPv6 + TCP/UDP/ICMP).
 */

export interface PacketSpec {
  src: string;
  dst: string;
  proto: 'tcp' | 'udp' | 'icmp' | 'sctp';
  sport?: number;
  dport?: number;
  /** TCP flags byte: FIN 1, SYN 2, RST 4, PSH 8, ACK 16 */
  flags?: number;
  icmpType?: number;
  icmpCode?: number;
  srcMac?: string;
  dstMac?: string;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

function macBytes(m: string): number[] {
  return m.split(':').map((x) => Number.parseInt(x, 16));
}

function v4(s: string): number[] {
  return s.split('.').map(Number);
}

function v6(s: string): number[] {
  const [h, t] = s.split('::') as [string, string | undefined];
  const hs = h ? h.split(':') : [];
  const ts = t ? t.split(':') : [];
  const groups = [...hs, ...new Array(8 - hs.length - ts.length).fill('0'), ...ts].map((g) =>
    Number.parseInt(g, 16),
  );
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** Ethernet + IP + L4 header bytes (no payload). */
export function packet(p: PacketSpec): Uint8Array {
  const isV6 = p.src.includes(':');
  const eth = [
    ...macBytes(p.dstMac ?? '0a:00:00:00:00:02'),
    ...macBytes(p.srcMac ?? '0a:00:00:00:00:01'),
    ...(isV6 ? [0x86, 0xdd] : [0x08, 0x00]),
  ];
  const protoNum = p.proto === 'tcp' ? 6 : p.proto === 'udp' ? 17 : p.proto === 'sctp' ? 132 : isV6 ? 58 : 1;
  let l4: number[];
  const sp = p.sport ?? 0;
  const dp = p.dport ?? 0;
  if (p.proto === 'tcp') {
    l4 = [
      sp >> 8,
      sp & 0xff,
      dp >> 8,
      dp & 0xff,
      0,
      0,
      0,
      1,
      0,
      0,
      0,
      0,
      0x50,
      p.flags ?? 0,
      0xff,
      0xff,
      0,
      0,
      0,
      0,
    ];
  } else if (p.proto === 'udp' || p.proto === 'sctp') {
    l4 = [sp >> 8, sp & 0xff, dp >> 8, dp & 0xff, 0, 8, 0, 0];
  } else {
    l4 = [p.icmpType ?? 8, p.icmpCode ?? 0, 0, 0, 0, 1, 0, 1];
  }
  let ip: number[];
  if (isV6) {
    ip = [0x60, 0, 0, 0, 0, l4.length, protoNum, 64, ...v6(p.src), ...v6(p.dst)];
  } else {
    const tot = 20 + l4.length;
    ip = [0x45, 0, tot >> 8, tot & 0xff, 0, 1, 0x40, 0, 64, protoNum, 0, 0, ...v4(p.src), ...v4(p.dst)];
  }
  return Uint8Array.from([...eth, ...ip, ...l4]);
}

interface Common {
  source: number;
  ktimeNs: bigint;
  pkt: Uint8Array;
  version?: number;
}

function header(buf: Uint8Array, type: number, subtype: number, c: Common): DataView {
  const dv = new DataView(buf.buffer);
  buf[0] = type; // event_hdr.type
  buf[1] = subtype; // .subtype
  dv.setUint16(2, c.source, true); // .source
  dv.setUint32(4, 0xabcdef, true); // .hash
  dv.setUint32(8, c.pkt.length + 40, true); // .len_orig
  dv.setUint16(12, Math.min(c.pkt.length, 128), true); // .len_cap
  dv.setUint16(14, c.version ?? 1, true); // .version
  return dv;
}

/** struct trace_notify (168 bytes). */
export function traceEvent(
  c: Common & {
    obsPoint: number;
    srcLabel: number;
    dstLabel: number;
    dstId?: number;
    reason: number;
    ifindex?: number;
  },
): Uint8Array {
  const buf = new Uint8Array(168);
  const dv = header(buf, 4, c.obsPoint, c);
  dv.setUint32(16, c.srcLabel, true);
  dv.setUint32(20, c.dstLabel, true);
  dv.setUint16(24, c.dstId ?? 0, true);
  buf[26] = c.reason;
  buf[27] = c.pkt[12] === 0x86 ? 1 : 0;
  dv.setUint32(28, c.ifindex ?? 0, true);
  dv.setBigUint64(32, c.ktimeNs, true);
  buf.set(c.pkt.subarray(0, 128), 40);
  return buf;
}

/** struct drop_notify (176 bytes). */
export function dropEvent(
  c: Common & { reason: number; srcLabel: number; dstLabel: number; dstId?: number; ifindex?: number },
): Uint8Array {
  const buf = new Uint8Array(176);
  const dv = header(buf, 1, c.reason, c);
  dv.setUint32(16, c.srcLabel, true);
  dv.setUint32(20, c.dstLabel, true);
  dv.setUint16(24, c.dstId ?? 0, true);
  buf[26] = 1; // file: bpf_lxc
  buf[27] = c.pkt[12] === 0x86 ? 1 : 0;
  dv.setUint32(28, c.ifindex ?? 0, true);
  dv.setBigUint64(32, c.ktimeNs, true);
  dv.setInt32(40, 0, true); // ext_error
  buf.set(c.pkt.subarray(0, 128), 48);
  return buf;
}

/** struct policy_verdict_notify (176 bytes); type 9 (earlier datapath builds) unless given (5 = defs.h and upstream). */
export function verdictEvent(
  c: Common & {
    dir: 1 | 2;
    remoteLabel: number;
    verdict: number;
    dstPort: number;
    proto: number;
    matchType: number;
    audited?: boolean;
    ruleCookie?: number;
    type?: number;
  },
): Uint8Array {
  const buf = new Uint8Array(176);
  const dv = header(buf, c.type ?? 9, c.dir, c);
  dv.setUint32(16, c.remoteLabel, true);
  dv.setInt32(20, c.verdict, true);
  dv.setUint16(24, c.dstPort, true);
  buf[26] = c.proto;
  buf[27] = c.dir;
  buf[28] = c.pkt[12] === 0x86 ? 1 : 0;
  buf[29] = c.matchType;
  buf[30] = c.audited ? 1 : 0;
  dv.setUint32(32, c.ruleCookie ?? 0, true);
  dv.setBigUint64(40, c.ktimeNs, true);
  buf.set(c.pkt.subarray(0, 128), 48);
  return buf;
}

/** A small world: two pods in default, one in kube-system, a remote pod and "world". */
export const PODS = {
  tiefighter: {
    ip: '10.0.1.10',
    ip6: 'fd00::10',
    id: 1234,
    ep: 101,
    ns: 'default',
    pod: 'tiefighter',
    labels: [
      'k8s:app=tiefighter',
      'k8s:class=tiefighter',
      'k8s:io.kubernetes.pod.namespace=default',
      'k8s:org=empire',
    ],
  },
  deathstar: {
    ip: '10.0.1.20',
    ip6: 'fd00::20',
    id: 5678,
    ep: 202,
    ns: 'default',
    pod: 'deathstar-6f87c5b7f6-abcde',
    labels: [
      'k8s:app=deathstar',
      'k8s:class=deathstar',
      'k8s:io.kubernetes.pod.namespace=default',
      'k8s:org=empire',
    ],
  },
  coredns: {
    ip: '10.0.1.30',
    ip6: 'fd00::30',
    id: 3000,
    ep: 303,
    ns: 'kube-system',
    pod: 'coredns-7db6d8ff4d-xyz',
    labels: ['k8s:io.kubernetes.pod.namespace=kube-system', 'k8s:k8s-app=kube-dns'],
  },
  xwing: {
    ip: '10.0.2.40',
    ip6: 'fd00:0:0:2::40',
    id: 7000,
    ep: 0,
    ns: 'default',
    pod: 'xwing',
    labels: ['k8s:app=xwing', 'k8s:io.kubernetes.pod.namespace=default', 'k8s:org=alliance'],
  },
} as const;

export const IDENTITY_LABELS: Record<number, string[]> = {
  1: ['reserved:host'],
  2: ['reserved:world'],
  ...Object.fromEntries(Object.values(PODS).map((p) => [p.id, [...p.labels]])),
};

/** Parser-context getters over PODS: local pods have an endpoint ID; xwing is remote (ipcache only). */
export function worldGetters() {
  const byIp = new Map<
    string,
    { id?: number; identity: number; namespace: string; podName: string; labels: readonly string[] }
  >();
  for (const p of Object.values(PODS)) {
    const info = {
      ...(p.ep ? { id: p.ep } : {}),
      identity: p.id,
      namespace: p.ns,
      podName: p.pod,
      labels: p.labels,
    };
    byIp.set(p.ip, info);
    byIp.set(p.ip6, info);
  }
  return {
    endpointByIp: (ip: string) => byIp.get(ip),
    identityLabels: (id: number) => IDENTITY_LABELS[id],
  };
}

/** ClusterIP services over PODS: frontend and backend addresses, as the agent's service state answers. */
export const SERVICES = {
  deathstar: {
    name: 'deathstar',
    namespace: 'default',
    vip: '10.96.0.50',
    port: 80,
    protocol: 'TCP',
    backends: [PODS.deathstar.ip],
  },
  kubeDns: {
    name: 'kube-dns',
    namespace: 'kube-system',
    vip: '10.96.0.10',
    port: 53,
    protocol: 'UDP',
    backends: [PODS.coredns.ip, PODS.coredns.ip6],
  },
  /** A service without backends: connections to it are dropped (Service backend not found). */
  admin: {
    name: 'deathstar-admin',
    namespace: 'default',
    vip: '10.96.0.51',
    port: 8080,
    protocol: 'TCP',
    backends: [],
  },
} as const;

/** serviceByAddress over SERVICES (frontends and backends), recording each lookup. */
export function serviceGetter(calls: string[] = []) {
  const byAddr = new Map<string, { name: string; namespace: string }>();
  for (const s of Object.values(SERVICES)) {
    const svc = { name: s.name, namespace: s.namespace };
    for (const ip of [s.vip, ...s.backends]) byAddr.set(`${ip}:${s.port}/${s.protocol}`, svc);
  }
  return {
    serviceByAddress: (ip: string, port: number, protocol: 'TCP' | 'UDP') => {
      calls.push(`${ip}:${port}/${protocol}`);
      return byAddr.get(`${ip}:${port}/${protocol}`);
    },
  };
}

/** The tiefighter's TCP SYN to the deathstar on port 80, traced as it leaves the tiefighter (FROM_ENDPOINT, new). */
export function tiefighterSyn(sport = 51234, ktimeNs = 0n): Uint8Array {
  const { tiefighter: tf, deathstar: ds } = PODS;
  return traceEvent({
    obsPoint: 5,
    source: tf.ep,
    srcLabel: tf.id,
    dstLabel: ds.id,
    reason: 0,
    ktimeNs,
    pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport, dport: 80, flags: TCP_SYN }),
  });
}
