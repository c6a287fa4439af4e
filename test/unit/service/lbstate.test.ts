import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LbError } from '../../../src/service/errors.js';
import { IPPROTO, LB_ALGORITHM_SHIFT, SVC_FLAG } from '../../../src/service/flags.js';
import {
  backendKeyOf,
  familyIdKey,
  frontendKeyOf,
  LbState,
  parseAffinityMatchKey,
  parseFamilyIdKey,
  parseServiceRowKey,
  parseSourceRangeKey,
  serviceRowKey,
  sourceRangeKey,
} from '../../../src/service/lbstate.js';
import { Maglev } from '../../../src/service/maglev.js';
import type { EndpointSlice, Service } from '../../../src/service/types.js';
import { parseEndpointSlice, parseService } from '../../../src/service/validate.js';
import type { Change } from '../../../src/statedb/table.js';

const NODE = { nodeName: 'node-1', nodeIPs: ['192.168.10.1'] };

function service(name: string, spec: Record<string, unknown>, status?: Record<string, unknown>): Service {
  return parseService({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec,
    ...(status ? { status } : {}),
  });
}

function slice(
  svc: string,
  ips: (string | { ip: string; terminating?: boolean; node?: string })[],
  port = 8080,
  name = `${svc}-1`,
  portName = '',
): EndpointSlice {
  return parseEndpointSlice({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: ips.map((x) => {
      const e = typeof x === 'string' ? { ip: x } : x;
      return {
        addresses: [e.ip],
        conditions: e.terminating ? { ready: false, serving: true, terminating: true } : { ready: true },
        ...(e.node ? { nodeName: e.node } : {}),
      };
    }),
    ports: [{ name: portName, port, protocol: 'TCP' }],
  });
}

const keys = (t: { keys(): IterableIterator<string> }) => [...t.keys()].sort();

describe('LbState: rows of one ClusterIP service', () => {
  it('master entry, one slot per backend, rev-NAT, backends, frontend view', () => {
    const lb = new LbState(NODE);
    lb.upsertService(service('web', { clusterIP: '10.96.0.20', ports: [{ port: 80, targetPort: 8080 }] }));
    lb.upsertEndpointSlice(slice('web', ['10.0.0.2', '10.0.0.1']));
    const t = lb.tables;
    assert.deepEqual(keys(t.services), [
      '10.96.0.20:0/ANY#0',
      '10.96.0.20:80/TCP#0',
      '10.96.0.20:80/TCP#1',
      '10.96.0.20:80/TCP#2',
    ]);
    const master = t.services.get('10.96.0.20:80/TCP#0')!;
    const revNat = master.value.revNatIndex;
    assert.ok(revNat >= 1);
    assert.deepEqual(master, {
      key: { family: 4, address: '10.96.0.20', port: 80, backendSlot: 0, protocol: IPPROTO.TCP, scope: 0 },
      value: {
        backendId: 1 << LB_ALGORITHM_SHIFT,
        count: 2,
        revNatIndex: revNat,
        flags: 0,
        flags2: 0,
        qcount: 0,
      },
    });
    // Slots name the backends in address order.
    const slotBackend = (s: number) =>
      t.backends.get(familyIdKey(4, t.services.get(`10.96.0.20:80/TCP#${s}`)!.value.backendId))!;
    assert.equal(slotBackend(1).address, '10.0.0.1');
    assert.equal(slotBackend(2).address, '10.0.0.2');
    assert.deepEqual(slotBackend(1), {
      id: slotBackend(1).id,
      family: 4,
      address: '10.0.0.1',
      port: 8080,
      protocol: IPPROTO.TCP,
      state: 0,
      clusterId: 0,
      zone: 0,
    });
    assert.deepEqual(t.revNat.get(familyIdKey(4, revNat)), {
      revNatIndex: revNat,
      family: 4,
      address: '10.96.0.20',
      port: 80,
    });
    // The wildcard entry drops other ports of the VIP: no backend, no rev-NAT.
    assert.deepEqual(t.services.get('10.96.0.20:0/ANY#0')!.value, {
      backendId: 0,
      count: 0,
      revNatIndex: 0,
      flags: 0,
      flags2: 0,
      qcount: 0,
    });
    const fe = lb.frontend('10.96.0.20:80/TCP')!;
    assert.equal(fe.id, revNat);
    assert.equal(fe.flagsText, 'ClusterIP, non-routable');
    assert.deepEqual(
      fe.backends.map((b) => [b.slot, `${b.address}:${b.port}`, b.state]),
      [
        [1, '10.0.0.1:8080', 'active'],
        [2, '10.0.0.2:8080', 'active'],
      ],
    );
    assert.equal(t.maglev.size, 0);
    assert.equal(t.affinityMatch.size, 0);
  });

  it('a slice can come before its service; deleting both leaves nothing and frees every ID', () => {
    const lb = new LbState(NODE);
    lb.upsertEndpointSlice(slice('web', ['10.0.0.1']));
    assert.equal(lb.tables.services.size, 0);
    lb.upsertService(service('web', { clusterIP: '10.96.0.20', ports: [{ port: 80 }] }));
    assert.equal(lb.tables.services.size, 3);
    lb.deleteService('default/web');
    lb.deleteEndpointSlice('default', 'web-1');
    for (const t of Object.values(lb.tables)) assert.equal(t.size, 0);
    assert.equal(lb.serviceIds.size, 0);
    assert.equal(lb.backendIds.size, 0);
  });
});

