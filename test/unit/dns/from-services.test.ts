import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  type DnsServer,
  dnsRecordsFromServices,
  startDnsServer,
  staticRecordSource,
} from '../../../src/dns/index.js';
import { parseEndpointSlice, parseService } from '../../../src/service/validate.js';
import { ask, rrs } from './wire.js';

const Z = 'svc.cluster.local';

const service = (name: string, spec: object) =>
  parseService({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec });

const slice = (service: string, addressType: string, endpoints: object[]) =>
  parseEndpointSlice({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${service}-${addressType.toLowerCase()}`,
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': service },
    },
    addressType,
    endpoints,
    ports: [{ name: 'pg', protocol: 'TCP', port: 5432 }],
  });

describe('DNS records from Service and EndpointSlice objects', () => {
  const servers: DnsServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('ClusterIP, headless with hostnames across IPv4 and IPv6 slices, unready and unset conditions, unnamed ports', async () => {
    const records = dnsRecordsFromServices({
      services: [
        service('deathstar', {
          selector: { app: 'deathstar' },
          clusterIP: '10.96.0.20',
          ports: [{ port: 80, protocol: 'TCP' }],
        }),
        service('db', {
          selector: { app: 'db' },
          clusterIP: 'None',
          ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
        }),
      ],
      endpointSlices: [
        slice('db', 'IPv4', [
          { addresses: ['10.200.0.5'], hostname: 'db-0', conditions: { ready: true } },
          { addresses: ['10.200.0.6'], conditions: {} },
          { addresses: ['10.200.0.7'], hostname: 'db-2', conditions: { ready: false, terminating: true } },
        ]),
        slice('db', 'IPv6', [{ addresses: ['fd00:200::5'], hostname: 'db-0', conditions: { ready: true } }]),
      ],
      pods: [{ name: 'db-0', namespace: 'default', ips: ['10.200.0.5'] }],
      namespaces: ['default', 'kube-system'],
    });
    assert.deepEqual(
      records.services.map((s) => [s.name, s.headless, s.clusterIPs, s.ports]),
      [
        ['deathstar', false, ['10.96.0.20'], [{ port: 80, protocol: 'TCP' }]],
        ['db', true, [], [{ name: 'pg', port: 5432, protocol: 'TCP' }]],
      ],
    );

    const s = await startDnsServer({ listen: ['127.0.0.1:0'], source: staticRecordSource(records) });
    servers.push(s);
    const port = s.addresses[0]!.port;
    assert.deepEqual(rrs((await ask(port, `deathstar.default.${Z}`, 'A')).answers), [
      `deathstar.default.${Z} 30 A 10.96.0.20`,
    ]);
    assert.deepEqual(
      rrs((await ask(port, `db.default.${Z}`, 'A')).answers).sort(),
      [`db.default.${Z} 30 A 10.200.0.5`, `db.default.${Z} 30 A 10.200.0.6`],
      'the unset condition counts as ready, the terminating endpoint does not',
    );
    assert.deepEqual(rrs((await ask(port, `db-0.db.default.${Z}`, 'AAAA')).answers), [
      `db-0.db.default.${Z} 30 AAAA fd00:200::5`,
    ]);
    assert.deepEqual(rrs((await ask(port, `_pg._tcp.db.default.${Z}`, 'SRV')).answers).sort(), [
      `_pg._tcp.db.default.${Z} 30 SRV 0 50 5432 10-200-0-6.db.default.${Z}`,
      `_pg._tcp.db.default.${Z} 30 SRV 0 50 5432 db-0.db.default.${Z}`,
    ]);
    assert.equal((await ask(port, `kube-system.${Z}`, 'A')).rcode, 'NOERROR');
  });
});
