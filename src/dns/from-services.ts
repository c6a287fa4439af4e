/**
 * DNS records from the cluster's Service and EndpointSlice objects (src/service/types.ts), as the
 * lab's endpoint controller holds them: what the lab writes into the records file.
 */
import {
  type EndpointSlice,
  isHeadless,
  type Service,
  serviceKey,
  sliceServiceKey,
} from '../service/types.js';
import { type DnsEndpoint, type DnsPod, type DnsRecords, parseDnsRecords } from './records.js';

export interface DnsRecordsInput {
  services: readonly Service[];
  endpointSlices: readonly EndpointSlice[];
  /** Pods with their IPs, for `<dashed-ip>.<ns>.pod.<zone>` (verified mode). */
  pods?: readonly DnsPod[];
  /** Namespaces that exist (so `<ns>.svc.<zone>` is NODATA rather than NXDOMAIN). */
  namespaces?: readonly string[];
}

/** Validated records; an endpoint whose `ready` is unset counts as ready, as the API reads it. */
export function dnsRecordsFromServices(input: DnsRecordsInput): DnsRecords {
  const endpoints = new Map<string, DnsEndpoint[]>();
  for (const slice of input.endpointSlices) {
    const key = sliceServiceKey(slice);
    const list = endpoints.get(key) ?? [];
    for (const ep of slice.endpoints)
      list.push({
        addresses: [...ep.addresses],
        ready: ep.conditions.ready ?? true,
        ...(ep.hostname !== undefined ? { hostname: ep.hostname } : {}),
      });
    endpoints.set(key, list);
  }
  const records: DnsRecords = {
    services: input.services.map((svc) => {
      const headless = isHeadless(svc);
      const ips = svc.spec.clusterIPs ?? (svc.spec.clusterIP ? [svc.spec.clusterIP] : []);
      return {
        name: svc.metadata.name,
        namespace: svc.metadata.namespace,
        clusterIPs: headless ? [] : ips.filter((ip) => ip !== 'None'),
        headless,
        ports: svc.spec.ports.map((p) => ({
          ...(p.name !== '' ? { name: p.name } : {}),
          port: p.port,
          protocol: p.protocol,
        })),
        endpoints: endpoints.get(serviceKey(svc)) ?? [],
        ...(svc.spec.publishNotReadyAddresses ? { publishNotReadyAddresses: true } : {}),
      };
    }),
    pods: (input.pods ?? []).map((p) => ({ name: p.name, namespace: p.namespace, ips: [...p.ips] })),
    ...(input.namespaces ? { namespaces: [...input.namespaces] } : {}),
  };
  return parseDnsRecords(records);
}
