/**
 * Cluster pool: carves the cluster's pod CIDRs into one CIDR per node (IPv4 default 10.200.0.0/16 into
 * /24s; IPv6, optional, e.g. fd00:10:200::/104 into /120s). Pure state; persist with export()/import().
 */
import { InvalidCidrError, IpamStateError, PoolExhaustedError } from './errors.js';
import { type Cidr, cidrSize, type Family, familyBits, formatCidr, parseCidr } from './ip.js';

export const DEFAULT_IPV4_CLUSTER_CIDR = '10.200.0.0/16';
export const DEFAULT_IPV4_NODE_MASK = 24;
export const DEFAULT_IPV6_CLUSTER_CIDR = 'fd00:10:200::/104';
export const DEFAULT_IPV6_NODE_MASK = 120;

export interface ClusterPoolConfig {
  /** IPv4 cluster CIDR and per-node mask size; `null` disables IPv4. Default 10.200.0.0/16, /24. */
  ipv4?: { cidr: string; nodeMaskSize: number } | null;
  /** IPv6 cluster CIDR and per-node mask size; absent disables IPv6. */
  ipv6?: { cidr: string; nodeMaskSize: number } | null;
}

export interface NodeCidrs {
  ipv4?: string;
  ipv6?: string;
}

export interface ClusterPoolState {
  version: 1;
  ipv4?: { cidr: string; nodeMaskSize: number };
  ipv6?: { cidr: string; nodeMaskSize: number };
  /** node name → its CIDRs */
  nodes: Record<string, NodeCidrs>;
}

class Carver {
  readonly cidr: Cidr;
  readonly count: bigint;
  private readonly step: bigint;
  /** index → node */
  readonly used = new Map<bigint, string>();

  constructor(
    readonly text: string,
    readonly family: Family,
    readonly nodeMaskSize: number,
  ) {
    this.cidr = parseCidr(text);
    if (this.cidr.family !== family) throw new InvalidCidrError(text, `expected an IPv${family} CIDR`);
    const minMask = family === 4 ? 30 : 126;
    if (!Number.isInteger(nodeMaskSize) || nodeMaskSize < this.cidr.prefix || nodeMaskSize > minMask) {
      throw new InvalidCidrError(
        text,
        `node mask size /${nodeMaskSize} must be within /${this.cidr.prefix}../${minMask}`,
      );
    }
    this.count = 1n << BigInt(nodeMaskSize - this.cidr.prefix);
    this.step = 1n << BigInt(familyBits(family) - nodeMaskSize);
  }

  cidrAt(i: bigint): string {
    return formatCidr({
      family: this.family,
      base: this.cidr.base + i * this.step,
      prefix: this.nodeMaskSize,
    });
  }

  indexOf(text: string): bigint {
    const c = parseCidr(text);
    if (c.family !== this.family || c.prefix !== this.nodeMaskSize) {
      throw new IpamStateError(
        `node CIDR ${text} does not match pool ${this.text} with /${this.nodeMaskSize}`,
      );
    }
    const off = c.base - this.cidr.base;
    if (off < 0n || off >= cidrSize(this.cidr))
      throw new IpamStateError(`node CIDR ${text} is outside pool ${this.text}`);
    return off / this.step;
  }

  allocate(node: string): string {
    if (BigInt(this.used.size) >= this.count)
      throw new PoolExhaustedError(this.text, this.family, this.count, 'node CIDRs');
    for (let i = 0n; i < this.count; i++) {
      if (!this.used.has(i)) {
        this.used.set(i, node);
        return this.cidrAt(i);
      }
    }
    throw new PoolExhaustedError(this.text, this.family, this.count, 'node CIDRs');
  }
}

export class ClusterPool {
  private readonly v4: Carver | undefined;
  private readonly v6: Carver | undefined;
  private readonly nodes = new Map<string, NodeCidrs>();

