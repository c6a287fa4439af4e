/**
 * The DNS proxy as one of the node's L7 proxies (src/proxy/framework.ts): UDP and TCP on
 * 127.0.0.1:<PROXY_PORTS.dns>, where the datapath hands the queries of endpoints whose egress
 * policy has DNS rules. Each query's redirect record says who asked, which server it was meant
 * for and whose rules apply; the handler (./handler.ts) answers REFUSED or forwards it to that
 * server, and the answer goes back to the pod from the server's address (a transparent socket),
 * so the pod sees an ordinary answer. Queries and answers are reported as Hubble L7 flows.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6, type Server, type Socket } from 'node:net';
import { serveTcpConnection } from '../../dns/tcp.js';
import type { L7Decision } from '../../policy/l7.js';
import { type L7Proxy, listenTcp, type ProxyHost, type RedirectInfo } from '../framework.js';
import { handleFd, sendUdpFrom, setTransparent } from '../sockets.js';
import {
  type DnsAnswerInfo,
  type DnsProxyEvent,
  DnsProxyHandler,
  type DnsQueryContext,
  type DnsRuleMatch,
} from './handler.js';

/** The DNS patterns an L7 decision allows (an L4-only allow: every name). */
export function dnsRuleMatch(d: L7Decision, endpointId: number): DnsRuleMatch | undefined {
  if (d.kind === 'deny') return undefined;
  if (d.kind === 'allow-all') return { endpointId, patterns: ['*'] };
  return { endpointId, patterns: d.rules.flatMap((r) => (r.parser === 'dns' ? r.dns : [])) };
}

export interface DnsProxyOptions {
  /** Hands an answer's IPs to the FQDN subsystem; resolves once they are allowed in the maps. */
  learn(info: DnsAnswerInfo): Promise<void>;
  /** Longest an answer waits for learn (default 1000 ms). */
  maxDelayMs?: number;
  log?(line: string): void;
}

const contextOf = (transport: 'udp' | 'tcp', info: RedirectInfo): DnsQueryContext => ({
  transport,
  source: { host: info.client.address, port: info.client.port },
  destination: {
    host: info.original.address,
    port: info.original.port,
    family: isIPv6(info.original.address) ? 6 : 4,
  },
  redirect: info,
});

export class DnsProxy implements L7Proxy {
  readonly parser = 'dns' as const;
  #udp: UdpSocket | undefined;
  #tcp: Server[] = [];
  readonly #conns = new Set<Socket>();
  #handler: DnsProxyHandler | undefined;
  /** Datagrams that reached the port without a redirect record (dropped). */
  unredirected = 0;

  constructor(readonly o: DnsProxyOptions) {}

  get handler(): DnsProxyHandler | undefined {
    return this.#handler;
  }

  connections(): number {
    return this.#conns.size;
  }

  async start(host: ProxyHost, port: number): Promise<void> {
    const handler = new DnsProxyHandler({
      rules: (ctx) =>
        ctx.redirect ? dnsRuleMatch(host.rules(ctx.redirect), ctx.redirect.endpointId) : undefined,
      onAnswer: (info) => this.o.learn(info),
      onEvent: (e) => {
        if (e.ctx.redirect) host.emit(l7Record(e, e.ctx.redirect));
      },
      ...(this.o.maxDelayMs !== undefined ? { maxDelayMs: this.o.maxDelayMs } : {}),
      ...(this.o.log ? { log: this.o.log } : {}),
    });
    this.#handler = handler;
    const udp = createSocket({ type: 'udp4', reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: '127.0.0.1', port, exclusive: true }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    setTransparent(handleFd(udp), false);
    udp.on('error', (e) => this.o.log?.(`dns proxy udp: ${e.message}`));
    udp.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      const info = host.redirect('udp', { address: rinfo.address, port: rinfo.port }, port);
      if (info === undefined) {
        this.unredirected++;
        return;
      }
      void handler.handle(msg, contextOf('udp', info)).then((out) => {
        if (out === undefined) return;
        try {
          sendUdpFrom(info.original, info.client, out);
        } catch (err) {
          this.o.log?.(
            `dns proxy: answer to ${info.client.address}:${info.client.port}: ${(err as Error).message}`,
          );
        }
      });
    });
    this.#udp = udp;
    try {
      this.#tcp = await listenTcp(host, port, (sock, info) => {
        const ctx = contextOf('tcp', info);
        serveTcpConnection(sock, (msg) => handler.handle(msg, ctx), this.#conns, { maxInFlight: 64 });
      });
    } catch (err) {
      udp.close();
      this.#udp = undefined;
      throw err;
    }
  }

  async stop(): Promise<void> {
    for (const c of this.#conns) c.destroy();
    this.#handler?.close();
    const udp = this.#udp;
    this.#udp = undefined;
    await Promise.all([
      ...(udp ? [new Promise<void>((r) => udp.close(() => r()))] : []),
      ...this.#tcp.map((s) => new Promise<void>((r) => s.close(() => r()))),
    ]);
    this.#tcp = [];
  }
}

/** A proxy event as the framework's L7 record (Hubble). */
function l7Record(e: DnsProxyEvent, info: RedirectInfo) {
  return {
    type: e.type,
    info,
    verdict: e.verdict,
    time: new Date(),
    ...(e.latencyNs !== undefined ? { latencyNs: e.latencyNs } : {}),
    dns: {
      query: e.query,
      qtypes: [...e.qtypes],
      ...(e.rcode !== undefined ? { rcode: e.rcode } : {}),
      ...(e.ips !== undefined ? { ips: [...e.ips] } : {}),
      ...(e.ttl !== undefined ? { ttl: e.ttl } : {}),
      ...(e.cnames !== undefined ? { cnames: [...e.cnames] } : {}),
      ...(e.rrtypes !== undefined ? { rrtypes: [...e.rrtypes] } : {}),
    },
  };
}
