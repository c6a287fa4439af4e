/**
 * What the cluster DNS server answers from: the services (with the endpoints of each) and pods of the
 * cluster, as the lab's endpoint controller sees them. The server asks its DnsRecordSource for the
 * current snapshot on every query and rebuilds its index only when the snapshot object changes, so a
 * source replaces the whole object on an update and never mutates a snapshot it handed out.
 */
import { z } from 'zod';
import { parseIp } from '../labels/index.js';
import { DnsArgumentError } from './errors.js';

export type DnsPortProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface DnsServicePort {
  /** Port name; only named ports get SRV records (`_<name>._<proto>.<svc>.<ns>.svc.<zone>`). */
  name?: string;
  port: number;
  protocol: DnsPortProtocol;
}

/** One endpoint (one pod) of a service, as in an EndpointSlice. */
export interface DnsEndpoint {
  /** The pod's IPs (one per family at most in the lab, more are allowed). */
  addresses: string[];
  /**
   * The endpoint's hostname: the pod's spec.hostname when its spec.subdomain names the service (as
   * Kubernetes' endpoint controller sets it). Without it the dashed IP stands in, as CoreDNS does.
   */
  hostname?: string;
  /** Only ready endpoints are published, unless the service has publishNotReadyAddresses. */
  ready: boolean;
}

export interface DnsService {
  name: string;
  namespace: string;
  /** ClusterIPs, at most one per family; empty for headless and ExternalName services. */
  clusterIPs: string[];
  /** clusterIP: None — the service name resolves to its ready endpoints' IPs. */
  headless: boolean;
  /** type: ExternalName — the service name is a CNAME to this name. */
  externalName?: string;
  ports: DnsServicePort[];
  endpoints: DnsEndpoint[];
  /** Publish endpoints that are not ready as well (Service.spec.publishNotReadyAddresses). */
  publishNotReadyAddresses?: boolean;
}

export interface DnsPod {
  name: string;
  namespace: string;
  ips: string[];
}

export interface DnsRecords {
  services: DnsService[];
  /** Pods, for `<dashed-ip>.<ns>.pod.<zone>` in the `verified` pod-records mode. */
  pods: DnsPod[];
  /** Namespaces that exist even without services or pods (`<ns>.svc.<zone>` is then NODATA, not NXDOMAIN). */
  namespaces?: string[];
}

/** Where the server gets its records: the current snapshot, replaced (never mutated) on a change. */
export interface DnsRecordSource {
  current(): DnsRecords;
}

/** A source that always answers the same snapshot (tests, one-shot use). */
export function staticRecordSource(records: DnsRecords): DnsRecordSource {
  const snapshot = parseDnsRecords(records);
  return { current: () => snapshot };
}

/** A source the caller updates in place of a file (the lab in process, tests). */
export class MemoryRecordSource implements DnsRecordSource {
  private snapshot: DnsRecords;
  constructor(records: DnsRecords = { services: [], pods: [] }) {
    this.snapshot = parseDnsRecords(records);
  }
  current(): DnsRecords {
    return this.snapshot;
  }
  /** Validates and swaps in a new snapshot; an invalid one throws and leaves the old in place. */
  set(records: DnsRecords): void {
    this.snapshot = parseDnsRecords(records);
  }
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const label = (max = 63) => z.string().max(max).regex(LABEL, 'must be a lowercase DNS label (a-z, 0-9, "-")');
const dnsName = z
  .string()
  .transform((s) => s.replace(/\.$/, ''))
  .pipe(
    z
      .string()
      .min(1)
      .max(253)
      .refine((s) => s.split('.').every((l) => l.length <= 63 && LABEL.test(l)), 'must be a DNS name'),
  );
const ip = z.string().refine((s) => parseIp(s) !== undefined, 'must be an IP address');

const PortSchema = z.strictObject({
  name: label(15).optional(),
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']),
});

const EndpointSchema = z.strictObject({
  addresses: z.array(ip).min(1),
  hostname: label().optional(),
  ready: z.boolean(),
});

const ServiceSchema = z
  .strictObject({
    name: label(),
    namespace: label(),
    clusterIPs: z.array(ip).max(2),
    headless: z.boolean(),
    externalName: dnsName.optional(),
    ports: z.array(PortSchema),
    endpoints: z.array(EndpointSchema),
    publishNotReadyAddresses: z.boolean().optional(),
  })
  .superRefine((s, ctx) => {
    if (s.headless && s.clusterIPs.length > 0)
      ctx.addIssue({ code: 'custom', path: ['clusterIPs'], message: 'a headless service has no clusterIPs' });
    if (s.externalName !== undefined && (s.headless || s.clusterIPs.length > 0))
      ctx.addIssue({
        code: 'custom',
        path: ['externalName'],
        message: 'an ExternalName service is neither headless nor has clusterIPs',
      });
    const families = s.clusterIPs.map((a) => parseIp(a)?.family);
    if (new Set(families).size !== families.length)
      ctx.addIssue({ code: 'custom', path: ['clusterIPs'], message: 'at most one clusterIP per family' });
    const seen = new Set<string>();
    s.ports.forEach((p, i) => {
      if (p.name === undefined) return;
      const key = `${p.name}/${p.protocol}`;
      if (seen.has(key))
        ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: `duplicate port ${key}` });
      seen.add(key);
    });
  });

const PodSchema = z.strictObject({ name: z.string().min(1).max(253), namespace: label(), ips: z.array(ip) });

const RecordsSchema = z
  .strictObject({
    services: z.array(ServiceSchema),
    pods: z.array(PodSchema),
    namespaces: z.array(label()).optional(),
  })
  .superRefine((r, ctx) => {
    const seen = new Set<string>();
    r.services.forEach((s, i) => {
      const key = `${s.namespace}/${s.name}`;
      if (seen.has(key))
        ctx.addIssue({ code: 'custom', path: ['services', i, 'name'], message: `duplicate service ${key}` });
      seen.add(key);
    });
  });

/** Validates records (from the lab's file or a caller); the error names the field at fault. */
export function parseDnsRecords(value: unknown, where = 'records'): DnsRecords {
  const r = RecordsSchema.safeParse(value);
  if (r.success) return r.data as DnsRecords;
  const issue = r.error.issues[0]!;
  const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  throw new DnsArgumentError(`${where}${field}`, issue.message);
}
