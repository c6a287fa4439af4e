/**
 * The node's datapath: the private bpffs, the pinned maps and program loader, the targets the
 * reconcilers write through, and the `bpf ...` introspection routes.
 */

import { mkdirSync, readFileSync } from 'node:fs';
import { routes } from '../../api/types.js';
import { HostDeviceLoader, SocketLbLoader } from '../../datapath/index.js';
import { run } from '../../datapath/linux/index.js';
import type { DatapathTargets } from '../../endpoint/datapath-state.js';
import { cell } from '../../hive/hive.js';
import { NodeDatapath, nodeDatapathConfig } from '../datapath.js';
import { prepareOverlayDevice } from './overlay.js';
import { type AgentCellExtras, ConfigT, DatapathT, IpamT, LogT, TargetsT } from './tokens.js';

export const datapathCell = cell<NodeDatapath, AgentCellExtras>({
  name: 'datapath',
  needs: [ConfigT, LogT, IpamT],
  provides: DatapathT,
  build: (get) => {
    const cfg = get(ConfigT);
    const ipam = get(IpamT);
    const dp = new NodeDatapath(cfg, get(LogT).child({ subsys: 'datapath' }));
    return {
      provide: dp,
      start: async () => {
        mkdirSync(cfg.runDir, { recursive: true });
        await mountBpffs(cfg.bpffsDir);
        // Every object is loaded with the overlay device's ifindex: it must exist first.
        await prepareOverlayDevice(cfg);
        dp.open(ipam.routerIPs());
      },
      stop: () => dp.close(),
      routes: (r) => {
        r.route(routes.bpfCt, () => dp.dumpCt());
        r.route(routes.bpfIpcache, () => dp.dumpIpcache());
        r.route(routes.bpfEndpoints, () => dp.dumpEndpoints());
        r.route(routes.bpfMetrics, () => dp.dumpMetrics());
        r.route(routes.bpfLb, () => dp.dumpLb());
      },
      status: () => ({ datapath: dp.status() }),
    };
  },
});

/** The real maps and programs as reconciler targets (tests put fakes in their place). */
export const targetsCell = cell<DatapathTargets, AgentCellExtras>({
  name: 'datapath-targets',
  needs: [DatapathT],
  provides: TargetsT,
  build: (get) => ({ provide: get(DatapathT).targets() }),
});

async function mountBpffs(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const mounts = readFileSync('/proc/mounts', 'utf8');
  if (!mounts.split('\n').some((l) => l.split(' ')[1] === dir && l.split(' ')[2] === 'bpf')) {
    await run(['mount', '-t', 'bpf', 'bpf', dir]);
  }
}

/**
 * Socket-LB: the bpf_sock programs on the node's cgroup (every process of the node and its pods
 * is in it), so connections to a service go straight to a backend. Pinned: they keep translating
 * while the agent is down; a restart swaps them in place.
 */
export const socketLbCell = cell<undefined, AgentCellExtras>({
  name: 'socket-lb',
  needs: [ConfigT, LogT, DatapathT],
  build: (get) => {
    const cfg = get(ConfigT);
    const log = get(LogT);
    const dp = get(DatapathT);
    let loader: SocketLbLoader | undefined;
    return {
      start: () => {
        if (!cfg.cgroup) {
          log.warn('no --cgroup: socket-LB is off (services are not translated at connect)');
          return;
        }
        loader = SocketLbLoader.open({
          bpffs: cfg.bpffsDir,
          maps: dp.m,
          node: nodeDatapathConfig(cfg),
        });
        const a = loader.attach(cfg.cgroup);
        log.info({ cgroup: a.cgroup, replaced: a.replaced, ...a.timings }, 'socket-LB attached');
      },
      stop: () => loader?.close(),
    };
  },
});

/**
 * North-south load balancing: bpf_host on each external device (--devices) translates NodePort,
 * LoadBalancer and external-IP connections from outside the node (SNAT to the node's address
 * unless externalTrafficPolicy is Local). Pinned, swapped in place on restart.
 */
export const hostDeviceCell = cell<undefined, AgentCellExtras>({
  name: 'host-devices',
  needs: [ConfigT, LogT, DatapathT],
  build: (get) => {
    const cfg = get(ConfigT);
    const log = get(LogT);
    const dp = get(DatapathT);
    let loader: HostDeviceLoader | undefined;
    return {
      start: () => {
        if (cfg.devices.length === 0) return;
        loader = HostDeviceLoader.open({
          bpffs: cfg.bpffsDir,
          maps: dp.m,
          node: nodeDatapathConfig(cfg),
        });
        const nodeIpv4 = cfg.nodeIPs.find((ip) => !ip.includes(':'));
        for (const device of cfg.devices) {
          const a = loader.attach({ device, nodeIpv4 });
          log.info(
            { device, ifindex: a.ifindex, replaced: a.replaced, ...a.timings },
            'NodePort load balancer attached',
          );
        }
      },
      stop: () => loader?.close(),
    };
  },
});