describe('LbState: changes', () => {
  it('an endpoint change rewrites only that service: IDs stay, a removed backend slot and row go', () => {
    const lb = new LbState(NODE);
    for (const n of ['a', 'b']) {
      lb.upsertService(
        service(n, { clusterIP: n === 'a' ? '10.96.0.1' : '10.96.0.2', ports: [{ port: 80 }] }),
      );
      lb.upsertEndpointSlice(slice(n, n === 'a' ? ['10.0.0.1', '10.0.0.2', '10.0.0.3'] : ['10.0.1.1'], 80));
    }
    const id2 = lb.backendIds.lookup('10.0.0.2:80/TCP');
    const revA = lb.frontend('10.96.0.1:80/TCP')!.id;
    const changes: Change<unknown>[] = [];
    for (const t of Object.values(lb.tables))
      t.watch((cs: readonly Change<unknown>[]) => changes.push(...cs));

    lb.upsertEndpointSlice(slice('a', ['10.0.0.2', '10.0.0.3'], 80));
    assert.equal(lb.backendIds.lookup('10.0.0.2:80/TCP'), id2);
    assert.equal(lb.backendIds.lookup('10.0.0.1:80/TCP'), undefined);
    assert.equal(lb.frontend('10.96.0.1:80/TCP')!.id, revA);
    assert.ok(!lb.tables.services.has('10.96.0.1:80/TCP#3'));
    assert.equal(lb.tables.services.get('10.96.0.1:80/TCP#0')!.value.count, 2);
    assert.ok(changes.length > 0);
    assert.ok(
      changes.every((c) => !c.key.includes('10.96.0.2') && !c.key.includes('10.0.1.1')),
      'service b is untouched',
    );
    // The same slice again changes nothing.
    changes.length = 0;
    lb.upsertEndpointSlice(slice('a', ['10.0.0.2', '10.0.0.3'], 80));
    assert.deepEqual(changes, []);
  });

  it('a backend shared by two services is one row with one ID until the last service lets it go', () => {
    const lb = new LbState(NODE);
    lb.upsertService(service('a', { clusterIP: '10.96.0.1', ports: [{ port: 80 }] }));
    lb.upsertService(service('b', { clusterIP: '10.96.0.2', ports: [{ port: 80 }] }));
    lb.upsertEndpointSlice(slice('a', ['10.0.0.1'], 80));
    lb.upsertEndpointSlice(slice('b', ['10.0.0.1'], 80));
    assert.equal(lb.tables.backends.size, 1);
    const id = lb.backendIds.lookup('10.0.0.1:80/TCP')!;
    assert.equal(lb.tables.services.get('10.96.0.1:80/TCP#1')!.value.backendId, id);
    assert.equal(lb.tables.services.get('10.96.0.2:80/TCP#1')!.value.backendId, id);
    lb.deleteService('default/a');
    assert.equal(lb.tables.backends.size, 1);
    lb.deleteService('default/b');
    assert.equal(lb.tables.backends.size, 0);
  });

  it('a backend terminating in every service that uses it is written as terminating', () => {
    const lb = new LbState(NODE);
    lb.upsertService(service('a', { clusterIP: '10.96.0.1', ports: [{ port: 80 }] }));
    lb.upsertEndpointSlice(slice('a', [{ ip: '10.0.0.1', terminating: true }, '10.0.0.2'], 80));
    const row = lb.tables.backends.get(familyIdKey(4, lb.backendIds.lookup('10.0.0.1:80/TCP')!))!;
    assert.equal(row.state, 1);
    const master = lb.tables.services.get('10.96.0.1:80/TCP#0')!.value;
    assert.deepEqual([master.count, master.qcount], [1, 1]);
  });

  it('the node address changing moves the NodePort frontends, their rev-NAT and Maglev rows', () => {
    const lb = new LbState(NODE, { algorithm: 'maglev', maglev: { tableSize: 251 } });
    lb.upsertService(
      service('np', { type: 'NodePort', clusterIP: '10.96.0.5', ports: [{ port: 80, nodePort: 30080 }] }),
    );
    lb.upsertEndpointSlice(slice('np', ['10.0.0.1', '10.0.0.2'], 80));
    assert.ok(lb.frontend('192.168.10.1:30080/TCP') !== undefined);
    const oldRev = lb.frontend('192.168.10.1:30080/TCP')!.id;
    assert.ok(lb.tables.maglev.has(familyIdKey(4, oldRev)));
    lb.setNode({ nodeName: 'node-1', nodeIPs: ['192.168.10.9'] });
    assert.ok(!(lb.frontend('192.168.10.1:30080/TCP') !== undefined));
    assert.ok(lb.frontend('192.168.10.9:30080/TCP') !== undefined);
    assert.ok(!lb.tables.services.has('192.168.10.1:30080/TCP#0'));
    assert.equal(lb.tables.maglev.size, 1);
  });
});

