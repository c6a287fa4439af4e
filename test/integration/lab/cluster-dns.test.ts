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

/** Upstream's Star Wars demo (http-sw-app.yaml) with commands in place of images, a headless
 * service, and a pod in another namespace. */
const MANIFESTS = `apiVersion: v1
kind: Service
metadata:
  name: deathstar
  labels: {app.kubernetes.io/name: deathstar}
spec:
  type: ClusterIP
  ports:
  - port: 80
  selector: {org: empire, class: deathstar}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: deathstar
  labels: {app.kubernetes.io/name: deathstar}
spec:
  replicas: 2
  selector:
    matchLabels: {org: empire, class: deathstar}
  template:
    metadata:
      labels: {org: empire, class: deathstar, app.kubernetes.io/name: deathstar}
    spec:
      containers:
      - name: deathstar
        command: ["cilium-ts", "workload", "serve", "--tcp", "80", "--http"]
---
apiVersion: v1
kind: Pod
metadata:
  name: tiefighter
  labels: {org: empire, class: tiefighter, app.kubernetes.io/name: tiefighter}
spec:
  containers:
  - name: spaceship
    command: ["sleep", "infinity"]
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec:
  hostname: db-0
  subdomain: db
  containers: [{name: c, command: ["sleep", "infinity"], ports: [{name: pg, containerPort: 5432}]}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432, targetPort: pg}]
---
apiVersion: v1
kind: Namespace
metadata: {name: rebels}
---
apiVersion: v1
kind: Pod
metadata: {name: scout, namespace: rebels}
spec:
  containers:
  - name: c
    command: ["sh", "-c", "cp /etc/resolv.conf ${seen('scout.resolv')}; exec sleep infinity"]
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
      existsSync(seen('scout.resolv')) ? readFileSync(seen('scout.resolv'), 'utf8') : undefined,
    );
    assert.match(container, /^search rebels\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m);
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

  it('resolves through the kube-dns VIP with the search path: getent and a request by the short name reach the deathstar', async () => {
    const svcs = JSON.parse(await cliOk(['lab', 'get', 'svc', '-o', 'json'], { lab: LAB })) as {
      items: { metadata: { name: string }; spec: { clusterIP: string } }[];
    };
    const vip = svcs.items.find((s) => s.metadata.name === 'deathstar')!.spec.clusterIP;
    // glibc asks 10.96.0.10 (socket-LB sends it to the DNS pod) for deathstar.default.svc.cluster.local.
    assert.deepEqual((await exec('tiefighter', 'getent', 'hosts', 'deathstar')).trim().split(/\s+/), [
      vip,
      'deathstar.default.svc.cluster.local',
    ]);
    const answer = await exec(
      'tiefighter',
      'cilium-ts',
      'workload',
      'connect',
      'deathstar:80',
      '--http',
      '--timeout',
      '2s',
    );
    assert.match(
      answer,
      /HTTP 200: hello from deathstar-\S+ port 80\/tcp/,
      'a pod of the deployment answers',
    );
  });

  it('answers service, headless and SRV names from a pod, and follows changes', async () => {
    const svcs = JSON.parse(await cliOk(['lab', 'get', 'svc', '-A', '-o', 'json'], { lab: LAB })) as {
      items: { metadata: { name: string }; spec: { clusterIP: string } }[];
    };
    const vip = svcs.items.find((s) => s.metadata.name === 'deathstar')!.spec.clusterIP;
    const pods = JSON.parse(await cliOk(['lab', 'get', 'pods', '-o', 'json'], { lab: LAB })) as {
      items: PodJson[];
    };
    assert.equal(
      pods.items.filter((p) => p.metadata.name.startsWith('deathstar-')).length,
      2,
      'the demo applies',
    );
    const db = pods.items.find((p) => p.metadata.name === 'db-0')!.status.podIP;
    assert.deepEqual(await lookup(dnsPod, 'resolve4', 'deathstar.default.svc.cluster.local'), {
      answer: [vip],
    });
    assert.deepEqual(await lookup(dnsPod, 'resolve4', 'db.default.svc.cluster.local'), { answer: [db] });
    assert.deepEqual(await lookup(dnsPod, 'resolve4', 'db-0.db.default.svc.cluster.local'), { answer: [db] });
    assert.deepEqual(await lookup(dnsPod, 'resolveSrv', '_pg._tcp.db.default.svc.cluster.local'), {
      answer: [{ name: 'db-0.db.default.svc.cluster.local', port: 5432, priority: 0, weight: 100 }],
    });
    assert.deepEqual(await lookup(dnsPod, 'resolve4', 'xwing.default.svc.cluster.local'), {
      error: 'ENOTFOUND',
    });
    await cliOk(
      ['lab', 'delete', '-f', manifest('apiVersion: v1\nkind: Service\nmetadata: {name: deathstar}\n')],
      {
        lab: LAB,
      },
    );
    await waitFor(
      'the deleted service to leave DNS',
      async () =>
        JSON.stringify(await lookup(dnsPod, 'resolve4', 'deathstar.default.svc.cluster.local')) ===
        JSON.stringify({ error: 'ENOTFOUND' }),
      5000,
    );
  });

  it('lab down removes the cgroups', async () => {
    await cliOk(['lab', 'down', '--name', LAB]);
    assert.equal(existsSync(join(cgroup2Mount()!, 'cilium-ts', LAB)), false);
  });
});
