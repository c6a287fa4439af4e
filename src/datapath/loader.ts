/**
 * Per-endpoint program loader. bpf_lxc.o is parsed once (and checked against the generated
 * layouts); each endpoint gets a copy with its constants written into .rodata, loaded against the
 * node's shared pinned maps, and attached with tcx to the host-side veth:
 *   cil_from_container → tcx ingress (what the pod sends)
 *   cil_to_container   → tcx egress  (what the node sends to the pod)
 * Links are pinned under `<bpffs>/links/<endpointId>/{ingress,egress}`, so traffic keeps flowing
 * while the agent is down. Loading an endpoint whose links are pinned (regeneration, agent restart)
 * swaps the programs in place with BPF_LINK_UPDATE: there is no moment without a program.
 */
import { mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  BpfSyscallError,
  Collection,
  CollectionSpec,
  type ConstantValue,
  EbpfError,
  ifindexOf,
  KeyNotFoundError,
  Link,
  type LinkInfo,
} from '../ebpf/index.js';
import { EndpointLoadError } from './errors.js';
import { parseIp, parseMac } from './maps/addr.js';
import { checkObjectLayouts } from './maps/check.js';
import { DatapathMaps } from './maps/index.js';

/** build/bpf/bpf_lxc.o of this checkout (from dist/src/datapath/). */
export const DEFAULT_LXC_OBJECT = fileURLToPath(new URL('../../../build/bpf/bpf_lxc.o', import.meta.url));

export const PROG_FROM_CONTAINER = 'cil_from_container';
export const PROG_TO_CONTAINER = 'cil_to_container';

export interface EndpointDatapathConfig {
  /** Endpoint ID (1..65535): LXC_ID, key of its policy trie, event source. */
  id: number;
  /** Security identity (SECLABEL). */
  identity: number;
  ipv4?: string | undefined;
  ipv6?: string | undefined;
  /** Pod MAC (eth0 inside the pod). */
  mac: string;
  /** Host-side veth MAC (the router MAC the pod sees). */
  nodeMac: string;
  /** Host-side veth: name or ifindex. */
  interface: string | number;
  /** Network namespace path of the host-side veth; default: the current one (the node's). */
  netns?: string | undefined;
  /** Gateway addresses the pod routes through (informational for the datapath). */
  routerIpv4?: string | undefined;
  routerIpv6?: string | undefined;
  /** MONITOR_AGGREGATION (default 1: trace new connections and TCP flag changes only). */
  monitorAggregation?: number;
  /** POLICY_AUDIT_MODE: report policy drops but allow them. */
  policyAuditMode?: boolean;
}

export interface EndpointDatapath {
  id: number;
  ifindex: number;
  /** True when pinned links existed and their programs were swapped in place. */
  replaced: boolean;
  ingress: LinkInfo;
  egress: LinkInfo;
  timings: { loadMs: number; attachMs: number };
}

export interface PinnedEndpoint {
  id: number;
  /** Link info (progId, ifindex) of each pinned direction; ifindex 0 = device gone. */
  ingress?: LinkInfo;
  egress?: LinkInfo;
}

export interface DatapathLoaderOptions {
  /** The node's bpffs directory: maps pinned by name directly in it, links under links/. */
  bpffs: string;
  /** Compiled endpoint object (default: build/bpf/bpf_lxc.o). */
  object?: string;
  /** Already opened maps of this node (otherwise opened/created from `bpffs`; then owned). */
  maps?: DatapathMaps;
}

const DIRECTIONS = [
  { dir: 'ingress', prog: PROG_FROM_CONTAINER },
  { dir: 'egress', prog: PROG_TO_CONTAINER },
] as const;

function ipBytes(ip: string | undefined, family: 4 | 6, what: string): Uint8Array {
  const len = family === 4 ? 4 : 16;
  if (!ip) return new Uint8Array(len);
  const a = parseIp(ip);
  if (a.family !== family) throw new TypeError(`${what}: ${ip} is not an IPv${family} address`);
  return a.bytes;
}

