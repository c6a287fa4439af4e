import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cmd, ipBatch } from '../../../src/datapath/linux/ip.js';
import {
  connect,
  parseDuration,
  parsePorts,
  parseTarget,
  serve,
  WorkloadNotSupportedError,
  WorkloadUsageError,
} from '../../../src/workload/index.js';
import { isRoot, NetnsFixture } from '../linux/netns-fixture.js';

const MAC_C = '02:77:00:00:00:01';
const MAC_S = '02:77:00:00:00:02';
const RUNNER = new URL('../../../src/workload/runner.js', import.meta.url).pathname;

describe('workload argument parsing', () => {
  it('ports, durations, targets', () => {
    assert.deepEqual(parsePorts('80,81,8000-8002,80'), [80, 81, 8000, 8001, 8002]);
    assert.throws(() => parsePorts('0'), WorkloadUsageError);
    assert.throws(() => parsePorts('x'), WorkloadUsageError);
    assert.equal(parseDuration('1s'), 1000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('2'), 2000);
    assert.throws(() => parseDuration('soon'), WorkloadUsageError);
    assert.deepEqual(parseTarget('10.0.0.1:80'), { host: '10.0.0.1', port: 80 });
    assert.deepEqual(parseTarget('[fd00::1]:8080'), { host: 'fd00::1', port: 8080 });
    assert.deepEqual(parseTarget('web:81'), { host: 'web', port: 81 });
    assert.throws(() => parseTarget('fd00::1:80'), /brackets/);
    assert.throws(() => parseTarget('host:99999'), WorkloadUsageError);
  });

  it('sctp is reported as not supported', async () => {
    await assert.rejects(serve({ sctp: '80' }), WorkloadNotSupportedError);
    const r = await connect({ target: '10.0.0.1:80', protocol: 'sctp' });
    assert.equal(r.exitCode, 2);
    assert.match(r.message, /not supported/);
  });
});

describe('workload serve/connect over a veth between two namespaces', {
  skip: !isRoot && 'needs root',
}, () => {
  const fx = new NetnsFixture();
  let client = '';
  let server = '';

  async function run(netns: string, arg: object): Promise<{ code: number | null; out: string }> {
    const p = fx.spawnIn(netns, [process.execPath, RUNNER, JSON.stringify(arg)]);
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((r) => p.on('exit', r));
    return { code, out: out.trim() };
  }

  before(async () => {
    client = await fx.netns('cli');
    server = await fx.netns('srv');
    await ipBatch(
      [
        cmd.linkSet('lo', { up: true }),
        cmd.vethAdd({ name: 'wc0', mac: MAC_C, peerName: 'ws0', peerMac: MAC_S, peerNetns: server }),
        cmd.addrAdd('wc0', '192.168.77.1/24'),
        cmd.addrAdd('wc0', 'fd00:77::1/64', { nodad: true }),
        cmd.linkSet('wc0', { up: true }),
        // static neighbours: no dependence on IPv6 neighbour discovery timing in fresh namespaces
        cmd.neighReplace('wc0', 'fd00:77::2', MAC_S),
        cmd.neighReplace('wc0', '192.168.77.2', MAC_S),
      ],
      { netns: client },
    );
    await ipBatch(
      [
        cmd.linkSet('lo', { up: true }),
        cmd.addrAdd('ws0', '192.168.77.2/24'),
        cmd.addrAdd('ws0', 'fd00:77::2/64', { nodad: true }),
        cmd.linkSet('ws0', { up: true }),
        cmd.neighReplace('ws0', 'fd00:77::1', MAC_C),
        cmd.neighReplace('ws0', '192.168.77.1', MAC_C),
      ],
      { netns: server },
    );
    const srv = fx.spawnIn(server, [
      process.execPath,
      RUNNER,
      JSON.stringify({ serve: { tcp: '80,81', udp: '80,81', name: 'srv' } }),
    ]);
    await fx.waitLine(srv, 'ready');
    const web = fx.spawnIn(server, [
      process.execPath,
      RUNNER,
      JSON.stringify({ serve: { tcp: '8080', http: true, name: 'web' } }),
    ]);
    await fx.waitLine(web, 'ready');
  });
  after(() => fx.cleanup());

  it('privileged: TCP and UDP, IPv4 and IPv6', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['192.168.77.2:80', 'tcp', /^connected to 192\.168\.77\.2:80\/tcp: hello from srv port 80\/tcp$/],
      ['192.168.77.2:81', 'tcp', /hello from srv port 81\/tcp/],
      ['[fd00:77::2]:80', 'tcp', /^connected to \[fd00:77::2\]:80\/tcp: hello from srv port 80\/tcp$/],
      ['192.168.77.2:80', 'udp', /hello from srv port 80\/udp/],
      ['[fd00:77::2]:81', 'udp', /hello from srv port 81\/udp/],
    ];
    const rs = await Promise.all(
      cases.map(([target, protocol]) => run(client, { connect: { target, protocol } })),
    );
    rs.forEach((r, i) => {
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, cases[i]![2]);
    });
  });

  it('privileged: HTTP mode answers 200 with a body', async () => {
    const r = await run(client, { connect: { target: '192.168.77.2:8080', http: true, path: '/hello' } });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /GET \/hello: HTTP 200: hello from web port 8080\/tcp GET \/hello/);
  });

  it('privileged: refused (TCP RST, UDP ICMP unreachable) and timeout exit 1', async () => {
    const [tcp, udp, tmo, udpTmo] = await Promise.all([
      run(client, { connect: { target: '192.168.77.2:82' } }),
      run(client, { connect: { target: '[fd00:77::2]:82', protocol: 'udp' } }),
      // no such neighbour: ARP never resolves within the deadline
      run(client, { connect: { target: '192.168.77.9:80', timeout: '300ms' } }),
      run(client, { connect: { target: '192.168.77.9:80', protocol: 'udp', timeout: '300ms' } }),
    ]);
    assert.equal(tcp.code, 1);
    assert.match(tcp.out, /192\.168\.77\.2:82\/tcp: connection refused/);
    assert.equal(udp.code, 1);
    assert.match(udp.out, /refused/);
    assert.equal(tmo.code, 1);
    assert.match(tmo.out, /timeout after 300 ms/);
    assert.equal(udpTmo.code, 1);
    assert.match(udpTmo.out, /no reply within 300 ms/);
  });

  it('privileged: serve reports a port already in use', async () => {
    const r = await run(server, { serve: { tcp: '80' } });
    assert.equal(r.code, 2);
  });
});
