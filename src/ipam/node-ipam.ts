/**
 * Per-node pod IP allocation inside the node's CIDR(s). In each range the network address is skipped,
 * the first usable address is the node's router (gateway) IP, and for IPv4 the broadcast address is
 * never handed out. Allocation is by owner (container ID + interface name) and idempotent: asking
 * again for the same owner returns the same addresses. State round-trips through export()/import().
 */
import { AddressConflictError, IpamStateError, PoolExhaustedError } from './errors.js';
import {
  type Cidr,
  cidrContains,
  cidrSize,
  type Family,
  formatCidr,
  formatIP,
  parseCidr,
  parseIP,
} from './ip.js';

export interface IpamOwner {
  containerId: string;
  ifName: string;
  /** Informational: "namespace/name" of the pod. */
  pod?: string | undefined;
}

export interface AddressAllocation {
  /** Bare address, e.g. "10.200.0.5". */
  ip: string;
  /** The node CIDR the address came from, e.g. "10.200.0.0/24". */
  cidr: string;
  /** Prefix length of the node CIDR. */
  prefixLength: number;
  /** The node's router IP for this family (pods' default gateway). */
  gateway: string;
}

export interface PodAllocation {
  ipv4?: AddressAllocation;
  ipv6?: AddressAllocation;
}

export interface NodeIpamConfig {
  /** The node's IPv4 pod CIDR (e.g. "10.200.0.0/24"); at least one of ipv4/ipv6. */
  ipv4Cidr?: string | undefined;
  ipv6Cidr?: string | undefined;
}

export interface NodeIpamState {
  version: 1;
  ipv4?: RangeState;
  ipv6?: RangeState;
}

interface RangeState {
  cidr: string;
  /** Next-fit cursor (address to try first). */
  next: string;
  /** address → owner */
  allocations: Record<string, IpamOwner>;
}

export function ownerKey(o: Pick<IpamOwner, 'containerId' | 'ifName'>): string {
  return `${o.containerId}/${o.ifName}`;
}

class Range {
  readonly cidr: Cidr;
  readonly first: bigint;
  readonly last: bigint;
  readonly router: bigint;
  readonly capacity: bigint;
  next: bigint;
  readonly byIP = new Map<bigint, IpamOwner>();

  constructor(
    readonly text: string,
    readonly family: Family,
  ) {
    this.cidr = parseCidr(text);
    if (this.cidr.family !== family) throw new IpamStateError(`${text} is not an IPv${family} CIDR`);
    const size = cidrSize(this.cidr);
    // Need network + router + at least one pod (+ broadcast for v4).
    if (size < (family === 4 ? 4n : 4n))
      throw new IpamStateError(`${text} is too small for a node pod range`);
    this.router = this.cidr.base + 1n;
    this.first = this.cidr.base + 2n;
    this.last = this.cidr.base + size - (family === 4 ? 2n : 1n);
    this.capacity = this.last - this.first + 1n;
    this.next = this.first;
  }

  alloc(owner: IpamOwner): bigint {
    if (BigInt(this.byIP.size) >= this.capacity)
      throw new PoolExhaustedError(this.text, this.family, this.capacity);
    let v = this.next;
    for (let n = 0n; n < this.capacity; n++) {
      if (!this.byIP.has(v)) {
        this.byIP.set(v, owner);
        this.next = v === this.last ? this.first : v + 1n;
        return v;
      }
      v = v === this.last ? this.first : v + 1n;
    }
    throw new PoolExhaustedError(this.text, this.family, this.capacity);
  }

  check(v: bigint, ip: string): void {
    if (!cidrContains(this.cidr, this.family, v)) throw new AddressConflictError(ip, `not in ${this.text}`);
    if (v === this.router) throw new AddressConflictError(ip, 'reserved for the node router');
    if (v < this.first || v > this.last) throw new AddressConflictError(ip, 'network/broadcast address');
  }

  describe(v: bigint): AddressAllocation {
    return {
      ip: formatIP(this.family, v),
      cidr: formatCidr(this.cidr),
      prefixLength: this.cidr.prefix,
      gateway: formatIP(this.family, this.router),
    };
  }
}

