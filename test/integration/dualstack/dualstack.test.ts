/**
 * A lab of two nodes, dual-stack by default, once per routing mode: every node has an IPv6
 * pod CIDR from the cluster pool beside its IPv4 one, every pod an address of each family. Over
 * IPv6: TCP, UDP and ping on one node and across nodes (IPv6 inside the IPv4 VXLAN tunnel, or
 * routed via the other node's IPv6 underlay address), fromEndpoints by label, toCIDR with IPv6
 * prefixes towards the world, and Hubble flows with IPv6 addresses. A lab made with --ipv6=false
 * stays IPv4 only, also when `lab up` resumes it without the flag.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { run } from '../../../src/datapath/linux/index.js';
import { ROUTING_MODES, type RoutingMode } from '../../../src/lab/state.js';
import { cli, cliOk, labName, manifest, ping, pinnedPod, probe } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const WORLD_V6 = 'fd00:192:168:211::254';
const WORLD2_V6 = 'fd00:192:168:211::253';

const serve = '["cilium-ts", "workload", "serve", "--tcp", "80", "--udp", "9000"]';
const sleep = '["sleep", "infinity"]';
const pod = pinnedPod;

const MANIFEST = [
  pod('srv', 'node1', 'app: srv', serve),
  pod('near', 'node1', 'app: a', sleep),
  pod('far', 'node2', 'app: a', sleep),
  pod('other', 'node2', 'app: b', sleep),
].join('---\n');

const ONLY_A = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-a}
spec:
  endpointSelector: {matchLabels: {app: srv}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: a}}]
`;

const TO_WORLD = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: to-world}
spec:
  endpointSelector: {matchLabels: {app: b}}
  egress:
  - toCIDR: ["${WORLD_V6}/128"]
`;

interface Flow {
  node_name?: string;
  IP?: { source: string; destination: string; ipVersion?: string };
  verdict: string;
  source?: { pod_name?: string };
  destination?: { pod_name?: string };
}

interface NodeRow {
  spec: { podCIDRs: string[] };
  status: { addresses: { type: string; address: string }[] };
}

const v6 = (a: string) => `[${a}]`;

function dualStack(mode: RoutingMode): void {
  describe(`privileged: a dual-stack lab of two nodes (${mode} routing)`, () => {
    const LAB = labName(`ds${mode.slice(0, 1)}`);
    const ip4 = new Map<string, string>();
    const ip6 = new Map<string, string>();
    const cidr6 = new Map<string, string>();
    const nodes = new Map<string, NodeRow>();

    before(async () => {
      await cliOk([
        'lab',
        'up',
        '--name',
        LAB,
        '--nodes',
        '2',
        '--routing-mode',
        mode,
        '-f',
        manifest(MANIFEST),
      ]);
      const list = JSON.parse(await cliOk(['lab', 'get', 'pods', '-o', 'json'], { lab: LAB })) as {
        items: { metadata: { name: string }; status: { podIP: string; podIPs: { ip: string }[] } }[];
      };
      for (const p of list.items) {
        ip4.set(p.metadata.name, p.status.podIP);
        const a6 = p.status.podIPs.find((x) => x.ip.includes(':'));
        if (a6) ip6.set(p.metadata.name, a6.ip);
      }
      const nodeList = JSON.parse(await cliOk(['lab', 'get', 'nodes', '-o', 'json'], { lab: LAB })) as {
        items: ({ metadata: { name: string } } & NodeRow)[];
      };
      for (const n of nodeList.items) nodes.set(n.metadata.name, n);
      for (const node of ['node1', 'node2']) {
        const status = JSON.parse(await cliOk(['--node', node, 'status', '-o', 'json'], { lab: LAB })) as {
          ipam: { podCidrV6?: string };
        };
        if (status.ipam.podCidrV6) cidr6.set(node, status.ipam.podCidrV6);
      }
      // both nodes map every pod's IPv6 address before traffic starts
      for (const node of ['node1', 'node2'])
        await waitFor(`${node} to map the pods' IPv6 addresses`, async () => {
          const entries = JSON.parse(
            await cliOk(['--node', node, 'bpf', 'ipcache', 'list', '-o', 'json'], { lab: LAB }),
          ) as { prefix: string }[];
          return [...ip6.values()].every((a) => entries.some((e) => e.prefix === `${a}/128`));
        });
    });
    after(async () => {
      await cli(['lab', 'down', '--name', LAB]);
    });

    it('every node has an IPv6 pod CIDR and every pod an address of each family from its node', () => {
      assert.equal(cidr6.size, 2, 'both agents run IPv6 IPAM');
      assert.notEqual(cidr6.get('node1'), cidr6.get('node2'));
      for (const [i, name] of ['node1', 'node2'].entries()) {
        const n = nodes.get(name);
        assert.ok(n, `${name} listed`);
        assert.equal(n.spec.podCIDRs[1], cidr6.get(name), `${name}: lab get nodes shows its IPv6 pod CIDR`);
        assert.deepEqual(
          n.status.addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address),
          [`192.168.211.${i + 1}`, `fd00:192:168:211::${i + 1}`],
          `${name}: both underlay addresses`,
        );
      }
      for (const [c, n] of [
        ['srv', 'node1'],
        ['near', 'node1'],
        ['far', 'node2'],
        ['other', 'node2'],
      ] as const) {
        assert.match(ip4.get(c) ?? '', /^10\.200\.\d+\.\d+$/, `${c} has IPv4`);
        const a = ip6.get(c);
        assert.ok(a?.startsWith('fd00:10:200:'), `${c} has IPv6 from the cluster pool (${a})`);
        const [prefix] = cidr6.get(n)!.split('/');
        // the node CIDRs are /120s: the address shares all but its last group's low byte
        assert.equal(
          a!.slice(0, a!.lastIndexOf(':')),
          prefix!.slice(0, prefix!.lastIndexOf(':')),
          `${c} on ${n}`,
        );
      }
    });

    it('TCP, UDP and ping over IPv6 on one node', async () => {
      const srv = ip6.get('srv')!;
      assert.equal(await probe(LAB, 'near', `${v6(srv)}:80`), true, 'TCP');
      assert.equal(await probe(LAB, 'near', `${v6(srv)}:9000`, 'udp'), true, 'UDP');
      assert.equal(await ping(LAB, 'near', srv), true, 'ping');
    });

    it(`TCP, UDP and ping over IPv6 across nodes (${mode})`, async () => {
      const srv = ip6.get('srv')!;
      assert.equal(await probe(LAB, 'far', `${v6(srv)}:80`), true, 'node2 → node1 TCP');
      assert.equal(await probe(LAB, 'far', `${v6(srv)}:9000`, 'udp'), true, 'node2 → node1 UDP');
      assert.equal(await ping(LAB, 'far', srv), true, 'node2 → node1 ping');
      assert.equal(await ping(LAB, 'srv', ip6.get('other')!), true, 'node1 → node2 ping');
      const { stdout } = await run(['ip', '-n', `cts-${LAB}-node2`, '-6', '-j', 'route', 'show']);
      const routes = JSON.parse(stdout) as { dst: string; dev?: string; gateway?: string }[];
      const r = routes.find((x) => x.dst === cidr6.get('node1'));
      if (mode === 'vxlan')
        assert.equal(r?.dev, 'cilium_vxlan', "node1's IPv6 pod CIDR goes into the overlay");
      else
        assert.equal(
          r?.gateway,
          'fd00:192:168:211::1',
          "node1's IPv6 pod CIDR via its IPv6 underlay address",
        );
    });

    it('fromEndpoints by label holds over IPv6, on one node and across nodes', async () => {
      const srv = ip6.get('srv')!;
      await cliOk(['lab', 'apply', '-f', manifest(ONLY_A)], { lab: LAB });
      await waitFor('policy on node1', async () => (await probe(LAB, 'other', `${v6(srv)}:80`)) === false);
      assert.equal(await probe(LAB, 'near', `${v6(srv)}:80`), true, 'app=a on node1 allowed');
      assert.equal(await probe(LAB, 'far', `${v6(srv)}:80`), true, 'app=a on node2 allowed');
      assert.equal(await probe(LAB, 'far', `${v6(srv)}:9000`, 'udp'), true, 'UDP too');
      assert.equal(await probe(LAB, 'other', `${v6(srv)}:80`), false, 'app=b dropped over IPv6');
      assert.equal(await probe(LAB, 'other', `${ip4.get('srv')}:80`), false, 'and over IPv4');
      await cliOk(['lab', 'delete', '-f', manifest(ONLY_A)], { lab: LAB });
    });

    it('toCIDR with an IPv6 prefix admits that world address and no other', async () => {
      assert.equal(await ping(LAB, 'other', WORLD_V6), true, 'the world answers over IPv6 before any policy');
      assert.equal(await ping(LAB, 'other', WORLD2_V6), true, 'its second address too');
      await cliOk(['lab', 'apply', '-f', manifest(TO_WORLD)], { lab: LAB });
      await waitFor('egress policy on node2', async () => (await ping(LAB, 'other', WORLD2_V6)) === false);
      assert.equal(await ping(LAB, 'other', WORLD_V6), true, `${WORLD_V6}/128 allowed`);
      assert.equal(await ping(LAB, 'other', ip6.get('srv')!), false, 'a pod is not in the CIDR');
      assert.equal(await ping(LAB, 'far', WORLD2_V6), true, 'pods the policy does not select are untouched');
      await cliOk(['lab', 'delete', '-f', manifest(TO_WORLD)], { lab: LAB });
    });

    it('Hubble shows the IPv6 flows, forwarded and dropped', async () => {
      const out = await cliOk(['hubble', 'observe', '--last', '2000', '-o', 'json'], { lab: LAB });
      const flows = out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Flow)
        .filter((f) => f.IP?.destination === ip6.get('srv'));
      const fwd = flows.find((f) => f.verdict === 'FORWARDED' && f.IP?.source === ip6.get('far'));
      assert.ok(fwd, 'far → srv over IPv6 forwarded');
      assert.equal(fwd.IP?.ipVersion, 'IPv6');
      const drop = flows.find((f) => f.verdict === 'DROPPED' && f.IP?.source === ip6.get('other'));
      assert.ok(drop, 'other → srv over IPv6 dropped');
      assert.equal(drop.destination?.pod_name, 'srv');
    });
  });
}

for (const mode of ROUTING_MODES) dualStack(mode);

describe('privileged: lab up --ipv6=false', () => {
  const lab = labName('ds4');
  after(async () => {
    await cli(['lab', 'down', '--name', lab]);
  });

  it('keeps the lab IPv4 only', async () => {
    await cliOk([
      'lab',
      'up',
      '--name',
      lab,
      '--ipv6=false',
      '-f',
      manifest(pod('p', 'node1', 'app: p', sleep)),
    ]);
    const list = JSON.parse(await cliOk(['lab', 'get', 'pods', '-o', 'json'], { lab })) as {
      items: { status: { podIPs: { ip: string }[] } }[];
    };
    assert.deepEqual(
      list.items[0]?.status.podIPs.map((x) => x.ip.includes(':')),
      [false],
    );
    const status = JSON.parse(await cliOk(['--node', 'node1', 'status', '-o', 'json'], { lab })) as {
      ipam: { podCidrV6?: string };
    };
    assert.equal(status.ipam.podCidrV6, undefined);
    await cliOk(['lab', 'up', '--name', lab]);
    const resumed = JSON.parse(await cliOk(['lab', 'get', 'nodes', '-o', 'json'], { lab })) as {
      items: NodeRow[];
    };
    assert.deepEqual(
      resumed.items[0]?.spec.podCIDRs,
      ['10.200.0.0/24'],
      'lab up without --ipv6 resumes it as it is',
    );
    const again = await cli(['lab', 'up', '--name', lab, '--ipv6']);
    assert.notEqual(again.code, 0, 'an IPv4 lab is not turned dual-stack in place');
    assert.match(again.stderr, /is IPv4 only/);
  });
});