describe('LbState: update() applies many changes as one step', () => {
  it('each service is computed once with all its slices: watchers see one batch and no half state', () => {
    const lb = new LbState(NODE);
    const calls: Change<unknown>[][] = [];
    lb.tables.services.watch((cs: readonly Change<unknown>[]) => calls.push([...cs]));
    lb.update(() => {
      for (const n of ['a', 'b', 'c']) {
        lb.upsertService(service(n, { clusterIP: `10.96.0.${n.charCodeAt(0)}`, ports: [{ port: 80 }] }));
        lb.upsertEndpointSlice(slice(n, ['10.0.0.1', '10.0.0.2'], 80));
      }
      assert.equal(lb.tables.services.size, 0, 'nothing is written before the step ends');
    });
    assert.equal(calls.length, 1);
    const masters = calls[0]!.filter((c) => c.key.endsWith('/TCP#0'));
    assert.equal(masters.length, 3);
    assert.ok(masters.every((c) => (c.value as { value: { count: number } }).value.count === 2));
    assert.deepEqual(
      lb.frontends().map((f) => [f.id, f.service]),
      [
        [1, 'default/a'],
        [2, 'default/b'],
        [3, 'default/c'],
      ],
    );
  });
});

describe('LbState: NodePort, LoadBalancer, affinity, source ranges, Maglev', () => {
  const lbService = () =>
    service(
      'shop',
      {
        type: 'LoadBalancer',
        clusterIP: '10.96.0.7',
        externalTrafficPolicy: 'Local',
        ports: [{ port: 443, targetPort: 8443, nodePort: 30443 }],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 300 } },
        loadBalancerSourceRanges: ['192.0.2.0/24'],
      },
      { loadBalancer: { ingress: [{ ip: '172.18.255.10' }] } },
    );

  it('every frontend has its own rev-NAT index; scopes, flags and slot rows follow the frontend', () => {
    const lb = new LbState(NODE, { algorithm: 'maglev' });
    lb.upsertService(lbService());
    lb.upsertEndpointSlice(
      slice(
        'shop',
        [
          { ip: '10.0.0.1', node: 'node-1' },
          { ip: '10.0.0.2', node: 'node-2' },
        ],
        8443,
      ),
    );
    const fes = lb.frontends();
    assert.deepEqual(fes.map((f) => f.key).sort(), [
      '0.0.0.0:30443/TCP',
      '0.0.0.0:30443/TCP/i',
      '10.96.0.7:443/TCP',
      '172.18.255.10:443/TCP',
      '172.18.255.10:443/TCP/i',
      '192.168.10.1:30443/TCP',
      '192.168.10.1:30443/TCP/i',
    ]);
    assert.equal(new Set(fes.map((f) => f.id)).size, fes.length);

    const ext = lb.tables.services.get('172.18.255.10:443/TCP#0')!;
    const int = lb.tables.services.get('172.18.255.10:443/TCP/i#0')!;
    assert.equal(ext.key.scope, 0);
    assert.equal(int.key.scope, 1);
    assert.equal(ext.value.count, 1, 'external scope: the node-local backend only');
    assert.equal(int.value.count, 2, 'internal scope: all backends');
    const flags = ext.value.flags | (ext.value.flags2 << 8);
    assert.equal(
      flags,
      SVC_FLAG.LOADBALANCER |
        SVC_FLAG.ROUTABLE |
        SVC_FLAG.EXT_LOCAL_SCOPE |
        SVC_FLAG.TWO_SCOPES |
        SVC_FLAG.AFFINITY |
        SVC_FLAG.SOURCE_RANGE,
    );
    assert.equal(
      lb.frontend('172.18.255.10:443/TCP')!.flagsText,
      'LoadBalancer, Local, two-scopes, sessionAffinity, check source-range',
    );
    // Master word: Maglev (2) in the upper 8 bits, 300 s in the lower 24.
    assert.equal(ext.value.backendId, (2 << 24) | 300);
    assert.equal(lb.tables.services.get('10.96.0.7:443/TCP#0')!.value.backendId, (1 << 24) | 300);
  });

  it('affinity-match rows for each frontend and active backend; source ranges on the LoadBalancer frontends', () => {
    const lb = new LbState(NODE);
    lb.upsertService(lbService());
    lb.upsertEndpointSlice(
      slice(
        'shop',
        ['10.0.0.1', { ip: '10.0.0.2', terminating: true }].map((x) =>
          typeof x === 'string' ? { ip: x, node: 'node-1' } : { ...x, node: 'node-1' },
        ),
        8443,
      ),
    );
    const active = lb.backendIds.lookup('10.0.0.1:8443/TCP')!;
    const rows = [...lb.tables.affinityMatch.values()];
    assert.equal(rows.length, lb.frontends().length, 'one per frontend: only the active backend');
    assert.ok(rows.every((r) => r.backendId === active));
    const lbIds = ['172.18.255.10:443/TCP', '172.18.255.10:443/TCP/i'].map((k) => lb.frontend(k)!.id);
    assert.deepEqual(
      [...lb.tables.sourceRange.values()].map((r) => [r.revNatIndex, `${r.address}/${r.prefixLen}`]).sort(),
      lbIds.map((id) => [id, '192.0.2.0/24']).sort(),
    );
  });

  it('the Maglev row is the table of the slotted backends with their node-local IDs, and goes with the last backend', () => {
    const lb = new LbState(NODE, { algorithm: 'maglev', maglev: { tableSize: 1021 } });
    lb.upsertService(
      service('np', { type: 'NodePort', clusterIP: '10.96.0.5', ports: [{ port: 80, nodePort: 30080 }] }),
    );
    lb.upsertEndpointSlice(slice('np', ['10.0.0.1', '10.0.0.2', '10.0.0.3'], 80));
    const fe = lb.frontend('192.168.10.1:30080/TCP')!;
    const row = lb.tables.maglev.get(familyIdKey(4, fe.id))!;
    const expected = new Maglev({ tableSize: 1021 }).table(
      fe.backends.map((b) => ({ id: b.id, address: b.address, port: b.port, protocol: b.protocol })),
    );
    assert.deepEqual(row.backendIds, expected);
    assert.equal(new Set(row.backendIds).size, 3);
    assert.ok(!lb.tables.maglev.has(familyIdKey(4, lb.frontend('0.0.0.0:30080/TCP')!.id)));
    lb.upsertEndpointSlice(slice('np', [], 80));
    assert.equal(lb.tables.maglev.size, 0);
    assert.equal(lb.tables.services.get('192.168.10.1:30080/TCP#0')!.value.count, 0);
  });
});

