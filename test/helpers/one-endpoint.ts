/**
 * One pod plumbed by the CNI (a node namespace, a pod namespace, the veth between them) and a
 * DatapathLoader on a private bpffs, for tests of how endpoint programs are loaded and attached.
 * Nothing is attached yet; `ping` tells whether the node reaches the pod.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setupEndpoint, setupNodeRouter } from '../../src/cni/endpoint-plumbing.js';
import {
  DatapathLoader,
  type DatapathLoaderOptions,
  type EndpointDatapathConfig,
} from '../../src/datapath/index.js';
import { type Cleanup, privateBpffs, sh } from './sys.js';

export interface OneEndpoint {
  nodeNs: string;
  nodeNetns: string;
  hostIf: string;
  ifindex: number;
  ep: EndpointDatapathConfig;
  loader: DatapathLoader;
  /** One ping from the node to the pod: true when it was answered. */
  ping(): boolean;
}

/**
 * Builds it under prefix `p` with endpoint `id` (identity 5000 + id) in 10.<random>.<id>.0/24;
 * everything is undone by `cleanup`. The endpoint's row is written into the maps.
 */
export async function oneEndpoint(
  cleanup: Cleanup,
  p: string,
  id: number,
  loaderOpts: Omit<DatapathLoaderOptions, 'bpffs'> = {},
): Promise<OneEndpoint> {
  const nodeNs = `${p}n`;
  const nodeNetns = `/run/netns/${nodeNs}`;
  const oct = 100 + (randomBytes(1)[0]! % 100);
  const router = `10.${oct}.${id}.1`;
  const podIp = `10.${oct}.${id}.10`;
  const bpffs = privateBpffs(cleanup);
  for (const ns of [nodeNs, `${p}a`]) {
    sh('ip', ['netns', 'add', ns]);
    cleanup.add(() => void spawnSync('ip', ['netns', 'del', ns]));
  }
  sh('ip', ['-n', nodeNs, 'link', 'set', 'lo', 'up']);
  await setupNodeRouter({ nodeNetns, ipv4Router: router });
  const hostIf = `${p}A`;
  const r = await setupEndpoint({
    nodeNetns,
    podNetns: `/run/netns/${p}a`,
    ifName: 'eth0',
    hostIfName: hostIf,
    ipv4: { ip: podIp, router },
  });
  const ep: EndpointDatapathConfig = {
    id,
    identity: 5000 + id,
    ipv4: podIp,
    mac: r.podMac,
    nodeMac: r.hostMac,
    interface: r.hostIfName,
    netns: nodeNetns,
    routerIpv4: router,
  };
  const loader = DatapathLoader.open({ bpffs, ...loaderOpts });
  cleanup.add(() => {
    loader.remove(ep.id);
    loader.close();
  });
  loader.writeEndpoint(ep);
  const ping = () =>
    spawnSync('nsenter', [`--net=${nodeNetns}`, 'ping', '-c', '1', '-W', '1', '-q', podIp]).status === 0;
  return { nodeNs, nodeNetns, hostIf, ifindex: r.hostIfindex, ep, loader, ping };
}