export class NodeIpam {
  private readonly v4: Range | undefined;
  private readonly v6: Range | undefined;
  /** owner key → addresses */
  private readonly owners = new Map<string, { owner: IpamOwner; v4?: bigint; v6?: bigint }>();

  constructor(config: NodeIpamConfig) {
    this.v4 = config.ipv4Cidr ? new Range(config.ipv4Cidr, 4) : undefined;
    this.v6 = config.ipv6Cidr ? new Range(config.ipv6Cidr, 6) : undefined;
    if (!this.v4 && !this.v6) throw new IpamStateError('node IPAM needs an IPv4 and/or IPv6 CIDR');
  }

  /** Router (gateway) IPs of this node: first usable address of each range. */
  routerIPs(): { ipv4?: string; ipv6?: string } {
    const r: { ipv4?: string; ipv6?: string } = {};
    if (this.v4) r.ipv4 = formatIP(4, this.v4.router);
    if (this.v6) r.ipv6 = formatIP(6, this.v6.router);
    return r;
  }

  cidrs(): { ipv4?: string; ipv6?: string } {
    const r: { ipv4?: string; ipv6?: string } = {};
    if (this.v4) r.ipv4 = formatCidr(this.v4.cidr);
    if (this.v6) r.ipv6 = formatCidr(this.v6.cidr);
    return r;
  }

  /**
   * Allocate one address per enabled family for `owner`; idempotent for the same containerId+ifName.
   * `request` asks for specific addresses (e.g. restoring an endpoint); throws AddressConflictError if taken.
   */
  allocate(owner: IpamOwner, request: { ipv4?: string; ipv6?: string } = {}): PodAllocation {
    const key = ownerKey(owner);
    const have = this.owners.get(key);
    if (have) return this.describe(have);
    const entry: { owner: IpamOwner; v4?: bigint; v6?: bigint } = { owner: { ...owner } };
    try {
      if (this.v4) entry.v4 = this.take(this.v4, entry.owner, request.ipv4);
      if (this.v6) entry.v6 = this.take(this.v6, entry.owner, request.ipv6);
    } catch (e) {
      if (entry.v4 !== undefined) this.v4!.byIP.delete(entry.v4);
      throw e;
    }
    this.owners.set(key, entry);
    return this.describe(entry);
  }

  private take(r: Range, owner: IpamOwner, want: string | undefined): bigint {
    if (want === undefined) return r.alloc(owner);
    const { family, value } = parseIP(want);
    if (family !== r.family) throw new AddressConflictError(want, `not an IPv${r.family} address`);
    r.check(value, want);
    const cur = r.byIP.get(value);
    if (cur) throw new AddressConflictError(want, `already allocated to ${ownerKey(cur)}`);
    r.byIP.set(value, owner);
    return value;
  }

  private describe(e: { v4?: bigint; v6?: bigint }): PodAllocation {
    const out: PodAllocation = {};
    if (e.v4 !== undefined) out.ipv4 = this.v4!.describe(e.v4);
    if (e.v6 !== undefined) out.ipv6 = this.v6!.describe(e.v6);
    return out;
  }

  get(owner: Pick<IpamOwner, 'containerId' | 'ifName'>): PodAllocation | undefined {
    const e = this.owners.get(ownerKey(owner));
    return e ? this.describe(e) : undefined;
  }

  /** Release an owner's addresses; false if it had none (release is idempotent). */
  release(owner: Pick<IpamOwner, 'containerId' | 'ifName'>): boolean {
    const key = ownerKey(owner);
    const e = this.owners.get(key);
    if (!e) return false;
    if (e.v4 !== undefined) this.v4!.byIP.delete(e.v4);
    if (e.v6 !== undefined) this.v6!.byIP.delete(e.v6);
    this.owners.delete(key);
    return true;
  }

  /** Release every interface of a container; returns how many owners were released. */
  releaseContainer(containerId: string): number {
    let n = 0;
    for (const e of [...this.owners.values()]) {
      if (e.owner.containerId === containerId && this.release(e.owner)) n++;
    }
    return n;
  }

