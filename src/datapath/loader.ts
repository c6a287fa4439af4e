/**
 * Per-endpoint program loader, a user of the generic ObjectLoader (object-loader.ts): bpf_lxc.o is
 * parsed once (and checked against the generated layouts); each endpoint gets a copy with the node's
 * constants in .rodata, loaded against the node's shared pinned maps, its own settings written into
 * the copy's `.data.ep` map (lib/config/endpoint.h), and attached with tcx to the host-side veth:
 *   cil_from_container → tcx ingress (what the pod sends)
 *   cil_to_container   → tcx egress  (what the node sends to the pod)
 * Links are pinned under `<bpffs>/links/<endpointId>/{ingress,egress}`, so traffic keeps flowing
 * while the agent is down. Loading an endpoint whose links are pinned (regeneration, agent restart)
 * swaps the programs in place with BPF_LINK_UPDATE: there is no moment without a program.
 *
 * With `attach: 'tc'` the programs go into direct-action cls_bpf filters on the veth's clsact
 * qdisc instead (rtnetlink, linux/rtnetlink.ts). A new tcx link waits out an RCU grace period
 * holding the rtnl lock (10-20 ms each, two per endpoint); a new filter does not. The filters live
 * as long as the device (nothing to pin, traffic flows while the agent is down); loading again
 * replaces their programs in place. An endpoint whose tcx links are pinned keeps them.
 *
 * Verifying a copy takes tens of milliseconds; the endpoint's settings are not needed for it. So the
 * loader can keep a few copies verified ahead with the settings unset (`spares`): an endpoint takes
 * one, gets its settings written (one map update) and attached, and a copy is verified in the
 * background to replace it. A copy never attached with its settings unset would drop everything.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { bpfObjectPath } from '../common/paths.js';
import type { CollectionSpec, ProgramSpec } from '../ebpf/collection-spec.js';
import {
  type Collection,
  type ConstantValue,
  ifindexOf,
  Link,
  type LinkInfo,
  Program,
  ProgType,
} from '../ebpf/index.js';
import { EndpointLoadError } from './errors.js';
import { RtNetlink } from './linux/rtnetlink.js';
import { parseIp, parseMac } from './maps/addr.js';
import { DatapathMaps, DEFS } from './maps/index.js';
import {
  type AttachResult,
  detachPinned,
  ObjectLoader,
  type ProgramAttachment,
  pinDirs,
  pinnedLinks,
} from './object-loader.js';

/** build/bpf/bpf_lxc.o of this checkout (or of CILIUM_TS_BPF_DIR). */
export const DEFAULT_LXC_OBJECT = bpfObjectPath('bpf_lxc.o');

export const PROG_FROM_CONTAINER = 'cil_from_container';
export const PROG_TO_CONTAINER = 'cil_to_container';

/** Settings of the node that every object loaded on it gets (lib/config/node.h). */
export interface NodeDatapathConfig {
  /** MONITOR_AGGREGATION for endpoints that do not set their own (default 1). */
  monitorAggregation?: number;
  /**
   * ALLOW_LOCALHOST, as upstream's --allow-localhost: 'always' (default) lets the node's own host
   * (identity 1) open connections to its local pods whatever their ingress policy says (kubelet
   * probes); 'policy' polices host traffic like any other.
   */
  allowLocalhost?: AllowLocalhost;
  /**
   * LB_SELECTION: backend selection of per-packet service translation (tc) for services whose
   * master entry names no algorithm (upstream's --bpf-lb-algorithm; default 'random').
   */
  lbAlgorithm?: LbAlgorithmName;
  /**
   * HASH_INIT4_SEED, the Maglev flow-hash seed (u32): the same on every node of a cluster. The
   * service model's `maglevConfig().seedJhash0` (bytes 4–7 of the Maglev seed). Default 0.
   */
  lbHashSeed?: number;
  /**
   * ENCAP_IFINDEX: the node's VXLAN overlay device (overlay.ts); a pod's packet to a destination
   * whose ipcache entry names a tunnel endpoint is encapsulated there. 0 / unset: native routing.
   */
  encapIfindex?: number;
  /**
   * CT_ACCOUNTING, as upstream's --bpf-conntrack-accounting: conntrack entries count every packet
   * and byte per direction. Default off (as upstream): entries keep their first packet's count,
   * and established traffic writes to them only when its state moves on (lib/conntrack.h).
   */
  ctAccounting?: boolean;
}

