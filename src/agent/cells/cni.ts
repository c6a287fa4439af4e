/** The CNI backend: IPAM plus the endpoint lifecycle behind the plugin's ADD/DEL/CHECK. */
import { CniBackend, type CniEndpoint, type CniPendingEndpoint } from '../../cni/agent-side.js';
import { podmanContainer } from '../../cni/podman.js';
import type { PendingEndpoint } from '../../endpoint/manager.js';
import { cell } from '../../hive/hive.js';
import { PREWARM_IDS } from './endpoints.js';
import { overlayMtu } from './overlay.js';
import {
  type AgentCellExtras,
  CniT,
  ConfigT,
  EndpointsT,
  IpamT,
  LogT,
  ResourcesT,
  SerialT,
  StateT,
} from './tokens.js';

export const cniCell = cell<CniBackend, AgentCellExtras>({
  name: 'cni',
  needs: [ConfigT, IpamT, EndpointsT, SerialT, StateT, LogT, ResourcesT],
  provides: CniT,
  build: (get) => {
    const ipam = get(IpamT);
    const endpoints = get(EndpointsT);
    const { manager, state, persist } = endpoints;
    const serial = get(SerialT);
    const log = get(LogT);
    const ipamFile = get(StateT).file<ReturnType<typeof ipam.export>>('ipam');
    /** After the ADD was answered, ready the policy maps of the next endpoint IDs. */
    const prewarmSoon = () =>
      setImmediate(
        () =>
          void serial(async () => {
            state.prewarm(manager.spareIds(PREWARM_IDS));
            await state.flush();
          }).catch((e) => log.warn({ err: e }, 'prewarm failed')),
      );
    const resources = get(ResourcesT);
    const backend = new CniBackend({
      ipam,
      // the VXLAN overlay's 50 bytes come off the pods' MTU
      mtu: overlayMtu(get(ConfigT)),
      hooks: {
        // Podman does not pass labels; its own state has them (the identity needs them before the
        // endpoint exists). Other runtimes' pods come through the API (PUT pod) beforehand.
        podStarting: async (req) => {
          if (!req.config.podman) return;
          const c = podmanContainer(req.config.podman, req.containerId);
          await resources.setPod(req.podNamespace ?? 'default', req.podName ?? req.containerId.slice(0, 12), {
            labels: c.labels,
            namedPorts: {},
          });
        },
        podGone: async (req) => {
          if (req.config.podman && req.podName)
            await resources.setPod(req.podNamespace ?? 'default', req.podName, undefined);
        },
        // Before the interfaces exist: ID, identity and program verification start right away,
        // overlapping the interface setup (a retried ADD of a known endpoint skips this).
        endpointPending: (e) =>
          manager.byContainer(e.containerId, e.ifName)
            ? undefined
            : manager.begin({
                ...endpointOf(e),
                mac: e.podMac,
                hostIfName: e.hostIfName,
                hostMac: e.hostMac,
              }),
        // The tcx hooks are taken while the endpoint is created and its programs verified (their
        // RCU waits overlap that work); the endpoint's programs then replace the placeholder.
        hostLinkReady: (token, ifindex) => {
          const { ep } = token as PendingEndpoint;
          state.prelink(ep, ifindex, (err) => log.warn({ err, endpoint: ep.id }, 'prelink failed'));
        },
        endpointAborted: (token) =>
          void manager
            .abort(token as PendingEndpoint)
            .catch((e) => log.warn({ err: e }, 'endpoint abort failed')),
        endpointAdded: (e, token) =>
          serial(async () => {
            const t0 = performance.now();
            const ep = token
              ? await manager.finish(token as PendingEndpoint, e.plumbing.hostIfindex)
              : await manager.create({
                  ...endpointOf(e),
                  mac: e.plumbing.podMac,
                  hostIfName: e.plumbing.hostIfName,
                  hostIfindex: e.plumbing.hostIfindex,
                  hostMac: e.plumbing.hostMac,
                });
            await persist();
            prewarmSoon();
            log.info(
              {
                endpoint: ep.id,
                pod: `${ep.podNamespace}/${ep.podName}`,
                identity: ep.identity,
                ipv4: ep.ipv4,
                ms: +(performance.now() - t0).toFixed(1),
              },
              'endpoint created',
            );
          }),
        endpointRemoved: (p) =>
          serial(async () => {
            const ep = manager.byContainer(p.containerId, p.ifName);
            if (!ep) return;
            await endpoints.remove(ep);
            await persist();
            log.info({ endpoint: ep.id, pod: `${ep.podNamespace}/${ep.podName}` }, 'endpoint removed');
          }),
        ipamChanged: () => ipamFile.save(ipam.export()),
        addTimed: (t) => log.info(t, 'cni add'),
      },
    });
    return { provide: backend };
  },
});

/** What a CNI request says about the endpoint (pod, addresses), before or after plumbing. */
function endpointOf(e: CniPendingEndpoint | CniEndpoint) {
  return {
    containerId: e.containerId,
    ifName: e.ifName,
    netns: e.netns,
    podNamespace: e.podNamespace ?? 'default',
    podName: e.podName ?? e.containerId.slice(0, 12),
    ipv4: e.allocation.ipv4?.ip,
    ipv6: e.allocation.ipv6?.ip,
  };
}
