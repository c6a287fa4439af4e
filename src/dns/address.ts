/** `IP`, `IP:PORT` and `[IPv6]:PORT` as the DNS server's listen and upstream flags take them. */
import { isIP } from 'node:net';
import { DnsArgumentError } from './errors.js';

export interface HostPort {
  host: string;
  port: number;
  family: 4 | 6;
}

export function parseHostPort(text: string, defaultPort: number, field: string): HostPort {
  let host = text;
  let port = String(defaultPort);
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = bracketed[2];
  } else if (isIP(text) === 0) {
    const i = text.lastIndexOf(':');
    if (i > 0 && isIP(text.slice(0, i)) === 4) {
      host = text.slice(0, i);
      port = text.slice(i + 1);
    }
  }
  const family = isIP(host);
  if (family === 0)
    throw new DnsArgumentError(field, `"${text}" is not IP, IP:PORT or [IPv6]:PORT (IP addresses only)`);
  const n = /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
  if (!(n >= 0 && n <= 65535)) throw new DnsArgumentError(field, `"${text}": port must be 0..65535`);
  return { host, port: n, family: family as 4 | 6 };
}

export function formatHostPort(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