describe('LbState: ownership, failures, restore', () => {
  it('two services claiming one LoadBalancer IP:port: the second waits and takes it when the first goes', () => {
    const lb = new LbState(NODE);
    const mk = (name: string, clusterIP: string) =>
      service(
        name,
        { type: 'LoadBalancer', clusterIP, ports: [{ port: 80, nodePort: name === 'one' ? 30001 : 30002 }] },
        { loadBalancer: { ingress: [{ ip: '172.18.255.1' }] } },
      );
    lb.upsertService(mk('one', '10.96.0.1'));
    lb.upsertService(mk('two', '10.96.0.2'));
    assert.equal(lb.frontend('172.18.255.1:80/TCP')!.service, 'default/one');
    assert.deepEqual(lb.conflicts(), [
      { frontend: '172.18.255.1:80/TCP', owner: 'default/one', service: 'default/two' },
    ]);
    lb.deleteService('default/one');
    assert.equal(lb.frontend('172.18.255.1:80/TCP')!.service, 'default/two');
    assert.deepEqual(lb.conflicts(), []);
    assert.ok(
      lb.tables.services.has('172.18.255.1:0/ANY#0'),
      'the wildcard stays while a service uses the IP',
    );
  });

  it('when IDs run out nothing is half-applied', () => {
    const lb = new LbState(NODE, { maxBackendId: 2 });
    lb.upsertService(service('a', { clusterIP: '10.96.0.1', ports: [{ port: 80 }] }));
    lb.upsertEndpointSlice(slice('a', ['10.0.0.1'], 80));
    const before = Object.fromEntries(Object.entries(lb.tables).map(([n, t]) => [n, t.revision]));
    assert.throws(
      () => lb.upsertEndpointSlice(slice('a', ['10.0.0.1', '10.0.0.2', '10.0.0.3'], 80)),
      (e: unknown) => e instanceof LbError && e.code === 'resource-exhausted',
    );
    assert.deepEqual(Object.fromEntries(Object.entries(lb.tables).map(([n, t]) => [n, t.revision])), before);
    assert.equal(lb.backendIds.size, 1);
    assert.equal(lb.tables.services.get('10.96.0.1:80/TCP#0')!.value.count, 1);
  });

  it('IDs restored from the maps come back to their frontend and backend; the rest is pruned', () => {
    const lb = new LbState(NODE);
    const feKey = frontendKeyOf(parseServiceRowKey('10.96.0.1:80/TCP#0'));
    const beKey = backendKeyOf({ family: 4, address: '10.0.0.1', port: 80, protocol: IPPROTO.TCP });
    lb.serviceIds.restore(feKey, 40);
    lb.serviceIds.restore('10.96.0.99:80/TCP', 41);
    lb.backendIds.restore(beKey, 700);
    lb.upsertService(service('a', { clusterIP: '10.96.0.1', ports: [{ port: 80 }] }));
    lb.upsertEndpointSlice(slice('a', ['10.0.0.1', '10.0.0.2'], 80));
    assert.equal(lb.frontend('10.96.0.1:80/TCP')!.id, 40);
    assert.equal(lb.tables.services.get('10.96.0.1:80/TCP#1')!.value.backendId, 700);
    assert.equal(lb.backendIds.lookup('10.0.0.2:80/TCP'), 701);
    assert.deepEqual(lb.pruneRestoredIds(), { serviceIds: ['10.96.0.99:80/TCP'], backendIds: [] });
  });
});

