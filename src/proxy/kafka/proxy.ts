/**
 * The node's Kafka proxy: the framework (../framework.ts) hands it the connections the datapath
 * redirected to a port with Kafka rules; each runs the Kafka filter against the original destination,
 * reached from the client's own address (ProxyHost.connectUpstream). The endpoint's rules are asked
 * at every request (ProxyHost.rules), so a policy change applies to open connections too. Each
 * request and answer becomes an L7 record (Hubble's Kafka fields).
 */
import type { Server, Socket } from 'node:net';
import type { L7Decision, L7Rules } from '../../policy/l7.js';
import { type L7Proxy, listenTcp, type ProxyHost, type RedirectInfo } from '../framework.js';
import { runKafkaConnection } from './connection.js';
import type { KafkaRecord } from './filter.js';
import { compileKafkaRule, compileKafkaRules, type KafkaRule } from './rules.js';

const ALLOW_ALL: readonly KafkaRule[] = [compileKafkaRule({})];

export class KafkaProxy implements L7Proxy {
  readonly parser = 'kafka' as const;
  #host?: ProxyHost;
  #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();
  /** Compiled rule sets, per rule-set object of the policy (they live as long as the policy). */
  readonly #compiled = new WeakMap<L7Rules, readonly KafkaRule[]>();

  connections(): number {
    return this.#sockets.size;
  }

  async start(host: ProxyHost, port: number): Promise<void> {
    this.#host = host;
    this.#servers = await listenTcp(host, port, (sock, info) => this.#accept(host, sock, info));
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.#servers = [];
  }

  #accept(host: ProxyHost, client: Socket, info: RedirectInfo): void {
    const upstream = host.connectUpstream(info);
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    }
    runKafkaConnection(client, upstream, {
      rules: () => this.#rules(host.rules(info)),
      onRecord: (r) => this.#emit(info, r),
    });
  }

  /** The Kafka rules of a decision, as one OR-list. */
  #rules(d: L7Decision): readonly KafkaRule[] {
    if (d.kind === 'allow-all') return ALLOW_ALL;
    if (d.kind === 'deny') return [];
    const out: KafkaRule[] = [];
    for (const set of d.rules) {
      if (set.parser !== 'kafka') continue;
      let compiled = this.#compiled.get(set);
      if (compiled === undefined) {
        try {
          compiled = compileKafkaRules(set.kafka);
        } catch {
          compiled = []; // checked by the policy parser already; a bad rule allows nothing
        }
        this.#compiled.set(set, compiled);
      }
      out.push(...compiled);
    }
    return out;
  }

  #emit(info: RedirectInfo, r: KafkaRecord): void {
    this.#host?.emit({
      type: r.type,
      info,
      verdict: r.verdict,
      time: new Date(),
      ...(r.latencyNs !== undefined ? { latencyNs: r.latencyNs } : {}),
      kafka: {
        errorCode: r.errorCode,
        apiVersion: r.apiVersion,
        apiKey: r.apiKey,
        correlationId: r.correlationId,
        ...(r.topic !== '' ? { topic: r.topic } : {}),
      },
    });
  }
}
