import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import {
  type DnsRecords,
  type DnsServer,
  type DnsServerOptions,
  MemoryRecordSource,
  parseDnsRecords,
  startDnsServer,
  staticRecordSource,
} from '../../../src/dns/index.js';
import { ask, askTcp, decode, framed, queryPacket, rrs, tcpExchange, udpExchange } from './wire.js';

const big = Array.from({ length: 40 }, (_, i) => ({ addresses: [`10.201.0.${i + 1}`], ready: true }));

const RECORDS: DnsRecords = {
  services: [
    {
      name: 'deathstar',
      namespace: 'default',
      clusterIPs: ['10.96.0.20', 'fd00:96::20'],
      headless: false,
      ports: [
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'dns', port: 53, protocol: 'UDP' },
        { port: 8080, protocol: 'TCP' },
      ],
      endpoints: [{ addresses: ['10.200.0.2'], ready: true }],
    },
    {
      name: 'db',
      namespace: 'default',
      clusterIPs: [],
      headless: true,
      ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
      endpoints: [
        { addresses: ['10.200.0.5', 'fd00:200::5'], hostname: 'db-0', ready: true },
        { addresses: ['10.200.0.6'], ready: true },
        { addresses: ['10.200.0.7'], hostname: 'db-2', ready: false },
      ],
    },
    {
      name: 'web',
      namespace: 'other',
      clusterIPs: [],
      headless: true,
      publishNotReadyAddresses: true,
      ports: [],
      endpoints: [{ addresses: ['10.200.1.1'], ready: false }],
    },
    {
      name: 'empty',
      namespace: 'default',
      clusterIPs: [],
      headless: true,
      ports: [{ name: 'x', port: 1, protocol: 'TCP' }],
      endpoints: [{ addresses: ['10.200.0.9'], ready: false }],
    },
    {
      name: 'ext',
      namespace: 'default',
      clusterIPs: [],
      headless: false,
      externalName: 'deathstar.default.svc.cluster.local',
      ports: [],
      endpoints: [],
    },
    {
      name: 'outside',
      namespace: 'default',
      clusterIPs: [],
      headless: false,
      externalName: 'www.web.svc.upstream.test',
      ports: [],
      endpoints: [],
    },
    { name: 'big', namespace: 'default', clusterIPs: [], headless: true, ports: [], endpoints: big },
  ],
  pods: [
    { name: 'db-0', namespace: 'default', ips: ['10.200.0.5', 'fd00:200::5'] },
    { name: 'x', namespace: 'other', ips: ['10.200.1.1'] },
  ],
  namespaces: ['kube-system'],
};

const servers: DnsServer[] = [];
async function serve(o: Partial<DnsServerOptions> & Pick<DnsServerOptions, 'source'>): Promise<number> {
  const s = await startDnsServer({ listen: ['127.0.0.1:0'], ...o });
  servers.push(s);
  return s.addresses[0]!.port;
}

function resolver(port: number): Resolver {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  return r;
}

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, code);
    return true;
  });
}

const Z = 'svc.cluster.local';