describe('LbState: restart', () => {
  it('a new state restores IDs from the rows the maps hold: frontends and backends keep them', () => {
    const first = new LbState(NODE);
    first.update(() => {
      first.upsertService(
        service('a', {
          clusterIP: '10.96.0.1',
          ports: [
            { name: 'y', port: 80 },
            { name: 'x', port: 81 },
          ],
        }),
      );
      first.upsertService(service('gone', { clusterIP: '10.96.0.2', ports: [{ port: 80 }] }));
      first.upsertEndpointSlice(slice('a', ['10.0.0.1', '10.0.0.2'], 80, 'a-1', 'y'));
    });
    const services = [...first.tables.services.values()];
    const backends = [...first.tables.backends.values()];
    const before = first.frontends().map((f) => [f.key, f.id, f.backends.map((b) => b.id)]);

    const next = new LbState(NODE);
    assert.deepEqual(next.restoreIds({ services, backends }), []);
    next.update(() => {
      next.upsertService(
        service('a', {
          clusterIP: '10.96.0.1',
          ports: [
            { name: 'y', port: 80 },
            { name: 'x', port: 81 },
          ],
        }),
      );
      next.upsertEndpointSlice(slice('a', ['10.0.0.2', '10.0.0.1'], 80, 'a-1', 'y'));
      next.upsertService(service('new', { clusterIP: '10.96.0.3', ports: [{ port: 80 }] }));
    });
    const after = next.frontendsOf('default/a').map((f) => [f.key, f.id, f.backends.map((b) => b.id)]);
    assert.deepEqual(
      after,
      before.filter(([k]) => String(k).startsWith('10.96.0.1:')),
    );
    const fresh = next.frontend('10.96.0.3:80/TCP')!.id;
    assert.ok(
      fresh > Math.max(...before.map(([, id]) => Number(id))),
      'new indexes come after the restored ones',
    );
    assert.deepEqual(next.pruneRestoredIds(), { serviceIds: ['10.96.0.2:80/TCP'], backendIds: [] });
  });

  it('an index held twice in the maps is reported, not fatal', () => {
    const lb = new LbState(NODE);
    const row = (address: string, revNatIndex: number) => ({
      key: { family: 4 as const, address, port: 80, backendSlot: 0, protocol: IPPROTO.TCP, scope: 0 },
      value: { backendId: 0, count: 0, revNatIndex, flags: 0, flags2: 0, qcount: 0 },
    });
    const problems = lb.restoreIds({ services: [row('10.96.0.1', 5), row('10.96.0.2', 5)], backends: [] });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^10\.96\.0\.2:80\/TCP: rev-NAT ID 5 is held by 10\.96\.0\.1:80\/TCP/);
  });
});

describe('table keys', () => {
  it('format and parse back', () => {
    const k = {
      family: 6 as const,
      address: 'fd00::a',
      port: 53,
      backendSlot: 3,
      protocol: IPPROTO.UDP,
      scope: 1,
    };
    assert.equal(serviceRowKey(k), '[fd00::a]:53/UDP/i#3');
    assert.deepEqual(parseServiceRowKey('[fd00::a]:53/UDP/i#3'), k);
    assert.deepEqual(parseServiceRowKey('10.96.0.1:0/ANY#0'), {
      family: 4,
      address: '10.96.0.1',
      port: 0,
      backendSlot: 0,
      protocol: 0,
      scope: 0,
    });
    assert.deepEqual(parseFamilyIdKey(familyIdKey(6, 70000)), { family: 6, id: 70000 });
    assert.deepEqual(parseAffinityMatchKey('17/5'), { backendId: 17, revNatIndex: 5 });
    const sr = { revNatIndex: 5, family: 4 as const, address: '192.0.2.0', prefixLen: 24 };
    assert.deepEqual(parseSourceRangeKey(sourceRangeKey(sr)), sr);
    assert.throws(() => parseServiceRowKey('10.96.0.1:80'), /not a services-map key/);
  });
});
