import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  AddressConflictError,
  ClusterPool,
  canonicalIP,
  InvalidCidrError,
  IpamStateError,
  JsonStateFile,
  NodeIpam,
  type NodeIpamState,
  PoolExhaustedError,
  parseCidr,
} from '../../../src/ipam/index.js';

const owner = (i: number, ifName = 'eth0') => ({ containerId: `c${i}`, ifName });

describe('ip parsing', () => {
  it('parses and formats IPv4/IPv6', () => {
    assert.equal(canonicalIP('10.0.0.1'), '10.0.0.1');
    assert.equal(canonicalIP('fd00:0:0:0:0:0:0:1'), 'fd00::1');
    assert.equal(canonicalIP('FD00:10:200::'), 'fd00:10:200::');
    assert.equal(canonicalIP('::'), '::');
    assert.equal(canonicalIP('1:0:0:1:0:0:0:1'), '1:0:0:1::1');
    assert.equal(canonicalIP('::ffff:10.1.2.3'), '::ffff:a01:203');
    for (const bad of ['10.0.0', '10.0.0.256', '01.2.3.4', '1::2::3', 'fd00::g', '']) {
      assert.throws(() => canonicalIP(bad), InvalidCidrError, bad);
    }
    assert.throws(() => parseCidr('10.0.0.1/24'), InvalidCidrError);
    assert.throws(() => parseCidr('10.0.0.0/33'), InvalidCidrError);
    assert.equal(parseCidr('10.0.0.1/24', true).base, parseCidr('10.0.0.0/24').base);
  });
});

describe('ClusterPool', () => {
  it('carves the default 10.200.0.0/16 into /24s, idempotent per node', () => {
    const p = new ClusterPool();
    assert.deepEqual(p.allocateNode('a'), { ipv4: '10.200.0.0/24' });
    assert.deepEqual(p.allocateNode('b'), { ipv4: '10.200.1.0/24' });
    assert.deepEqual(p.allocateNode('a'), { ipv4: '10.200.0.0/24' });
    assert.equal(p.releaseNode('a'), true);
    assert.equal(p.releaseNode('a'), false);
    assert.deepEqual(p.allocateNode('c'), { ipv4: '10.200.0.0/24' });
  });

  it('dual stack: fd00:10:200::/104 into /120s', () => {
    const p = new ClusterPool({ ipv6: { cidr: 'fd00:10:200::/104', nodeMaskSize: 120 } });
    assert.deepEqual(p.allocateNode('a'), { ipv4: '10.200.0.0/24', ipv6: 'fd00:10:200::/120' });
    assert.deepEqual(p.allocateNode('b'), { ipv4: '10.200.1.0/24', ipv6: 'fd00:10:200::100/120' });
  });

  it('exhaustion is a PoolExhaustedError and rolls back', () => {
    const p = new ClusterPool({
      ipv4: { cidr: '10.0.0.0/23', nodeMaskSize: 24 },
      ipv6: { cidr: 'fd00::/119', nodeMaskSize: 120 },
    });
    p.allocateNode('a');
    p.allocateNode('b');
    assert.throws(() => p.allocateNode('c'), PoolExhaustedError);
    const p2 = new ClusterPool({
      ipv4: { cidr: '10.0.0.0/22', nodeMaskSize: 24 },
      ipv6: { cidr: 'fd00::/120', nodeMaskSize: 120 },
    });
    p2.allocateNode('a');
    assert.throws(() => p2.allocateNode('b'), /IPv6 pool fd00::\/120 exhausted/);
    assert.equal(p2.export().nodes.b, undefined);
    p2.releaseNode('a');
    assert.deepEqual(p2.allocateNode('b'), { ipv4: '10.0.0.0/24', ipv6: 'fd00::/120' });
  });

  it('rejects bad configuration', () => {
    assert.throws(
      () => new ClusterPool({ ipv4: { cidr: '10.0.0.0/16', nodeMaskSize: 8 } }),
      InvalidCidrError,
    );
    assert.throws(() => new ClusterPool({ ipv4: { cidr: 'fd00::/16', nodeMaskSize: 24 } }), InvalidCidrError);
    assert.throws(() => new ClusterPool({ ipv4: null }), IpamStateError);
  });

  it('export/import round-trips and rejects mismatches', () => {
    const p = new ClusterPool();
    p.allocateNode('a');
    p.allocateNode('b');
    p.releaseNode('a');
    const st = JSON.parse(JSON.stringify(p.export()));
    const q = new ClusterPool();
    q.import(st);
    assert.deepEqual(q.export(), p.export());
    assert.deepEqual(q.allocateNode('c'), { ipv4: '10.200.0.0/24' });
    assert.deepEqual(q.allocateNode('d'), { ipv4: '10.200.2.0/24' });
    assert.throws(
      () => new ClusterPool({ ipv4: { cidr: '10.201.0.0/16', nodeMaskSize: 24 } }).import(st),
      IpamStateError,
    );
    const dup = { ...st, nodes: { x: { ipv4: '10.200.1.0/24' }, y: { ipv4: '10.200.1.0/24' } } };
    assert.throws(() => new ClusterPool().import(dup), /assigned twice/);
  });
});