export const ALLOW_LOCALHOST_MODES = ['always', 'policy'] as const;
export type AllowLocalhost = (typeof ALLOW_LOCALHOST_MODES)[number];
export const LB_ALGORITHM_NAMES = ['random', 'maglev'] as const;
export type LbAlgorithmName = (typeof LB_ALGORITHM_NAMES)[number];

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
  /** MONITOR_AGGREGATION for this endpoint (default: the node's, else 1: trace new connections and
   * TCP flag changes only). */
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
  /** Node-wide settings written into every endpoint's programs. */
  node?: NodeDatapathConfig;
  /** How the programs are attached to the host-side veth: tcx links (default) or tc filters. */
  attach?: EndpointAttachMode;
  /**
   * How many copies of the programs to keep verified ahead, settings unset (default 0: each
   * endpoint's copy is verified when it is loaded). Filled by fillSpares(); refilled as they are
   * taken, up to as many as endpoints took so far (or as fillSpares() asked for, if more).
   */
  spares?: number;
}

export const ENDPOINT_ATTACH_MODES = ['tcx', 'tc'] as const;
export type EndpointAttachMode = (typeof ENDPOINT_ATTACH_MODES)[number];

/** Spares are refilled this soon after an endpoint's programs are attached (its setup is done) ... */
const REFILL_AFTER_ATTACH_MS = 2;
/** ... or this long after one was taken, if no attach came (an endpoint begun and given up). */
const REFILL_IDLE_MS = 500;

/**
 * A copy verified ahead. Its two programs are verified one after the other, so the verifier holds
 * one core and the endpoints being set up meanwhile keep the other; `hurry` starts what is left
 * at once (an endpoint took the copy and waits for it).
 */
interface SpareCopy {
  copy: Promise<Collection>;
  hurry: () => void;
}

/** The data section of lib/config/endpoint.h: one map per loaded copy, written before attaching. */
export const ENDPOINT_SETTINGS_SECTION = '.data.ep';

const DIRECTIONS = [
  { dir: 'ingress', prog: PROG_FROM_CONTAINER },
  { dir: 'egress', prog: PROG_TO_CONTAINER },
] as const;
const PINS = DIRECTIONS.map((d) => d.dir);

/** Detaches the link pinned at `path`, if any, and removes the pin. */
function releasePin(path: string): void {
  if (!existsSync(path)) return;
  const link = Link.openPinned(path);
  try {
    link.detach();
  } catch {
    // already detached (its device is gone)
  } finally {
    link.close();
  }
  rmSync(path, { force: true });
}

