/**
 * The LB map wrappers on real maps in a private bpffs: whole frontends written slots-first and
 * shrunk, raw bytes as upstream stores them, bad entries refused with the field named and nothing
 * written, families chosen by address, Maglev tables as inner maps (and a node table size change
 * replacing the pinned maps), and the reconciler targets pruning what is not desired.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DatapathMaps,
  DEFS,
  LbMapError,
  type LbServiceKey,
  type LbSourceRangeEntry,
  type LbTargetKeys,
} from '../../../src/datapath/index.js';
import { mapTarget } from '../../../src/statedb/map-target.js';
import { cleanupStack, privateBpffs } from '../../helpers/sys.js';

const TCP = DEFS.CIL_IPPROTO_TCP;
const UDP = DEFS.CIL_IPPROTO_UDP;
const hex = (b: Uint8Array | undefined): string => (b ? Buffer.from(b).toString('hex') : 'none');

/** A key encoding for the targets (a caller brings its own tables' keys). */
const KEYS: LbTargetKeys = {
  service: (k) => `${k.address}|${k.port}|${k.protocol}|${k.scope}|${k.backendSlot}`,
  parseService: (s): LbServiceKey => {
    const [address, port, protocol, scope, backendSlot] = s.split('|');
    return {
      address: address!,
      port: Number(port),
      protocol: Number(protocol),
      scope: Number(scope),
      backendSlot: Number(backendSlot),
    };
  },
  familyId: (family, id) => `${family}/${id}`,
  parseFamilyId: (s) => {
    const [family, id] = s.split('/').map(Number);
    return { family: family as 4 | 6, id: id! };
  },
  affinityMatch: (backendId, revNatIndex) => `${backendId}/${revNatIndex}`,
  parseAffinityMatch: (s) => {
    const [backendId, revNatIndex] = s.split('/').map(Number);
    return { backendId: backendId!, revNatIndex: revNatIndex! };
  },
  sourceRange: (r) => `${r.revNatIndex}/${r.address}/${r.prefixLen}`,
  parseSourceRange: (s): LbSourceRangeEntry => {
    const [rev, address, len] = s.split('/');
    return { revNatIndex: Number(rev), address: address!, prefixLen: Number(len) };
  },
};

