/** Protocol numbers, port-range splitting for the LPM policy map, ICMP type names. */

export const Proto = {
  ANY: 0,
  ICMP: 1,
  IGMP: 2,
  TCP: 6,
  UDP: 17,
  ICMPv6: 58,
  VRRP: 112,
  SCTP: 132,
} as const;

export type L4ProtoName = 'TCP' | 'UDP' | 'SCTP' | 'ANY' | 'VRRP' | 'IGMP';

export const L4_PROTO_NAMES: readonly L4ProtoName[] = ['TCP', 'UDP', 'SCTP', 'ANY', 'VRRP', 'IGMP'];

export function protoNumber(name: string): number | undefined {
  return (Proto as Record<string, number>)[name.toUpperCase() === 'ICMPV6' ? 'ICMPv6' : name.toUpperCase()];
}

export function protoName(n: number): string {
  for (const [k, v] of Object.entries(Proto)) if (v === n) return k;
  return String(n);
}

/** Protocols that carry ports (an `ANY` rule with a port expands to these). */
export const PORT_PROTOCOLS: readonly number[] = [Proto.TCP, Proto.UDP, Proto.SCTP];

/** Policy map prefix lengths (bits after the prefixlen field): identity 32 + direction 8 + proto 8 + port 16. */
export const PREFIX_IDENTITY_ONLY = 40;
export const PREFIX_PROTO_ONLY = 48;
export const PREFIX_FULL = 64;

export interface PortBlock {
  /** First port of the block (aligned to its size). */
  readonly port: number;
  /** Number of fixed high-order port bits, 0..16; the key's prefixlen is 48 + this. */
  readonly bits: number;
}

/**
 * Splits [start, end] into the minimal list of aligned power-of-two blocks, each one LPM entry.
 * E.g. 80-444 → 80/12 (80-95), 96/11 (96-127), 128/9 (128-255), 256/9 (256-383), 384/11 (384-415),
 * 416/12 (416-431), 432/13 (432-439), 440/14 (440-443), 444/16.
 */
export function portRangeBlocks(start: number, end: number): PortBlock[] {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > 65535 || end < start) {
    throw new RangeError(`bad port range ${start}-${end}`);
  }
  const out: PortBlock[] = [];
  let p = start;
  while (p <= end) {
    // Largest block size that is aligned at p and does not pass end.
    let size = p === 0 ? 65536 : p & -p;
    while (p + size - 1 > end) size >>= 1;
    out.push({ port: p, bits: 16 - Math.log2(size) });
    p += size;
  }
  return out;
}

/** Port range covered by a block. */
export function blockRange(b: PortBlock): [number, number] {
  const size = 2 ** (16 - b.bits);
  return [b.port, b.port + size - 1];
}

export const ICMPV4_TYPES: Readonly<Record<string, number>> = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  Redirect: 5,
  Echo: 8,
  EchoRequest: 8,
  RouterAdvertisement: 9,
  RouterSelection: 10,
  TimeExceeded: 11,
  ParameterProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
  Photuris: 40,
  ExtendedEchoRequest: 42,
  ExtendedEchoReply: 43,
};

export const ICMPV6_TYPES: Readonly<Record<string, number>> = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  MulticastListenerQuery: 130,
  MulticastListenerReport: 131,
  MulticastListenerDone: 132,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  RedirectMessage: 137,
  RouterRenumbering: 138,
  ICMPNodeInformationQuery: 139,
  ICMPNodeInformationResponse: 140,
  InverseNeighborDiscoverySolicitation: 141,
  InverseNeighborDiscoveryAdvertisement: 142,
  HomeAgentAddressDiscoveryRequest: 144,
  HomeAgentAddressDiscoveryReply: 145,
  MobilePrefixSolicitation: 146,
  MobilePrefixAdvertisement: 147,
  DuplicateAddressRequestCodeSuffix: 157,
  DuplicateAddressConfirmationCodeSuffix: 158,
  ExtendedEchoRequest: 160,
  ExtendedEchoReply: 161,
};

/** Resolves an ICMP type given as number or CamelCase name for a family; undefined if invalid. */
export function icmpType(family: 'IPv4' | 'IPv6', t: number | string): number | undefined {
  if (typeof t === 'number') return Number.isInteger(t) && t >= 0 && t <= 255 ? t : undefined;
  if (/^[0-9]+$/.test(t)) return icmpType(family, Number(t));
  return (family === 'IPv4' ? ICMPV4_TYPES : ICMPV6_TYPES)[t];
}
