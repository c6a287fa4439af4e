/** Crafted Ethernet frames for BPF_PROG_TEST_RUN: ARP, IPv4/IPv6 with TCP/UDP/ICMP. */
import { parseIp, parseMac } from '../../../src/datapath/index.js';

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, ACK: 0x10 } as const;

export function csum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2) s += b[b.length - 1]! << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

export function eth(dst: string, src: string, proto: number): Uint8Array {
  const b = Buffer.alloc(14);
  b.set(parseMac(dst), 0);
  b.set(parseMac(src), 6);
  b.writeUInt16BE(proto, 12);
  return b;
}

export function ipv4(src: string, dst: string, proto: number, payload: Uint8Array, ttl = 64): Uint8Array {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(1, 4);
  h[8] = ttl;
  h[9] = proto;
  h.set(parseIp(src).bytes, 12);
  h.set(parseIp(dst).bytes, 16);
  h.writeUInt16BE(csum(h), 10);
  return cat(h, payload);
}

export function ipv6(src: string, dst: string, nh: number, payload: Uint8Array, hopLimit = 64): Uint8Array {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payload.length, 4);
  h[6] = nh;
  h[7] = hopLimit;
  h.set(parseIp(src).bytes, 8);
  h.set(parseIp(dst).bytes, 24);
  return cat(h, payload);
}

export function tcp(sport: number, dport: number, flags: number): Uint8Array {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  b.writeUInt32BE(1, 4);
  b[12] = 5 << 4;
  b[13] = flags;
  b.writeUInt16BE(65535, 14);
  return b;
}

export function udp(sport: number, dport: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  b.writeUInt16BE(8, 4);
  return b;
}

export function icmp(type: number, code: number, id: number, seq = 1): Uint8Array {
  const b = Buffer.alloc(8);
  b[0] = type;
  b[1] = code;
  b.writeUInt16BE(id, 4);
  b.writeUInt16BE(seq, 6);
  b.writeUInt16BE(csum(b), 2);
  return b;
}

export function arp(op: number, sha: string, spa: string, tha: string, tpa: string): Uint8Array {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0);
  b.writeUInt16BE(0x0800, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(op, 6);
  b.set(parseMac(sha), 8);
  b.set(parseIp(spa).bytes, 14);
  b.set(parseMac(tha), 18);
  b.set(parseIp(tpa).bytes, 24);
  return b;
}

/** ICMPv6 checksum over the pseudo header (src, dst, length, next header 58) and the message. */
export function icmp6Csum(src: string, dst: string, msg: Uint8Array): number {
  const ph = Buffer.alloc(40);
  ph.set(parseIp(src).bytes, 0);
  ph.set(parseIp(dst).bytes, 16);
  ph.writeUInt32BE(msg.length, 32);
  ph[39] = 58;
  return csum(cat(ph, msg));
}

/** An ICMPv6 message (type, code, then `body` after the 4-byte header) with its checksum. */
export function icmp6(src: string, dst: string, type: number, body: Uint8Array): Uint8Array {
  const b = Buffer.from(cat(Uint8Array.of(type, 0, 0, 0), body));
  b.writeUInt16BE(icmp6Csum(src, dst, b), 2);
  return b;
}

/** Neighbour solicitation body for `target` (reserved word, target, source link-layer option). */
export function nsBody(target: string, mac: string): Uint8Array {
  return cat(new Uint8Array(4), parseIp(target).bytes, Uint8Array.of(1, 1), parseMac(mac));
}

/** The solicited-node multicast group of an IPv6 address (ff02::1:ffXX:XXXX). */
export function solicitedNode(ip: string): string {
  const b = parseIp(ip).bytes;
  const h = (i: number) => b[i]!.toString(16).padStart(2, '0');
  return `ff02::1:ff${h(13)}:${h(14)}${h(15)}`;
}

export const frame = {
  v4: (smac: string, dmac: string, src: string, dst: string, proto: number, l4: Uint8Array, ttl = 64) =>
    cat(eth(dmac, smac, 0x0800), ipv4(src, dst, proto, l4, ttl)),
  v6: (smac: string, dmac: string, src: string, dst: string, nh: number, l4: Uint8Array, hopLimit = 64) =>
    cat(eth(dmac, smac, 0x86dd), ipv6(src, dst, nh, l4, hopLimit)),
  arp: (smac: string, dmac: string, body: Uint8Array) => cat(eth(dmac, smac, 0x0806), body),
};
