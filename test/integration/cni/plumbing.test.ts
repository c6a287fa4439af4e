import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  checkEndpoint,
  EndpointCheckError,
  type EndpointPlumbingSpec,
  hostVethName,
  setupEndpoint,
  setupNodeRouter,
  teardownEndpoint,
} from '../../../src/cni/endpoint-plumbing.js';
import {
  BIG_TCP_MAX_SIZE,
  gsoLimits,
  LEGACY_GSO_MAX_SIZE,
  setupBigTcpIpv4,
} from '../../../src/datapath/big-tcp.js';
import { ip } from '../../../src/datapath/linux/ip.js';
import { writeSysctls } from '../../../src/datapath/linux/netns.js';
import { NodeIpam } from '../../../src/ipam/index.js';
import { isRoot, NetnsFixture } from '../linux/netns-fixture.js';

const RUNNER = new URL('../../../src/workload/runner.js', import.meta.url).pathname;

describe('endpoint plumbing', { skip: !isRoot && 'needs root' }, () => {
  const fx = new NetnsFixture();
  const ipam = new NodeIpam({ ipv4Cidr: '10.200.0.0/24', ipv6Cidr: 'fd00:10:200::/120' });
  const router = ipam.routerIPs();
  let node = '';
  const pods: string[] = [];
  const specs: EndpointPlumbingSpec[] = [];

  async function probe(
    netns: string,
    target: string,
    protocol = 'tcp',
  ): Promise<{ code: number | null; out: string }> {
    const p = fx.spawnIn(netns, [
      process.execPath,
      RUNNER,
      JSON.stringify({ connect: { target, protocol, timeout: '2s' } }),
    ]);
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((r) => p.on('exit', r));
    return { code, out: out.trim() };
  }

  function specFor(i: number): EndpointPlumbingSpec {
    const a = ipam.allocate({ containerId: `ctr${i}`, ifName: 'eth0' });
    return {
      nodeNetns: node,
      podNetns: pods[i]!,
      ifName: 'eth0',
      hostIfName: hostVethName(`ctr${i}`, 'eth0'),
      ipv4: { ip: a.ipv4!.ip, router: router.ipv4! },
      ipv6: { ip: a.ipv6!.ip, router: router.ipv6! },
      mtu: 1450,
    };
  }

  before(async () => {
    node = await fx.netns('node');
    for (let i = 0; i < 3; i++) pods.push(await fx.netns(`pod${i}`));
    await ip(['link', 'set', 'lo', 'up'], { netns: node });
    await setupNodeRouter({ nodeNetns: node, ipv4Router: router.ipv4, ipv6Router: router.ipv6 });
    // idempotent
    await setupNodeRouter({ nodeNetns: node, ipv4Router: router.ipv4, ipv6Router: router.ipv6 });
    await writeSysctls({ 'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1 }, { netns: node });
  });
  after(() => fx.cleanup());

  it('privileged: host veth names are lxc + 11 hex chars', () => {
    const n = hostVethName('abcdef0123456789', 'eth0');
    assert.match(n, /^lxc[0-9a-f]{11}$/);
    assert.equal(n, hostVethName('abcdef0123456789', 'eth0'));
    assert.notEqual(n, hostVethName('abcdef0123456789', 'net1'));
  });

  it('privileged: sets up endpoints from the root namespace against a node namespace', async (t) => {
    const timings: number[] = [];
    for (let i = 0; i < 3; i++) {
      const spec = specFor(i);
      specs.push(spec);
      const r = await setupEndpoint(spec);
      timings.push(r.timings.totalMs);
      t.diagnostic(`endpoint ${i}: ${JSON.stringify(r.timings)}`);
      assert.equal(r.hostIfName, spec.hostIfName);
      assert.ok(r.hostIfindex > 0 && r.podIfindex > 0);
      assert.match(r.hostMac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      assert.notEqual(r.hostMac, r.podMac);
      await checkEndpoint(spec);
    }
    t.diagnostic(`plumbing ms per endpoint: ${timings.join(', ')}`);
    // host side has no address; pod side has /32 and /128
    const hostAddrs = JSON.parse(
      await ip(['-json', 'addr', 'show', 'dev', specs[0]!.hostIfName], { netns: node }),
    );
    assert.deepEqual(
      hostAddrs[0].addr_info.filter((a: { family: string }) => a.family === 'inet'),
      [],
    );
    const podAddrs = await ip(['addr', 'show', 'dev', 'eth0'], { netns: pods[0] });
    assert.match(podAddrs, /inet 10\.200\.0\.2\/32 scope global eth0/);
    assert.match(podAddrs, /inet6 fd00:10:200::2\/128 scope global/);
    assert.match(podAddrs, /mtu 1450/);
  });

  it('privileged: node reaches pods (TCP/UDP, v4/v6); pods reach their router and each other', async () => {
    const srv = fx.spawnIn(pods[0]!, [
      process.execPath,
      RUNNER,
      JSON.stringify({ serve: { tcp: '8080', udp: '8081', name: 'pod0' } }),
    ]);
    await fx.waitLine(srv, 'ready');
    const nodeSrv = fx.spawnIn(node, [
      process.execPath,
      RUNNER,
      JSON.stringify({ serve: { tcp: '7070', name: 'node' } }),
    ]);
    await fx.waitLine(nodeSrv, 'ready');

    const results = await Promise.all([
      probe(node, '10.200.0.2:8080'),
      probe(node, '[fd00:10:200::2]:8080'),
      probe(node, '10.200.0.2:8081', 'udp'),
      probe(node, '[fd00:10:200::2]:8081', 'udp'),
      probe(pods[0]!, `${router.ipv4}:7070`),
      probe(pods[0]!, `[${router.ipv6}]:7070`),
      probe(pods[1]!, '10.200.0.2:8080'),
      probe(pods[2]!, '[fd00:10:200::2]:8081', 'udp'),
    ]);
    for (const r of results) assert.equal(r.code, 0, r.out);
    assert.match(results[0]!.out, /hello from pod0 port 8080\/tcp/);
    assert.match(results[4]!.out, /hello from node port 7070\/tcp/);
    const refused = await probe(node, '10.200.0.2:9999');
    assert.equal(refused.code, 1);
    assert.match(refused.out, /refused/);
  });

  it('privileged: CHECK reports precise differences', async () => {
    const s = specs[2]!;
    await ip(['route', 'del', 'default', 'via', router.ipv4!, 'dev', 'eth0'], { netns: s.podNetns });
    await assert.rejects(checkEndpoint(s), (e: unknown) => {
      assert.ok(e instanceof EndpointCheckError);
      assert.equal(e.field, `pod route default via ${router.ipv4} dev eth0`);
      return true;
    });
    await ip(['addr', 'del', `${s.ipv6!.ip}/128`, 'dev', 'eth0'], { netns: s.podNetns });
    await assert.rejects(checkEndpoint(s), /pod address on eth0: expected fd00:10:200::4\/128/);
    await assert.rejects(
      checkEndpoint({ ...s, hostIfName: 'lxcmissing0' }),
      /host interface lxcmissing0: expected present, found missing/,
    );
  });

  it('privileged: setup is retry-safe and teardown idempotent', async () => {
    const s = specs[2]!;
    const r = await setupEndpoint(s); // replaces the broken endpoint
    await checkEndpoint(s);
    assert.ok(r.podIfindex > 0);
    assert.equal(await teardownEndpoint(s), true);
    assert.equal(await teardownEndpoint(s), false);
    const routes = await ip(['route', 'show', s.ipv4!.ip], { netns: node });
    assert.equal(routes.trim(), '');
    assert.doesNotMatch(await ip(['link', 'show'], { netns: s.podNetns }), /eth0/);
    await assert.rejects(checkEndpoint(s), EndpointCheckError);
  });

  it('privileged: IPv4 BIG TCP: both ends of the pod veth take 192 KiB packets; node devices only when all can', async () => {
    const pod = await fx.netns('pod3');
    const spec = { ...specFor(3), podNetns: pod, bigTcpIpv4: BIG_TCP_MAX_SIZE };
    await setupEndpoint(spec);
    for (const [netns, dev] of [
      [node, spec.hostIfName],
      [pod, 'eth0'],
    ] as const) {
      const l = gsoLimits(netns, dev);
      assert.equal(l.gsoIpv4MaxSize, BIG_TCP_MAX_SIZE, `${dev} gso_ipv4_max_size`);
      assert.equal(l.groIpv4MaxSize, BIG_TCP_MAX_SIZE, `${dev} gro_ipv4_max_size`);
    }
    // a pod made without it keeps the kernel's 64 KiB
    assert.equal(gsoLimits(specs[0]!.podNetns, 'eth0').gsoIpv4MaxSize, LEGACY_GSO_MAX_SIZE);
    // a VXLAN device takes 64 KiB at most: with it among the devices, none is changed
    await ip(['link', 'add', 'vxbig', 'type', 'vxlan', 'external', 'dstport', '4789'], { netns: node });
    assert.equal(setupBigTcpIpv4(['cilium_host', 'vxbig'], node), undefined);
    assert.equal(gsoLimits(node, 'cilium_host').gsoIpv4MaxSize, LEGACY_GSO_MAX_SIZE);
    assert.equal(setupBigTcpIpv4(['cilium_host'], node), BIG_TCP_MAX_SIZE);
    assert.equal(gsoLimits(node, 'cilium_host').gsoIpv4MaxSize, BIG_TCP_MAX_SIZE);
    await teardownEndpoint(spec);
  });
});
