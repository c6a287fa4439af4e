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
    const ifindex = this.#ifindex(ep);
    const coll = this.#wrapLoad(ep, () => Collection.load(this.#spec(ep, ifindex), this.#loadOpts()));
    const t1 = performance.now();
    try {
      const infos: Partial<Record<'ingress' | 'egress', LinkInfo>> = {};
      let replaced = true;
      for (const d of DIRECTIONS) {
        const r = this.#swapPinned(ep, d.dir, coll, ifindex);
        if (r) infos[d.dir] = r;
        else {
          replaced = false;
          infos[d.dir] = this.#pinNew(
            ep,
            d.dir,
            Link.attachTcx({
              program: coll.program(d.prog),
              direction: d.dir,
              interface: ifindex,
              netns: ep.netns,
            }),
          );
        }
      }
      return this.#result(ep, ifindex, replaced, infos, t0, t1);
    } catch (err) {
      throw attachError(ep, err);
    } finally {
      coll.close(); // the links keep the programs alive
    }
  }

  /**
   * load() with the verifier and the tcx attachments running on worker threads: both programs
   * are verified at once, and both links wait out their RCU grace periods at once.
   */
  async loadAsync(ep: EndpointDatapathConfig, preloaded?: Promise<Collection>): Promise<EndpointDatapath> {
    const t0 = performance.now();
    const ifindex = this.#ifindex(ep);
    const coll = await (preloaded ?? this.preload(ep, ifindex));
    const t1 = performance.now();
    try {
      const infos: Partial<Record<'ingress' | 'egress', LinkInfo>> = {};
      let replaced = true;
      await Promise.all(
        DIRECTIONS.map(async (d) => {
          const r = this.#swapPinned(ep, d.dir, coll, ifindex);
          if (r) {
            infos[d.dir] = r;
            return;
          }
          replaced = false;
          const link = await Link.attachTcxAsync({
            program: coll.program(d.prog),
            direction: d.dir,
            interface: ifindex,
            netns: ep.netns,
          });
          infos[d.dir] = this.#pinNew(ep, d.dir, link);
        }),
      );
      return this.#result(ep, ifindex, replaced, infos, t0, t1);
    } catch (err) {
      throw attachError(ep, err);
    } finally {
      coll.close();
    }
  }

  /**
   * Verifies the endpoint's programs before its interface exists (the interface index is only
   * informational for the programs); loadAsync(ep, preloaded) then just attaches them.
   */
  preload(ep: EndpointDatapathConfig, ifindex = 0): Promise<Collection> {
    return this.#wrapLoadAsync(ep, () => Collection.loadAsync(this.#spec(ep, ifindex), this.#loadOpts()));
  }

  #ifindex(ep: EndpointDatapathConfig): number {
    try {
      return typeof ep.interface === 'number' ? ep.interface : ifindexOf(ep.interface, ep.netns);
    } catch (err) {
      throw new EndpointLoadError(ep.id, `interface ${ep.interface} not found`, { cause: err });
    }
  }

  #spec(ep: EndpointDatapathConfig, ifindex: number): CollectionSpec {
    const spec = this.spec.copy();
    spec.rewriteConstants(endpointConstants(ep, ifindex));
    return spec;
  }

  #loadOpts() {
    return { mapReplacements: this.maps.replacements(), programs: [PROG_FROM_CONTAINER, PROG_TO_CONTAINER] };
  }

  #wrapLoad(ep: EndpointDatapathConfig, fn: () => Collection): Collection {
    try {
      return fn();
    } catch (err) {
      throw new EndpointLoadError(ep.id, `loading programs failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async #wrapLoadAsync(ep: EndpointDatapathConfig, fn: () => Promise<Collection>): Promise<Collection> {
    try {
      return await fn();
    } catch (err) {
      throw new EndpointLoadError(ep.id, `loading programs failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Swaps the program of a pinned link on the same interface; undefined when there is none. */
  #swapPinned(
    ep: EndpointDatapathConfig,
    dir: 'ingress' | 'egress',
    coll: Collection,
    ifindex: number,
  ): LinkInfo | undefined {
    mkdirSync(join(this.linksDir, String(ep.id)), { recursive: true });
    const path = this.linkPath(ep.id, dir);
    const existing = openPinnedLink(path);
    if (!existing) return undefined;
    try {
      const info = existing.info();
      if (info.ifindex === ifindex && info.ifindex !== 0) {
        existing.update(coll.program(dir === 'ingress' ? PROG_FROM_CONTAINER : PROG_TO_CONTAINER));
        return existing.info();
      }
      // Stale pin (device gone or another interface): drop it and attach afresh.
      tryDetach(existing);
      unlinkSync(path);
      return undefined;
    } finally {
      existing.close();
    }
  }

  #pinNew(ep: EndpointDatapathConfig, dir: 'ingress' | 'egress', link: Link): LinkInfo {
    try {
      link.pin(this.linkPath(ep.id, dir));
      return link.info();
    } catch (err) {
      tryDetach(link);
      throw err;
    } finally {
      link.close();
    }
  }

  #result(
    ep: EndpointDatapathConfig,
    ifindex: number,
    replaced: boolean,
    infos: Partial<Record<'ingress' | 'egress', LinkInfo>>,
    t0: number,
    t1: number,
  ): EndpointDatapath {
    return {
      id: ep.id,
      ifindex,
      replaced,
      ingress: infos.ingress!,
      egress: infos.egress!,
      timings: { loadMs: round(t1 - t0), attachMs: round(performance.now() - t1) },
    };
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

function attachError(ep: EndpointDatapathConfig, err: unknown): EndpointLoadError {
  if (err instanceof EndpointLoadError) return err;
  return new EndpointLoadError(ep.id, `attaching programs failed: ${(err as Error).message}`, { cause: err });
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
