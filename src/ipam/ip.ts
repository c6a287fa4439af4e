/** IPv4/IPv6 address and CIDR arithmetic on bigints (no I/O). */
import { formatIpv6Groups, ipv6GroupsOfBigint } from '../common/ip.js';
import { InvalidCidrError } from './errors.js';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

export function familyBits(f: Family): number {
  return f === 4 ? 32 : 128;
}

export function parseIPv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p.startsWith('0'))) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

export function parseIPv6(s: string): bigint | undefined {
  if (s.includes('%')) return undefined;
  let head = s;
  let tail = '';
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    if (s.indexOf('::', dbl + 1) >= 0) return undefined;
    head = s.slice(0, dbl);
    tail = s.slice(dbl + 2);
  }
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (i === items.length - 1 && it.includes('.')) {
        const v4 = parseIPv4(it);
        if (v4 === undefined) return undefined;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return undefined;
        out.push(Number.parseInt(it, 16));
      }
    }
    return out;
  };
  const h = groups(head);
  const t = groups(tail);
  if (!h || !t) return undefined;
  let all: number[];
  if (dbl >= 0) {
    const fill = 8 - h.length - t.length;
    if (fill < 1) return undefined;
    all = [...h, ...new Array<number>(fill).fill(0), ...t];
  } else {
    all = h;
  }
  if (all.length !== 8) return undefined;
  let v = 0n;
  for (const g of all) v = (v << 16n) | BigInt(g);
  return v;
}

export function parseIP(s: string): { family: Family; value: bigint } {
  const v4 = parseIPv4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = parseIPv6(s);
  if (v6 !== undefined) return { family: 6, value: v6 };
  throw new InvalidCidrError(s, 'not an IPv4 or IPv6 address');
}

export function formatIP(family: Family, v: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  }
  return formatIpv6Groups(ipv6GroupsOfBigint(v));
}

/** Parse "a.b.c.d/n" or "x::/n". Host bits must be zero unless `lenient`. */
export function parseCidr(s: string, lenient = false): Cidr {
  const slash = s.indexOf('/');
  if (slash < 0) throw new InvalidCidrError(s, 'missing /prefix');
  const { family, value } = parseIP(s.slice(0, slash));
  const ps = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(ps)) throw new InvalidCidrError(s, 'bad prefix length');
  const prefix = Number(ps);
  const bits = familyBits(family);
  if (prefix > bits) throw new InvalidCidrError(s, `prefix length > ${bits}`);
  const base = value & prefixMask(family, prefix);
  if (base !== value && !lenient) throw new InvalidCidrError(s, 'host bits set');
  return { family, base, prefix };
}

export function prefixMask(family: Family, prefix: number): bigint {
  const bits = BigInt(familyBits(family));
  const all = (1n << bits) - 1n;
  return (all >> BigInt(prefix)) ^ all;
}

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(familyBits(c.family) - c.prefix);
}

export function formatCidr(c: Cidr): string {
  return `${formatIP(c.family, c.base)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, family: Family, v: bigint): boolean {
  return family === c.family && (v & prefixMask(family, c.prefix)) === c.base;
}

/** Canonical text form of an address (e.g. compresses IPv6). */
export function canonicalIP(s: string): string {
  const { family, value } = parseIP(s);
  return formatIP(family, value);
}
