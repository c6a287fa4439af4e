/**
 * Typed helpers over iproute2's `ip`. Queries use `-json`; several changes can be sent to one
 * `ip -batch -` process (one spawn per namespace) by building commands with the `cmd` builders and
 * passing them to `ipBatch`.
 */
import { LinuxCommandError } from './errors.js';
import { run } from './exec.js';

export interface NsOpts {
  /** Path of the network namespace to act in (e.g. /run/netns/foo); default: the current one. */
  netns?: string | undefined;
}

/** One `ip` command without the leading `ip`, e.g. ['link', 'set', 'dev', 'x', 'up']. */
export type IpCommand = readonly string[];

// ---- JSON shapes (the subset of fields we use; iproute2 prints more) ----

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate: string;
  address?: string;
  link_index?: number;
  link_netnsid?: number;
  link_type?: string;
  linkinfo?: { info_kind?: string };
}

export interface AddrInfo {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  scope: string;
  nodad?: boolean;
  tentative?: boolean;
}

export interface LinkAddrs extends LinkInfo {
  addr_info: AddrInfo[];
}

export interface RouteInfo {
  dst: string;
  gateway?: string;
  dev?: string;
  scope?: string;
  type?: string;
  table?: string;
  protocol?: string;
  prefsrc?: string;
  flags: string[];
  metric?: number;
}