describe('cluster DNS server: answers over real UDP and TCP on loopback', () => {
  let port: number;
  let upstreamPort: number;
  let r: Resolver;

  before(async () => {
    // The "upstream" is a second server serving its own zone: forwarding reaches a real server.
    upstreamPort = await serve({
      zone: 'upstream.test',
      source: staticRecordSource({
        services: [
          {
            name: 'www',
            namespace: 'web',
            clusterIPs: ['192.0.2.80'],
            headless: false,
            ports: [],
            endpoints: [],
          },
        ],
        pods: [],
      }),
    });
    port = await serve({ source: staticRecordSource(RECORDS) });
    r = resolver(port);
  });
  after(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('ClusterIP service: A and AAAA are the ClusterIPs, TTL 30, authoritative', async () => {
    assert.deepEqual(await r.resolve4(`deathstar.default.${Z}`, { ttl: true }), [
      { address: '10.96.0.20', ttl: 30 },
    ]);
    assert.deepEqual(await r.resolve6(`deathstar.default.${Z}`), ['fd00:96::20']);
    const a = await ask(port, `deathstar.default.${Z}`, 'A');
    assert.equal(a.rcode, 'NOERROR');
    assert.equal(a.flag_aa, true);
    assert.equal(a.flag_qr, true);
    assert.equal(a.id, 4242);
    assert.equal(a.flag_rd, true, 'RD is copied');
    assert.equal(a.flag_ra, false, 'no upstream: no recursion offered');
  });

  it('names compare case-insensitively; the question and the answers keep the case asked', async () => {
    const asked = 'DeathStar.Default.SVC.Cluster.LOCAL';
    const a = await ask(port, asked, 'A');
    assert.equal(a.rcode, 'NOERROR');
    assert.equal(a.questions![0]!.name, asked);
    assert.deepEqual(rrs(a.answers), [`${asked} 30 A 10.96.0.20`]);
    assert.deepEqual((await ask(port, `_HTTP._Tcp.deathstar.default.${Z}`, 'SRV')).answers?.length, 1);
  });

  it('headless service: ready endpoints only, each also by hostname or dashed IP; publishNotReadyAddresses; none ready is NXDOMAIN', async () => {
    assert.deepEqual((await r.resolve4(`db.default.${Z}`)).sort(), ['10.200.0.5', '10.200.0.6']);
    assert.deepEqual(await r.resolve6(`db.default.${Z}`), ['fd00:200::5']);
    assert.deepEqual(await r.resolve4(`db-0.db.default.${Z}`), ['10.200.0.5']);
    assert.deepEqual(await r.resolve6(`db-0.db.default.${Z}`), ['fd00:200::5']);
    assert.deepEqual(await r.resolve4(`10-200-0-6.db.default.${Z}`), ['10.200.0.6']);
    await rejects(r.resolve4(`db-2.db.default.${Z}`), 'ENOTFOUND');
    assert.deepEqual(await r.resolve4(`web.other.${Z}`), ['10.200.1.1']);
    // Spec 1.0.1 (2.4.1): a headless service with no ready endpoint answers NXDOMAIN.
    assert.equal((await ask(port, `empty.default.${Z}`, 'A')).rcode, 'NXDOMAIN');
    assert.equal((await ask(port, `_x._tcp.empty.default.${Z}`, 'SRV')).rcode, 'NXDOMAIN');
  });

  it('SRV for named ports: ClusterIP → the service name (addresses in additional); headless → each endpoint host', async () => {
    const a = await ask(port, `_http._tcp.deathstar.default.${Z}`, 'SRV');
    assert.deepEqual(rrs(a.answers), [
      `_http._tcp.deathstar.default.${Z} 30 SRV 0 100 80 deathstar.default.${Z}`,
    ]);
    assert.deepEqual(rrs(a.additionals), [
      `deathstar.default.${Z} 30 A 10.96.0.20`,
      `deathstar.default.${Z} 30 AAAA fd00:96::20`,
    ]);
    assert.deepEqual(await r.resolveSrv(`_dns._udp.deathstar.default.${Z}`), [
      { name: `deathstar.default.${Z}`, port: 53, priority: 0, weight: 100 },
    ]);
    const h = await ask(port, `_pg._tcp.db.default.${Z}`, 'SRV');
    assert.deepEqual(rrs(h.answers).sort(), [
      `_pg._tcp.db.default.${Z} 30 SRV 0 50 5432 10-200-0-6.db.default.${Z}`,
      `_pg._tcp.db.default.${Z} 30 SRV 0 50 5432 db-0.db.default.${Z}`,
    ]);
    assert.deepEqual(rrs(h.additionals).sort(), [
      `10-200-0-6.db.default.${Z} 30 A 10.200.0.6`,
      `db-0.db.default.${Z} 30 A 10.200.0.5`,
      `db-0.db.default.${Z} 30 AAAA fd00:200::5`,
    ]);
    // The unnamed port 8080 has no SRV; a named TCP port is not served as UDP.
    assert.equal((await ask(port, `_8080._tcp.deathstar.default.${Z}`, 'SRV')).rcode, 'NXDOMAIN');
    assert.equal((await ask(port, `_http._udp.deathstar.default.${Z}`, 'SRV')).rcode, 'NXDOMAIN');
  });

  it('NXDOMAIN for names that do not exist, NODATA (NOERROR, empty) for names that do; both carry the SOA', async () => {
    const nx = await ask(port, `nope.default.${Z}`, 'A');
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.equal(nx.flag_aa, true);
    assert.deepEqual(nx.answers, []);
    assert.equal(nx.authorities![0]!.type, 'SOA');
    assert.equal(nx.authorities![0]!.name, 'cluster.local');
    assert.match(rrs(nx.authorities)[0]!, /^cluster\.local 30 SOA ns\.dns\.cluster\.local \d+$/);
    await rejects(r.resolve4(`nope.default.${Z}`), 'ENOTFOUND');
    await rejects(r.resolve4(`deathstar.nope.${Z}`), 'ENOTFOUND');
    await rejects(r.resolve4(`x.deathstar.default.${Z}`), 'ENOTFOUND');
    await rejects(r.resolve4('nope.cluster.local'), 'ENOTFOUND');

    const nodata = [
      [`deathstar.default.${Z}`, 'TXT'],
      [`10-200-0-6.db.default.${Z}`, 'AAAA'],
      [`_tcp.deathstar.default.${Z}`, 'SRV'],
      [`_udp.deathstar.default.${Z}`, 'A'],
      [`default.${Z}`, 'A'],
      [`kube-system.${Z}`, 'A'],
      [Z, 'A'],
      ['cluster.local', 'A'],
    ] as const;
    for (const [name, type] of nodata) {
      const a = await ask(port, name, type);
      assert.equal(a.rcode, 'NOERROR', `${name} ${type}`);
      assert.deepEqual(a.answers, [], `${name} ${type}`);
      assert.equal(a.authorities![0]!.type, 'SOA', `${name} ${type}`);
    }
    await rejects(r.resolveTxt(`deathstar.default.${Z}`), 'ENODATA');
    assert.equal((await ask(port, `_sctp.deathstar.default.${Z}`, 'SRV')).rcode, 'NXDOMAIN');
    assert.equal((await ask(port, `kube-public.${Z}`, 'A')).rcode, 'NXDOMAIN');
    const apex = await ask(port, 'cluster.local', 'SOA');
    assert.deepEqual(
      apex.answers!.map((a) => a.type),
      ['SOA'],
    );
  });

  it('pod records: the dashed IP of a pod in that namespace (IPv4 and IPv6); other IPs or namespaces are NXDOMAIN', async () => {
    assert.deepEqual(await r.resolve4('10-200-0-5.default.pod.cluster.local'), ['10.200.0.5']);
    assert.deepEqual(await r.resolve6('fd00-200--5.default.pod.cluster.local'), ['fd00:200::5']);
    assert.equal((await ask(port, '10-200-0-5.default.pod.cluster.local', 'AAAA')).rcode, 'NOERROR');
    assert.equal((await ask(port, '10-200-0-5.other.pod.cluster.local', 'A')).rcode, 'NXDOMAIN');
    assert.equal((await ask(port, '10-9-9-9.default.pod.cluster.local', 'A')).rcode, 'NXDOMAIN');
    assert.equal((await ask(port, '10-200-0-300.default.pod.cluster.local', 'A')).rcode, 'NXDOMAIN');
    assert.equal((await ask(port, 'default.pod.cluster.local', 'A')).rcode, 'NOERROR');
  });

  it('pod records in insecure mode answer any dashed IP; disabled answers none', async () => {
    const insecure = await serve({ source: staticRecordSource(RECORDS), podRecords: 'insecure' });
    assert.deepEqual(await resolver(insecure).resolve4('10-9-9-9.anyns.pod.cluster.local'), ['10.9.9.9']);
    const disabled = await serve({ source: staticRecordSource(RECORDS), podRecords: 'disabled' });
    assert.equal((await ask(disabled, '10-200-0-5.default.pod.cluster.local', 'A')).rcode, 'NXDOMAIN');
  });

  it('PTR for ClusterIPs and endpoint IPs, IPv4 and IPv6', async () => {
    assert.deepEqual(await r.reverse('10.96.0.20'), [`deathstar.default.${Z}`]);
    assert.deepEqual(await r.reverse('fd00:96::20'), [`deathstar.default.${Z}`]);
    assert.deepEqual(await r.reverse('10.200.0.5'), [`db-0.db.default.${Z}`]);
    assert.deepEqual(await r.reverse('fd00:200::5'), [`db-0.db.default.${Z}`]);
    // An address of no service is not ours to deny: without an upstream it is refused.
    assert.equal((await ask(port, '9.9.9.10.in-addr.arpa', 'PTR')).rcode, 'REFUSED');
  });

  it('dns-version TXT is the schema version', async () => {
    assert.deepEqual(await r.resolveTxt('dns-version.cluster.local'), [['1.0.1']]);
  });

  it('ExternalName: a CNAME, chased when its target is in the zone', async () => {
    const a = await ask(port, `ext.default.${Z}`, 'A');
    assert.deepEqual(rrs(a.answers), [
      `ext.default.${Z} 30 CNAME deathstar.default.${Z}`,
      `deathstar.default.${Z} 30 A 10.96.0.20`,
    ]);
    assert.deepEqual(await r.resolveCname(`ext.default.${Z}`), [`deathstar.default.${Z}`]);
    assert.equal((await ask(port, `x.ext.default.${Z}`, 'A')).rcode, 'NXDOMAIN');
  });

  it('names outside the zone: REFUSED without an upstream', async () => {
    const a = await ask(port, 'example.com', 'A');
    assert.equal(a.rcode, 'REFUSED');
    assert.equal(a.flag_aa, false);
    await rejects(r.resolve4('example.com'), 'EREFUSED');
    assert.equal((await ask(port, 'www.web.svc.upstream.test', 'A')).rcode, 'REFUSED');
  });

  it('names outside the zone go to the upstream over the client’s transport; a silent upstream is SERVFAIL', async () => {
    const fwd = await serve({
      source: staticRecordSource(RECORDS),
      upstreams: [`127.0.0.1:${upstreamPort}`],
    });
    const viaUdp = await ask(fwd, 'WWW.web.svc.upstream.test', 'A', { id: 777 });
    assert.equal(viaUdp.id, 777, 'the client’s id is restored');
    assert.equal(viaUdp.rcode, 'NOERROR');
    assert.deepEqual(rrs(viaUdp.answers), ['WWW.web.svc.upstream.test 30 A 192.0.2.80']);
    const viaTcp = await askTcp(fwd, 'www.web.svc.upstream.test', 'A');
    assert.deepEqual(rrs(viaTcp.answers), ['www.web.svc.upstream.test 30 A 192.0.2.80']);
    assert.equal((await ask(fwd, 'nope.web.svc.upstream.test', 'A')).rcode, 'NXDOMAIN');
    assert.equal((await ask(fwd, `deathstar.default.${Z}`, 'A')).flag_ra, true);
    // ExternalName to a name outside the zone: the CNAME, then the upstream's answer for its target.
    assert.deepEqual(rrs((await ask(fwd, `outside.default.${Z}`, 'A')).answers), [
      `outside.default.${Z} 30 CNAME www.web.svc.upstream.test`,
      'www.web.svc.upstream.test 30 A 192.0.2.80',
    ]);

    const silent = createSocket('udp4');
    await new Promise<void>((res) => silent.bind(0, '127.0.0.1', () => res()));
    try {
      const dead = await serve({
        source: staticRecordSource(RECORDS),
        upstreams: [`127.0.0.1:${silent.address().port}`],
        upstreamTimeoutMs: 200,
      });
      const t0 = Date.now();
      assert.equal((await ask(dead, 'example.com', 'A')).rcode, 'SERVFAIL');
      assert.ok(Date.now() - t0 < 900, 'answered after the upstream timeout, not the client’s');
    } finally {
      silent.close();
    }
  });

  it('TCP: length-prefixed queries pipelined on one connection, and one split across writes', async () => {
    const q1 = framed(queryPacket(`deathstar.default.${Z}`, 'A', { id: 1 }));
    const q2 = framed(queryPacket(`db-0.db.default.${Z}`, 'AAAA', { id: 2 }));
    const both = Buffer.concat([q1, q2]);
    const split = [
      both.subarray(0, 1),
      both.subarray(1, 7),
      both.subarray(7, q1.length + 3),
      both.subarray(q1.length + 3),
    ];
    const answers = (await tcpExchange(port, split, 2)).map(decode).sort((a, b) => a.id! - b.id!);
    assert.deepEqual(rrs(answers[0]!.answers), [`deathstar.default.${Z} 30 A 10.96.0.20`]);
    assert.deepEqual(rrs(answers[1]!.answers), [`db-0.db.default.${Z} 30 AAAA fd00:200::5`]);
  });

  it('truncation: an answer over the UDP limit has TC and no records; TCP (and the stub resolver’s retry) gets it all', async () => {
    const plain = await udpExchange(port, queryPacket(`big.default.${Z}`, 'A'));
    assert.ok(plain!.length <= 512);
    const t = decode(plain);
    assert.equal(t.flag_tc, true);
    assert.deepEqual(t.answers, []);
    assert.equal(t.questions![0]!.name, `big.default.${Z}`);
    // With EDNS the limit is the client's size capped at ours (1232): 40 records still do not fit.
    const e = await udpExchange(port, queryPacket(`big.default.${Z}`, 'A', { edns: { size: 4096 } }));
    assert.ok(e!.length <= 1232);
    assert.equal(decode(e).flag_tc, true);
    const tcp = await askTcp(port, `big.default.${Z}`, 'A');
    assert.equal(tcp.flag_tc, false);
    assert.equal(tcp.answers!.length, 40);
    assert.equal((await r.resolve4(`big.default.${Z}`)).length, 40);
    // A server with a larger EDNS buffer fits them in one datagram for a client that asks for it.
    const roomy = await serve({ source: staticRecordSource(RECORDS), maxUdpPayload: 4096 });
    const fits = decode(
      await udpExchange(roomy, queryPacket(`big.default.${Z}`, 'A', { edns: { size: 4096 } })),
    );
    assert.equal(fits.flag_tc, false);
    assert.equal(fits.answers!.length, 40);
  });

  it('EDNS0: OPT comes back with our buffer size and the DO bit; a version above 0 is BADVERS', async () => {
    const a = await ask(port, `deathstar.default.${Z}`, 'A', { edns: { size: 1400, do: true } });
    const opt = a.additionals!.find((x) => x.type === 'OPT') as { udpPayloadSize: number; flag_do: boolean };
    assert.equal(opt.udpPayloadSize, 1232);
    assert.equal(opt.flag_do, true);
    assert.equal(a.answers!.length, 1);
    assert.equal(
      (await ask(port, `deathstar.default.${Z}`, 'A')).additionals!.some((x) => x.type === 'OPT'),
      false,
      'no OPT without one in the query',
    );
    const bad = await ask(port, `deathstar.default.${Z}`, 'A', { edns: { size: 1232, version: 1 } });
    const badOpt = bad.additionals!.find((x) => x.type === 'OPT') as { extendedRcode: number };
    assert.equal(badOpt.extendedRcode, 1, 'BADVERS (16) = 1 in the upper rcode bits');
    assert.equal(bad.rcode, 'NOERROR');
    assert.deepEqual(bad.answers, []);
  });

  it('malformed packets: FORMERR with the id; short packets and responses get no answer; other opcodes NOTIMP; class CH REFUSED', async () => {
    const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    const cut = decode(await udpExchange(port, header)); // says one question, carries none
    assert.equal(cut.id, 0x1234);
    assert.equal(cut.rcode, 'FORMERR');
    const garbage = Buffer.concat([header, Buffer.from([0x3f, 0x41, 0x42])]);
    assert.equal(decode(await udpExchange(port, garbage)).rcode, 'FORMERR');
    const [overTcp] = await tcpExchange(port, [framed(garbage)], 1);
    assert.equal(decode(overTcp).rcode, 'FORMERR');
    const two = dnsPacket.encode({
      type: 'query',
      id: 9,
      questions: [
        { name: `deathstar.default.${Z}`, type: 'A' },
        { name: `db.default.${Z}`, type: 'A' },
      ],
    });
    assert.equal(decode(await udpExchange(port, two)).rcode, 'FORMERR');
    // A label of bytes that are not UTF-8 cannot be echoed as asked.
    const raw = Buffer.concat([header, Buffer.from([3, 0xff, 0xfe, 0xfd, 0, 0, 1, 0, 1])]);
    const rawAnswer = decode(await udpExchange(port, raw));
    assert.equal(rawAnswer.rcode, 'FORMERR');
    assert.deepEqual(rawAnswer.questions, []);
    const none = dnsPacket.encode({ type: 'query', id: 10, questions: [] });
    assert.equal(decode(await udpExchange(port, none)).rcode, 'FORMERR');
    assert.equal(await udpExchange(port, Buffer.from([1, 2, 3]), 300), undefined);
    const response = dnsPacket.encode({
      type: 'response',
      id: 11,
      questions: [{ name: 'x.cluster.local', type: 'A' }],
    });
    assert.equal(await udpExchange(port, response, 300), undefined);
    const status = queryPacket(`deathstar.default.${Z}`, 'A');
    status[2] = (status[2]! & 0x87) | (2 << 3); // opcode 2 (STATUS)
    assert.equal(decode(await udpExchange(port, status)).rcode, 'NOTIMP');
    const chaos = dnsPacket.encode({
      type: 'query',
      id: 12,
      questions: [{ name: 'version.bind', type: 'TXT', class: 'CH' }],
    });
    assert.equal(decode(await udpExchange(port, chaos)).rcode, 'REFUSED');
    // Still serving after all of that.
    assert.deepEqual(await r.resolve4(`deathstar.default.${Z}`), ['10.96.0.20']);
  });
});

describe('cluster DNS server: records and options', () => {
  after(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('a record source update is answered without restart, and the SOA serial moves on', async () => {
    const source = new MemoryRecordSource({ services: [], pods: [] });
    const port = await serve({ source, ttl: 5 });
    const before = await ask(port, `deathstar.default.${Z}`, 'A');
    assert.equal(before.rcode, 'NXDOMAIN');
    source.set(RECORDS);
    const a = await ask(port, `deathstar.default.${Z}`, 'A');
    assert.deepEqual(rrs(a.answers), [`deathstar.default.${Z} 5 A 10.96.0.20`]);
    const serial = (x: typeof a) => (x.authorities![0] as { data: { serial: number } }).data.serial;
    const after = await ask(port, `nope.default.${Z}`, 'A');
    assert.ok(serial(after) > serial(before));
  });

  it('a configured zone is served instead of cluster.local', async () => {
    const port = await serve({ source: staticRecordSource(RECORDS), zone: 'Lab.Example.' });
    assert.deepEqual(await resolver(port).resolve4('deathstar.default.svc.lab.example'), ['10.96.0.20']);
    assert.equal((await ask(port, `deathstar.default.${Z}`, 'A')).rcode, 'REFUSED');
  });

  it('bad records and options are refused naming the field', async () => {
    const svc = RECORDS.services[0]!;
    const bad: [unknown, RegExp][] = [
      [
        { services: [{ ...svc, clusterIPs: ['10.96.0.300'] }], pods: [] },
        /services\[0\]\.clusterIPs\[0\]: must be an IP/,
      ],
      [{ services: [{ ...svc, name: 'Death_Star' }], pods: [] }, /services\[0\]\.name: /],
      [{ services: [{ ...svc, headless: true }], pods: [] }, /services\[0\]\.clusterIPs: a headless service/],
      [{ services: [svc, svc], pods: [] }, /services\[1\]\.name: duplicate service default\/deathstar/],
      [
        { services: [{ ...svc, ports: [{ name: 'http', port: 0, protocol: 'TCP' }] }], pods: [] },
        /ports\[0\]\.port/,
      ],
      [
        { services: [{ ...svc, ports: [{ name: 'h', port: 1, protocol: 'ICMP' }] }], pods: [] },
        /ports\[0\]\.protocol/,
      ],
      [{ services: [{ ...svc, typo: 1 }], pods: [] }, /services\[0\]/],
      [{ services: [] }, /records\.pods/],
    ];
    for (const [records, msg] of bad) assert.throws(() => parseDnsRecords(records), msg);
    const source = staticRecordSource(RECORDS);
    await assert.rejects(
      startDnsServer({ listen: ['nowhere:53'], source }),
      /listen\[0\]: "nowhere:53" is not IP/,
    );
    await assert.rejects(startDnsServer({ listen: [], source }), /listen: needs at least one address/);
    await assert.rejects(startDnsServer({ listen: ['127.0.0.1:0'], source, zone: 'a..b' }), /zone: /);
    await assert.rejects(
      startDnsServer({ listen: ['127.0.0.1:0'], source, ttl: -1 }),
      /ttl: must be an integer/,
    );
    await assert.rejects(
      startDnsServer({ listen: ['127.0.0.1:0'], source, upstreams: ['127.0.0.1:0'] }),
      /upstreams\[0\]: port 0/,
    );
    await assert.rejects(
      startDnsServer({ listen: ['127.0.0.1:0'], source, podRecords: 'maybe' as 'verified' }),
      /podRecords: must be one of/,
    );
    // A port already taken: the error says where, and nothing stays bound.
    const port = await serve({ source });
    await assert.rejects(
      startDnsServer({ listen: [`127.0.0.1:${port}`], source }),
      /listen: cannot serve DNS there: EADDRINUSE/,
    );
  });

  it('serves IPv6 listen addresses', async () => {
    const s = await startDnsServer({ listen: ['[::1]:0'], source: staticRecordSource(RECORDS) });
    servers.push(s);
    const a = decode(
      await udpExchange(s.addresses[0]!.port, queryPacket(`deathstar.default.${Z}`, 'AAAA'), 1000, '::1'),
    );
    assert.deepEqual(rrs(a.answers), [`deathstar.default.${Z} 30 AAAA fd00:96::20`]);
    const [t] = await tcpExchange(
      s.addresses[0]!.port,
      [framed(queryPacket(`deathstar.default.${Z}`, 'A'))],
      1,
      '::1',
    );
    assert.deepEqual(rrs(decode(t).answers), [`deathstar.default.${Z} 30 A 10.96.0.20`]);
  });
});
