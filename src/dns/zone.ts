/**
 * The cluster zone: the answers of the Kubernetes DNS specification (kubernetes/dns,
 * docs/specification.md, schema 1.0.1) computed from one records snapshot. Pure: the server decodes
 * the question, asks `lookup`, and encodes what comes back.
 *
 *   <svc>.<ns>.svc.<zone>                   A/AAAA: the ClusterIPs; headless: the published endpoints' IPs
 *                                           (NXDOMAIN when a headless service has none, as the spec says);
 *                                           ExternalName: a CNAME
 *   <host>.<svc>.<ns>.svc.<zone>            A/AAAA of the endpoint with that hostname (or dashed IP)
 *   _<port>._<proto>.<svc>.<ns>.svc.<zone>  SRV per named port: the service name, or per endpoint host
 *   <a-b-c-d>.<ns>.pod.<zone>               A/AAAA of a pod IP (verified: a pod in <ns> has that IP)
 *   dns-version.<zone>                      TXT: the schema version
 *   reverse names of ClusterIPs and endpoint IPs: PTR
 *
 * Names compare case-insensitively; answers are owned by the name as asked (so a client's case is kept).
 * A name that exists with no record of the asked type is NODATA (NOERROR, empty); a name that does
 * not exist is NXDOMAIN; both carry the zone's SOA for negative caching.
 */
import type { Answer } from 'dns-packet';
import { formatIp, parseIp } from '../labels/index.js';
import type { DnsRecords, DnsService } from './records.js';

/** Pod records (`<dashed-ip>.<ns>.pod.<zone>`), as CoreDNS's `pods` option. */
export type PodRecordsMode = 'verified' | 'insecure' | 'disabled';

export const POD_RECORDS_MODES: readonly PodRecordsMode[] = ['verified', 'insecure', 'disabled'];

/** The version of the Kubernetes DNS schema these answers follow (`dns-version.<zone>` TXT). */
export const DNS_SCHEMA_VERSION = '1.0.1';

export interface ZoneOptions {
  /** The cluster domain, lowercase, without a trailing dot (e.g. cluster.local). */
  zone: string;
  ttl: number;
  podRecords: PodRecordsMode;
  /** SOA serial: the server bumps it on every records change. */
  serial: number;
}

export interface ZoneAnswer {
  kind: 'answer';
  rcode: 'NOERROR' | 'NXDOMAIN';
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  /** An ExternalName CNAME whose target is outside the zone: the server may resolve it upstream. */
  chase?: { name: string; type: string };
}

/** Not a name of the zone (nor a reverse name of a cluster address): forward it or refuse. */
export interface Outside {
  kind: 'outside';
}

interface Addresses {
  v4: string[];
  v6: string[];
}

interface ServiceEntry {
  service: DnsService;
  /** What `<svc>.<ns>.svc` resolves to. */
  addresses: Addresses;
  /** Endpoint hostnames (or dashed IPs) → their addresses. */
  hosts: Map<string, Addresses>;
  /** `_<port>._<proto>` (lowercase) → port number; named ports only. */
  srv: Map<string, number>;
  /** `_<proto>` labels that have at least one named port (empty non-terminals). */
  protos: Set<string>;
  /** SRV targets (fully qualified, lowercase) with their addresses. */
  targets: { name: string; addresses: Addresses }[];
}

/** IPv4 `10.0.0.1` → `10-0-0-1`; IPv6 `fd00::1` → `fd00--1` (CoreDNS's form). */
export function dashedIp(ip: string): string {
  return ip.replace(/[.:]/g, '-');
}

/** The address a dashed label stands for, canonical, or undefined. */
export function undashIp(label: string): string | undefined {
  const v4 = /^(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})$/.exec(label);
  const text = v4 ? v4.slice(1).join('.') : label.replace(/-/g, ':');
  const p = parseIp(text);
  return p === undefined ? undefined : formatIp(p.family, p.addr);
}

function canonicalIp(ip: string): { family: 4 | 6; text: string } {
  const p = parseIp(ip)!;
  return { family: p.family as 4 | 6, text: formatIp(p.family, p.addr) };
}

/** `10.0.0.1` → `1.0.0.10.in-addr.arpa`; IPv6 → 32 nibbles under ip6.arpa. */
export function reverseName(ip: string): string {
  const p = parseIp(ip)!;
  if (p.family === 4) return `${canonicalIp(ip).text.split('.').reverse().join('.')}.in-addr.arpa`;
  const hex = p.addr.toString(16).padStart(32, '0');
  return `${[...hex].reverse().join('.')}.ip6.arpa`;
}