  constructor(config: ClusterPoolConfig = {}) {
    const v4 =
      config.ipv4 === undefined
        ? { cidr: DEFAULT_IPV4_CLUSTER_CIDR, nodeMaskSize: DEFAULT_IPV4_NODE_MASK }
        : config.ipv4;
    this.v4 = v4 ? new Carver(v4.cidr, 4, v4.nodeMaskSize) : undefined;
    this.v6 = config.ipv6 ? new Carver(config.ipv6.cidr, 6, config.ipv6.nodeMaskSize) : undefined;
    if (!this.v4 && !this.v6) throw new IpamStateError('cluster pool needs at least one of IPv4 and IPv6');
  }

  /** The node's CIDRs, allocating them on first call (idempotent per node name). */
  allocateNode(node: string): NodeCidrs {
    const have = this.nodes.get(node);
    if (have) return { ...have };
    const out: NodeCidrs = {};
    if (this.v4) out.ipv4 = this.v4.allocate(node);
    if (this.v6) {
      try {
        out.ipv6 = this.v6.allocate(node);
      } catch (e) {
        if (out.ipv4) this.v4!.used.delete(this.v4!.indexOf(out.ipv4));
        throw e;
      }
    }
    this.nodes.set(node, out);
    return { ...out };
  }

  getNode(node: string): NodeCidrs | undefined {
    const n = this.nodes.get(node);
    return n ? { ...n } : undefined;
  }

  releaseNode(node: string): boolean {
    const n = this.nodes.get(node);
    if (!n) return false;
    if (n.ipv4 && this.v4) this.v4.used.delete(this.v4.indexOf(n.ipv4));
    if (n.ipv6 && this.v6) this.v6.used.delete(this.v6.indexOf(n.ipv6));
    this.nodes.delete(node);
    return true;
  }

  listNodes(): Array<{ node: string } & NodeCidrs> {
    return [...this.nodes].map(([node, c]) => ({ node, ...c }));
  }

  export(): ClusterPoolState {
    const st: ClusterPoolState = { version: 1, nodes: {} };
    if (this.v4) st.ipv4 = { cidr: this.v4.text, nodeMaskSize: this.v4.nodeMaskSize };
    if (this.v6) st.ipv6 = { cidr: this.v6.text, nodeMaskSize: this.v6.nodeMaskSize };
    for (const [n, c] of this.nodes) st.nodes[n] = { ...c };
    return st;
  }

  /** Replace the state with an export; the pool configuration must match. */
  import(state: ClusterPoolState): void {
    if (state?.version !== 1 || typeof state.nodes !== 'object')
      throw new IpamStateError('unsupported cluster pool state');
    const same = (c: Carver | undefined, s: { cidr: string; nodeMaskSize: number } | undefined) =>
      (!c && !s) || (c && s && c.text === s.cidr && c.nodeMaskSize === s.nodeMaskSize);
    if (!same(this.v4, state.ipv4) || !same(this.v6, state.ipv6)) {
      throw new IpamStateError('saved cluster pool configuration differs from the configured one');
    }
    const v4Used = new Map<bigint, string>();
    const v6Used = new Map<bigint, string>();
    const nodes = new Map<string, NodeCidrs>();
    for (const [node, c] of Object.entries(state.nodes)) {
      const entry: NodeCidrs = {};
      for (const [fam, carver, used] of [
        ['ipv4', this.v4, v4Used],
        ['ipv6', this.v6, v6Used],
      ] as const) {
        const text = c[fam];
        if (!text) continue;
        if (!carver) throw new IpamStateError(`node ${node} has an ${fam} CIDR but ${fam} is disabled`);
        const i = carver.indexOf(text);
        if (used.has(i))
          throw new IpamStateError(`node CIDR ${text} assigned twice (${used.get(i)}, ${node})`);
        used.set(i, node);
        entry[fam] = carver.cidrAt(i);
      }
      nodes.set(node, entry);
    }
    for (const [c, used] of [
      [this.v4, v4Used],
      [this.v6, v6Used],
    ] as const) {
      if (!c) continue;
      c.used.clear();
      for (const [k, v] of used) c.used.set(k, v);
    }
    this.nodes.clear();
    for (const [k, v] of nodes) this.nodes.set(k, v);
  }
}
