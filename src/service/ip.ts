/**
 * Address helpers on the hot path (every endpoint address of every slice): IPv4 without bigints.
 * Pure.
 */
import { formatIp, type IpFamily, parseIp } from '../labels/cidr.js';
import { LbError } from './errors.js';

/** A dotted quad without leading zeros (what validation lets through) as a u32; undefined otherwise. */
export function ipv4Value(s: string): number | undefined {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined; // a leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return undefined;
    } else return undefined;
  }
  return dots === 3 && digits > 0 ? v * 256 + part : undefined;
}

/**
 * An address in canonical text with a value to order by (a number for IPv4: this runs for every
 * endpoint address, and dotted quads without leading zeros are already canonical). `what` names
 * the object in the error (a function: built only then).
 */
export function canonicalIp(
  s: string,
  what: string | (() => string),
): { family: IpFamily; address: string; value: number | bigint } {
  const v4 = ipv4Value(s);
  if (v4 !== undefined) return { family: 4, address: s, value: v4 };
  const ip = parseIp(s);
  if (ip === undefined)
    throw new LbError(
      `${typeof what === 'string' ? what : what()}: ${JSON.stringify(s)} is not an IP address`,
    );
  return { family: ip.family, address: formatIp(ip.family, ip.addr), value: ip.addr };
}