  list(): Array<{ owner: IpamOwner } & PodAllocation> {
    return [...this.owners.values()].map((e) => ({ owner: { ...e.owner }, ...this.describe(e) }));
  }

  stats(): { ipv4?: { used: number; capacity: bigint }; ipv6?: { used: number; capacity: bigint } } {
    const s: { ipv4?: { used: number; capacity: bigint }; ipv6?: { used: number; capacity: bigint } } = {};
    if (this.v4) s.ipv4 = { used: this.v4.byIP.size, capacity: this.v4.capacity };
    if (this.v6) s.ipv6 = { used: this.v6.byIP.size, capacity: this.v6.capacity };
    return s;
  }

  export(): NodeIpamState {
    const st: NodeIpamState = { version: 1 };
    const dump = (r: Range): RangeState => {
      const allocations: Record<string, IpamOwner> = {};
      for (const [v, o] of [...r.byIP].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
        allocations[formatIP(r.family, v)] = { ...o };
      return { cidr: formatCidr(r.cidr), next: formatIP(r.family, r.next), allocations };
    };
    if (this.v4) st.ipv4 = dump(this.v4);
    if (this.v6) st.ipv6 = dump(this.v6);
    return st;
  }

  /**
   * Replace the state with an export. The CIDRs must match the configured ones; an address used twice,
   * outside the range, or an owner holding two addresses of one family is rejected (state unchanged).
   */
  import(state: NodeIpamState): void {
    if (state?.version !== 1) throw new IpamStateError('unsupported node IPAM state');
    const staged = new Map<string, { owner: IpamOwner; v4?: bigint; v6?: bigint }>();
    const maps: { v4?: Map<bigint, IpamOwner>; v6?: Map<bigint, IpamOwner> } = {};
    const cursors: { v4?: bigint; v6?: bigint } = {};
    for (const fam of ['v4', 'v6'] as const) {
      const r = this[fam];
      const rs = fam === 'v4' ? state.ipv4 : state.ipv6;
      if (!r && !rs) continue;
      if (!r || !rs) throw new IpamStateError(`saved state and configuration disagree on IP${fam}`);
      if (formatCidr(parseCidr(rs.cidr)) !== formatCidr(r.cidr)) {
        throw new IpamStateError(
          `saved IP${fam} CIDR ${rs.cidr} differs from configured ${formatCidr(r.cidr)}`,
        );
      }
      const m = new Map<bigint, IpamOwner>();
      for (const [ip, owner] of Object.entries(rs.allocations ?? {})) {
        if (typeof owner?.containerId !== 'string' || typeof owner?.ifName !== 'string') {
          throw new IpamStateError(`bad owner for ${ip}`);
        }
        const { family, value } = parseIP(ip);
        if (family !== r.family) throw new IpamStateError(`${ip} is not IPv${r.family}`);
        try {
          r.check(value, ip);
        } catch (e) {
          throw new IpamStateError((e as Error).message);
        }
        if (m.has(value)) throw new IpamStateError(`${ip} allocated twice`);
        const o: IpamOwner = { containerId: owner.containerId, ifName: owner.ifName };
        if (owner.pod !== undefined) o.pod = owner.pod;
        const key = ownerKey(o);
        const e = staged.get(key) ?? { owner: o };
        if (e[fam] !== undefined) throw new IpamStateError(`owner ${key} holds two IP${fam} addresses`);
        e[fam] = value;
        staged.set(key, e);
        m.set(value, e.owner);
      }
      maps[fam] = m;
      const { value: next } = parseIP(rs.next);
      cursors[fam] = next >= r.first && next <= r.last ? next : r.first;
    }
    for (const fam of ['v4', 'v6'] as const) {
      const r = this[fam];
      if (!r) continue;
      r.byIP.clear();
      for (const [k, v] of maps[fam]!) r.byIP.set(k, v);
      r.next = cursors[fam]!;
    }
    this.owners.clear();
    for (const [k, v] of staged) this.owners.set(k, v);
  }
}
