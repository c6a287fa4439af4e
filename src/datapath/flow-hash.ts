/**
 * The datapath's Maglev flow hash (bpf/lib/lb_xlate.h lb4_flow_hash, bpf/lib/jhash.h) in
 * TypeScript: which entry of a service's Maglev table a flow lands on. Upstream's hash:
 * jhash_3words(saddr, dport << 16 | sport, protocol, seed), the words as the datapath loads them
 * from the packet on a little-endian machine (addresses and ports keep their wire bytes), the
 * destination address left out, the client's port 0 for a service with session affinity.
 */
import { parseIp } from './maps/addr.js';

const JHASH_INITVAL = 0xdeadbeef;

function rol32(w: number, s: number): number {
  return ((w << s) | (w >>> (32 - s))) >>> 0;
}

/** The kernel's jhash_3words(a, b, c, initval) (lookup3's final mix), on u32s. */
export function jhash3Words(a: number, b: number, c: number, initval: number): number {
  const init = (initval + JHASH_INITVAL + (3 << 2)) >>> 0;
  a = (a + init) >>> 0;
  b = (b + init) >>> 0;
  c = (c + init) >>> 0;
  c = ((c ^ b) - rol32(b, 14)) >>> 0;
  a = ((a ^ c) - rol32(c, 11)) >>> 0;
  b = ((b ^ a) - rol32(a, 25)) >>> 0;
  c = ((c ^ b) - rol32(b, 16)) >>> 0;
  a = ((a ^ c) - rol32(c, 4)) >>> 0;
  b = ((b ^ a) - rol32(a, 14)) >>> 0;
  c = ((c ^ b) - rol32(b, 24)) >>> 0;
  return c;
}

/** A port as the datapath holds it in a register: its two wire bytes read little-endian. */
function wirePort(port: number): number {
  return ((port & 0xff) << 8) | (port >>> 8);
}

export interface Flow4 {
  /** The client's IPv4 address. */
  saddr: string;
  /** The client's port (ignored with `affinity`). */
  sport: number;
  /** The frontend's port. */
  dport: number;
  /** IP protocol number. */
  protocol: number;
}

/**
 * The Maglev flow hash of an IPv4 flow to a service frontend with `seed` (HASH_INIT4_SEED,
 * NodeDatapathConfig.lbHashSeed). `affinity`: the service has session affinity (client port 0).
 */
export function maglevFlowHash4(flow: Flow4, seed: number, affinity = false): number {
  const ip = parseIp(flow.saddr);
  if (ip.family !== 4) throw new TypeError(`saddr: ${flow.saddr} is not an IPv4 address`);
  const b = ip.bytes;
  const saddr = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  const ports = ((wirePort(flow.dport) << 16) | (affinity ? 0 : wirePort(flow.sport))) >>> 0;
  return jhash3Words(saddr, ports, flow.protocol, seed >>> 0);
}

/** The Maglev table entry (0..tableSize-1) a flow picks its backend from. */
export function maglevSlot(flow: Flow4, seed: number, tableSize: number, affinity = false): number {
  return maglevFlowHash4(flow, seed, affinity) % tableSize;
}
