/**
 * The DNS proxy in a two-node lab: a pod on node2 asks the cluster DNS, whose pod runs on node1;
 * node2's proxy takes the query (its rules, its cache) and forwards it across the nodes. glibc in
 * the pod resolves through it too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';

const LAB = labName('fqm');

const MANIFESTS = `apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  nodeName: node2
  containers: [{name: c, command: ["sleep", "infinity"]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-dns}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules:
        dns: [{matchPattern: "*.kube-system.svc.cluster.local"}]
`;

/** Node's own resolver API in the pod, asking one server: prints OK and the addresses, or ERR and the code. */
const RESOLVE = `const r = new (require('node:dns').promises.Resolver)({ timeout: 2000, tries: 1 });
r.setServers([process.argv[1]]);
r.resolve4(process.argv[2]).then((a) => console.log('OK ' + a.join(',')), (e) => console.log('ERR ' + e.code));`;

const resolve = async (name: string) =>
  (
    await cliOk(['lab', 'exec', 'client', '--', 'node', '-e', RESOLVE, '10.96.0.10', name], { lab: LAB })
  ).trim();

describe('privileged: the DNS proxy across nodes', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '--nodes', '2', '--dns', '-f', manifest(MANIFESTS)]);
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it("node2's proxy answers its pod from the cluster DNS on node1, and refuses what its rules do not allow", async () => {
    assert.equal(await resolve('kube-dns.kube-system.svc.cluster.local'), 'OK 10.96.0.10');
    assert.equal(await resolve('kubernetes.default.svc.cluster.local'), 'ERR EREFUSED');
    const r = await cli(
      ['lab', 'exec', 'client', '--', 'getent', 'hosts', 'kube-dns.kube-system.svc.cluster.local'],
      {
        lab: LAB,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^10\.96\.0\.10\s+kube-dns\.kube-system\.svc\.cluster\.local/);
  });

  it('the lookup is in the cache of the node that proxied it only', async () => {
    const list = async (node: string) =>
      JSON.parse(await cliOk(['fqdn', 'cache', 'list', '-o', 'json', '--node', node], { lab: LAB })) as {
        name: string;
      }[];
    assert.deepEqual(
      (await list('node2')).map((e) => e.name),
      ['kube-dns.kube-system.svc.cluster.local.'],
    );
    assert.deepEqual(await list('node1'), []);
  });
});
