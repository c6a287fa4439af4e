/**
 * The node's datapath: the private bpffs, the pinned maps and program loader, the targets the
 * reconcilers write through, and the `bpf ...` introspection routes.
 */

import { mkdirSync, readFileSync } from 'node:fs';
import { routes } from '../../api/types.js';
import { run } from '../../datapath/linux/index.js';
import type { DatapathTargets } from '../../endpoint/datapath-state.js';
import { cell } from '../../hive/hive.js';
import { NodeDatapath } from '../datapath.js';
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
        dp.open(ipam.routerIPs());
      },
      stop: () => dp.close(),
      routes: (r) => {
        r.route(routes.bpfCt, () => dp.dumpCt());
        r.route(routes.bpfIpcache, () => dp.dumpIpcache());
        r.route(routes.bpfEndpoints, () => dp.dumpEndpoints());
        r.route(routes.bpfMetrics, () => dp.dumpMetrics());
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
