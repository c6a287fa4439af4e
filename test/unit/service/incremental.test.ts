import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { familyIdKey, LbState, rowEquals } from '../../../src/service/lbstate.js';
import { parseEndpointSlice, parseService } from '../../../src/service/validate.js';
import { type KeyedMap, mapTarget } from '../../../src/statedb/map-target.js';
import { Reconciler } from '../../../src/statedb/reconciler.js';
import type { Table } from '../../../src/statedb/table.js';

const NODE = { nodeName: 'node-1', nodeIPs: ['192.168.10.1'] };
const SERVICES = 1000;
const BACKENDS = 10;

const vip = (i: number) => `10.96.${i >> 8}.${i & 255}`;
const backendIp = (k: number) => `10.64.${k >> 8}.${k & 255}`;

function objects(i: number, ips: string[]) {
  const name = `svc-${i}`;
  return {
    service: parseService({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'default' },
      spec: { clusterIP: vip(i), ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    }),
    slice: parseEndpointSlice({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${name}-1`,
        namespace: 'default',
        labels: { 'kubernetes.io/service-name': name },
      },
      addressType: 'IPv4',
      endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    }),
  };
}

/** An in-memory stand-in for one LB map: what the reconciler wrote and removed, batch by batch. */
class RecordingMap implements KeyedMap<unknown> {
  readonly data = new Map<string, unknown>();
  written: string[] = [];
  deleted: string[] = [];

  set(key: string, value: unknown): void {
    this.written.push(key);
    this.data.set(key, value);
  }

  setMany(entries: readonly (readonly [string, unknown])[]) {
    for (const [k, v] of entries) this.set(k, v);
    return new Map<number, unknown>();
  }

  delete(key: string): void {
    this.deleted.push(key);
    this.data.delete(key);
  }

  keys(): Iterable<string> {
    return this.data.keys();
  }
}

describe('LB state through its reconcilers: incremental map writes', () => {
  it(`one endpoint change among ${SERVICES} services writes only that service's changed rows`, async () => {
    const lb = new LbState(NODE, { wildcardEntries: false });
    const maps = {
      backends: new RecordingMap(),
      revNat: new RecordingMap(),
      services: new RecordingMap(),
    };
    // In the services cell's write order: backends, rev-NAT, then service slots and masters.
    const reconcilers = (Object.keys(maps) as (keyof typeof maps)[]).map(
      (name) =>
        new Reconciler<unknown>(name, lb.tables[name] as Table<unknown>, mapTarget(maps[name], rowEquals), {
          autoFlush: false,
          fullPassIntervalMs: 0,
        }),
    );
    const flush = async () => {
      for (const r of reconcilers) await r.flush('upserts');
      for (const r of [...reconcilers].reverse()) await r.flush('deletes');
    };
    for (const r of reconcilers) await r.start();

    const ips = (i: number) => Array.from({ length: BACKENDS }, (_, j) => backendIp(i * BACKENDS + j));
    lb.update(() => {
      for (let i = 0; i < SERVICES; i++) {
        const o = objects(i, ips(i));
        lb.upsertService(o.service);
        lb.upsertEndpointSlice(o.slice);
      }
    });
    await flush();
    assert.equal(maps.services.data.size, SERVICES * (BACKENDS + 1));
    assert.equal(maps.backends.data.size, SERVICES * BACKENDS);
    assert.equal(maps.revNat.data.size, SERVICES);
    for (const m of Object.values(maps)) {
      m.written = [];
      m.deleted = [];
    }

    // Service 500: its last backend replaced by a new pod (a higher address: same slot order).
    const changed = 500;
    const before = ips(changed);
    const after = [...before.slice(0, -1), '10.80.0.1'];
    const oldId = lb.backendIds.lookup(`${before.at(-1)}:8080/TCP`)!;
    lb.upsertEndpointSlice(objects(changed, after).slice);
    await flush();

    const newId = lb.backendIds.lookup('10.80.0.1:8080/TCP')!;
    assert.deepEqual(maps.backends.written, [familyIdKey(4, newId)]);
    assert.deepEqual(maps.backends.deleted, [familyIdKey(4, oldId)]);
    assert.deepEqual(maps.services.written, [`${vip(changed)}:80/TCP#${BACKENDS}`], 'the slot only');
    assert.deepEqual(maps.services.deleted, []);
    assert.deepEqual(maps.revNat.written, []);
    assert.equal(
      (maps.services.data.get(`${vip(changed)}:80/TCP#${BACKENDS}`) as { value: { backendId: number } }).value
        .backendId,
      newId,
    );

    // The same slice again writes nothing.
    maps.services.written = [];
    maps.backends.written = [];
    lb.upsertEndpointSlice(objects(changed, after).slice);
    await flush();
    assert.deepEqual([...maps.services.written, ...maps.backends.written], []);
    for (const r of reconcilers) await r.stop();
  });
});
