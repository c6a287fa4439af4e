/**
 * A three-node lab on the VXLAN overlay: pods on different nodes talk through the datapath's
 * encapsulation (the VNI carries the sender's identity), with no route to another node's pod CIDR
 * over the underlay. TCP, UDP and ping in both directions, a large TCP transfer (the pods' MTU
 * leaves room for the 50-byte header), the node's own traffic to a remote pod, an ICMP port
 * unreachable coming back across nodes, and policy by label and by namespace enforced on the
 * receiving node against the identity from the tunnel key, as Hubble shows it (a node's own
 * traffic arrives as remote-node, where the receiver's ipcache would say world).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { run } from '../../../src/datapath/linux/index.js';
import { loadLab } from '../../../src/lab/state.js';
import { cli, cliOk, labName, manifest, ping, pinnedPod, probe } from '../../helpers/cli.js';
import { podPackets, tcpPingPong, tcpTransfer } from '../../helpers/transfer.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('ovx');

const serve = '["cilium-ts", "workload", "serve", "--tcp", "80", "--udp", "9000"]';
const sleep = '["sleep", "infinity"]';
const pod = pinnedPod;

const MANIFEST = [
  'apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n',
  pod('srv', 'node1', 'app: srv', serve),
  pod('srv3', 'node3', 'app: srv3', serve),
  pod('ca', 'node2', 'app: a', sleep),
  pod('cb', 'node2', 'app: b', sleep),
  pod('cns', 'node3', 'app: a', sleep, 'other'),
].join('---\n');

const ONLY_A = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-a}
spec:
  endpointSelector: {matchLabels: {app: srv}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: a}}]
`;

const FROM_OTHER = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: from-other}
spec:
  endpointSelector: {matchLabels: {app: srv}}
  ingress:
  - fromEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": other}}]
`;

interface NodeRow {
  name: string;
  underlayIp: string;
  podCidrV4: string;
}

interface Flow {
  node_name?: string;
  IP?: { source: string };
  verdict: string;
  drop_reason_desc?: string;
  source?: { identity?: number; pod_name?: string; namespace?: string };
  destination?: { pod_name?: string };
  trace_observation_point?: string;
}

const TRANSFER = 32 * 1024 * 1024;
const netns = (node: string) => `cts-${LAB}-${node}`;

/** Packets the node's VXLAN device received (decapsulated) so far. */
async function vxlanRx(node: string): Promise<number> {
  const { stdout } = await run(['ip', '-n', netns(node), '-s', '-j', 'link', 'show', 'cilium_vxlan']);
  const [l] = JSON.parse(stdout) as { stats64: { rx: { packets: number } } }[];
  return l!.stats64.rx.packets;
}

