import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IdentityAllocator,
  type IdentityEvent,
  type IdentityState,
  type IdentityStateV1,
} from '../../../src/identity/index.js';
import { LabelSet, parsePrefix } from '../../../src/labels/index.js';

const L = (...s: string[]) => LabelSet.parse(s);
const web = L('k8s:app=web', 'k8s:io.kubernetes.pod.namespace=default');
const db = L('k8s:app=db', 'k8s:io.kubernetes.pod.namespace=default');

/** A restart as the agent does it: persist numbering, new allocator, owners re-take, sweep. */
function restart(a: IdentityAllocator, owners: readonly LabelSet[]): IdentityAllocator {
  const state = JSON.parse(JSON.stringify(a.export())) as IdentityState;
  const b = IdentityAllocator.fromState(state);
  for (const labels of owners) b.allocate(labels);
  b.releaseUnclaimed();
  return b;
}

describe('identity restore: numbering persisted, references recomputed from owners', () => {
  it('persists numbers and labels only, no reference counts', () => {
    const a = new IdentityAllocator();
    a.allocate(web);
    a.allocate(web);
    const state = a.export();
    assert.equal(state.version, 2);
    assert.deepEqual(state.identities, [
      { id: 256, labels: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=default'] },
    ]);
  });

  it('restored identities keep their numbers, start unclaimed, and the unclaimed ones are freed by the sweep', () => {
    const a = new IdentityAllocator();
    const webId = a.allocate(web).identity.id;
    const dbId = a.allocate(db).identity.id;
    const cidrId = a.allocateCidr(parsePrefix('192.0.2.0/24')).identity.id;
    const b = IdentityAllocator.fromState(a.export());
    const events: IdentityEvent[] = [];
    b.subscribe((e) => events.push(...e));
    assert.deepEqual(
      b.unclaimed().map((i) => i.id),
      [webId, dbId, cidrId],
    );
    assert.equal(b.lookup(dbId)?.labels.toString(), db.toString(), 'resolvable while unclaimed');
    assert.throws(() => b.release(webId), /release of unclaimed identity 256/);
    // The one owner left re-takes its reference.
    const again = b.allocate(web);
    assert.equal(again.identity.id, webId);
    assert.equal(again.isNew, false);
    assert.equal(b.refCount(webId), 1);
    const freed = b.releaseUnclaimed();
    assert.deepEqual(
      freed.map((i) => i.id),
      [dbId, cidrId],
    );
    assert.deepEqual(
      events.map((e) => [e.type, e.identity.id]),
      [
        ['removed', dbId],
        ['removed', cidrId],
      ],
    );
    assert.equal(b.lookup(dbId), undefined);
    assert.equal(b.releaseUnclaimed().length, 0);
    // One reference: the owner's release frees it.
    assert.equal(b.release(webId), true);
    // Freed numbers are not handed out again right away: the cursor was restored too.
    assert.equal(b.allocate(L('k8s:app=new')).identity.id, 258);
  });

  it("after three restarts a deleted pod's identity is freed", () => {
    let a = new IdentityAllocator();
    const dbId = a.allocate(db).identity.id; // pod db-0
    a.allocate(web); // pod web-0
    for (let i = 0; i < 3; i++) a = restart(a, [db, web]);
    assert.equal(a.refCount(dbId), 1, 'one owner, one reference, however many restarts');
    assert.equal(a.release(dbId), true, 'deleting the pod frees its identity');
    assert.equal(a.lookup(dbId), undefined);
  });

  it('a pod deleted while the agent was down loses its identity at the sweep', () => {
    let a = new IdentityAllocator();
    const dbId = a.allocate(db).identity.id;
    const webId = a.allocate(web).identity.id;
    a = restart(a, [web]); // db's pod is gone: nobody re-takes it
    assert.equal(a.lookup(dbId), undefined);
    assert.equal(a.refCount(webId), 1);
  });

  it('reads old state with reference counts and ignores the counts', () => {
    const old: IdentityStateV1 = {
      version: 1,
      clusterId: 0,
      nextCluster: 258,
      nextLocal: 1,
      identities: [{ id: 256, labels: web.toStrings(), refs: 7 }],
    };
    const a = new IdentityAllocator();
    a.import(old);
    assert.equal(a.refCount(256), 0);
    a.allocate(web);
    assert.equal(a.refCount(256), 1);
    assert.equal(a.release(256), true);
  });

  it('refuses bad state without applying any of it', () => {
    const a = new IdentityAllocator();
    const bad: IdentityState = {
      version: 2,
      clusterId: 0,
      nextCluster: 300,
      nextLocal: 1,
      identities: [
        { id: 256, labels: web.toStrings() },
        { id: 257, labels: web.toStrings() },
      ],
    };
    assert.throws(() => a.restore(bad), /duplicate identity 257/);
    assert.equal(a.lookup(256), undefined, 'nothing half-applied');
    assert.throws(() => a.restore({ ...bad, version: 3 } as unknown as IdentityState), /version 3/);
    assert.throws(() => a.restore({ ...bad, clusterId: 2 }), /cluster ID 2/);
    a.allocate(web);
    assert.throws(() => a.restore({ ...bad, identities: [] }), /non-empty/);
  });
});