describe('NodeIpam', () => {
  it('skips network, reserves router, never hands out broadcast', () => {
    const n = new NodeIpam({ ipv4Cidr: '10.200.0.0/24' });
    assert.deepEqual(n.routerIPs(), { ipv4: '10.200.0.1' });
    const a = n.allocate(owner(1));
    assert.deepEqual(a.ipv4, {
      ip: '10.200.0.2',
      cidr: '10.200.0.0/24',
      prefixLength: 24,
      gateway: '10.200.0.1',
    });
    const seen = new Set<string>(['10.200.0.2']);
    for (let i = 2; i <= 253; i++) seen.add(n.allocate(owner(i)).ipv4!.ip);
    assert.equal(seen.size, 253);
    assert.ok(!seen.has('10.200.0.0') && !seen.has('10.200.0.1') && !seen.has('10.200.0.255'));
    assert.ok(seen.has('10.200.0.254'));
    assert.throws(
      () => n.allocate(owner(999)),
      (e: unknown) => {
        assert.ok(e instanceof PoolExhaustedError);
        assert.match(e.message, /IPv4 pool 10\.200\.0\.0\/24 exhausted: all 253 addresses are allocated/);
        return true;
      },
    );
  });

  it('is idempotent per owner (containerId + ifName), distinct per ifName', () => {
    const n = new NodeIpam({ ipv4Cidr: '10.200.0.0/24' });
    const a = n.allocate(owner(1));
    assert.deepEqual(n.allocate(owner(1)), a);
    const b = n.allocate(owner(1, 'net1'));
    assert.notEqual(b.ipv4!.ip, a.ipv4!.ip);
    assert.deepEqual(n.get(owner(1)), a);
    assert.equal(n.releaseContainer('c1'), 2);
    assert.equal(n.get(owner(1)), undefined);
  });

  it('release frees the address; next-fit avoids immediate reuse', () => {
    const n = new NodeIpam({ ipv4Cidr: '10.0.0.0/29' }); // .2-.6 usable
    const ips = [1, 2, 3].map((i) => n.allocate(owner(i)).ipv4!.ip);
    assert.deepEqual(ips, ['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    assert.equal(n.release(owner(1)), true);
    assert.equal(n.release(owner(1)), false);
    assert.equal(n.allocate(owner(4)).ipv4!.ip, '10.0.0.5');
    assert.equal(n.allocate(owner(5)).ipv4!.ip, '10.0.0.6');
    assert.equal(n.allocate(owner(6)).ipv4!.ip, '10.0.0.2');
    assert.throws(() => n.allocate(owner(7)), PoolExhaustedError);
  });

  it('IPv6: router is ::1, the last address is usable', () => {
    const n = new NodeIpam({ ipv4Cidr: '10.200.0.0/24', ipv6Cidr: 'fd00:10:200::/120' });
    const a = n.allocate(owner(1));
    assert.deepEqual(a.ipv6, {
      ip: 'fd00:10:200::2',
      cidr: 'fd00:10:200::/120',
      prefixLength: 120,
      gateway: 'fd00:10:200::1',
    });
    assert.equal(a.ipv4!.ip, '10.200.0.2');
    const v6 = new NodeIpam({ ipv6Cidr: 'fd00::/126' }); // ::2, ::3
    assert.equal(v6.allocate(owner(1)).ipv6!.ip, 'fd00::2');
    assert.equal(v6.allocate(owner(2)).ipv6!.ip, 'fd00::3');
    assert.throws(() => v6.allocate(owner(3)), /IPv6 pool fd00::\/126 exhausted/);
  });

  it('dual stack: v6 exhaustion rolls back the v4 address', () => {
    const n = new NodeIpam({ ipv4Cidr: '10.0.0.0/24', ipv6Cidr: 'fd00::/126' });
    n.allocate(owner(1));
    n.allocate(owner(2));
    assert.throws(() => n.allocate(owner(3)), PoolExhaustedError);
    assert.equal(n.stats().ipv4!.used, 2);
  });

  it('specific requests: conflicts and reserved addresses', () => {
    const n = new NodeIpam({ ipv4Cidr: '10.0.0.0/24' });
    assert.equal(n.allocate(owner(1), { ipv4: '10.0.0.77' }).ipv4!.ip, '10.0.0.77');
    assert.throws(() => n.allocate(owner(2), { ipv4: '10.0.0.77' }), AddressConflictError);
    assert.throws(() => n.allocate(owner(2), { ipv4: '10.0.0.1' }), /reserved for the node router/);
    assert.throws(() => n.allocate(owner(2), { ipv4: '10.0.0.255' }), /broadcast/);
    assert.throws(() => n.allocate(owner(2), { ipv4: '10.0.1.5' }), /not in 10\.0\.0\.0\/24/);
    assert.equal(n.stats().ipv4!.used, 1);
  });

  it('export/import restores exactly: no double allocation after restart', () => {
    const n = new NodeIpam({ ipv4Cidr: '10.200.3.0/24', ipv6Cidr: 'fd00:10:200::300/120' });
    for (let i = 0; i < 10; i++) n.allocate({ ...owner(i), pod: `default/p${i}` });
    n.release(owner(3));
    const saved = JSON.parse(JSON.stringify(n.export())) as NodeIpamState;
    const m = new NodeIpam({ ipv4Cidr: '10.200.3.0/24', ipv6Cidr: 'fd00:10:200::300/120' });
    m.import(saved);
    assert.deepEqual(m.export(), n.export());
    assert.deepEqual(m.get(owner(5)), n.get(owner(5)));
    assert.deepEqual(m.list()[0]!.owner, { containerId: 'c0', ifName: 'eth0', pod: 'default/p0' });
    const used = new Set(n.list().map((e) => e.ipv4!.ip));
    for (let i = 100; i < 120; i++) {
      const ip = m.allocate(owner(i)).ipv4!.ip;
      assert.ok(!used.has(ip), `${ip} double allocated`);
      used.add(ip);
    }
    // and the cursor survived: the next address continues after the last one handed out
    assert.equal(m.list().find((e) => e.owner.containerId === 'c100')!.ipv4!.ip, '10.200.3.12');
  });

  it('import rejects inconsistent state and leaves the old state intact', () => {
    const n = new NodeIpam({ ipv4Cidr: '10.0.0.0/24' });
    n.allocate(owner(1));
    const good = n.export();
    const bad1 = { ...good, ipv4: { ...good.ipv4!, cidr: '10.0.1.0/24' } };
    assert.throws(() => n.import(bad1), IpamStateError);
    const bad2 = { ...good, ipv4: { ...good.ipv4!, allocations: { '10.0.0.1': owner(9) } } };
    assert.throws(() => n.import(bad2), /router/);
    const bad3 = {
      ...good,
      ipv4: { ...good.ipv4!, allocations: { '10.0.0.5': owner(9), '10.0.0.6': owner(9) } },
    };
    assert.throws(() => n.import(bad3), /holds two/);
    assert.throws(() => n.import({ version: 2 } as unknown as NodeIpamState), IpamStateError);
    assert.deepEqual(n.export(), good);
  });
});

describe('JsonStateFile', () => {
  let dir = '';
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('saves atomically and loads back; missing → undefined; corrupt → IpamStateError', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ipam-store-'));
    const f = new JsonStateFile<NodeIpamState>(join(dir, 'sub', 'ipam.json'));
    assert.equal(await f.load(), undefined);
    const n = new NodeIpam({ ipv4Cidr: '10.0.0.0/24' });
    n.allocate(owner(1));
    await Promise.all([f.save(n.export()), f.save(n.export())]);
    n.allocate(owner(2));
    await f.save(n.export());
    const m = new NodeIpam({ ipv4Cidr: '10.0.0.0/24' });
    m.import((await f.load())!);
    assert.deepEqual(m.export(), n.export());
    assert.deepEqual(await readdir(join(dir, 'sub')), ['ipam.json']);
    const bad = new JsonStateFile(join(dir, 'bad.json'));
    await import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'bad.json'), '{nope'));
    await assert.rejects(bad.load(), IpamStateError);
    assert.match(await readFile(join(dir, 'sub', 'ipam.json'), 'utf8'), /"10.0.0.3"/);
  });
});