describe('privileged: three nodes on the VXLAN overlay', () => {
  const ip = new Map<string, string>();
  const identity = new Map<string, number>();
  let nodes: NodeRow[] = [];

  before(async () => {
    await cliOk([
      'lab',
      'up',
      '--name',
      LAB,
      '--nodes',
      '3',
      '--routing-mode',
      'vxlan',
      '-f',
      manifest(MANIFEST),
    ]);
    const list = JSON.parse(await cliOk(['lab', 'get', 'pods', '-A', '-o', 'json'], { lab: LAB })) as {
      items: { metadata: { name: string }; status: { podIP: string } }[];
    };
    for (const p of list.items) ip.set(p.metadata.name, p.status.podIP);
    const ceps = JSON.parse(await cliOk(['lab', 'get', 'cep', '-A', '-o', 'json'], { lab: LAB })) as {
      items: { metadata: { name: string }; status: { identity: { id: number } } }[];
    };
    for (const c of ceps.items) identity.set(c.metadata.name, c.status.identity.id);
    const raw = JSON.parse(await cliOk(['lab', 'get', 'nodes', '-o', 'json'], { lab: LAB })) as {
      items: {
        metadata: { name: string };
        spec: { podCIDR: string };
        status: { addresses: { type: string; address: string }[] };
      }[];
    };
    nodes = raw.items.map((n) => ({
      name: n.metadata.name,
      underlayIp: n.status.addresses.find((a) => a.type === 'InternalIP')!.address,
      podCidrV4: n.spec.podCIDR,
    }));
    // every node knows every remote pod (with its identity) before traffic starts
    for (const node of ['node1', 'node2', 'node3'])
      await waitFor(`${node} to map the remote pods`, async () => {
        const entries = JSON.parse(
          await cliOk(['--node', node, 'bpf', 'ipcache', 'list', '-o', 'json'], { lab: LAB }),
        ) as { prefix: string; identity: number }[];
        return [...ip.values()].every((a) => entries.some((e) => e.prefix === `${a}/32`));
      });
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('every agent runs the overlay; nodes route other pod CIDRs into it, not over the underlay', async () => {
    assert.deepEqual(
      nodes.map((n) => n.name),
      ['node1', 'node2', 'node3'],
    );
    assert.ok(nodes.every((n) => /^192\.168\.211\.\d+$/.test(n.underlayIp) && n.podCidrV4.endsWith('/24')));
    const status = await cliOk(['--node', 'node1', 'status'], { lab: LAB });
    assert.match(
      status,
      /Routing:\s+Network: Tunnel \[vxlan\] cilium_vxlan \(port 8472, MTU 1450\), 2 remote node/,
    );
    const { stdout } = await run(['ip', '-n', netns('node1'), '-j', 'route', 'show']);
    const routes = JSON.parse(stdout) as { dst: string; dev?: string; gateway?: string }[];
    for (const n of nodes.filter((x) => x.name !== 'node1')) {
      const r = routes.find((x) => x.dst === n.podCidrV4);
      assert.equal(r?.dev, 'cilium_vxlan', `${n.podCidrV4} goes into the overlay`);
      assert.equal(r?.gateway, undefined, 'no route via the other node');
    }
  });

  it("a remote pod's ipcache entry names its node's underlay address as the tunnel endpoint", async () => {
    const entries = JSON.parse(
      await cliOk(['--node', 'node1', 'bpf', 'ipcache', 'list', '-o', 'json'], { lab: LAB }),
    ) as { prefix: string; identity: number; tunnelEndpoint?: string }[];
    const node2 = nodes.find((n) => n.name === 'node2')!;
    const ca = entries.find((e) => e.prefix === `${ip.get('ca')}/32`);
    assert.equal(ca?.identity, identity.get('ca'));
    assert.equal(ca?.tunnelEndpoint, node2.underlayIp);
    const cidr = entries.find((e) => e.prefix === node2.podCidrV4);
    assert.deepEqual(
      [cidr?.identity, cidr?.tunnelEndpoint],
      [2, node2.underlayIp],
      'pod CIDR: world via node2',
    );
    const local = entries.find((e) => e.prefix === `${ip.get('srv')}/32`);
    assert.ok(!local?.tunnelEndpoint, 'a local pod has no tunnel endpoint');
  });

  it('TCP, UDP and ping cross nodes in both directions, through the VXLAN device', async () => {
    const rx1 = await vxlanRx('node1');
    assert.equal(await probe(LAB, 'ca', `${ip.get('srv')}:80`), true, 'node2 → node1 TCP');
    assert.equal(await probe(LAB, 'ca', `${ip.get('srv')}:9000`, 'udp'), true, 'node2 → node1 UDP');
    assert.equal(await ping(LAB, 'ca', ip.get('srv')!), true, 'node2 → node1 ping');
    assert.ok((await vxlanRx('node1')) > rx1, 'node1 received them decapsulated');
    assert.equal(await probe(LAB, 'srv', `${ip.get('srv3')}:80`), true, 'node1 → node3 TCP');
    assert.equal(await probe(LAB, 'srv', `${ip.get('srv3')}:9000`, 'udp'), true, 'node1 → node3 UDP');
    assert.equal(await ping(LAB, 'srv', ip.get('srv3')!), true, 'node1 → node3 ping');
    assert.equal(await ping(LAB, 'cns', ip.get('ca')!, 'other'), true, 'node3 → node2 ping');
  });

  it("a node's own traffic reaches a remote pod, and a pod reaches a remote node", async () => {
    const r = await cli(['lab', 'exec', 'node/node1', '--', 'ping', '-c', '1', '-W', '1', ip.get('srv3')!], {
      lab: LAB,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const node2 = nodes.find((n) => n.name === 'node2')!;
    assert.equal(await ping(LAB, 'srv', node2.underlayIp), true);
  });

  it('a 32 MB TCP transfer crosses the overlay (MTU accounts for the VXLAN header)', async () => {
    const link = await cliOk(['lab', 'exec', 'ca', '--', 'ip', '-j', 'link', 'show', 'eth0'], { lab: LAB });
    assert.equal((JSON.parse(link) as { mtu: number }[])[0]?.mtu, 1450);
    const nsOf = (name: string) => Object.values(loadLab(LAB)!.pods).find((p) => p.name === name)!.netns;
    const before = await podPackets(netns('node3'), nsOf('srv3'));
    // a sink on node3 counts what arrives until the sender on node2 closes
    assert.equal(await tcpTransfer(nsOf('ca'), nsOf('srv3'), ip.get('srv3')!, TRANSFER), TRANSFER);
    // The connection's packets after its handshake went from the overlay device straight into the
    // pod (its to-container program would only have counted them): hardly any crossed the
    // host-side veth, however GRO merged them.
    const now = await podPackets(netns('node3'), nsOf('srv3'));
    const [rx, tx] = [now.podRx - before.podRx, now.hostTx - before.hostTx];
    assert.ok(rx > 0, 'the pod received the transfer');
    assert.ok(tx * 4 < rx, `the host-side veth sent ${tx} of the pod's ${rx} packets`);
  });

  it("an established connection's small packets are decapsulated on the node's eth0, not by the VXLAN device", async () => {
    const nsOf = (name: string) => Object.values(loadLab(LAB)!.pods).find((p) => p.name === name)!.netns;
    const ROUNDS = 400;
    const [rx1, pod1] = [await vxlanRx('node1'), await podPackets(netns('node1'), nsOf('srv'))];
    const [rx2, pod2] = [await vxlanRx('node2'), await podPackets(netns('node2'), nsOf('ca'))];
    await tcpPingPong(nsOf('ca'), nsOf('srv'), ip.get('srv')!, ROUNDS);
    const now1 = await podPackets(netns('node1'), nsOf('srv'));
    const now2 = await podPackets(netns('node2'), nsOf('ca'));
    assert.ok(now1.podRx - pod1.podRx >= ROUNDS, 'every request reached the server pod');
    assert.ok(now2.podRx - pod2.podRx >= ROUNDS, 'every answer reached the client pod');
    // only the packets the pods' to-container programs decide (the handshake, the close) took
    // the VXLAN device, on either node
    const [dev1, dev2] = [(await vxlanRx('node1')) - rx1, (await vxlanRx('node2')) - rx2];
    assert.ok(dev1 * 4 < ROUNDS, `node1's VXLAN device received ${dev1} of ${ROUNDS} requests`);
    assert.ok(dev2 * 4 < ROUNDS, `node2's VXLAN device received ${dev2} of ${ROUNDS} answers`);
  });

  it('an ICMP port unreachable from a remote pod comes back to the sender', async () => {
    const r = await cli(
      [
        'lab',
        'exec',
        'ca',
        '--',
        'cilium-ts',
        'workload',
        'connect',
        `${ip.get('srv')}:9999`,
        '--protocol',
        'udp',
      ],
      { lab: LAB },
    );
    assert.equal(r.code, 1);
    assert.match(r.stdout, /connection refused/, 'the error was delivered, not timed out');
  });

  it('fromEndpoints by label holds across nodes with the identity from the VNI', async () => {
    await cliOk(['lab', 'apply', '-f', manifest(ONLY_A)], { lab: LAB });
    await waitFor('policy on node1', async () => (await probe(LAB, 'cb', `${ip.get('srv')}:80`)) === false);
    assert.equal(await probe(LAB, 'ca', `${ip.get('srv')}:80`), true, 'app=a from node2 allowed');
    assert.equal(await probe(LAB, 'ca', `${ip.get('srv')}:9000`, 'udp'), true, 'UDP too');
    assert.equal(await probe(LAB, 'cb', `${ip.get('srv')}:80`), false, 'app=b from node2 dropped');
    assert.equal(
      await probe(LAB, 'cns', `${ip.get('srv')}:80`, 'tcp', 'other'),
      false,
      'app=a of another namespace dropped',
    );
    // replies of the allowed connection pass back through node2's overlay
    assert.equal(await probe(LAB, 'ca', `${ip.get('srv')}:80`), true);
  });

  it('a namespace selector admits the other namespace across nodes', async () => {
    await cliOk(['lab', 'apply', '-f', manifest(FROM_OTHER)], { lab: LAB });
    await waitFor(
      'namespace rule on node1',
      async () => (await probe(LAB, 'cns', `${ip.get('srv')}:80`, 'tcp', 'other')) === true,
    );
    assert.equal(await probe(LAB, 'cb', `${ip.get('srv')}:80`), false, 'app=b still dropped');
  });

  it("Hubble on node1 shows the remote sender's identity on forwarded and dropped flows", async () => {
    const out = await cliOk(['hubble', 'observe', '--last', '1000', '-o', 'json'], { lab: LAB });
    const flows = out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Flow)
      .filter((f) => f.node_name === 'node1' && f.destination?.pod_name === 'srv');
    const fwd = flows.find((f) => f.verdict === 'FORWARDED' && f.source?.pod_name === 'ca');
    assert.equal(fwd?.source?.identity, identity.get('ca'), 'ca → srv forwarded with its identity');
    assert.equal(fwd?.trace_observation_point, 'TO_ENDPOINT');
    const drop = flows.find((f) => f.verdict === 'DROPPED' && f.source?.pod_name === 'cb');
    assert.equal(drop?.source?.identity, identity.get('cb'), 'cb → srv dropped with its identity');
    assert.match(drop?.drop_reason_desc ?? '', /POLICY_DENIED|Policy denied/);
    assert.equal(drop?.node_name, 'node1');
  });

  it("the identity is the VNI's, not the ipcache's: node2's own traffic arrives as remote-node", async () => {
    // node2's router address is in node2's pod CIDR, which node1's ipcache holds as world (2)
    const node2 = nodes.find((n) => n.name === 'node2')!;
    const router2 = node2.podCidrV4.replace(/\.0\/24$/, '.1');
    const entries = JSON.parse(
      await cliOk(['--node', 'node1', 'bpf', 'ipcache', 'list', '-o', 'json'], { lab: LAB }),
    ) as { prefix: string; identity: number }[];
    assert.ok(!entries.some((e) => e.prefix === `${router2}/32`));
    assert.equal(entries.find((e) => e.prefix === node2.podCidrV4)?.identity, 2);
    // only app=a (and the namespace other) may reach srv: the node's ping is dropped on node1
    const r = await cli(['lab', 'exec', 'node/node2', '--', 'ping', '-c', '1', '-W', '1', ip.get('srv')!], {
      lab: LAB,
    });
    assert.notEqual(r.code, 0);
    const flows = await waitFor('the drop on node1', async () => {
      const out = await cliOk(['hubble', 'observe', '--last', '1000', '-o', 'json'], { lab: LAB });
      const found = out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Flow)
        .filter((f) => f.node_name === 'node1' && f.verdict === 'DROPPED' && f.IP?.source === router2);
      return found.length ? found : undefined;
    });
    assert.equal(flows[0]!.source?.identity, 6, 'remote-node, from the tunnel key');
  });
});
