/**
 * IP prefixes and CIDR labels.
 *
 * A CIDR identity carries `cidr:<prefix>` for its own prefix plus `reserved:world` (everything outside
 * the cluster is "world"). Selectors written with a `cidr:` key match by *containment*: the selector
 * `cidr:10.0.0.0/8` selects every identity whose prefix lies inside 10.0.0.0/8. That replaces
 * upstream's older scheme of attaching one label per ancestor prefix, with the same result.
 * IPv6 prefixes are written with `-` instead of `:` in labels (`cidr:2001-db8--/32`), as upstream,
 * since `:` separates the label source.
 */
import { CiliumTsError } from '../common/errors.js';
import { formatIpv6Groups, ipv6GroupsOfBigint } from '../common/ip.js';
import { type Label, LabelSource, makeLabel } from './label.js';

export type IpFamily = 4 | 6;

export interface Prefix {
  readonly family: IpFamily;
  /** Network address (host bits zero). */
  readonly addr: bigint;
  readonly len: number;
}

export class CidrParseError extends CiliumTsError {
  override readonly name = 'CidrParseError';
  override readonly code = 'invalid-argument';
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid CIDR ${JSON.stringify(input)}: ${reason}`);
  }
}

export function familyBits(f: IpFamily): number {
  return f === 4 ? 32 : 128;
}

function parseIPv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    if (p.length > 1 && p.startsWith('0')) return undefined; // no octal-looking octets
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIPv6(s: string): bigint | undefined {
  if (s.length === 0) return undefined;
  let head = s;
  let tailV4: bigint | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    tailV4 = parseIPv4(s.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = head.split('::');
  if (dbl.length > 2) return undefined;
  const parseGroups = (x: string): number[] | undefined => {
    if (x === '') return [];
    const gs = x.split(':');
    const out: number[] = [];
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const left = parseGroups(dbl[0]!);
  const right = dbl.length === 2 ? parseGroups(dbl[1]!) : [];
  if (left === undefined || right === undefined) return undefined;
  let groups: number[];
  if (dbl.length === 2) {
    const fill = 8 - left.length - right.length;
    if (fill < 1) return undefined;
    groups = [...left, ...new Array<number>(fill).fill(0), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return undefined;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

/** Parses an address (`10.0.0.1`, `2001:db8::1`). */
export function parseIp(s: string): { family: IpFamily; addr: bigint } | undefined {
  if (s.includes(':')) {
    const a = parseIPv6(s);
    return a === undefined ? undefined : { family: 6, addr: a };
  }
  const a = parseIPv4(s);
  return a === undefined ? undefined : { family: 4, addr: a };
}

function mask(family: IpFamily, len: number): bigint {
  const bits = familyBits(family);
  if (len === 0) return 0n;
  return ((1n << BigInt(len)) - 1n) << BigInt(bits - len);
}

export function makePrefix(family: IpFamily, addr: bigint, len: number): Prefix {
  return Object.freeze({ family, addr: addr & mask(family, len), len });
}

/**
 * Parses `a.b.c.d/n` or `x::y/n`; a bare address means a host prefix (/32, /128). Host bits are
 * cleared (10.1.2.3/8 → 10.0.0.0/8), as Go's net.ParseCIDR does for policy CIDRs.
 */
export function parsePrefix(s: string): Prefix {
  const slash = s.indexOf('/');
  const ipPart = slash >= 0 ? s.slice(0, slash) : s;
  const ip = parseIp(ipPart);
  if (ip === undefined) throw new CidrParseError(s, `${JSON.stringify(ipPart)} is not an IP address`);
  const bits = familyBits(ip.family);
  let len = bits;
  if (slash >= 0) {
    const lp = s.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(lp)) throw new CidrParseError(s, `bad prefix length ${JSON.stringify(lp)}`);
    len = Number(lp);
    if (len > bits) throw new CidrParseError(s, `prefix length ${len} exceeds ${bits}`);
  }
  return makePrefix(ip.family, ip.addr, len);
}

export function tryParsePrefix(s: string): Prefix | undefined {
  try {
    return parsePrefix(s);
  } catch {
    return undefined;
  }
}

export function formatIp(family: IpFamily, addr: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((sh) => ((addr >> sh) & 0xffn).toString()).join('.');
  }
  return formatIpv6Groups(ipv6GroupsOfBigint(addr));
}

export function formatPrefix(p: Prefix): string {
  return `${formatIp(p.family, p.addr)}/${p.len}`;
}

/** True if `inner` lies inside `outer` (equal prefixes count). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || inner.len < outer.len) return false;
  return (inner.addr & mask(outer.family, outer.len)) === outer.addr;
}

export function prefixEquals(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.len === b.len && a.addr === b.addr;
}

/** The two halves of a prefix one bit longer. */
function split(p: Prefix): [Prefix, Prefix] {
  const bits = familyBits(p.family);
  const bit = 1n << BigInt(bits - p.len - 1);
  return [makePrefix(p.family, p.addr, p.len + 1), makePrefix(p.family, p.addr | bit, p.len + 1)];
}

/**
 * `base` minus every prefix in `holes`, as a minimal list of prefixes (sorted by address). Holes
 * outside `base` are ignored; a hole covering `base` leaves nothing.
 */
export function subtractPrefixes(base: Prefix, holes: readonly Prefix[]): Prefix[] {
  const relevant = holes.filter((h) => h.family === base.family);
  const walk = (p: Prefix): Prefix[] => {
    if (relevant.some((h) => prefixContains(h, p))) return [];
    if (!relevant.some((h) => prefixContains(p, h))) return [p];
    const [a, b] = split(p);
    return [...walk(a), ...walk(b)];
  };
  return walk(base);
}

/** Label key used for a prefix in `cidr:` labels (IPv6 colons become dashes). */
export function cidrLabelKey(p: Prefix): string {
  const s = formatPrefix(p);
  return p.family === 6 ? s.replaceAll(':', '-') : s;
}

/** Parses a `cidr:` label key back into a prefix. */
export function parseCidrLabelKey(key: string): Prefix | undefined {
  const s = key.includes('.') || !key.includes('-') ? key : key.replaceAll('-', ':');
  return tryParsePrefix(s);
}

/** `cidr:<prefix>` */
export function cidrLabel(p: Prefix): Label {
  return makeLabel(LabelSource.Cidr, cidrLabelKey(p));
}

/** Labels of a CIDR identity: its prefix plus `reserved:world`. */
export function cidrIdentityLabels(p: Prefix): Label[] {
  return [cidrLabel(p), makeLabel(LabelSource.Reserved, 'world')];
}