/** The .rodata constants of one endpoint (byte arrays are written exactly as given: wire order). */
export function endpointConstants(
  ep: EndpointDatapathConfig,
  ifindex: number,
): Record<string, ConstantValue> {
  if (!Number.isInteger(ep.id) || ep.id < 1 || ep.id > 0xffff)
    throw new RangeError(`endpoint ID ${ep.id} out of range 1..65535`);
  return {
    LXC_ID: ep.id,
    SECLABEL: ep.identity,
    LXC_IPV4: ipBytes(ep.ipv4, 4, 'ipv4'),
    LXC_IPV6: ipBytes(ep.ipv6, 6, 'ipv6'),
    LXC_MAC: parseMac(ep.mac),
    NODE_MAC: parseMac(ep.nodeMac),
    ROUTER_IPV4: ipBytes(ep.routerIpv4, 4, 'routerIpv4'),
    ROUTER_IPV6: ipBytes(ep.routerIpv6, 6, 'routerIpv6'),
    LXC_IFINDEX: ifindex,
    MONITOR_AGGREGATION: ep.monitorAggregation ?? 1,
    POLICY_AUDIT_MODE: ep.policyAuditMode ? 1 : 0,
  };
}

export class DatapathLoader implements Disposable {
  readonly maps: DatapathMaps;
  readonly spec: CollectionSpec;
  readonly linksDir: string;
  private readonly ownsMaps: boolean;

  private constructor(
    readonly bpffs: string,
    spec: CollectionSpec,
    maps: DatapathMaps,
    ownsMaps: boolean,
  ) {
    this.spec = spec;
    this.maps = maps;
    this.ownsMaps = ownsMaps;
    this.linksDir = join(bpffs, 'links');
  }

  /** Parses and checks the object, opens (or creates) the node's maps. */
  static open(opts: DatapathLoaderOptions): DatapathLoader {
    const object = opts.object ?? DEFAULT_LXC_OBJECT;
    const spec = CollectionSpec.fromFile(object);
    checkObjectLayouts(spec, object);
    for (const p of [PROG_FROM_CONTAINER, PROG_TO_CONTAINER])
      if (!spec.programs.has(p)) throw new EbpfError(`${object}: program ${p} is missing`);
    const maps = opts.maps ?? DatapathMaps.open(opts.bpffs);
    return new DatapathLoader(opts.bpffs, spec, maps, opts.maps === undefined);
  }

  /** Where an endpoint's link of one direction is pinned. */
  linkPath(endpointId: number, dir: 'ingress' | 'egress'): string {
    return join(this.linksDir, String(endpointId), dir);
  }

