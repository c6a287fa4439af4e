import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AttachType,
  BpfMap,
  Collection,
  CollectionSpec,
  ifindexOf,
  Link,
  LinkType,
  queryTcx,
  RingBufReader,
} from '../../../src/ebpf/index.js';
import { bpfObject, repoRoot } from '../../helpers/paths.js';
import {
  cleanupStack,
  privateBpffs,
  tcpConnects,
  tcpServer,
  uniquePrefix,
  type VethPair,
  vethPair,
} from '../../helpers/sys.js';

const PORT = 18080;

function portKey(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(port);
  return b;
}

describe('privileged: tcx/xdp/cgroup links with real traffic', () => {
  const cleanup = cleanupStack();
  let net: VethPair;
  let bpffs: string;

  before(async () => {
    bpffs = privateBpffs(cleanup);
    net = vethPair(uniquePrefix('ebl'), cleanup);
    await tcpServer(net.pathB, PORT, cleanup);
    await tcpServer(net.pathB, PORT + 1, cleanup);
  });
  after(async () => {
    await cleanup.run();
  });

  it('a map update switches a port from pass to drop and back; drops arrive on the ring buffer', async () => {
    using c = Collection.load(CollectionSpec.fromFile(bpfObject('test/port_filter.o')));
    using link = Link.attachTcx({
      program: c.program('filter_ingress'),
      direction: 'ingress',
      interface: net.ifB,
      netns: net.pathB,
    });
    const info = link.info();
    assert.equal(info.type, LinkType.TCX);
    assert.equal(info.attachType, AttachType.TCX_INGRESS);
    assert.equal(info.ifindex, ifindexOf(net.ifB, net.pathB));

    assert.equal(await tcpConnects(net.pathA, net.ipB, PORT), true, 'open before the map update');
    c.map('blocked_ports').update(portKey(PORT), Uint8Array.of(1));
    assert.equal(await tcpConnects(net.pathA, net.ipB, PORT, 700), false, 'dropped after the update');
    assert.equal(await tcpConnects(net.pathA, net.ipB, PORT + 1), true, 'other ports still pass');

    // The drops were reported through the ring buffer.
    const rb = new RingBufReader(c.map('events'));
    const seen: { dport: number; daddr: string }[] = [];
    for await (const rec of rb) {
      const b = Buffer.from(rec);
      seen.push({ dport: b.readUInt16LE(10), daddr: [...b.subarray(4, 8)].join('.') });
      if (rb.pending() === 0) break;
    }
    rb.close();
    assert.ok(seen.length >= 1, 'at least one drop event (SYN and its retransmits)');
    assert.ok(seen.every((e) => e.dport === PORT && e.daddr === net.ipB));

    c.map('blocked_ports').delete(portKey(PORT));
    assert.equal(await tcpConnects(net.pathA, net.ipB, PORT), true, 'open again after delete');
  });

  it('orders programs with before/after anchors and lists them', () => {
    const spec = CollectionSpec.fromFile(bpfObject('test/port_filter.o'));
    using c1 = Collection.load(spec, { programs: ['filter_ingress'] });
    using c2 = Collection.load(spec, { programs: ['filter_ingress'] });
    using c3 = Collection.load(spec, { programs: ['filter_ingress'] });
    const p = (c: Collection) => c.program('filter_ingress');
    using l1 = Link.attachTcx({ program: p(c1), direction: 'egress', interface: net.ifA, netns: net.pathA });
    using l2 = Link.attachTcx({
      program: p(c2),
      direction: 'egress',
      interface: net.ifA,
      netns: net.pathA,
      anchor: { before: l1 },
    });
    using l3 = Link.attachTcx({
      program: p(c3),
      direction: 'egress',
      interface: net.ifA,
      netns: net.pathA,
      anchor: { tail: true },
    });
    const q = queryTcx(net.ifA, 'egress', net.pathA);
    assert.deepEqual(
      q.programIds,
      [p(c2), p(c1), p(c3)].map((x) => x.info().id),
    );
    assert.deepEqual(
      q.linkIds,
      [l2, l1, l3].map((l) => l.info().id),
    );
    l2.detach();
    assert.equal(queryTcx(net.ifA, 'egress', net.pathA).programIds.length, 2);
  });

  it('keeps filtering after the loading process exits (pinned link) and is re-adopted by another process', async () => {
    const lib = join(repoRoot, 'dist/src/ebpf/index.js');
    const script = `
      import { Collection, CollectionSpec, Link } from '${lib}';
      const c = Collection.load(CollectionSpec.fromFile('${bpfObject('test/port_filter.o')}'));
      c.map('blocked_ports').pin('${bpffs}/blocked_ports');
      const l = Link.attachTcx({ program: c.program('filter_ingress'), direction: 'ingress', interface: '${net.ifB}', netns: '${net.pathB}' });
      l.pin('${bpffs}/filter_link');
      const k = Buffer.alloc(2); k.writeUInt16LE(${PORT});
      c.map('blocked_ports').update(k, Uint8Array.of(1));
      console.log('attached');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0, out);
    cleanup.add(() => {
      try {
        Link.openPinned(`${bpffs}/filter_link`).detach();
      } catch {
        // already detached
      }
    });

    assert.equal(
      await tcpConnects(net.pathA, net.ipB, PORT, 700),
      false,
      'still dropping with the loader gone',
    );
    using link = Link.openPinned(`${bpffs}/filter_link`);
    const info = link.info();
    assert.equal(info.type, LinkType.TCX);
    assert.equal(info.ifindex, ifindexOf(net.ifB, net.pathB));
    using blocked = BpfMap.openPinned(`${bpffs}/blocked_ports`);
    blocked.delete(portKey(PORT));
    assert.equal(await tcpConnects(net.pathA, net.ipB, PORT), true, 'adopted map controls the filter');
    blocked.update(portKey(PORT), Uint8Array.of(1));
    assert.equal(await tcpConnects(net.pathA, net.ipB, PORT, 700), false);
    link.detach();
    link.unpin();
    assert.equal(await tcpConnects(net.pathA, net.ipB, PORT), true, 'detached: traffic passes');
  });

  it('attaches XDP to an interface', async () => {
    using c = Collection.load(CollectionSpec.fromFile(bpfObject('test/maps_zoo.o')), {
      pinPath: bpffs,
      programs: ['xdp_pass'],
    });
    using l = Link.attachXdp({ program: c.program('xdp_pass'), interface: net.ifA, netns: net.pathA });
    assert.equal(l.info().type, LinkType.XDP);
    assert.equal(await tcpConnects(net.pathA, net.ipB, PORT + 1), true, 'XDP_PASS lets traffic through');
  });

  it('attaches cgroup/connect4 and sees connects from a process in the cgroup', async () => {
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n');
    const cg2 = mounts.map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
    assert.ok(cg2, 'cgroup2 is mounted');
    const dir = join(cg2, uniquePrefix('ebcg'));
    mkdirSync(dir);
    cleanup.add(() => rmdirSync(dir));
    using c = Collection.load(CollectionSpec.fromFile(bpfObject('test/maps_zoo.o')), {
      pinPath: bpffs,
      programs: ['connect4_allow'],
    });
    using l = Link.attachCgroup({
      program: c.program('connect4_allow'),
      cgroup: dir,
      attachType: AttachType.CGROUP_INET4_CONNECT,
    });
    assert.equal(l.info().type, LinkType.CGROUP);
    const counter = c.map('pinned_array');
    const zero = Buffer.alloc(4);
    counter.update(zero, zero);
    // A shell moves itself into the cgroup, then connects from namespace A.
    const probe = `import net from 'node:net'; const c = net.connect(${PORT + 1}, '${net.ipB}'); c.on('data', () => process.exit(0)); c.on('error', () => process.exit(1));`;
    const r = spawnSync(
      'sh',
      [
        '-c',
        `echo $$ > ${dir}/cgroup.procs && exec nsenter --net=${net.pathA} ${process.execPath} --input-type=module -e "$0"`,
        probe,
      ],
      {
        encoding: 'utf8',
        timeout: 5000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Buffer.from(counter.lookup(zero)!).readUInt32LE(), 1, 'one connect seen by the program');
  });
});