export interface NeighInfo {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

// ---- argument checks ----

const SAFE_ARG = /^[A-Za-z0-9_.:/@%+-]+$/;

function checkArgs(args: IpCommand): void {
  for (const a of args) {
    if (!SAFE_ARG.test(a)) throw new TypeError(`unsafe ip argument ${JSON.stringify(a)}`);
  }
}

/** Linux interface names: 1..15 bytes, no '/', whitespace or ':'. */
export function isValidIfName(name: string): boolean {
  return (
    name.length > 0 && name.length <= 15 && /^[A-Za-z0-9_.@-]+$/.test(name) && name !== '.' && name !== '..'
  );
}

export function isIPv6(addr: string): boolean {
  return addr.includes(':');
}

/** Strip a /prefix from an address. */
export function bareIP(addr: string): string {
  const i = addr.indexOf('/');
  return i < 0 ? addr : addr.slice(0, i);
}

/** Host prefix of an address: /32 for IPv4, /128 for IPv6. */
export function hostPrefix(addr: string): string {
  const ip = bareIP(addr);
  return `${ip}/${isIPv6(ip) ? 128 : 32}`;
}

// ---- command builders (pure) ----

export const cmd = {
  vethAdd(p: {
    name: string;
    peerName: string;
    /** Create the peer directly in this namespace (path). */
    peerNetns?: string | undefined;
    mac?: string | undefined;
    peerMac?: string | undefined;
    mtu?: number | undefined;
  }): IpCommand {
    const a = ['link', 'add', p.name];
    if (p.mac) a.push('address', p.mac);
    if (p.mtu) a.push('mtu', String(p.mtu));
    a.push('type', 'veth', 'peer', 'name', p.peerName);
    if (p.peerMac) a.push('address', p.peerMac);
    if (p.mtu) a.push('mtu', String(p.mtu));
    if (p.peerNetns) a.push('netns', p.peerNetns);
    return a;
  },
  /** Needs CONFIG_DUMMY (absent on some kernels: prefer a veth pair there). */
  dummyAdd(name: string, mtu?: number): IpCommand {
    return mtu
      ? ['link', 'add', name, 'mtu', String(mtu), 'type', 'dummy']
      : ['link', 'add', name, 'type', 'dummy'];
  },
  linkSet(
    dev: string,
    p: {
      up?: boolean;
      mac?: string | undefined;
      mtu?: number | undefined;
      name?: string | undefined;
      /** Move into the namespace at this path. */
      netns?: string | undefined;
    },
  ): IpCommand {
    const a = ['link', 'set', 'dev', dev];
    if (p.netns) a.push('netns', p.netns);
    if (p.name) a.push('name', p.name);
    if (p.mac) a.push('address', p.mac);
    if (p.mtu) a.push('mtu', String(p.mtu));
    if (p.up === true) a.push('up');
    if (p.up === false) a.push('down');
    return a;
  },
  linkDel(dev: string): IpCommand {
    return ['link', 'del', 'dev', dev];
  },
  addrAdd(
    dev: string,
    cidr: string,
    p: { scope?: 'global' | 'link' | 'host'; nodad?: boolean; replace?: boolean } = {},
  ): IpCommand {
    const a = ['addr', p.replace ? 'replace' : 'add', cidr, 'dev', dev];
    if (p.scope) a.push('scope', p.scope);
    if (p.nodad && isIPv6(cidr)) a.push('nodad');
    return a;
  },
  routeAdd(p: {
    dst: string;
    via?: string | undefined;
    dev?: string | undefined;
    scope?: 'link' | 'global' | 'host' | undefined;
    src?: string | undefined;
    mtu?: number | undefined;
    table?: number | string | undefined;
    /** `route replace` instead of `route add` (idempotent). */
    replace?: boolean;
  }): IpCommand {
    const a = ['route', p.replace ? 'replace' : 'add', p.dst];
    if (p.via) a.push('via', p.via);
    if (p.dev) a.push('dev', p.dev);
    if (p.scope) a.push('scope', p.scope);
    if (p.src) a.push('src', p.src);
    if (p.mtu) a.push('mtu', String(p.mtu));
    if (p.table !== undefined) a.push('table', String(p.table));
    return a;
  },
  routeDel(dst: string, dev?: string): IpCommand {
    return dev ? ['route', 'del', dst, 'dev', dev] : ['route', 'del', dst];
  },
  neighReplace(dev: string, ip: string, lladdr: string): IpCommand {
    return ['neigh', 'replace', ip, 'lladdr', lladdr, 'dev', dev, 'nud', 'permanent'];
  },
  linkShow(dev?: string): IpCommand {
    return dev ? ['link', 'show', 'dev', dev] : ['link', 'show'];
  },
  addrShow(dev?: string): IpCommand {
    return dev ? ['addr', 'show', 'dev', dev] : ['addr', 'show'];
  },
  /** Routes of both families (all tables) through a device. */
  routeShowAll(dev?: string): IpCommand {
    return dev ? ['route', 'show', 'table', 'all', 'dev', dev] : ['route', 'show', 'table', 'all'];
  },
  neighShow(dev?: string): IpCommand {
    return dev ? ['neigh', 'show', 'dev', dev] : ['neigh', 'show'];
  },
};

// ---- runners ----

/** Run one `ip` command; returns stdout. */
export async function ip(args: IpCommand, opts: NsOpts = {}): Promise<string> {
  checkArgs(args);
  return (await run(['ip', ...args], { netns: opts.netns })).stdout;
}

/** Run one `ip -json` query and parse its output. */
export async function ipJson<T>(args: IpCommand, opts: NsOpts = {}): Promise<T> {
  checkArgs(args);
  const { stdout } = await run(['ip', '-json', ...args], { netns: opts.netns });
  const text = stdout.trim();
  return (text ? JSON.parse(text) : []) as T;
}

export interface BatchOpts extends NsOpts {
  /** `-force`: keep going after a failed command (the run still fails at the end). */
  force?: boolean;
  /** Add `-json` (queries in the batch then each print one JSON document per line). */
  json?: boolean;
}

/**
 * Run several `ip` commands in one process (`ip -batch -`). With `json`, returns the parsed output of
 * each command that printed something, in order.
 */
export async function ipBatch(commands: readonly IpCommand[], opts: BatchOpts = {}): Promise<unknown[]> {
  if (commands.length === 0) return [];
  for (const c of commands) checkArgs(c);
  const argv = ['ip'];
  if (opts.force) argv.push('-force');
  if (opts.json) argv.push('-json');
  argv.push('-batch', '-');
  const input = `${commands.map((c) => c.join(' ')).join('\n')}\n`;
  const { stdout } = await run(argv, { netns: opts.netns, input });
  if (!opts.json) return [];
  return parseJsonLines(stdout);
}

/** Parse concatenated JSON documents as printed by `ip -json -batch` (one per line). */
export function parseJsonLines(stdout: string): unknown[] {
  const out: unknown[] = [];
  for (const line of stdout.split('\n')) {
    const t = line.trim();
    if (t) out.push(JSON.parse(t));
  }
  return out;
}

// ---- convenience wrappers ----

/** A link by name, or undefined if it does not exist. */
export async function getLink(dev: string, opts: NsOpts = {}): Promise<LinkInfo | undefined> {
  try {
    const links = await ipJson<LinkInfo[]>(['-d', ...cmd.linkShow(dev)], opts);
    return links[0];
  } catch (e) {
    if (e instanceof LinuxCommandError && e.isNotFound) return undefined;
    throw e;
  }
}

export async function listLinks(opts: NsOpts = {}): Promise<LinkInfo[]> {
  return ipJson<LinkInfo[]>(cmd.linkShow(), opts);
}

/** ifindex and MAC of a link (throws LinuxCommandError if it does not exist). */
export async function linkIndexAndMac(
  dev: string,
  opts: NsOpts = {},
): Promise<{ ifindex: number; mac: string }> {
  const [l] = await ipJson<LinkInfo[]>(cmd.linkShow(dev), opts);
  if (!l) throw new LinuxCommandError(['ip', ...cmd.linkShow(dev)], 1, `Device "${dev}" does not exist.`);
  return { ifindex: l.ifindex, mac: l.address ?? '' };
}

export async function addVethPair(p: Parameters<typeof cmd.vethAdd>[0], opts: NsOpts = {}): Promise<void> {
  await ip(cmd.vethAdd(p), opts);
}

/** Move a link into the namespace at `targetNetns` (a path), optionally renaming it on the way. */
export async function moveLinkToNetns(
  dev: string,
  targetNetns: string,
  opts: NsOpts & { newName?: string } = {},
): Promise<void> {
  await ip(cmd.linkSet(dev, { netns: targetNetns, name: opts.newName }), opts);
}

export async function setLink(
  dev: string,
  p: Parameters<typeof cmd.linkSet>[1],
  opts: NsOpts = {},
): Promise<void> {
  await ip(cmd.linkSet(dev, p), opts);
}

/** Delete a link; returns false if it did not exist. */
export async function deleteLink(dev: string, opts: NsOpts = {}): Promise<boolean> {
  try {
    await ip(cmd.linkDel(dev), opts);
    return true;
  } catch (e) {
    if (e instanceof LinuxCommandError && e.isNotFound) return false;
    throw e;
  }
}

export async function addAddress(
  dev: string,
  cidr: string,
  p: Parameters<typeof cmd.addrAdd>[2] = {},
  opts: NsOpts = {},
): Promise<void> {
  await ip(cmd.addrAdd(dev, cidr, p), opts);
}

export async function listAddresses(dev: string, opts: NsOpts = {}): Promise<AddrInfo[]> {
  const [l] = await ipJson<LinkAddrs[]>(cmd.addrShow(dev), opts);
  return l?.addr_info ?? [];
}

export async function addRoute(p: Parameters<typeof cmd.routeAdd>[0], opts: NsOpts = {}): Promise<void> {
  await ip(cmd.routeAdd(p), opts);
}

/** Routes of both families in all tables, optionally only those through `dev`. */
export async function listRoutes(dev?: string, opts: NsOpts = {}): Promise<RouteInfo[]> {
  return ipJson<RouteInfo[]>(cmd.routeShowAll(dev), opts);
}