/** r0 = TC_ACT_SHOT; exit: prelink()'s placeholder until an endpoint's programs are in. */
const DROP_ALL: ProgramSpec = {
  name: 'cil_hold_drop',
  section: 'tc',
  type: ProgType.SCHED_CLS,
  expectedAttachType: 0,
  license: 'GPL',
  instructions: Uint8Array.from([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
  mapRefs: [],
  funcInfo: [],
  lineInfo: [],
};

function ipBytes(ip: string | undefined, family: 4 | 6, what: string): Uint8Array {
  const len = family === 4 ? 4 : 16;
  if (!ip) return new Uint8Array(len);
  const a = parseIp(ip);
  if (a.family !== family) throw new TypeError(`${what}: ${ip} is not an IPv${family} address`);
  return a.bytes;
}

/**
 * The .rodata constants of lib/config/node.h. `maglevTableSize` is the M the node's maglev maps are
 * made for (DatapathMaps.lb.maglevTableSize): the programs index the tables with it.
 */
export function nodeConstants(
  node: NodeDatapathConfig = {},
  maglevTableSize: number = DEFS.LB_MAGLEV_LUT_SIZE,
): Record<string, ConstantValue> {
  const allow = node.allowLocalhost ?? 'always';
  if (!ALLOW_LOCALHOST_MODES.includes(allow))
    throw new TypeError(`allowLocalhost: expected 'always' or 'policy', got ${JSON.stringify(allow)}`);
  const alg = node.lbAlgorithm ?? 'random';
  if (!LB_ALGORITHM_NAMES.includes(alg))
    throw new TypeError(`lbAlgorithm: expected 'random' or 'maglev', got ${JSON.stringify(alg)}`);
  const seed = node.lbHashSeed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new TypeError(`lbHashSeed: expected an integer in 0..4294967295, got ${JSON.stringify(seed)}`);
  const encap = node.encapIfindex ?? 0;
  if (!Number.isInteger(encap) || encap < 0 || encap > 0x7fffffff)
    throw new TypeError(`encapIfindex: expected an interface index, got ${JSON.stringify(encap)}`);
  return {
    MONITOR_AGGREGATION: node.monitorAggregation ?? 1,
    ALLOW_LOCALHOST: allow === 'always' ? 1 : 0,
    LB_SELECTION: alg === 'maglev' ? DEFS.LB_ALGORITHM_MAGLEV : DEFS.LB_ALGORITHM_RANDOM,
    MAGLEV_TABLE_SIZE: maglevTableSize,
    HASH_INIT4_SEED: seed,
    ENCAP_IFINDEX: encap,
    CT_ACCOUNTING: node.ctAccounting ? 1 : 0,
  };
}

/**
 * The load-time values of one endpoint's bpf_lxc (byte arrays are written exactly as given: wire
 * order): the node's .rodata constants (lib/config/node.h) and the endpoint's own settings in
 * .data.ep (lib/config/endpoint.h).
 */
export function endpointConstants(
  ep: EndpointDatapathConfig,
  ifindex: number,
  node: NodeDatapathConfig = {},
  maglevTableSize: number = DEFS.LB_MAGLEV_LUT_SIZE,
): Record<string, ConstantValue> {
  if (!Number.isInteger(ep.id) || ep.id < 1 || ep.id > 0xffff)
    throw new RangeError(`endpoint ID ${ep.id} out of range 1..65535`);
  return {
    ...nodeConstants(
      {
        ...node,
        ...(ep.monitorAggregation !== undefined ? { monitorAggregation: ep.monitorAggregation } : {}),
      },
      maglevTableSize,
    ),
    LXC_ID: ep.id,
    SECLABEL: ep.identity,
    LXC_IPV4: ipBytes(ep.ipv4, 4, 'ipv4'),
    LXC_IPV6: ipBytes(ep.ipv6, 6, 'ipv6'),
    LXC_MAC: parseMac(ep.mac),
    NODE_MAC: parseMac(ep.nodeMac),
    ROUTER_IPV4: ipBytes(ep.routerIpv4, 4, 'routerIpv4'),
    ROUTER_IPV6: ipBytes(ep.routerIpv6, 6, 'routerIpv6'),
    LXC_IFINDEX: ifindex,
    POLICY_AUDIT_MODE: ep.policyAuditMode ? 1 : 0,
  };
}

/**
 * A node object's loader on the node's maps: the given open maps, or the node's pinned maps opened
 * (or created) here, then owned by the caller's loader. Node settings are checked first.
 */
export function openNodeObject(
  opts: { bpffs: string; object?: string; maps?: DatapathMaps; node?: NodeDatapathConfig },
  defaultObject: string,
  programs: readonly string[],
): { object: ObjectLoader; maps: DatapathMaps } {
  nodeConstants(opts.node); // a bad node setting fails here, before anything is opened
  const maps = opts.maps ?? DatapathMaps.open(opts.bpffs);
  try {
    const object = ObjectLoader.open({
      object: opts.object ?? defaultObject,
      bpffs: opts.bpffs,
      maps: maps.replacements(),
      programs,
    });
    return { object, maps };
  } catch (err) {
    if (opts.maps === undefined) maps.close();
    throw err;
  }
}

export class DatapathLoader implements Disposable {
  readonly maps: DatapathMaps;
  readonly linksDir: string;
  private readonly ownsMaps: boolean;
  /** prelink()'s placeholder, loaded once. */
  #dropAll: Program | undefined;
  /** Copies verified ahead with the endpoint settings unset, oldest first. */
  readonly #spares: SpareCopy[] = [];
  #filling = false;
  #closed = false;
  /** How many copies endpoints took (the automatic refill keeps that many, or #asked) ... */
  #taken = 0;
  /** ... or as many as fillSpares() was asked for, if more (up to `spares`). */
  #asked = 0;
  /** Where #writeSettings() encodes the settings. */
  #settings: CollectionSpec | undefined;
  /** The next fillSpares(), if one is scheduled. */
  #refill: { at: number; timer: NodeJS.Timeout } | undefined;
  /** Endpoints attached with tc filters by this loader: where (what remove() deletes). */
  readonly #tcAttached = new Map<number, { ifindex: number; netns: string | undefined }>();

  private constructor(
    readonly bpffs: string,
    private readonly object: ObjectLoader,
    maps: DatapathMaps,
    ownsMaps: boolean,
    private readonly node: NodeDatapathConfig,
    private readonly spareCount: number,
    readonly attachMode: EndpointAttachMode,
  ) {
    this.maps = maps;
    this.ownsMaps = ownsMaps;
    this.linksDir = join(bpffs, 'links');
  }

  /** Parses and checks the object, opens (or creates) the node's maps. */
  static open(opts: DatapathLoaderOptions): DatapathLoader {
    const spares = opts.spares ?? 0;
    const mode = opts.attach ?? 'tcx';
    if (!ENDPOINT_ATTACH_MODES.includes(mode))
      throw new TypeError(`attach: expected 'tcx' or 'tc', got ${JSON.stringify(opts.attach)}`);
    if (!Number.isInteger(spares) || spares < 0 || spares > 64)
      throw new RangeError(`spares: expected an integer in 0..64, got ${JSON.stringify(opts.spares)}`);
    const { object, maps } = openNodeObject(opts, DEFAULT_LXC_OBJECT, [
      PROG_FROM_CONTAINER,
      PROG_TO_CONTAINER,
    ]);
    if (!object.spec.maps.has(ENDPOINT_SETTINGS_SECTION)) {
      object.close();
      if (opts.maps === undefined) maps.close();
      throw new EndpointLoadError(0, `${object.object} has no ${ENDPOINT_SETTINGS_SECTION} section`);
    }
    return new DatapathLoader(
      opts.bpffs,
      object,
      maps,
      opts.maps === undefined,
      opts.node ?? {},
      spares,
      mode,
    );
  }

  /** Copies verified ahead and not taken yet (some may still be under verification). */
  get spareCopies(): number {
    return this.#spares.length;
  }

  /**
   * Verifies copies in the background, one at a time and each one program at a time (so endpoints
   * being set up keep a core), until `count` are there (default `spares`), and keeps that many
   * from then on. Resolves when they are (a failed verification ends the round: the next take()
   * tries again).
   */
  fillSpares(count = this.spareCount): Promise<void> {
    this.#asked = Math.max(this.#asked, Math.min(count, this.spareCount));
    return this.#fill(count);
  }

  async #fill(count: number): Promise<void> {
    if (this.#filling) return;
    this.#filling = true;
    try {
      while (!this.#closed && this.#spares.length < Math.min(count, this.spareCount)) {
        let hurry = () => {};
        const hurried = new Promise<void>((r) => (hurry = r));
        // close() closes the copies in the list, this one included
        const spare: SpareCopy = {
          copy: this.object.loadAsync(nodeConstants(this.node, this.maps.lb.maglevTableSize), hurried),
          hurry,
        };
        this.#spares.push(spare);
        try {
          await spare.copy;
        } catch {
          const i = this.#spares.indexOf(spare);
          if (i >= 0) this.#spares.splice(i, 1);
          return;
        }
      }
    } catch {
      // a copy that could not be started (never in the list): the next take() tries again
    } finally {
      this.#filling = false;
    }
  }

  /**
   * A copy for `ep` without its settings: a spare when one fits (same node constants; it may still
   * be under verification: what is left of it is verified at once), else a new one.
   */
  #take(ep: EndpointDatapathConfig, ifindex: number): Promise<Collection> {
    const fits = (ep.monitorAggregation ?? this.#monitorAggregation) === this.#monitorAggregation;
    const spare = fits ? this.#spares.shift() : undefined;
    this.#taken++;
    // Not refilled while the endpoint that took one is being set up (its attach asks for it): a copy
    // verified now would share the cores with it, and with the copy it waits for when none was left.
    this.#refillIn(REFILL_IDLE_MS);
    if (!spare) return this.object.loadAsync(this.#constants(ep, ifindex));
    spare.hurry();
    return spare.copy;
  }

  /** fillSpares() in `ms` (or sooner if asked since), unless the loader is closed. */
  #refillIn(ms: number): void {
    if (this.spareCount === 0 || this.#closed) return;
    const at = performance.now() + ms;
    if (this.#refill && this.#refill.at <= at) return;
    if (this.#refill) clearTimeout(this.#refill.timer);
    const timer = setTimeout(() => {
      this.#refill = undefined;
      // as many as endpoints were taken so far (or as were asked for), up to `spares`: an agent
      // with one pod verifies one copy more, not `spares` (each is ~25 ms of a core)
      void this.#fill(Math.max(this.#taken, this.#asked));
    }, ms);
    timer.unref();
    this.#refill = { at, timer };
  }

  get #monitorAggregation(): number {
    return this.node.monitorAggregation ?? 1;
  }

  /**
   * Writes the endpoint's settings into a copy's `.data.ep` map (the whole section in one update).
   * Only on a copy whose programs take no traffic yet: a reader could see a half-written value.
   */
  #writeSettings(coll: Collection, ep: EndpointDatapathConfig, ifindex: number): void {
    const values = this.#constants(ep, ifindex);
    // One copy of the object encodes every endpoint's settings (each write sets all of them).
    this.#settings ??= this.object.specialise({});
    this.#settings.rewriteConstants(
      Object.fromEntries(
        Object.entries(values).filter(
          ([k]) => this.object.spec.variables.get(k)?.map === ENDPOINT_SETTINGS_SECTION,
        ),
      ),
    );
    const bytes = this.#settings.maps.get(ENDPOINT_SETTINGS_SECTION)!.contents![0]!.value;
    coll.map(ENDPOINT_SETTINGS_SECTION).update(new Uint8Array(4), bytes);
  }

  /** The parsed object every endpoint's load is a copy of. */
  get spec() {
    return this.object.spec;
  }

  /** Where an endpoint's link of one direction is pinned. */
  linkPath(endpointId: number, dir: 'ingress' | 'egress'): string {
    return join(this.#pinDir(endpointId), dir);
  }

  #pinDir(endpointId: number): string {
    return join(this.linksDir, String(endpointId));
  }

  /**
   * Loads the endpoint's programs with its constants and attaches them (or swaps them into the
   * pinned links of a previous load on the same interface).
   */
  load(ep: EndpointDatapathConfig): EndpointDatapath {
    const t0 = performance.now();
    const ifindex = this.#ifindex(ep);
    const coll = this.#wrapLoad(ep, () => this.object.load(this.#constants(ep, ifindex)));
    const t1 = performance.now();
    try {
      const r = this.#usesTc(ep.id)
        ? this.#attachTc(ep, ifindex, coll)
        : this.object.attach(coll, this.#pinDir(ep.id), attachments(ep, ifindex));
      this.#refillIn(REFILL_AFTER_ATTACH_MS);
      return result(ep, ifindex, r, t0, t1);
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
      this.#writeSettings(coll, ep, ifindex);
      const r = this.#usesTc(ep.id)
        ? this.#attachTc(ep, ifindex, coll)
        : await this.object.attachAsync(coll, this.#pinDir(ep.id), attachments(ep, ifindex));
      this.#refillIn(REFILL_AFTER_ATTACH_MS);
      return result(ep, ifindex, r, t0, t1);
    } catch (err) {
      throw attachError(ep, err);
    } finally {
      coll.close();
    }
  }

  /**
   * Takes an endpoint's tcx hooks as soon as its host-side veth exists, with a program that drops
   * every packet, pinned where loadAsync() looks: the real programs then replace it with a link update.
   * A new tcx link waits out an RCU grace period (~10 ms each, holding the rtnl lock); this way the
   * wait overlaps the endpoint's creation and the verification instead of following them. Nothing
   * passes before the real programs are in.
   */
  async prelink(ep: EndpointDatapathConfig, ifindex: number): Promise<void> {
    this.#dropAll ??= Program.load(DROP_ALL, new Map());
    const program = this.#dropAll;
    if (this.#usesTc(ep.id)) {
      this.#attachTc(ep, ifindex, { ingress: program, egress: program });
      return;
    }
    const dir = this.#pinDir(ep.id);
    mkdirSync(dir, { recursive: true });
    await Promise.all(
      DIRECTIONS.map(async (d) => {
        const path = join(dir, d.dir);
        releasePin(path); // a pin left from before (a device that is gone, an earlier prelink)
        const link = await Link.attachTcxAsync({
          program,
          direction: d.dir,
          interface: ifindex,
          netns: ep.netns,
        });
        try {
          link.pin(path);
        } catch (err) {
          link.detach();
          throw err;
        } finally {
          link.close();
        }
      }),
    );
  }

  /**
   * The endpoint's verified programs before its interface exists: a spare copy when there is one,
   * else a copy verified now. loadAsync(ep, preloaded) then writes the settings and attaches them.
   */
  async preload(ep: EndpointDatapathConfig, ifindex = 0): Promise<Collection> {
    try {
      return await this.#take(ep, ifindex);
    } catch (err) {
      throw loadError(ep, err);
    }
  }

  #constants(ep: EndpointDatapathConfig, ifindex: number): Record<string, ConstantValue> {
    return endpointConstants(ep, ifindex, this.node, this.maps.lb.maglevTableSize);
  }

  #ifindex(ep: EndpointDatapathConfig): number {
    try {
      return typeof ep.interface === 'number' ? ep.interface : ifindexOf(ep.interface, ep.netns);
    } catch (err) {
      throw new EndpointLoadError(ep.id, `interface ${ep.interface} not found`, { cause: err });
    }
  }

  #wrapLoad(ep: EndpointDatapathConfig, fn: () => Collection): Collection {
    try {
      return fn();
    } catch (err) {
      throw loadError(ep, err);
    }
  }

  /** Detaches and unpins the endpoint's links (or deletes its filters). False when there was nothing. */
  remove(endpointId: number): boolean {
    const tc = this.#tcAttached.get(endpointId);
    this.#tcAttached.delete(endpointId);
    let found = false;
    if (tc) {
      const nl = RtNetlink.open(tc.netns);
      try {
        for (const d of DIRECTIONS) found = nl.bpfFilterDelete(tc.ifindex, d.dir) || found;
      } finally {
        nl.close();
      }
    }
    return detachPinned(this.#pinDir(endpointId), PINS) || found;
  }

  /** tc filters for this endpoint: the loader's mode, unless the endpoint has tcx links pinned. */
  #usesTc(endpointId: number): boolean {
    return this.attachMode === 'tc' && !existsSync(join(this.#pinDir(endpointId), PINS[0]));
  }

  /**
   * Puts the programs into the endpoint's cls_bpf filters (clsact first), or replaces the programs
   * of the filters there. `replaced`: this loader had attached this endpoint on that device before.
   */
  #attachTc(
    ep: EndpointDatapathConfig,
    ifindex: number,
    programs: Collection | Record<'ingress' | 'egress', Program>,
  ): AttachResult {
    const prev = this.#tcAttached.get(ep.id);
    const replaced = prev?.ifindex === ifindex && prev.netns === ep.netns;
    const nl = RtNetlink.open(ep.netns);
    const links: Record<string, LinkInfo> = {};
    try {
      if (!replaced) nl.clsactAdd(ifindex);
      for (const d of DIRECTIONS) {
        const prog = 'program' in programs ? programs.program(d.prog) : programs[d.dir];
        nl.bpfFilterReplace(ifindex, d.dir, prog.fd.value, d.prog);
        // no link: id 0; the filter's program and device
        links[d.dir] = { type: 0, id: 0, progId: prog.info().id, ifindex };
      }
    } finally {
      nl.close();
    }
    this.#tcAttached.set(ep.id, { ifindex, netns: ep.netns });
    return { replaced, links };
  }

  /** Endpoints with pinned links (what a restarted agent adopts). */
  restore(): PinnedEndpoint[] {
    const out: PinnedEndpoint[] = [];
    for (const d of pinDirs(this.linksDir)) {
      if (!/^\d+$/.test(d)) continue;
      const e: PinnedEndpoint = { id: Number(d), ...pinnedLinks(this.#pinDir(Number(d)), PINS) };
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
    this.#closed = true;
    if (this.#refill) clearTimeout(this.#refill.timer);
    for (const s of this.#spares.splice(0)) void s.copy.then((x) => x.close()).catch(() => {});
    this.#dropAll?.close();
    this.object.close();
    if (this.ownsMaps) this.maps.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Where an endpoint's programs go: both on its host-side veth. */
function attachments(ep: EndpointDatapathConfig, ifindex: number): ProgramAttachment[] {
  return DIRECTIONS.map((d) => ({
    program: d.prog,
    pin: d.dir,
    at: { kind: 'tcx', direction: d.dir, ifindex, netns: ep.netns },
  }));
}

function result(
  ep: EndpointDatapathConfig,
  ifindex: number,
  r: AttachResult,
  t0: number,
  t1: number,
): EndpointDatapath {
  return {
    id: ep.id,
    ifindex,
    replaced: r.replaced,
    ingress: r.links.ingress!,
    egress: r.links.egress!,
    timings: { loadMs: round(t1 - t0), attachMs: round(performance.now() - t1) },
  };
}

function loadError(ep: EndpointDatapathConfig, err: unknown): EndpointLoadError {
  return new EndpointLoadError(ep.id, `loading programs failed: ${(err as Error).message}`, { cause: err });
}

function attachError(ep: EndpointDatapathConfig, err: unknown): EndpointLoadError {
  if (err instanceof EndpointLoadError) return err;
  return new EndpointLoadError(ep.id, `attaching programs failed: ${(err as Error).message}`, { cause: err });
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
