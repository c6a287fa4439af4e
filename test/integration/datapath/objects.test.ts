/**
 * Two datapath objects on one node: bpf_lxc.o through the endpoint loader and bpf/test/dp_probe.o
 * (a second object sharing cilium_metrics and cilium_events, with a map of its own) through the
 * generic ObjectLoader, both against the same pinned maps in a private bpffs. The probe is attached
 * with tcx to a real veth and counts real packets; loading it again swaps its program in place.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildLayoutModel, layoutInputs, layoutsOf } from '../../../src/datapath/codegen/index.js';
import {
  DatapathLoader,
  DatapathMaps,
  DEFS,
  decodeEvent,
  detachPinned,
  ObjectLoader,
  type ProgramAttachment,
} from '../../../src/datapath/index.js';
import { ifindexOf, Program, queryTcx, type RingBufReader } from '../../../src/ebpf/index.js';
import { bpfObject, repoRoot } from '../../helpers/paths.js';
import { cleanupStack, privateBpffs, sh, uniquePrefix, type VethPair, vethPair } from '../../helpers/sys.js';

const PROBE = bpfObject('test/dp_probe.o');
const PROBE_ID = 77;

describe('privileged: datapath objects: two objects on one node', () => {
  const cleanup = cleanupStack();
  let bpffs: string;
  let pair: VethPair;
  let maps: DatapathMaps;
  let probe: ObjectLoader;
  let reader: RingBufReader;
  let linkDir: string;
  let attachments: ProgramAttachment[];

  before(() => {
    bpffs = privateBpffs(cleanup);
    pair = vethPair(uniquePrefix('dpO'), cleanup);
    maps = DatapathMaps.open(bpffs);
    cleanup.add(() => maps.close());
    const layouts = layoutsOf(
      buildLayoutModel({
        ...layoutInputs(repoRoot),
        objects: [bpfObject('bpf_lxc.o'), PROBE],
        displayNames: undefined,
      }),
    );
    probe = ObjectLoader.open({ object: PROBE, bpffs, maps: maps.replacements(), layouts });
    cleanup.add(() => probe.close());
    reader = maps.events.reader();
    cleanup.add(() => reader.close());
    linkDir = join(bpffs, 'links', 'probe');
    cleanup.add(() => void detachPinned(linkDir, ['ingress']));
    attachments = [
      {
        program: 'cil_probe',
        pin: 'ingress',
        at: {
          kind: 'tcx',
          direction: 'ingress',
          ifindex: ifindexOf(pair.ifA, pair.pathA),
          netns: pair.pathA,
        },
      },
    ];
  });
  after(async () => {
    await cleanup.run();
  });

  it('the second object uses the node maps it declares and pins its own next to them', () => {
    assert.equal(probe.map('cilium_metrics'), maps.raw('cilium_metrics'));
    assert.equal(probe.map('cilium_events'), maps.raw('cilium_events'));
    assert.ok(existsSync(join(bpffs, 'cilium_probe_packets')), 'its own map is pinned by name');
    assert.throws(() => probe.map('cilium_ipcache'), /has no pinned map cilium_ipcache/);
  });

  it('loads with its own constants, attaches with tcx and counts real packets into the shared maps', () => {
    const coll = probe.load({ MONITOR_AGGREGATION: 0, ALLOW_LOCALHOST: 1, PROBE_ID });
    try {
      const r = probe.attach(coll, linkDir, attachments);
      assert.equal(r.replaced, false);
      assert.deepEqual(queryTcx(pair.ifA, 'ingress', pair.pathA).linkIds, [r.links.ingress!.id]);
    } finally {
      coll.close(); // the pinned link keeps the program
    }
    reader.poll(() => {});
    sh('nsenter', [`--net=${pair.pathB}`, 'ping', '-c', '3', '-i', '0.2', '-W', '1', pair.ipA]);

    const counted = probe.map('cilium_probe_packets').lookup(new Uint8Array(4))!;
    assert.ok(Buffer.from(counted).readBigUInt64LE(0) >= 3n, 'own map counted the pings');
    const m = maps.metrics.list().find((x) => x.endpointId === PROBE_ID && x.direction === 'ingress');
    assert.ok(m && m.packets >= 3n, 'shared metrics map');
    const traces: number[] = [];
    reader.poll((rec) => {
      const e = decodeEvent(rec);
      if (e.kind === 'trace' && e.event.hdr.source === PROBE_ID) traces.push(e.event.hdr.subtype);
    });
    assert.ok(traces.length >= 3, `trace events in the shared ring (got ${traces.length})`);
    assert.ok(traces.every((t) => t === DEFS.TRACE_FROM_NETWORK));
  });

  it('a bpf_lxc endpoint loads beside it, both programs on the same node maps', () => {
    sh('ip', ['-n', pair.nsA, 'link', 'add', 'lxcobj', 'type', 'veth', 'peer', 'name', 'podobj']);
    const lxc = DatapathLoader.open({ bpffs, maps });
    cleanup.add(() => {
      lxc.remove(300);
      lxc.close();
    });
    const ep = lxc.load({
      id: 300,
      identity: 3000,
      ipv4: '10.0.3.10',
      mac: '02:00:00:00:03:0a',
      nodeMac: '02:00:00:00:03:01',
      interface: 'lxcobj',
      netns: pair.pathA,
    });
    const mapIds = (progId: number): number[] => {
      using p = Program.fromId(progId);
      return p.info().mapIds;
    };
    const metricsId = maps.raw('cilium_metrics').info().id;
    assert.ok(mapIds(queryTcx(pair.ifA, 'ingress', pair.pathA).programIds[0]!).includes(metricsId));
    assert.ok(mapIds(ep.ingress.progId).includes(metricsId));
  });

  it('loading again swaps the program into the pinned link; detachPinned removes it', () => {
    const before = queryTcx(pair.ifA, 'ingress', pair.pathA);
    const coll = probe.load({ MONITOR_AGGREGATION: 1, PROBE_ID });
    let r: ReturnType<ObjectLoader['attach']>;
    try {
      r = probe.attach(coll, linkDir, attachments);
    } finally {
      coll.close();
    }
    assert.equal(r.replaced, true);
    assert.equal(r.links.ingress!.id, before.linkIds[0], 'same link');
    assert.notEqual(r.links.ingress!.progId, before.programIds[0], 'new program');
    assert.deepEqual(queryTcx(pair.ifA, 'ingress', pair.pathA).programIds, [r.links.ingress!.progId]);

    assert.equal(detachPinned(linkDir, ['ingress']), true);
    assert.deepEqual(queryTcx(pair.ifA, 'ingress', pair.pathA).linkIds, []);
    assert.equal(existsSync(linkDir), false);
    assert.equal(detachPinned(linkDir, ['ingress']), false);
  });
});
