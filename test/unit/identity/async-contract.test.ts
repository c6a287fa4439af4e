import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AsyncIdentityAllocator,
  IdentityAllocator,
  type IdentityEvent,
  KvstoreIdentityAllocator,
  LocalIdentityAllocator,
} from '../../../src/identity/index.js';
import { MemoryKvStore } from '../../../src/kvstore/index.js';
import { cidrIdentityLabels, LabelSet, parsePrefix } from '../../../src/labels/index.js';

const L = (...s: string[]) => LabelSet.parse(s);

// The behaviour callers rely on, whichever allocator the agent runs with.
const implementations: [string, () => { alloc: AsyncIdentityAllocator; done: () => Promise<void> }][] = [
  ['local', () => ({ alloc: new LocalIdentityAllocator(new IdentityAllocator()), done: async () => {} })],
  [
    'kvstore',
    () => {
      const store = new MemoryKvStore();
      const alloc = new KvstoreIdentityAllocator({ store, node: 'node1', idOrder: 'sequential' });
      return {
        alloc,
        done: async () => {
          await alloc.close();
          await store.close();
        },
      };
    },
  ],
];

for (const [name, make] of implementations) {
  describe(`asynchronous identity allocator (${name})`, () => {
    it('same labels, same identity, one reference per allocate; the last release lets go', async () => {
      const { alloc, done } = make();
      const events: IdentityEvent[] = [];
      alloc.subscribe((e) => events.push(...e));
      const a = await alloc.allocate(L('k8s:app=a', 'k8s:io.kubernetes.pod.namespace=default'));
      const b = await alloc.allocate(L('k8s:io.kubernetes.pod.namespace=default', 'k8s:app=a'));
      assert.deepEqual([a.identity.id, a.isNew, b.identity.id, b.isNew], [256, true, 256, false]);
      assert.equal(a.identity.scope, 'cluster');
      assert.equal(alloc.refCount(256), 2);
      assert.equal(alloc.lookup(256)?.labels.toString(), 'k8s:app=a;k8s:io.kubernetes.pod.namespace=default');
      assert.equal(alloc.lookupByLabels(L('k8s:app=a', 'k8s:io.kubernetes.pod.namespace=default'))?.id, 256);
      assert.equal(await alloc.release(256), false);
      assert.equal(await alloc.release(a.identity.labels), true);
      assert.equal(alloc.refCount(256), 0);
      await assert.rejects(alloc.release(256), /release of unknown identity/);
      assert.deepEqual(events[0] && [events[0].type, events[0].identity.id], ['added', 256]);
      await done();
    });

    it('reserved label sets resolve to their number without references; CIDR identities are node-local', async () => {
      const { alloc, done } = make();
      const host = await alloc.allocate(L('reserved:host'));
      assert.deepEqual([host.identity.id, host.isNew], [1, false]);
      assert.equal(await alloc.release(1), false);
      const cidr = await alloc.allocate(LabelSet.of(cidrIdentityLabels(parsePrefix('192.0.2.0/24'))));
      assert.equal(cidr.identity.id, 16777217);
      assert.equal(cidr.identity.scope, 'local');
      assert.equal(await alloc.release(16777217), true);
      await assert.rejects(alloc.allocate(LabelSet.empty), /empty label set/);
      await done();
    });

    it('replays every known identity to a late subscriber, reserved ones included', async () => {
      const { alloc, done } = make();
      await alloc.allocate(L('k8s:app=a'));
      let got: number[] = [];
      alloc.subscribe((e) => (got = e.map((x) => x.identity.id)), { replay: true });
      assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 256]);
      assert.deepEqual(
        alloc.all().map((i) => i.id),
        got,
      );
      await done();
    });
  });
}
