/**
 * Cluster DNS in the lab (`lab up --dns`): a system pod in kube-system (`cluster-dns`, labelled
 * k8s-app=kube-dns like CoreDNS) runs `cilium-ts dns serve` behind the Service `kube-dns` on
 * 10.96.0.10 (UDP and TCP 53, ports named dns and dns-tcp). The lab keeps the server's records
 * (services, their endpoints, pods, namespaces) in a file the server follows, rewritten whenever
 * services or endpoints change. Names outside the cluster zone are refused: nothing leaves the machine.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DnsRecords, DnsService } from '../dns/records.js';
import { writeRecordsFile } from '../dns/records-file.js';
import { emptyManifests, type Manifests, type Namespace, type Pod } from '../k8s/objects.js';
import { isHeadless, SERVICE_NAME_LABEL } from '../service/types.js';
import { LabError } from './errors.js';
import { canonical } from './resources.js';
import { CLUSTER_DNS_IP } from './service-alloc.js';
import { type LabState, labDir, podKey } from './state.js';

export const DNS_NAMESPACE = 'kube-system';
export const DNS_POD = 'cluster-dns';
export const DNS_SERVICE = 'kube-dns';
const DNS_LABELS = { 'k8s-app': 'kube-dns' };

export function dnsRecordsPath(lab: string): string {
  return join(labDir(lab), 'dns', 'records.json');
}

/** The system objects: namespace kube-system, the server's pod (on the first node) and the Service. */
export function clusterDnsManifests(s: LabState): Manifests {
  const m = emptyManifests();
  m.namespaces.push({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: DNS_NAMESPACE },
  } as Namespace);
  m.pods.push({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: DNS_POD, namespace: DNS_NAMESPACE, labels: DNS_LABELS },
    spec: {
      nodeName: s.nodes[0]!.name,
      // As CoreDNS: the node's resolv.conf, not the cluster's (it is the cluster's resolver).
      dnsPolicy: 'Default',
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: 'dns',
          command: [
            'cilium-ts',
            'dns',
            'serve',
            '--listen',
            '0.0.0.0:53',
            '--records',
            dnsRecordsPath(s.name),
          ],
          ports: [
            { name: 'dns', containerPort: 53, protocol: 'UDP' },
            { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
          ],
        },
      ],
    },
  } as Pod);
  m.services.push({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: DNS_SERVICE, namespace: DNS_NAMESPACE, labels: DNS_LABELS },
    spec: {
      selector: DNS_LABELS,
      clusterIP: CLUSTER_DNS_IP,
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 'dns-tcp' },
      ],
    },
  });
  return m;
}

/** What the DNS server answers from, as the lab holds it now. */
export function dnsRecords(s: LabState): DnsRecords {
  const services: DnsService[] = Object.values(s.services).map(({ object: svc }) => {
    const slices = Object.values(s.endpointSlices).filter(
      (x) =>
        x.metadata.namespace === svc.metadata.namespace &&
        x.metadata.labels?.[SERVICE_NAME_LABEL] === svc.metadata.name,
    );
    return {
      name: svc.metadata.name,
      namespace: svc.metadata.namespace,
      headless: isHeadless(svc),
      clusterIPs: isHeadless(svc) ? [] : (svc.spec.clusterIPs ?? []),
      // SRV names are IANA service names (at most 15 characters); a longer port name gets none.
      ports: svc.spec.ports.map((p) => ({
        ...(p.name && p.name.length <= 15 ? { name: p.name } : {}),
        port: p.port,
        protocol: p.protocol,
      })),
      endpoints: slices.flatMap((x) =>
        x.endpoints.map((e) => ({
          addresses: e.addresses,
          ...(e.hostname ? { hostname: e.hostname } : {}),
          ready: e.conditions.ready ?? true,
        })),
      ),
      ...(svc.spec.publishNotReadyAddresses ? { publishNotReadyAddresses: true } : {}),
    };
  });
  const pods = Object.values(s.pods)
    .filter((p) => p.ipv4 && !p.deletion)
    .map((p) => ({ name: p.name, namespace: p.namespace, ips: [p.ipv4!] }));
  return { services, pods, namespaces: Object.keys(s.namespaces) };
}

/** Rewrites the records file (atomically) when cluster DNS is on and the records changed. */
export function writeDnsRecords(s: LabState): void {
  if (!s.dns?.enabled) return;
  const file = dnsRecordsPath(s.name);
  const records = dnsRecords(s);
  try {
    if (canonical(JSON.parse(readFileSync(file, 'utf8'))) === canonical(records)) return;
  } catch {
    // none yet
  }
  mkdirSync(dirname(file), { recursive: true });
  writeRecordsFile(file, records);
}

/**
 * Resolves once the cluster DNS server listens on UDP 53 in its pod (the lab has no readiness
 * probes): until then a pod's lookups are refused at once, so `lab up --dns` waits for it.
 */
export async function waitClusterDns(s: LabState, timeoutMs = 60_000): Promise<void> {
  const pod = s.pods[podKey(DNS_NAMESPACE, DNS_POD)];
  if (!pod)
    throw new LabError(`cluster DNS: pod ${DNS_NAMESPACE}/${DNS_POD} is missing`, { code: 'internal' });
  const listening = () =>
    spawnSync('nsenter', [`--net=/run/netns/${pod.netns}`, 'ss', '-Hlun', 'sport = :53'], {
      encoding: 'utf8',
    }).stdout.trim() !== '';
  const end = Date.now() + timeoutMs;
  while (!listening()) {
    if (Date.now() > end)
      throw new LabError(
        `cluster DNS: the server in ${DNS_NAMESPACE}/${DNS_POD} did not listen on UDP 53 within ${timeoutMs / 1000} s`,
        {
          code: 'unavailable',
        },
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}