/** The address of a reverse name, or undefined if it names no single address. */
function addressOfReverseName(name: string): string | undefined {
  let m = /^((?:\d{1,3}\.){3}\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (m) {
    const parts = m[1]!.split('.').reverse();
    if (parts.some((o) => Number(o) > 255 || (o.length > 1 && o.startsWith('0')))) return undefined;
    return parts.join('.');
  }
  m = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(name);
  if (!m) return undefined;
  const hex = m[1]!.split('.').slice(0, 32).reverse().join('');
  return formatIp(6, BigInt(`0x${hex}`));
}

function addTo(a: Addresses, ip: string): void {
  const c = canonicalIp(ip);
  const list = c.family === 4 ? a.v4 : a.v6;
  if (!list.includes(c.text)) list.push(c.text);
}

const empty = (): Addresses => ({ v4: [], v6: [] });

export class ClusterZone {
  readonly zone: string;
  private readonly services = new Map<string, ServiceEntry>();
  private readonly namespaces = new Set<string>();
  private readonly podIps = new Set<string>();
  private readonly reverse = new Map<string, string[]>();

  constructor(
    records: DnsRecords,
    private readonly opts: ZoneOptions,
  ) {
    this.zone = opts.zone;
    for (const ns of records.namespaces ?? []) this.namespaces.add(ns);
    for (const pod of records.pods) {
      this.namespaces.add(pod.namespace);
      for (const ip of pod.ips) this.podIps.add(`${pod.namespace}/${canonicalIp(ip).text}`);
    }
    for (const svc of records.services) {
      this.namespaces.add(svc.namespace);
      const entry = this.indexService(svc);
      if (entry) this.services.set(`${svc.namespace}/${svc.name}`, entry);
    }
  }

  private addReverse(ip: string, target: string): void {
    const key = canonicalIp(ip).text;
    const list = this.reverse.get(key) ?? [];
    if (!list.includes(target)) list.push(target);
    this.reverse.set(key, list);
  }

  /** Undefined for a headless service with nothing published: its name does not exist (NXDOMAIN). */
  private indexService(svc: DnsService): ServiceEntry | undefined {
    const fqdn = `${svc.name}.${svc.namespace}.svc.${this.zone}`;
    const entry: ServiceEntry = {
      service: svc,
      addresses: empty(),
      hosts: new Map(),
      srv: new Map(),
      protos: new Set(),
      targets: [],
    };
    for (const ep of svc.endpoints) {
      if (!ep.ready && !svc.publishNotReadyAddresses) continue;
      for (const ip of ep.addresses) {
        const host = ep.hostname ?? dashedIp(canonicalIp(ip).text);
        const a = entry.hosts.get(host) ?? empty();
        addTo(a, ip);
        entry.hosts.set(host, a);
        this.addReverse(ip, `${host}.${fqdn}`);
        if (svc.headless) addTo(entry.addresses, ip);
      }
    }
    if (svc.externalName === undefined && svc.headless && entry.hosts.size === 0) return undefined;
    for (const ip of svc.clusterIPs) {
      addTo(entry.addresses, ip);
      this.addReverse(ip, fqdn);
    }
    for (const p of svc.ports) {
      if (p.name === undefined) continue;
      const proto = `_${p.protocol.toLowerCase()}`;
      entry.srv.set(`_${p.name}.${proto}`, p.port);
      entry.protos.add(proto);
    }
    if (svc.externalName !== undefined) {
      entry.srv.clear();
      entry.protos.clear();
    } else if (svc.headless)
      for (const [host, addresses] of entry.hosts) entry.targets.push({ name: `${host}.${fqdn}`, addresses });
    else entry.targets.push({ name: fqdn, addresses: entry.addresses });
    return entry;
  }

  /** The answer for one question; `name` as asked (any case, with or without the trailing dot). */
  lookup(name: string, type: string, depth = 0): ZoneAnswer | Outside {
    const asked = name.replace(/\.$/, '');
    const lower = asked.toLowerCase();
    if (lower.endsWith('.in-addr.arpa') || lower.endsWith('.ip6.arpa'))
      return this.lookupReverse(asked, type);
    if (lower !== this.zone && !lower.endsWith(`.${this.zone}`)) return { kind: 'outside' };
    const rel =
      lower === this.zone
        ? []
        : lower
            .slice(0, -this.zone.length - 1)
            .split('.')
            .reverse();
    const r = new Reply(asked, type, this.opts);
    const [top, ns, svc, ...rest] = rel;
    if (top === undefined) {
      if (type === 'SOA' || type === 'ANY') r.answers.push(this.soa());
      return r.done(this.soa());
    }
    if (rel.length === 1 && top === 'dns-version') {
      if (type === 'TXT' || type === 'ANY') r.record('TXT', [DNS_SCHEMA_VERSION]);
      return r.done(this.soa());
    }
    if (top === 'svc') {
      if (ns === undefined) return r.done(this.soa());
      if (svc === undefined) return this.namespaces.has(ns) ? r.done(this.soa()) : r.nx(this.soa());
      const e = this.services.get(`${ns}/${svc}`);
      if (!e) return r.nx(this.soa());
      if (rest.length === 0) return this.serviceName(e, r, depth);
      if (e.service.externalName !== undefined) return r.nx(this.soa());
      if (rest.length === 1) {
        const label = rest[0]!;
        if (label.startsWith('_')) return e.protos.has(label) ? r.done(this.soa()) : r.nx(this.soa());
        const host = e.hosts.get(label);
        if (!host) return r.nx(this.soa());
        r.addresses(host);
        return r.done(this.soa());
      }
      if (rest.length === 2) {
        const port = e.srv.get(`${rest[1]}.${rest[0]}`);
        if (port === undefined) return r.nx(this.soa());
        if (type === 'SRV' || type === 'ANY') {
          const weight = Math.max(1, Math.floor(100 / e.targets.length));
          for (const t of e.targets) {
            r.record('SRV', { priority: 0, weight, port, target: t.name });
            r.additional(t.name, t.addresses);
          }
        }
        return r.done(this.soa());
      }
      return r.nx(this.soa());
    }
    if (top === 'pod' && this.opts.podRecords !== 'disabled') {
      if (ns === undefined) return r.done(this.soa());
      const verified = this.opts.podRecords === 'verified';
      if (svc === undefined)
        return !verified || this.namespaces.has(ns) ? r.done(this.soa()) : r.nx(this.soa());
      const ip = rest.length === 0 ? undashIp(svc) : undefined;
      if (ip === undefined || (verified && !this.podIps.has(`${ns}/${ip}`))) return r.nx(this.soa());
      const a = empty();
      addTo(a, ip);
      r.addresses(a);
      return r.done(this.soa());
    }
    return r.nx(this.soa());
  }

  private serviceName(e: ServiceEntry, r: Reply, depth: number): ZoneAnswer {
    const target = e.service.externalName;
    if (target === undefined) {
      r.addresses(e.addresses);
      return r.done(this.soa());
    }
    r.record('CNAME', target);
    if (r.type === 'CNAME') return r.done(this.soa());
    const next = depth < 8 ? this.lookup(target, r.type, depth + 1) : undefined;
    if (next === undefined) return r.done(this.soa());
    if (next.kind === 'outside') return { ...r.done(this.soa()), chase: { name: target, type: r.type } };
    // The target's answers (and its NXDOMAIN) follow the CNAME, as a resolver would chase it.
    return {
      ...next,
      answers: [...r.answers, ...next.answers],
      additionals: [...r.additionals, ...next.additionals],
    };
  }

  private lookupReverse(asked: string, type: string): ZoneAnswer | Outside {
    const ip = addressOfReverseName(asked.toLowerCase());
    const targets = ip === undefined ? undefined : this.reverse.get(ip);
    if (!targets) return { kind: 'outside' };
    const r = new Reply(asked, type, this.opts);
    if (type === 'PTR' || type === 'ANY') for (const t of targets) r.record('PTR', t);
    const apex = asked.toLowerCase().endsWith('.in-addr.arpa') ? 'in-addr.arpa' : 'ip6.arpa';
    return r.done(this.soa(apex));
  }

  /** The zone's SOA (CoreDNS's shape: ns.dns.<zone>, hostmaster.<zone>, minimum = the TTL). */
  soa(owner = this.zone): Answer {
    return {
      name: owner,
      type: 'SOA',
      ttl: this.opts.ttl,
      data: {
        mname: `ns.dns.${this.zone}`,
        rname: `hostmaster.${this.zone}`,
        serial: this.opts.serial,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: this.opts.ttl,
      },
    };
  }
}

/** Collects the records of one answer, owned by the name as asked. */
class Reply {
  readonly answers: Answer[] = [];
  readonly additionals: Answer[] = [];
  constructor(
    readonly name: string,
    readonly type: string,
    private readonly opts: ZoneOptions,
  ) {}

  record(type: string, data: unknown): void {
    this.answers.push({ name: this.name, type, ttl: this.opts.ttl, data } as Answer);
  }

  addresses(a: Addresses): void {
    if (this.type === 'A' || this.type === 'ANY') for (const ip of a.v4) this.record('A', ip);
    if (this.type === 'AAAA' || this.type === 'ANY') for (const ip of a.v6) this.record('AAAA', ip);
  }

  additional(name: string, a: Addresses): void {
    for (const ip of a.v4) this.additionals.push({ name, type: 'A', ttl: this.opts.ttl, data: ip });
    for (const ip of a.v6) this.additionals.push({ name, type: 'AAAA', ttl: this.opts.ttl, data: ip });
  }

  /** NOERROR: the answers, or NODATA with the SOA when there are none. */
  done(soa: Answer): ZoneAnswer {
    return {
      kind: 'answer',
      rcode: 'NOERROR',
      answers: this.answers,
      authorities: this.answers.length === 0 ? [soa] : [],
      additionals: this.additionals,
    };
  }

  nx(soa: Answer): ZoneAnswer {
    return { kind: 'answer', rcode: 'NXDOMAIN', answers: [], authorities: [soa], additionals: [] };
  }
}
