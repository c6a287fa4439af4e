/**
 * The agent of one node: a hive of cells (src/agent/cells), the REST API on a unix socket that
 * serves their routes, and `status` assembled from their parts. The datapath keeps forwarding
 * while the agent is down: programs and maps are pinned, and on start the cells adopt them and
 * the reconcilers converge the maps to the restored desired state.
 */

import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { routes, type StatusResponse } from '../api/types.js';
import { handleCniHttp } from '../cni/agent-side.js';
import { type Cell, Hive } from '../hive/hive.js';
import { identityCell, ipamCell, serialCell, stateCell } from './cells/base.js';
import { cniCell } from './cells/cni.js';
import { conntrackCell } from './cells/conntrack.js';
import { datapathCell, hostDeviceCell, socketLbCell, targetsCell } from './cells/datapath.js';
import { endpointsCell } from './cells/endpoints.js';
import { fqdnCell } from './cells/fqdn.js';
import { fqdnProxyCell } from './cells/fqdn-proxy.js';
import { hubbleCell } from './cells/hubble.js';
import { ipcacheCell } from './cells/ipcache.js';
import { ipsyncCell } from './cells/ipsync.js';
import { kvstoreCell } from './cells/kvstore.js';
import { nodeCell, routerCell } from './cells/node.js';
import { overlayCell } from './cells/overlay.js';
import { policyCell } from './cells/policy.js';
import { proxyCell } from './cells/proxy.js';
import { resourcesCell } from './cells/resources.js';
import { servicesCell } from './cells/services.js';
import { syncCell } from './cells/sync.js';
import { type AgentCellExtras, CniT, ConfigT, LogT } from './cells/tokens.js';
import type { AgentConfig } from './config.js';
import { Router } from './http.js';

/**
 * The control plane's cells: they need no root and write the datapath only through the targets
 * (TargetsT), so tests run them against in-memory maps.
 */
export const CONTROL_PLANE_CELLS: readonly Cell<unknown, AgentCellExtras>[] = [
  stateCell,
  serialCell,
  kvstoreCell,
  ipamCell,
  identityCell,
  resourcesCell,
  ipcacheCell,
  nodeCell,
  policyCell,
  // Before endpoints: restored FQDN identities are claimed before unclaimed ones are freed.
  fqdnCell,
  endpointsCell,
  fqdnProxyCell,
  servicesCell,
  ipsyncCell,
  syncCell,
] as Cell<unknown, AgentCellExtras>[];

/** The cells of a full agent, in no particular order (the hive orders them by their needs). */
export const AGENT_CELLS: readonly Cell<unknown, AgentCellExtras>[] = [
  ...CONTROL_PLANE_CELLS,
  datapathCell,
  targetsCell,
  routerCell,
  overlayCell,
  cniCell,
  hubbleCell,
  conntrackCell,
  proxyCell,
  socketLbCell,
  hostDeviceCell,
] as Cell<unknown, AgentCellExtras>[];

export class Agent {
  readonly hive: Hive<AgentCellExtras>;
  readonly startedAt = Date.now();
  private server?: Server;
  private ready = false;

  constructor(
    readonly cfg: AgentConfig,
    readonly log: Logger,
    cells: readonly Cell<unknown, AgentCellExtras>[] = AGENT_CELLS,
  ) {
    this.hive = new Hive<AgentCellExtras>(
      cells,
      [
        [ConfigT, cfg],
        [LogT, log],
      ],
      log,
    ).populate();
  }

  async start(): Promise<void> {
    await this.hive.start();
    await this.listen();
    this.ready = true;
    this.log.info({ socket: this.cfg.socketPath, ...this.summary() }, 'agent started');
  }

  async stop(): Promise<void> {
    this.ready = false;
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections?.();
    await this.hive.stop();
    this.log.info('agent stopped (programs and maps stay pinned: the datapath keeps forwarding)');
  }

  /** GET /v1/status: the agent's own lines plus each cell's part. */
  status(): StatusResponse {
    // Every cell adds its part; together they make the whole response.
    const out = {
      lab: this.cfg.lab,
      node: this.cfg.node,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      ready: this.ready,
    } as StatusResponse;
    for (const { inst } of this.hive.instances()) Object.assign(out, inst.status?.());
    return out;
  }

  private summary(): Record<string, unknown> {
    const s = this.status();
    return { endpoints: s.endpoints, policy: s.policy };
  }

  /** Every cell's routes on one router, plus the CNI protocol, on the agent's unix socket. */
  private async listen(): Promise<void> {
    const router = new Router();
    router.route(routes.healthz, () => ({ ok: this.ready }));
    router.route(routes.status, () => this.status());
    for (const { inst } of this.hive.instances()) inst.routes?.(router);
    const cni = this.hive.get(CniT);
    rmSync(this.cfg.socketPath, { force: true });
    this.server = createServer((req, res) => {
      void (async () => {
        if (await handleCniHttp(req, res, cni, () => this.ready)) return;
        await router.handle(req, res);
      })();
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.cfg.socketPath, () => resolve());
    });
  }
}
