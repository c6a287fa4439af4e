/**
 * Where a lab's processes run and what they resolve: every process of a node (pod containers,
 * `lab exec` into a pod or onto the node, the agent) is in the node's cgroup v2; a pod sees its own
 * resolv.conf over /etc/resolv.conf (the machine's stays as it is); the cluster DNS pod answers
 * service, headless and SRV names from the records the lab keeps current; `lab down` removes the
 * cgroups.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRoot } from '../../../src/common/paths.js';
import { cgroup2Mount } from '../../../src/datapath/linux/index.js';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('dns');
const CGROUP = join(cgroup2Mount()!, 'cilium-ts', LAB, 'node1');
const seen = (f: string) => join(runRoot, LAB, f); // removed by `lab down`

const MANIFESTS = `apiVersion: v1
kind: Namespace
metadata: {name: empire}
---
apiVersion: v1
kind: Pod
metadata: {name: deathstar, namespace: empire, labels: {org: empire, class: deathstar}}
spec:
  containers:
  - name: c
    command: ["sh", "-c", "cp /etc/resolv.conf ${seen('deathstar.resolv')}; exec sleep infinity"]
    ports: [{name: http, containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: deathstar, namespace: empire}
spec:
  selector: {org: empire, class: deathstar}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec:
  hostname: db-0
  subdomain: db
  containers: [{name: c, command: ["sleep", "infinity"]}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
---
apiVersion: v1
kind: Pod
metadata: {name: tiefighter}
spec:
  containers: [{name: c, command: ["sleep", "infinity"]}]
`;

interface PodJson {
  metadata: { name: string; namespace: string };
  status: { podIP: string };
}
interface LabJson {
  nodes: { cgroup?: string; agentPid: number; netns: string }[];
  pods: Record<string, { containers: { pid: number }[] }>;
}

const labState = () => JSON.parse(readFileSync(join(runRoot, LAB, 'lab.json'), 'utf8')) as LabJson;
const exec = (target: string, ...argv: string[]) =>
  cliOk(['lab', 'exec', target, '--', ...argv], { lab: LAB });
const cgroupOf = (pid: number | string) =>
  readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));

/** Runs Node's resolver inside a pod against a DNS server; prints JSON {answer} or {error: code}. */
async function lookup(server: string, kind: 'resolve4' | 'resolveSrv', name: string): Promise<unknown> {
  const script = `const r = new (require('node:dns').promises.Resolver)({ timeout: 2000, tries: 1 });
r.setServers([${JSON.stringify(server)}]);
r.${kind}(${JSON.stringify(name)}).then((a) => console.log(JSON.stringify({ answer: a })), (e) => console.log(JSON.stringify({ error: e.code })));`;
  return JSON.parse(await exec('tiefighter', process.execPath, '-e', script));
}

