import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  clusterIdOf,
  IdentityAllocator,
  type IdentityEvent,
  ReservedIdentity,
} from '../../../src/identity/index.js';
import { LabelSet, parsePrefix } from '../../../src/labels/index.js';

const L = (...s: string[]) => LabelSet.parse(s);

describe('identity allocator', () => {
  it('has the reserved identities with their labels', () => {
    const a = new IdentityAllocator();
    const names = a.all().map((i) => [i.id, i.labels.toString()]);
    assert.deepEqual(names, [
      [1, 'reserved:host'],
      [2, 'reserved:world'],
      [3, 'reserved:unmanaged'],
      [4, 'reserved:health'],
      [5, 'reserved:init'],
      [6, 'reserved:remote-node'],
      [7, 'reserved:kube-apiserver'],
      [8, 'reserved:ingress'],
    ]);
    assert.equal(a.allocate(L('reserved:host')).identity.id, ReservedIdentity.Host);
    assert.equal(a.release(L('reserved:host')), false);
  });

  it('allocates cluster identities from 256 with the cluster ID in bits 16-23', () => {
    const a = new IdentityAllocator();
    assert.equal(a.allocate(L('k8s:app=a')).identity.id, 256);
    assert.equal(a.allocate(L('k8s:app=b')).identity.id, 257);
    const c = new IdentityAllocator({ clusterId: 3 });
    const id = c.allocate(L('k8s:app=a')).identity.id;
    assert.equal(id, (3 << 16) | 256);
    assert.equal(clusterIdOf(id), 3);
    assert.throws(() => new IdentityAllocator({ clusterId: 256 }));
  });

  it('gives CIDR label sets local identities with bit 24', () => {
    const a = new IdentityAllocator();
    const { identity } = a.allocateCidr(parsePrefix('10.0.0.0/8'));
    assert.equal(identity.id, 16777216 + 1);
    assert.equal(identity.scope, 'local');
    assert.equal(identity.labels.toString(), 'cidr:10.0.0.0/8;reserved:world');
  });

  it('same labels → same identity; refcounted; freed on last release', () => {
    const a = new IdentityAllocator();
    const events: IdentityEvent[] = [];
    a.subscribe((e) => events.push(...e));
    const x = a.allocate(L('k8s:app=a', 'k8s:io.kubernetes.pod.namespace=default'));
    const y = a.allocate(L('k8s:io.kubernetes.pod.namespace=default', 'k8s:app=a'));
    assert.equal(x.identity.id, y.identity.id);
    assert.ok(x.isNew && !y.isNew);
    assert.equal(a.refCount(x.identity.id), 2);
    assert.equal(a.release(x.identity.id), false);
    assert.ok(a.lookup(x.identity.id));
    assert.equal(a.release(x.identity.id), true);
    assert.equal(a.lookup(x.identity.id), undefined);
    assert.deepEqual(
      events.map((e) => [e.type, e.identity.id]),
      [
        ['added', 256],
        ['removed', 256],
      ],
    );
    assert.throws(() => a.release(256));
    // A freed number is not reused right away.
    assert.equal(a.allocate(L('k8s:app=b')).identity.id, 257);
  });

  it('exports and imports state without renumbering', () => {
    const a = new IdentityAllocator({ clusterId: 1 });
    a.allocate(L('k8s:app=a'));
    const b = a.allocate(L('k8s:app=b')).identity.id;
    a.allocate(L('k8s:app=b'));
    a.allocate(L('k8s:app=c'));
    a.release(a.lookupByLabels(L('k8s:app=a'))!.id);
    a.allocateCidr(parsePrefix('192.0.2.0/24'));
    const state = JSON.parse(JSON.stringify(a.export()));
    const r = IdentityAllocator.fromState(state);
    assert.deepEqual(r.export(), a.export());
    assert.equal(r.lookupByLabels(L('k8s:app=b'))!.id, b);
    // Counts are not persisted: a restored identity waits, unclaimed, for its owners to take it again.
    assert.equal(r.refCount(b), 0);
    // The allocation cursor continues where it was.
    assert.equal(r.allocate(L('k8s:app=d')).identity.id, a.allocate(L('k8s:app=d')).identity.id);
  });

  it('replays current identities to late subscribers', () => {
    const a = new IdentityAllocator();
    a.allocate(L('k8s:app=a'));
    let got: number[] = [];
    a.subscribe((e) => (got = e.map((x) => x.identity.id)), { replay: true });
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 256]);
  });
});
