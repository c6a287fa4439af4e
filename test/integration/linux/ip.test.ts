import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LinuxCommandError } from '../../../src/datapath/linux/errors.js';
import { run } from '../../../src/datapath/linux/exec.js';
import {
  addAddress,
  addRoute,
  addVethPair,
  cmd,
  deleteLink,
  getLink,
  ipBatch,
  linkIndexAndMac,
  listAddresses,
  listRoutes,
  moveLinkToNetns,
  setLink,
} from '../../../src/datapath/linux/ip.js';
import {
  createNetns,
  deleteNetns,
  netnsExists,
  readSysctl,
  runInNetns,
  writeSysctls,
} from '../../../src/datapath/linux/netns.js';
import { isRoot, NetnsFixture } from './netns-fixture.js';

describe('datapath/linux helpers', { skip: !isRoot && 'needs root' }, () => {
  const fx = new NetnsFixture();
  let a = '';
  let b = '';

  before(async () => {
    a = await fx.netns('a');
    b = await fx.netns('b');
  });
  after(() => fx.cleanup());

  it('privileged: create/delete named netns idempotently', async () => {
    const name = `${fx.prefix}-tmp`;
    const p = await createNetns(name);
    assert.equal(await createNetns(name), p);
    assert.ok(netnsExists(p));
    assert.equal(await deleteNetns(name), true);
    assert.equal(await deleteNetns(name), false);
    assert.ok(!netnsExists(p));
  });

  it('privileged: veth, move by path, MAC/MTU/up, addresses and routes (v4+v6)', async () => {
    await addVethPair({ name: 'va', peerName: 'vb-tmp', mtu: 1400 }, { netns: a });
    await moveLinkToNetns('vb-tmp', b, { netns: a, newName: 'vb' });
    assert.equal(await getLink('vb-tmp', { netns: a }), undefined);
    await setLink('va', { mac: '02:11:22:33:44:55', up: true }, { netns: a });
    await setLink('vb', { mtu: 1400, up: true }, { netns: b });
    const la = await linkIndexAndMac('va', { netns: a });
    assert.equal(la.mac, '02:11:22:33:44:55');
    const lb = await getLink('vb', { netns: b });
    assert.equal(lb?.mtu, 1400);
    assert.equal(lb?.link_index, la.ifindex);
    await addAddress('va', '192.168.50.1/24', {}, { netns: a });
    await addAddress('va', 'fd00:50::1/64', { nodad: true }, { netns: a });
    await addAddress('vb', '192.168.50.2/32', { scope: 'global' }, { netns: b });
    await addRoute({ dst: '192.168.50.1/32', dev: 'vb', scope: 'link' }, { netns: b });
    await addRoute({ dst: 'default', via: '192.168.50.1', dev: 'vb' }, { netns: b });
    await addRoute({ dst: 'fd00:99::/64', dev: 'va' }, { netns: a });
    const addrs = await listAddresses('va', { netns: a });
    assert.ok(addrs.some((x) => x.local === '192.168.50.1' && x.prefixlen === 24));
    assert.ok(addrs.some((x) => x.local === 'fd00:50::1' && x.family === 'inet6'));
    const rb = await listRoutes('vb', { netns: b });
    assert.ok(rb.some((r) => r.dst === 'default' && r.gateway === '192.168.50.1'));
    assert.ok((await listRoutes('va', { netns: a })).some((r) => r.dst === 'fd00:99::/64'));
  });

  it('privileged: ip -batch runs several commands and returns JSON per query', async () => {
    const out = await ipBatch(
      [
        cmd.vethAdd({ name: 'd0', peerName: 'd1' }),
        cmd.linkSet('d0', { up: true }),
        cmd.linkShow('d0'),
        cmd.addrShow('d0'),
      ],
      {
        netns: a,
        json: true,
      },
    );
    assert.equal(out.length, 2);
    assert.equal((out[0] as Array<{ ifname: string }>)[0]!.ifname, 'd0');
  });

  it('privileged: errors carry command, exit code and stderr', async () => {
    await assert.rejects(ipBatch([cmd.linkSet('nope0', { up: true })], { netns: a }), (e: unknown) => {
      assert.ok(e instanceof LinuxCommandError);
      assert.equal(e.exitCode, 1);
      assert.match(e.stderr, /nope0/);
      assert.deepEqual(e.command.slice(0, 3), ['nsenter', `--net=${a}`, '--']);
      assert.ok(e.isNotFound);
      return true;
    });
    assert.equal(await deleteLink('nope0', { netns: a }), false);
    assert.equal(await getLink('nope0', { netns: a }), undefined);
    await assert.rejects(ipBatch([cmd.linkSet('x; rm -rf', {})], { netns: a }), TypeError);
    await assert.rejects(run(['false']), LinuxCommandError);
  });

  it('privileged: sysctl writes land in the target namespace only', async () => {
    await writeSysctls(
      { 'net.ipv4.conf.va.rp_filter': 0, 'net.ipv4.ip_forward': 1, 'net/ipv4/conf/va/accept_local': 1 },
      { netns: a },
    );
    assert.equal(await readSysctl('net.ipv4.ip_forward', { netns: a }), '1');
    assert.equal(await readSysctl('net.ipv4.conf.va.accept_local', { netns: a }), '1');
    assert.equal(await readSysctl('net.ipv4.ip_forward', { netns: b }), '0');
    const { stdout } = await runInNetns(b, ['cat', '/proc/sys/net/ipv4/ip_forward']);
    assert.equal(stdout.trim(), '0');
  });
});