describe('privileged: node cgroups, pod resolv.conf and cluster DNS in the lab', () => {
  const hostResolv = readFileSync('/etc/resolv.conf', 'utf8');
  let dnsPod = '';

  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '--dns', '-f', manifest(MANIFESTS)]);
    const pods = JSON.parse(await cliOk(['lab', 'get', 'pods', '-A', '-o', 'json'], { lab: LAB })) as {
      items: PodJson[];
    };
    dnsPod = pods.items.find((p) => p.metadata.name === 'cluster-dns')!.status.podIP;
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it("places pod containers, lab exec (pod and node) and the agent in the node's cgroup", async () => {
    const s = labState();
    assert.equal(s.nodes[0]!.cgroup, CGROUP);
    assert.ok(statSync(CGROUP).isDirectory());
    const want = `0::/cilium-ts/${LAB}/node1`;
    for (const [key, p] of Object.entries(s.pods))
      for (const c of p.containers) assert.equal(cgroupOf(c.pid), want, `${key} pid ${c.pid}`);
    assert.equal(cgroupOf(s.nodes[0]!.agentPid), want, 'the agent');
    assert.equal(
      (await exec('tiefighter', 'cat', '/proc/self/cgroup')).split('\n').find((l) => l.startsWith('0::')),
      want,
    );
    const onNode = await exec(
      'node/node1',
      'sh',
      '-c',
      'grep ^0:: /proc/self/cgroup; readlink /proc/self/ns/net',
    );
    const nodeNetns = `net:[${statSync(`/run/netns/${s.nodes[0]!.netns}`).ino}]`;
    assert.deepEqual(onNode.trim().split('\n'), [want, nodeNetns]);
    const procs = readFileSync(join(CGROUP, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    for (const p of Object.values(s.pods)) for (const c of p.containers) assert.ok(procs.includes(c.pid));
  });

  it('gives each pod its resolv.conf (search path of its namespace, the cluster DNS, ndots:5); the machine keeps its own', async () => {
    const resolv = await exec('tiefighter', 'cat', '/etc/resolv.conf');
    assert.equal(
      resolv,
      'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
    );
    const container = await waitFor('the container to copy its resolv.conf', () =>
      existsSync(seen('deathstar.resolv')) ? readFileSync(seen('deathstar.resolv'), 'utf8') : undefined,
    );
    assert.match(container, /^search empire\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m);
    assert.equal(readFileSync('/etc/resolv.conf', 'utf8'), hostResolv, "the machine's file is untouched");
    // The DNS server itself uses the node's resolver (dnsPolicy Default), as CoreDNS does.
    assert.equal(
      await cliOk(['lab', 'exec', '-n', 'kube-system', 'cluster-dns', '--', 'cat', '/etc/resolv.conf'], {
        lab: LAB,
      }),
      hostResolv,
    );
    const svc = await cliOk(['lab', 'get', 'svc', 'kube-dns', '-n', 'kube-system'], { lab: LAB });
    assert.match(svc, /^kube-dns\s+ClusterIP\s+10\.96\.0\.10\s+<none>\s+53\/UDP,53\/TCP\s/m);
  });

  it('answers service, headless and SRV names from a pod, and follows changes', async () => {
    const svcs = JSON.parse(await cliOk(['lab', 'get', 'svc', '-A', '-o', 'json'], { lab: LAB })) as {
      items: { metadata: { name: string }; spec: { clusterIP: string } }[];
    };
    const vip = svcs.items.find((s) => s.metadata.name === 'deathstar')!.spec.clusterIP;
    const pods = JSON.parse(await cliOk(['lab', 'get', 'pods', '-o', 'json'], { lab: LAB })) as {
      items: PodJson[];
    };
    const db = pods.items.find((p) => p.metadata.name === 'db-0')!.status.podIP;
    assert.deepEqual(await lookup(dnsPod, 'resolve4', 'deathstar.empire.svc.cluster.local'), {
      answer: [vip],
    });
    assert.deepEqual(await lookup(dnsPod, 'resolve4', 'db.default.svc.cluster.local'), { answer: [db] });
    assert.deepEqual(await lookup(dnsPod, 'resolve4', 'db-0.db.default.svc.cluster.local'), { answer: [db] });
    assert.deepEqual(await lookup(dnsPod, 'resolveSrv', '_http._tcp.deathstar.empire.svc.cluster.local'), {
      answer: [{ name: 'deathstar.empire.svc.cluster.local', port: 80, priority: 0, weight: 100 }],
    });
    assert.deepEqual(await lookup(dnsPod, 'resolve4', 'xwing.empire.svc.cluster.local'), {
      error: 'ENOTFOUND',
    });
    await cliOk(
      [
        'lab',
        'delete',
        '-f',
        manifest('apiVersion: v1\nkind: Service\nmetadata: {name: deathstar, namespace: empire}\n'),
      ],
      { lab: LAB },
    );
    await waitFor(
      'the deleted service to leave DNS',
      async () =>
        JSON.stringify(await lookup(dnsPod, 'resolve4', 'deathstar.empire.svc.cluster.local')) ===
        JSON.stringify({ error: 'ENOTFOUND' }),
      5000,
    );
  });

  it('lab down removes the cgroups', async () => {
    await cliOk(['lab', 'down', '--name', LAB]);
    assert.equal(existsSync(join(cgroup2Mount()!, 'cilium-ts', LAB)), false);
  });
});
