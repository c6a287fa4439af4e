/**
 * The node's L7 proxy framework: what every proxy (HTTP here, DNS in ./dns, Kafka in ./kafka)
 * plugs into.
 *
 *   datapath  a policy entry with a proxy port redirects the connection (bpf/lib/proxy.h) to
 *             127.0.0.1:<port> (::1 for IPv6) in the node's namespace, and records in cilium_proxy
 *             where it was going and whose rules apply (RedirectInfo);
 *   proxy     registers with ProxyManager under its parser (PROXY_PORTS fixes its port, so entries
 *             written before an agent restart still point at it), listens there (listenTcp for TCP;
 *             a UDP proxy binds its own socket and calls `redirect('udp', client)` per datagram),
 *             asks `rules(info)` what the endpoint's policy allows (src/policy/l7.ts), opens the
 *             upstream connection with `connectUpstream(info)` (the client's address, marked so the
 *             destination's datapath knows it comes from the proxy) and reports each request and
 *             response with `emit(record)` (Hubble L7 flows and metrics).
 *
 * Fail closed: while a parser's proxy is not listening, its redirected connections are dropped by
 * the datapath (no listener, DROP_PROXY_LOOKUP_FAILED); a connection on a proxy port that the
 * datapath did not redirect (no cilium_proxy record) is closed at once.
 */
import { createServer, isIPv6, type Server, type Socket } from 'node:net';
import { DEFS, proxyKey, proxyValue } from '../datapath/maps/generated/layouts.js';
import type { L7Event } from '../hubble/l7.js';
import type { L7Decision, L7Parser } from '../policy/l7.js';
import { type Addr, addrBytes, handleFd, setTransparent, transparentConnect } from './sockets.js';

/** The port each parser's proxy listens on (host order, as in the policy map entries). */
export const PROXY_PORTS: Readonly<Record<L7Parser, number>> = { http: 10080, dns: 10053, kafka: 10092 };

/** A connection (or UDP flow) the datapath redirected, from cilium_proxy. */
export interface RedirectInfo {
  readonly protocol: 'tcp' | 'udp';
  /** Who opened it. */
  readonly client: Addr;
  /** Where it was going (the accepted socket's local address, for TCP). */
  readonly original: Addr;
  /** The local endpoint whose policy redirected it, and in which direction its rules apply. */
  readonly endpointId: number;
  readonly egress: boolean;
  readonly srcIdentity: number;
  readonly dstIdentity: number;
  readonly proxyPort: number;
}

/**
 * One L7 event for Hubble: a request, its response, or a request the proxy answered itself. Its
 * fields are Hubble's L7Event (src/hubble/l7.ts: verdict, latency, the http / dns / kafka parts),
 * with the connection's whole redirect record.
 */
export interface L7Record extends L7Event {
  readonly info: RedirectInfo;
}

/** What the agent gives the proxies. */
export interface ProxyHost {
  /** The redirect record of a client that reached the proxy at `port` (undefined: not redirected). */
  redirect(protocol: 'tcp' | 'udp', client: Addr, port: number): RedirectInfo | undefined;
  /** What the endpoint's policy allows on this connection now. */
  rules(info: RedirectInfo): L7Decision;
  /** A TCP connection to the original destination with the client's address. */
  connectUpstream(info: RedirectInfo): Socket;
  emit(record: L7Record): void;
}

/** A proxy for one parser. */
export interface L7Proxy {
  readonly parser: L7Parser;
  start(host: ProxyHost, port: number): Promise<void>;
  stop(): Promise<void>;
  /** Open client connections (status, bench). */
  connections(): number;
}

/** Reads the datapath's redirect records (cilium_proxy). */
export interface RedirectTable {
  lookup(key: Uint8Array): Uint8Array | undefined;
}