describe('privileged: LB maps through the wrappers', () => {
  const cleanup = cleanupStack();
  let bpffs: string;
  let maps: DatapathMaps;

  before(() => {
    bpffs = privateBpffs(cleanup);
    maps = DatapathMaps.open(bpffs);
    cleanup.add(() => maps.close());
  });
  after(async () => {
    await cleanup.run();
  });

  it('a frontend is written as its slots plus a master entry; shrinking deletes the slots it lost', () => {
    const fe = { address: '10.96.0.10', port: 80, protocol: TCP };
    maps.lb.upsertService(fe, { revNatIndex: 0x0102, backends: [7, 8, 9], count: 2 });
    const raw = maps.lb.family(4).services;
    const key = (slot: number) =>
      Uint8Array.from(
        Buffer.from(`0a60000a0050${slot.toString(16).padStart(2, '0')}00` + '06' + '00' + '0000', 'hex'),
      );
    // master: backend_id 0 (no affinity, default algorithm), count 2, rev-NAT 0x0102 network order, qcount 1
    assert.equal(hex(raw.lookup(key(0))), '00000000' + '0200' + '0102' + '00' + '00' + '0100');
    assert.equal(hex(raw.lookup(key(3))), '09000000' + '0000' + '0102' + '00' + '00' + '0000');
    assert.deepEqual(maps.lb.listFrontends(), [
      {
        frontend: { family: 4, address: '10.96.0.10', port: 80, protocol: TCP, scope: 0 },
        master: { backendId: 0, count: 2, revNatIndex: 0x0102, flags: 0, flags2: 0, qcount: 1 },
        backends: [7, 8, 9],
      },
    ]);

    maps.lb.upsertService(fe, { revNatIndex: 0x0102, backends: [8] });
    assert.equal(raw.lookup(key(2)), undefined);
    assert.equal(raw.lookup(key(3)), undefined);
    assert.deepEqual(maps.lb.listFrontends()[0]!.backends, [8]);
    assert.equal(maps.lb.deleteService(fe), true);
    assert.deepEqual(maps.lb.listServiceEntries(), []);
    assert.equal(maps.lb.deleteService(fe), false);
  });

  it('affinity and algorithm go into the master entry; the INT scope is its own frontend', () => {
    const fe = { address: 'fd00:96::1', port: 53, protocol: UDP, scope: DEFS.LB_LOOKUP_SCOPE_INT };
    maps.lb.upsertService(fe, {
      revNatIndex: 3,
      backends: [1],
      flags: DEFS.SVC_FLAG_AFFINITY,
      flags2: DEFS.SVC_FLAG2_TWO_SCOPES | DEFS.SVC_FLAG2_INT_LOCAL_SCOPE,
      affinityTimeout: 10800,
      algorithm: DEFS.LB_ALGORITHM_MAGLEV,
    });
    const [e] = maps.lb.listFrontends();
    assert.deepEqual(e!.frontend, { family: 6, address: 'fd00:96::1', port: 53, protocol: UDP, scope: 1 });
    assert.equal(e!.master.backendId, ((DEFS.LB_ALGORITHM_MAGLEV << 24) | 10800) >>> 0);
    assert.equal(maps.lb.family(6).services.maxEntries, DEFS.LB_SERVICE_MAP_SIZE);
    maps.lb.deleteService(fe);
  });

  it('bad input is refused naming the field, and nothing is written', () => {
    const fe = { address: '10.96.0.20', port: 80, protocol: TCP };
    const refused = (fn: () => void, field: string) =>
      assert.throws(fn, (err: unknown) => {
        assert.ok(err instanceof LbMapError, String(err));
        assert.equal(err.field, field);
        assert.equal(err.code, 'invalid-argument');
        return true;
      });
    refused(
      () => maps.lb.upsertService({ ...fe, address: '10.96.0' }, { revNatIndex: 1, backends: [1] }),
      'service.address',
    );
    refused(
      () => maps.lb.upsertService({ ...fe, protocol: 132 }, { revNatIndex: 1, backends: [1] }),
      'service.protocol',
    );
    refused(() => maps.lb.upsertService(fe, { revNatIndex: 0, backends: [1] }), 'service.revNatIndex');
    refused(() => maps.lb.upsertService(fe, { revNatIndex: 1, backends: [1, 0] }), 'service.backends[1]');
    refused(() => maps.lb.upsertService(fe, { revNatIndex: 1, backends: [1], count: 2 }), 'service.count');
    refused(
      () => maps.lb.upsertService(fe, { revNatIndex: 1, backends: [1], flags: DEFS.SVC_FLAG_AFFINITY }),
      'service.affinityTimeout',
    );
    refused(() => maps.lb.upsertService(fe, { revNatIndex: 1, backends: [1], flags2: 1 }), 'service.flags2');
    refused(
      () =>
        maps.lb.upsertServiceEntry({
          key: { family: 6, address: '10.96.0.20', port: 80, protocol: TCP, scope: 0, backendSlot: 0 },
          value: { backendId: 0, count: 0, revNatIndex: 1, flags: 0, flags2: 0, qcount: 0 },
        }),
      'service.address',
    );
    refused(
      () => maps.lb.upsertBackend({ id: 1, address: '10.0.0.1', port: 70000, protocol: TCP, state: 0 }),
      'backend.port',
    );
    refused(
      () => maps.lb.upsertBackend({ id: 1, address: '10.0.0.1', port: 80, protocol: TCP, state: 4 }),
      'backend.state',
    );
    refused(
      () => maps.lb.upsertRevNat({ revNatIndex: 70000, address: '10.0.0.1', port: 80 }),
      'revNat.revNatIndex',
    );
    refused(
      () => maps.lb.addSourceRange({ revNatIndex: 1, address: '10.0.0.0', prefixLen: 33 }),
      'sourceRange.prefixLen',
    );
    refused(
      () => maps.lb.setMaglev({ revNatIndex: 1, family: 4, backendIds: new Uint32Array(251) }),
      'maglev.backendIds',
    );
    assert.deepEqual(maps.lb.listServiceEntries(), []);
    assert.deepEqual(maps.lb.listBackends(), []);
    assert.deepEqual(maps.lb.listRevNat(), []);
    assert.deepEqual(maps.lb.listSourceRanges(), []);
    assert.deepEqual(maps.lb.maglevIndexes(), []);
  });

  it('backends and rev-NAT entries live in the map of their address family; an ID moves with it', () => {
    maps.lb.upsertBackend({
      id: 5,
      address: '10.244.0.5',
      port: 8080,
      protocol: TCP,
      state: DEFS.BE_STATE_ACTIVE,
    });
    assert.equal(
      hex(maps.lb.family(4).backends.lookup(Uint8Array.of(5, 0, 0, 0))),
      '0af40005' + '1f90' + '06' + '00' + '0000' + '00' + '00',
    );
    maps.lb.upsertBackend({
      id: 5,
      address: 'fd00::5',
      port: 8080,
      protocol: TCP,
      state: DEFS.BE_STATE_TERMINATING,
    });
    assert.equal(maps.lb.family(4).backends.lookup(Uint8Array.of(5, 0, 0, 0)), undefined);
    assert.deepEqual(maps.lb.listBackends(), [
      { id: 5, family: 6, address: 'fd00::5', port: 8080, protocol: TCP, state: 1, clusterId: 0, zone: 0 },
    ]);
    maps.lb.upsertRevNat({ revNatIndex: 0x0203, address: '10.96.0.10', port: 80 });
    assert.equal(hex(maps.lb.family(4).revNat.lookup(Uint8Array.of(2, 3))), '0a60000a' + '0050' + '0000');
    assert.equal(maps.lb.deleteBackend(5), true);
    assert.equal(maps.lb.deleteRevNat(0x0203), true);
  });

  it('a Maglev table is an inner map published filled, then overwritten in place; another table size replaces the pinned maps', () => {
    const table = Uint32Array.from({ length: DEFS.LB_MAGLEV_LUT_SIZE }, (_, i) => (i % 3) + 1);
    maps.lb.setMaglev({ revNatIndex: 4, family: 4, backendIds: table });
    const inner = maps.lb.family(4).maglev.lookup(Uint8Array.of(0, 4));
    assert.deepEqual(maps.lb.maglevTable(4)?.backendIds, table);
    table.fill(2);
    maps.lb.setMaglev({ revNatIndex: 4, family: 4, backendIds: table });
    assert.equal(hex(maps.lb.family(4).maglev.lookup(Uint8Array.of(0, 4))), hex(inner), 'the same inner map');
    assert.deepEqual(maps.lb.maglevTable(4)?.backendIds, table);
    assert.deepEqual(maps.lb.maglevIndexes(), [{ family: 4, revNatIndex: 4 }]);

    // The same table size: the pinned maps and their tables are kept.
    using same = DatapathMaps.open(bpffs);
    assert.deepEqual(same.lb.maglevTable(4)?.backendIds, table);
    // Another size: new empty maglev maps (the tables derive from the services and are rewritten).
    using small = DatapathMaps.open(bpffs, { maglevTableSize: 251 });
    assert.deepEqual(small.lb.maglevIndexes(), []);
    small.lb.setMaglev({ revNatIndex: 4, family: 6, backendIds: new Uint32Array(251).fill(9) });
    assert.equal(small.lb.maglevTable(4)?.backendIds.length, 251);
    assert.throws(
      () => small.lb.setMaglev({ revNatIndex: 5, family: 4, backendIds: table }),
      /251 backend IDs/,
    );
  });

  it("reconciler targets: rows written as given, pruned by the caller's keys", () => {
    const t = maps.lb.targets(KEYS);
    const eq = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const services = mapTarget(t.services, eq);
    const master = { backendId: 0, count: 1, revNatIndex: 9, flags: 0, flags2: 0, qcount: 0 };
    const k0: LbServiceKey = { address: '10.96.0.50', port: 443, protocol: TCP, scope: 0, backendSlot: 0 };
    const k1: LbServiceKey = { ...k0, backendSlot: 1 };
    // Slot before master, as the caller's reconcilers order them.
    const desired = new Map([
      [KEYS.service({ family: 4, ...k1 }), { key: k1, value: { ...master, backendId: 3, count: 0 } }],
      [KEYS.service({ family: 4, ...k0 }), { key: k0, value: master }],
    ]);
    for (const [k, row] of desired) services.update(k, row, undefined);
    maps.lb.upsertService(
      { address: '10.96.0.51', port: 80, protocol: TCP },
      { revNatIndex: 10, backends: [3] },
    );
    assert.equal([...t.services.keys()].length, 4);
    // A full pass with only the first frontend desired removes the other one's entries.
    services.prune(desired);
    assert.deepEqual(
      maps.lb.listFrontends().map((f) => f.frontend.address),
      ['10.96.0.50'],
    );
    t.services.delete(KEYS.service({ family: 4, ...k0 }));
    t.services.delete(KEYS.service({ family: 4, ...k1 }));

    t.affinityMatch.set('3/9', { backendId: 3, revNatIndex: 9 });
    assert.deepEqual([...t.affinityMatch.keys()], ['3/9']);
    t.affinityMatch.delete('3/9');
    t.sourceRange.set('x', { revNatIndex: 9, address: '192.0.2.77', prefixLen: 24 });
    assert.deepEqual([...t.sourceRange.keys()], ['9/192.0.2.0/24'], 'host bits cleared');
    t.sourceRange.delete('9/192.0.2.0/24');
    t.backends.set('4/3', { id: 3, family: 4, address: '10.244.0.3', port: 80, protocol: TCP, state: 0 });
    t.revNat.set('6/9', { revNatIndex: 9, family: 6, address: 'fd00::9', port: 80 });
    assert.deepEqual([...t.backends.keys()], ['4/3']);
    assert.deepEqual([...t.revNat.keys()], ['6/9']);
    t.backends.delete('4/3');
    t.revNat.delete('6/9');
    assert.deepEqual(
      [...t.backends.keys(), ...t.revNat.keys(), ...t.sourceRange.keys(), ...t.affinityMatch.keys()],
      [],
    );
  });
});
