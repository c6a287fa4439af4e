import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PodMeta } from '../../../src/endpoint/manager.js';
import {
  ClusterResources,
  namespacedKey,
  type PodResource,
  policyKey,
  type ResourceEvent,
  ResourceStore,
  splitNamespacedKey,
} from '../../../src/k8s/resources.js';

const pod = (app: string, extra: Partial<PodResource> = {}): PodResource => ({
  labels: { app },
  namedPorts: {},
  ...extra,
});
const brief = (e: ResourceEvent<PodResource>) =>
  `${e.type} ${e.key} ${e.object.labels.app}${e.type === 'upsert' && e.before ? ` (was ${e.before.labels.app})` : ''}`;

describe('resource store', () => {
  it('replays current objects to a new watcher, then delivers changes with the previous object', () => {
    const pods = new ResourceStore<PodResource>('Pod', 'namespaced');
    pods.upsert('default/a', pod('a'));
    const seen: string[][] = [];
    pods.watch((es) => seen.push(es.map(brief)));
    assert.deepEqual(seen, [['upsert default/a a']]);
    assert.equal(pods.upsert('default/a', pod('a2')), true);
    assert.equal(pods.upsert('default/b', pod('b')), true);
    assert.equal(pods.delete('default/a'), true);
    assert.equal(pods.delete('default/a'), false);
    assert.deepEqual(seen.slice(1), [
      ['upsert default/a a2 (was a)'],
      ['upsert default/b b'],
      ['delete default/a a2'],
    ]);
    const late: string[] = [];
    const off = pods.watch((es) => late.push(...es.map(brief)), { replay: false });
    off();
    pods.upsert('default/c', pod('c'));
    assert.deepEqual(late, [], 'no replay asked, and unsubscribed before the change');
    assert.deepEqual(
      pods.list().map((x) => x.key),
      ['default/b', 'default/c'],
    );
  });

  it('an upsert equal to the stored object (in any key order) changes nothing', () => {
    const pods = new ResourceStore<PodResource>('Pod', 'namespaced');
    pods.upsert('ns/p', { labels: { a: '1', b: '2' }, namedPorts: { http: { port: 80, protocol: 'TCP' } } });
    let events = 0;
    pods.watch(() => events++, { replay: false });
    const same = { namedPorts: { http: { protocol: 'TCP', port: 80 } }, labels: { b: '2', a: '1' } };
    assert.equal(pods.upsert('ns/p', same), false);
    assert.equal(events, 0);
    assert.equal(pods.upsert('ns/p', { ...same, serviceAccount: 'sa' }), true);
    assert.equal(events, 1);
  });

  it('keeps its own copy of every object', () => {
    const pods = new ResourceStore<PodResource>('Pod', 'namespaced');
    const p = pod('a');
    pods.upsert('ns/a', p);
    p.labels.app = 'changed by the caller';
    assert.equal(pods.get('ns/a')?.labels.app, 'a');
  });

  it('refuses keys of the wrong shape, naming the kind and the key', () => {
    const pods = new ResourceStore<PodResource>('Pod', 'namespaced');
    assert.throws(() => pods.upsert('justname', pod('a')), /Pod key "justname": must be namespace\/name/);
    assert.throws(() => pods.upsert('ns/', pod('a')), /Pod key "ns\/"/);
    const namespaces = new ResourceStore<{ labels: Record<string, string> }>('Namespace', 'cluster');
    assert.throws(
      () => namespaces.upsert('a/b', { labels: {} }),
      (e: Error & { code?: string; field?: string }) => {
        assert.equal(e.code, 'invalid-argument');
        assert.equal(e.field, 'key');
        return true;
      },
    );
    assert.equal(pods.size + namespaces.size, 0);
  });

  it('replace() applies a fresh listing as one batch of differences, or nothing if a key is bad', () => {
    const pods = new ResourceStore<PodResource>('Pod', 'namespaced');
    pods.upsert('ns/keep', pod('keep'));
    pods.upsert('ns/change', pod('old'));
    pods.upsert('ns/gone', pod('gone'));
    const batches: string[][] = [];
    pods.watch((es) => batches.push(es.map(brief)), { replay: false });
    assert.throws(() => pods.replace({ 'ns/new': pod('new'), bad: pod('bad') }), /Pod key "bad"/);
    assert.equal(pods.size, 3, 'nothing applied');
    pods.replace({ 'ns/keep': pod('keep'), 'ns/change': pod('new'), 'ns/new': pod('new') });
    assert.deepEqual(batches, [
      ['upsert ns/change new (was old)', 'upsert ns/new new', 'delete ns/gone gone'],
    ]);
  });

  it('exports and imports snapshots; import marks the store synced', async () => {
    const pods = new ResourceStore<PodResource>('Pod', 'namespaced');
    pods.upsert(
      'ns/a',
      pod('a', { serviceAccount: 'sa', namedPorts: { web: { port: 8080, protocol: 'TCP' } } }),
    );
    const snapshot = JSON.parse(JSON.stringify(pods.export()));
    const restored = new ResourceStore<PodResource>('Pod', 'namespaced');
    let synced = false;
    void restored.synced().then(() => (synced = true));
    await Promise.resolve();
    assert.equal(synced, false);
    restored.import(snapshot);
    await restored.synced();
    assert.deepEqual(restored.export(), pods.export());
  });

  it('keys: namespace/name, Kind/namespace/name for policies', () => {
    assert.equal(namespacedKey('default', 'web-0'), 'default/web-0');
    assert.deepEqual(splitNamespacedKey('default/web-0'), { namespace: 'default', name: 'web-0' });
    assert.equal(
      policyKey({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'p' }),
      'CiliumNetworkPolicy/default/p',
    );
    assert.equal(
      policyKey({ kind: 'CiliumClusterwideNetworkPolicy', namespace: '', name: 'p' }),
      'CiliumClusterwideNetworkPolicy/p',
    );
  });

  it("holds the agent's pod metadata as is", () => {
    const meta: PodMeta = {
      labels: { app: 'a' },
      serviceAccount: 'sa',
      namedPorts: { http: { port: 80, protocol: 'TCP' } },
    };
    const pods = new ResourceStore<PodResource>('Pod', 'namespaced');
    pods.upsert('ns/a', meta);
    const back: PodMeta | undefined = pods.get('ns/a');
    assert.deepEqual(back, meta);
  });
});

describe('cluster resources', () => {
  it('round-trips pods, namespaces and policies through one snapshot, all or nothing', async () => {
    const r = new ClusterResources();
    r.pods.upsert('default/a', pod('a'));
    r.namespaces.upsert('default', { labels: { 'kubernetes.io/metadata.name': 'default' } });
    const ref = { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'allow' };
    r.policies.upsert(policyKey(ref), {
      ref,
      doc: { kind: 'CiliumNetworkPolicy', metadata: { name: 'allow' } },
    });
    const state = JSON.parse(JSON.stringify(r.export()));
    const back = new ClusterResources();
    back.import(state);
    assert.deepEqual(back.export(), r.export());
    await Promise.all([back.pods.synced(), back.namespaces.synced(), back.policies.synced()]);

    const other = new ClusterResources();
    assert.throws(
      () => other.import({ ...state, policies: { 'a/b/c/d': state.policies[policyKey(ref)] } }),
      /Policy key/,
    );
    assert.equal(other.pods.size, 0, 'pods untouched when the policies part is bad');
    assert.throws(() => other.import({ ...state, version: 2 }), /version 2/);
  });
});