  /**
   * Loads the endpoint's programs with its constants and attaches them (or swaps them into the
   * pinned links of a previous load on the same interface).
   */
  load(ep: EndpointDatapathConfig): EndpointDatapath {
    const t0 = performance.now();
    let ifindex: number;
    try {
      ifindex = typeof ep.interface === 'number' ? ep.interface : ifindexOf(ep.interface, ep.netns);
    } catch (err) {
      throw new EndpointLoadError(ep.id, `interface ${ep.interface} not found`, { cause: err });
    }
    const spec = this.spec.copy();
    spec.rewriteConstants(endpointConstants(ep, ifindex));
    let coll: Collection;
    try {
      coll = Collection.load(spec, {
        mapReplacements: this.maps.replacements(),
        programs: [PROG_FROM_CONTAINER, PROG_TO_CONTAINER],
      });
    } catch (err) {
      throw new EndpointLoadError(ep.id, `loading programs failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const t1 = performance.now();
    try {
      mkdirSync(join(this.linksDir, String(ep.id)), { recursive: true });
      let replaced = true;
      const infos: Partial<Record<'ingress' | 'egress', LinkInfo>> = {};
      for (const { dir, prog } of DIRECTIONS) {
        const path = this.linkPath(ep.id, dir);
        const program = coll.program(prog);
        const existing = openPinnedLink(path);
        if (existing) {
          const info = existing.info();
          if (info.ifindex === ifindex && info.ifindex !== 0) {
            try {
              existing.update(program);
              infos[dir] = existing.info();
              continue;
            } finally {
              existing.close();
            }
          }
          // Stale pin (device gone or another interface): drop it and attach afresh.
          tryDetach(existing);
          existing.close();
          unlinkSync(path);
        }
        replaced = false;
        const link = Link.attachTcx({ program, direction: dir, interface: ifindex, netns: ep.netns });
        try {
          link.pin(path);
          infos[dir] = link.info();
        } catch (err) {
          tryDetach(link);
          throw err;
        } finally {
          link.close();
        }
      }
      return {
        id: ep.id,
        ifindex,
        replaced,
        ingress: infos.ingress!,
        egress: infos.egress!,
        timings: { loadMs: round(t1 - t0), attachMs: round(performance.now() - t1) },
      };
    } catch (err) {
      if (err instanceof EndpointLoadError) throw err;
      throw new EndpointLoadError(ep.id, `attaching programs failed: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      coll.close(); // the links keep the programs alive
    }
  }

  /** Detaches and unpins the endpoint's links. False when nothing was pinned. */
  remove(endpointId: number): boolean {
    let found = false;
    for (const { dir } of DIRECTIONS) {
      const path = this.linkPath(endpointId, dir);
      const l = openPinnedLink(path);
      if (!l) continue;
      found = true;
      tryDetach(l);
      l.close();
      unlinkSync(path);
    }
    try {
      rmdirSync(join(this.linksDir, String(endpointId)));
    } catch {
      // not there or not empty
    }
    return found;
  }

  /** Endpoints with pinned links (what a restarted agent adopts). */
  restore(): PinnedEndpoint[] {
    let dirs: string[];
    try {
      dirs = readdirSync(this.linksDir);
    } catch {
      return [];
    }
    const out: PinnedEndpoint[] = [];
    for (const d of dirs) {
      if (!/^\d+$/.test(d)) continue;
      const e: PinnedEndpoint = { id: Number(d) };
      for (const { dir } of DIRECTIONS) {
        const l = openPinnedLink(this.linkPath(e.id, dir));
        if (!l) continue;
        try {
          e[dir] = l.info();
        } finally {
          l.close();
        }
      }
      if (e.ingress || e.egress) out.push(e);
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** Writes the endpoint's cilium_lxc entries (one per address): local delivery to it. */
  writeEndpoint(ep: EndpointDatapathConfig & { ifindex?: number }, flags = 0): void {
    const ifindex =
      ep.ifindex ?? (typeof ep.interface === 'number' ? ep.interface : ifindexOf(ep.interface, ep.netns));
    for (const ip of [ep.ipv4, ep.ipv6]) {
      if (!ip) continue;
      this.maps.endpoints.upsert(ip, {
        ifindex,
        endpointId: ep.id,
        identity: ep.identity,
        mac: ep.mac,
        nodeMac: ep.nodeMac,
        flags,
      });
    }
  }

  /** Removes the endpoint's cilium_lxc entries. */
  deleteEndpoint(ep: Pick<EndpointDatapathConfig, 'ipv4' | 'ipv6'>): void {
    for (const ip of [ep.ipv4, ep.ipv6]) if (ip) this.maps.endpoints.delete(ip);
  }

  close(): void {
    if (this.ownsMaps) this.maps.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function openPinnedLink(path: string): Link | undefined {
  try {
    return Link.openPinned(path);
  } catch (err) {
    if (err instanceof KeyNotFoundError) return undefined;
    throw err;
  }
}

function tryDetach(l: Link): void {
  try {
    l.detach();
  } catch (err) {
    // A link whose device is gone is already detached.
    if (!(err instanceof BpfSyscallError)) throw err;
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
