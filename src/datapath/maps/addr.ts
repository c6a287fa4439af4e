/** Address parsing/formatting for map keys: IPs and prefixes as wire-order bytes, MACs. */
import { isIPv4, isIPv6 } from 'node:net';
import { CiliumTsError } from '../../common/errors.js';
import { formatIpv6Groups, ipv6GroupsOfBytes } from '../../common/ip.js';

export type Family = 4 | 6;

export interface IpBytes {
  family: Family;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

export interface Prefix extends IpBytes {
  /** Prefix length in bits (0..32 / 0..128); host bits of `bytes` are zero. */
  len: number;
}

export class AddressError extends CiliumTsError {
  override readonly name = 'AddressError';
  override readonly code = 'invalid-argument';
}

export function parseIp(s: string): IpBytes {
  if (isIPv4(s)) return { family: 4, bytes: Uint8Array.from(s.split('.').map(Number)) };
  if (!isIPv6(s)) throw new AddressError(`not an IP address: ${JSON.stringify(s)}`);
  let text = s.replace(/%.*$/, '');
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':').map((x) => Number.parseInt(x, 16)) : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':').map((x) => Number.parseInt(x, 16)) : [];
  const groups = rest === undefined ? h : [...h, ...new Array<number>(8 - h.length - r.length).fill(0), ...r];
  groups.slice(0, 8).forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return { family: 6, bytes: out };
}

export function formatIp(family: Family, bytes: Uint8Array): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  return formatIpv6Groups(ipv6GroupsOfBytes(bytes));
}

/** "10.0.0.0/8", "fd00::/64", or a bare address (host prefix). Host bits are cleared. */
export function parsePrefix(s: string): Prefix {
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  const max = ip.family === 4 ? 32 : 128;
  const lenText = slash < 0 ? String(max) : s.slice(slash + 1);
  const len = Number(lenText);
  if (!/^\d+$/.test(lenText) || len > max)
    throw new AddressError(`bad prefix length in ${JSON.stringify(s)}`);
  const bytes = ip.bytes.slice();
  for (let bit = len; bit < max; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family: ip.family, bytes, len };
}

export function formatPrefix(p: Prefix): string {
  return `${formatIp(p.family, p.bytes)}/${p.len}`;
}

export function parseMac(s: string): Uint8Array {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p)))
    throw new AddressError(`not a MAC address: ${JSON.stringify(s)}`);
  return Uint8Array.from(parts.map((p) => Number.parseInt(p, 16)));
}

export function formatMac(b: Uint8Array): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Big-endian (wire) read of 4 bytes as an unsigned number. */
export function be32(b: Uint8Array, o = 0): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function be32Bytes(x: number): Uint8Array {
  return Uint8Array.of(x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff);
}
