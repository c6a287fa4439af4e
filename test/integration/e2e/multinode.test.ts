/**
 * A two-node lab (etcd, native routing): identity-based policy holds across nodes. A pod on node2
 * is its own identity on node1 (learnt through the kvstore), so `fromEndpoints` admits role=b from
 * the other node and drops role=c; the drop is seen through Hubble Relay with the node's name; a
 * Service on node1 reached from node2 goes to its backend; a deleted pod stops mapping.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadLab } from '../../../src/lab/state.js';
import { cli, cliOk, labName, manifest, probe } from '../../helpers/cli.js';
import { forwardedDatagrams, podPackets, tcpTransfer } from '../../helpers/transfer.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('mn');

const PODS = `apiVersion: v1
kind: Pod
metadata: {name: a, labels: {role: a}}
spec:
  nodeName: node1
  containers: [{name: c, command: ["cilium-ts", "workload", "serve", "--tcp", "80"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {role: b}}
spec:
  nodeName: node2
  containers: [{name: c, command: ["sleep", "infinity"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: c, labels: {role: c}}
spec:
  nodeName: node2
  containers: [{name: c, command: ["sleep", "infinity"]}]
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  clusterIP: 10.96.2.10
  selector: {role: a}
  ports: [{port: 80}]
`;

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-b}
spec:
  endpointSelector: {matchLabels: {role: a}}
  ingress:
  - fromEndpoints: [{matchLabels: {role: b}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`;

interface PodItem {
  metadata: { name: string };
  status: { podIP: string };
}

describe('privileged: two nodes (etcd, native routing)', () => {
  let ipA = '';

  before(async () => {
    await cliOk([
      'lab',
      'up',
      '--name',
      LAB,
      '--nodes',
      '2',
      '--routing-mode',
      'native',
      '-f',
      manifest(PODS),
    ]);
    const pods = JSON.parse(await cliOk(['lab', 'get', 'pods', '-o', 'json'], { lab: LAB })) as {
      items: PodItem[];
    };
    ipA = pods.items.find((p) => p.metadata.name === 'a')!.status.podIP;
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('a remote pod is its own identity in the ipcache, the same on both nodes', async () => {
    const ids = async (node: string) =>
      JSON.parse(await cliOk(['--node', node, 'identity', 'list', '-o', 'json'], { lab: LAB })) as {
        id: number;
        labels: string[];
      }[];
    const idOf = (list: { id: number; labels: string[] }[], role: string) =>
      list.find((i) => i.labels.includes(`k8s:role=${role}`))?.id;
    const [n1, n2] = [await ids('node1'), await ids('node2')];
    assert.ok(idOf(n1, 'a') && idOf(n1, 'a') === idOf(n2, 'a'), 'role=a has one identity on both nodes');
    const ipcache = JSON.parse(
      await cliOk(['--node', 'node2', 'bpf', 'ipcache', 'list', '-o', 'json'], { lab: LAB }),
    ) as {
      prefix: string;
      identity: number;
    }[];
    await waitFor('node2 to map pod a', async () => {
      const l = JSON.parse(
        await cliOk(['--node', 'node2', 'bpf', 'ipcache', 'list', '-o', 'json'], { lab: LAB }),
      ) as typeof ipcache;
      return l.find((e) => e.prefix === `${ipA}/32`)?.identity === idOf(n1, 'a');
    });
  });

  it("native routing: status says so, and node1 routes node2's pod CIDR via node2", async () => {
    const status = await cliOk(['--node', 'node1', 'status'], { lab: LAB });
    assert.match(status, /^Routing:\s+Network: Native$/m);
    assert.match(status, /^BIG TCP:\s+IPv4 \(GSO\/GRO 196608 bytes\)$/m);
    const nodes = JSON.parse(await cliOk(['lab', 'get', 'nodes', '-o', 'json'], { lab: LAB })) as {
      items: {
        metadata: { name: string };
        spec: { podCIDR: string };
        status: { addresses: { address: string }[] };
      }[];
    };
    const node2 = nodes.items.find((n) => n.metadata.name === 'node2')!;
    const r = await cliOk(['lab', 'exec', 'node/node1', '--', 'ip', 'route', 'show', node2.spec.podCIDR], {
      lab: LAB,
    });
    assert.match(r, new RegExp(`via ${node2.status.addresses[0]!.address.replaceAll('.', '\\.')} dev eth0`));
  });

  it("native routing: a transfer's packets (BIG TCP's, over 64 KiB) pass neither node's forwarding; TTL 1 still gets its ICMP error", async () => {
    const s = loadLab(LAB)!;
    const pod = (name: string) => Object.values(s.pods).find((p) => p.name === name)!.netns;
    const node = (name: string) => s.nodes.find((n) => n.name === name)!.netns;
    const forwarded = async () => [
      await forwardedDatagrams(node('node1')),
      await forwardedDatagrams(node('node2')),
    ];
    // a's replies go the direct way once node1 knows b as a pod (its identity, through the kvstore)
    const ipB = Object.values(s.pods).find((p) => p.name === 'b')!.ipv4!;
    await waitFor('node1 to map pod b', async () => {
      const l = JSON.parse(
        await cliOk(['--node', 'node1', 'bpf', 'ipcache', 'list', '-o', 'json'], { lab: LAB }),
      ) as { prefix: string; identity: number }[];
      return (l.find((e) => e.prefix === `${ipB}/32`)?.identity ?? 0) >= 256;
    });
    const [f0, p0] = [await forwarded(), await podPackets(node('node1'), pod('a'))];
    const bytes = 16 * 1024 * 1024;
    assert.equal(await tcpTransfer(pod('b'), pod('a'), ipA, bytes), bytes);
    const [f1, p1] = [await forwarded(), await podPackets(node('node1'), pod('a'))];
    // node2's bpf_lxc sent them to the underlay by its FIB lookup, node1's bpf_host into the pod
    const rx = p1.podRx - p0.podRx;
    assert.ok(rx > 0, 'pod a received the transfer');
    // IPv4 BIG TCP (the lab's native routing): packets of more than 64 KiB crossed both nodes
    const perPacket = (p1.podRxBytes - p0.podRxBytes) / rx;
    assert.ok(perPacket > 65536, `pod a received ${perPacket.toFixed(0)} bytes per packet`);
    assert.ok((p1.hostTx - p0.hostTx) * 4 < rx, `a's host-side veth sent ${p1.hostTx - p0.hostTx} of ${rx}`);
    assert.ok((f1[0]! - f0[0]!) * 4 < rx, `node1 forwarded ${f1[0]! - f0[0]!} datagrams for ${rx}`);
    assert.ok((f1[1]! - f0[1]!) * 4 < rx, `node2 forwarded ${f1[1]! - f0[1]!} datagrams for ${rx}`);
    // a packet whose TTL ends at the sender's node goes to its stack, which answers it
    const r = await cli(['lab', 'exec', 'b', '--', 'ping', '-c', '1', '-t', '1', '-W', '3', ipA], {
      lab: LAB,
    });
    assert.match(r.stdout, /Time to live exceeded/, r.stdout + r.stderr);
  });

  it('node list shows both nodes, each with its pod CIDR', async () => {
    const nodes = JSON.parse(
      await cliOk(['--node', 'node1', 'node', 'list', '-o', 'json'], { lab: LAB }),
    ) as {
      name: string;
      local: boolean;
      ipv4PodCidr?: string;
      ipv6PodCidr?: string;
    }[];
    assert.deepEqual(nodes.map((n) => n.name).sort(), ['node1', 'node2']);
    assert.deepEqual(
      nodes.filter((n) => n.local).map((n) => n.name),
      ['node1'],
    );
    assert.ok(nodes.every((n) => n.ipv4PodCidr));
    // the table has upstream's columns, IPv6 ones too in a dual-stack lab
    const table = (await cliOk(['--node', 'node1', 'node', 'list'], { lab: LAB })).split('\n');
    assert.match(table[0]!, /^Name\s+IPv4 Address\s+Endpoint CIDR\s+IPv6 Address\s+Endpoint CIDR\s+Local$/);
    const row1 = table.find((l) => l.startsWith('node1 '))!.split(/\s+/);
    const n1 = nodes.find((n) => n.name === 'node1')!;
    assert.deepEqual(row1.slice(2), [n1.ipv4PodCidr, row1[3], n1.ipv6PodCidr, 'yes']);
    assert.match(row1[3]!, /:/, 'an IPv6 node address');
  });

  it('fromEndpoints holds across nodes: role=b from node2 reaches a on node1, role=c is dropped', async () => {
    assert.equal(await probe(LAB, 'c', `${ipA}:80`), true, 'default-allow before the policy');
    await cliOk(['lab', 'apply', '-f', manifest(POLICY)], { lab: LAB });
    await waitFor('policy on node1', async () => (await probe(LAB, 'c', `${ipA}:80`)) === false, 10_000, 200);
    assert.equal(await probe(LAB, 'b', `${ipA}:80`), true, 'role=b allowed from the other node');
    assert.equal(await probe(LAB, 'c', `${ipA}:80`), false, 'role=c dropped');
  });

  it('the drop is seen through Hubble Relay, with the node that dropped it', async () => {
    const out = await cliOk(['hubble', 'observe', '--last', '50', '--verdict', 'DROPPED', '-o', 'json'], {
      lab: LAB,
    });
    const drops = out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(
        (l) =>
          JSON.parse(l) as {
            node_name?: string;
            source?: { pod_name?: string };
            destination?: { pod_name?: string };
          },
      )
      .filter((f) => f.source?.pod_name === 'c' && f.destination?.pod_name === 'a');
    assert.ok(drops.length > 0, 'c → a drops through the relay');
    assert.equal(drops[0]!.node_name, 'node1');
  });

  it('a Service on node1 is reached from node2 through socket-LB', async () => {
    assert.equal(await probe(LAB, 'b', '10.96.2.10:80'), true);
    assert.equal(
      await probe(LAB, 'c', '10.96.2.10:80'),
      false,
      'policy applies to the backend behind the service',
    );
  });
});