function bytesAddr(b: Uint8Array, family: number): string {
  if (family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return g.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

const swap16 = (v: number) => ((v & 0xff) << 8) | (v >> 8);

/** The redirect record of `client` in `table` (cilium_proxy), decoded. */
export function readRedirect(
  table: RedirectTable,
  protocol: 'tcp' | 'udp',
  client: Addr,
  proxyPort: number,
): RedirectInfo | undefined {
  const plain = client.address.replace(/^::ffff:(?=\d+\.)/i, '');
  const family = isIPv6(plain) ? 6 : 4;
  const key = proxyKey.encode({
    saddr6: addrBytes(plain),
    sport: swap16(client.port),
    nexthdr: protocol === 'tcp' ? 6 : 17,
    family,
  });
  const raw = table.lookup(key);
  if (raw === undefined) return undefined;
  const v = proxyValue.decode(raw);
  return {
    protocol,
    client: { address: plain, port: client.port },
    original: { address: bytesAddr(v.daddr6, family), port: swap16(v.dport) },
    endpointId: v.epId,
    egress: v.egress === 1,
    srcIdentity: v.srcIdentity,
    dstIdentity: v.dstIdentity,
    proxyPort,
  };
}

/** The mark of the proxy's upstream packets (bpf/lib/proxy.h): whose rules the proxy applied. */
export function upstreamMark(info: RedirectInfo): number {
  return info.egress ? DEFS.MARK_MAGIC_PROXY_EGRESS : DEFS.MARK_MAGIC_PROXY_INGRESS;
}

/**
 * The upstream connection of a redirected TCP connection: from the client's address (any port but
 * the client's own: that tuple is the client's connection's), marked.
 */
export function connectTransparent(info: RedirectInfo): Socket {
  return transparentConnect(
    { address: info.client.address, port: 0 },
    info.original,
    upstreamMark(info),
    info.client.port,
  );
}

/**
 * A transparent TCP listener on 127.0.0.1:port (and [::1]:port; port 0: any): each accepted
 * connection whose client the datapath redirected is handed over with its record; any other is
 * closed. `transparent` false: a plain listener (tests and benches without the datapath).
 */
export async function listenTcp(
  host: ProxyHost,
  port: number,
  onConnection: (client: Socket, info: RedirectInfo) => void,
  transparent = true,
): Promise<Server[]> {
  const servers: Server[] = [];
  for (const address of ['127.0.0.1', '::1']) {
    const server = createServer({ noDelay: true }, (sock) => {
      const info =
        sock.remoteAddress === undefined || sock.remotePort === undefined
          ? undefined
          : host.redirect('tcp', { address: sock.remoteAddress, port: sock.remotePort }, port);
      if (info === undefined) {
        sock.destroy();
        return;
      }
      onConnection(sock, info);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: address, port, backlog: 4096 }, () => resolve());
      });
    } catch (err) {
      if (address === '::1') continue; // no IPv6 loopback in this namespace
      for (const s of servers) s.close();
      throw err;
    }
    if (transparent) setTransparent(handleFd(server), address === '::1');
    servers.push(server);
  }
  return servers;
}

/** Registers the node's proxies and gives the policy engine their ports. */
export class ProxyManager {
  readonly #proxies = new Map<L7Parser, L7Proxy>();
  readonly #running = new Set<L7Parser>();

  constructor(readonly host: ProxyHost) {}

  /** Adds a proxy; its parser's rules are enforced from now on (its port goes into policy entries). */
  register(proxy: L7Proxy): void {
    if (this.#proxies.has(proxy.parser)) throw new Error(`a ${proxy.parser} proxy is registered already`);
    this.#proxies.set(proxy.parser, proxy);
  }

  /** The port policy entries redirect a parser's connections to (0: no such proxy). */
  port(parser: L7Parser): number {
    return this.#proxies.has(parser) ? PROXY_PORTS[parser] : 0;
  }

  async start(): Promise<void> {
    for (const [parser, p] of this.#proxies) {
      await p.start(this.host, PROXY_PORTS[parser]);
      this.#running.add(parser);
    }
  }

  async stop(): Promise<void> {
    for (const [parser, p] of this.#proxies) {
      if (!this.#running.delete(parser)) continue;
      await p.stop();
    }
  }

  status(): { parser: L7Parser; port: number; running: boolean; connections: number }[] {
    return [...this.#proxies.values()].map((p) => ({
      parser: p.parser,
      port: PROXY_PORTS[p.parser],
      running: this.#running.has(p.parser),
      connections: p.connections(),
    }));
  }
}
