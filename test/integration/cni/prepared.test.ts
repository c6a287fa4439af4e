/**
 * Endpoints begun when a pod is announced (PUT pod), before its CNI ADD: the ADD takes over the
 * addresses, ID and identity begun then (the programs were made with them), under the container's
 * own ID; a pod deleted or relabelled before its ADD leaves nothing stale behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { agentSocketPath } from '../../../src/agent/config.js';
import { AgentApi } from '../../../src/api/client.js';
import type { EndpointView } from '../../../src/api/types.js';
import { labDir, loadLab } from '../../../src/lab/state.js';
import { cli, cliOk, labName } from '../../helpers/cli.js';
import { cleanupStack, sh } from '../../helpers/sys.js';
import { runEntry } from './entry.js';

const isRoot = process.getuid?.() === 0;
const ENTRY = [new URL('../../../src/cni/cilium-ts-cni', import.meta.url).pathname];

describe('privileged: endpoints begun at PUT pod, taken over by the ADD', {
  skip: !isRoot && 'needs root',
}, () => {
  const LAB = labName('prep');
  const cleanup = cleanupStack();
  let api: AgentApi;
  let sock = '';
  let nodeNetns = '';
  let nodeName = '';

  /** A pod namespace of its own; removed at the end. */
  const podNetns = () => {
    const ns = `${LAB}-${randomBytes(3).toString('hex')}`;
    sh('ip', ['netns', 'add', ns]);
    cleanup.add(() => void spawnSync('ip', ['netns', 'del', ns]));
    return `/run/netns/${ns}`;
  };
  const cni = (command: string, pod: string, containerId: string, netns: string) =>
    runEntry(
      ENTRY,
      {
        CNI_COMMAND: command,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: netns,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/opt/cni/bin',
        CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}`,
      },
      JSON.stringify({ cniVersion: '1.0.0', name: 'cilium-ts', type: 'cilium-ts-cni', agentSocket: sock }),
    );
  const endpointOf = async (pod: string): Promise<EndpointView | undefined> =>
    (await api.endpoints()).find((e) => e.podNamespace === 'default' && e.podName === pod);
  const ipv4Of = (stdout: string) =>
    (JSON.parse(stdout) as { ips: { address: string }[] }).ips
      .map((i) => i.address.split('/')[0]!)
      .find((a) => !a.includes(':'));

  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB]);
    const node = loadLab(LAB)!.nodes[0]!;
    sock = agentSocketPath(LAB, node.name);
    nodeNetns = `/run/netns/${node.netns}`;
    nodeName = node.name;
    api = new AgentApi(sock);
  });
  after(async () => {
    await cleanup.run();
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('the ADD after PUT pod gets the addresses begun then, under its own container ID, and answers', async () => {
    await api.putPod('default', 'early', { labels: { app: 'early' }, namedPorts: {} });
    const begun = await endpointOf('early');
    assert.ok(begun, 'PUT pod began an endpoint');
    assert.equal(begun.state, 'waiting-for-interface');
    const containerId = `prep${randomBytes(6).toString('hex')}`;
    const r = await cni('ADD', 'early', containerId, podNetns());
    assert.equal(r.code, 0, r.stdout);
    const ip = ipv4Of(r.stdout);
    assert.equal(ip, begun.ipv4, 'the addresses the programs were made with');
    const ep = await endpointOf('early');
    assert.equal(ep?.id, begun.id);
    assert.equal(ep?.state, 'ready');
    assert.equal(ep?.containerId, containerId);
    assert.ok(ep?.labels.includes('k8s:app=early'));
    const ping = spawnSync('nsenter', [`--net=${nodeNetns}`, 'ping', '-c', '1', '-W', '2', '-q', ip!]);
    assert.equal(ping.status, 0, 'the pod answers its node');
    // The addresses are held under the container now (so DEL releases them).
    const ipam = readFileSync(join(labDir(LAB), nodeName, 'state', 'ipam.json'), 'utf8');
    assert.ok(ipam.includes(containerId), 'IPAM state names the container');
    assert.ok(!ipam.includes('prepared:default/early'), 'and not the placeholder');
    const del = await cni('DEL', 'early', containerId, '');
    assert.equal(del.code, 0, del.stdout);
    assert.equal(await endpointOf('early'), undefined);
  });

  it('a pod deleted before its ADD leaves no endpoint; a relabelled one gets its new labels', async () => {
    await api.putPod('default', 'gone', { labels: { app: 'gone' }, namedPorts: {} });
    assert.ok(await endpointOf('gone'));
    await api.deletePod('default', 'gone');
    assert.equal(await endpointOf('gone'), undefined, 'the begun endpoint is dropped');

    await api.putPod('default', 'relabel', { labels: { app: 'before' }, namedPorts: {} });
    await api.putPod('default', 'relabel', { labels: { app: 'after' }, namedPorts: {} });
    const containerId = `prep${randomBytes(6).toString('hex')}`;
    const r = await cni('ADD', 'relabel', containerId, podNetns());
    assert.equal(r.code, 0, r.stdout);
    const ep = await endpointOf('relabel');
    assert.ok(ep?.labels.includes('k8s:app=after'), `labels ${ep?.labels}`);
    assert.ok(!ep?.labels.includes('k8s:app=before'));
    const identity = (await api.identities()).find((i) => i.id === ep?.identity);
    assert.ok(identity?.labels.includes('k8s:app=after'), 'its identity is the new labels');
    assert.equal((await api.endpoints()).filter((e) => e.podName === 'relabel').length, 1);
  });
});
