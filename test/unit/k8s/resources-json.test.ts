import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClusterResources, ResourceStore } from '../../../src/k8s/resources.js';

const text = (chunks: Uint8Array[]) => Buffer.concat(chunks).toString();

describe('resource store: handed-over objects and the JSON state', () => {
  it('keeps a handed-over object as it is, a copy of any other', () => {
    const s = new ResourceStore<{ v: number }>('Service', 'namespaced');
    const given = { v: 1 };
    s.upsert('ns/a', given, { handOver: true });
    assert.equal(s.get('ns/a'), given);
    const copied = { v: 2 };
    s.upsert('ns/b', copied);
    assert.notEqual(s.get('ns/b'), copied);
    assert.deepEqual(s.get('ns/b'), copied);
  });

  it('exportJson() is the JSON of export() and follows upserts, deletes and replaces', () => {
    const r = new ClusterResources();
    r.pods.upsert('default/a', { labels: { app: 'a' }, namedPorts: {} });
    r.services.upsert('ns/s', { kind: 'Service', spec: { ports: [{ port: 80 }] } });
    r.services.upsert('ns/t', { kind: 'Service', spec: {} });
    const check = () => assert.deepEqual(JSON.parse(text(r.exportJson())), r.export());
    check();
    r.services.upsert('ns/s', { kind: 'Service', spec: { ports: [{ port: 81 }] } }, { handOver: true });
    r.services.delete('ns/t');
    r.endpointSlices.replace({ 'ns/s-1': { kind: 'EndpointSlice', endpoints: [] } });
    check();
    assert.deepEqual(JSON.parse(text(r.exportJson())).services, {
      'ns/s': { kind: 'Service', spec: { ports: [{ port: 81 }] } },
    });
    // What a restarted agent reads back.
    const back = new ClusterResources();
    back.import(JSON.parse(text(r.exportJson())), { handOver: true });
    assert.deepEqual(back.export(), r.export());
  });

  it('an empty state is valid JSON', () => {
    assert.deepEqual(JSON.parse(text(new ClusterResources().exportJson())), {
      version: 1,
      pods: {},
      namespaces: {},
      policies: {},
      services: {},
      endpointSlices: {},
    });
  });
});
