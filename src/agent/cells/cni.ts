/** The CNI backend: IPAM plus the endpoint lifecycle behind the plugin's ADD/DEL/CHECK. */
import {
  CniBackend,
  type CniEndpoint,
  type CniPendingEndpoint,
  PREPARED_OWNER_PREFIX,
} from '../../cni/agent-side.js';
import { hostVethName, randomMac } from '../../cni/endpoint-plumbing.js';
import { podmanContainer } from '../../cni/podman.js';
import { BIG_TCP_MAX_SIZE, setupBigTcpIpv4 } from '../../datapath/big-tcp.js';
import type { PendingEndpoint } from '../../endpoint/manager.js';
import { PreparedEndpoints } from '../../endpoint/prepared.js';
import { cell } from '../../hive/hive.js';
import type { IpamOwner, PodAllocation } from '../../ipam/node-ipam.js';
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

/** How long an endpoint begun when its pod was announced waits for the pod's ADD. */
export const PREPARED_TTL_MS = 60_000;

/** A pending endpoint and when its steps finished (performance.now()), for the ADD's timing line. */
interface Pending {
  p: PendingEndpoint;
  t0: number;
  identityAt?: number;
  verifiedAt?: number;
  prelinkedAt?: number;
}

/** An endpoint begun when its pod was announced, before the ADD: addresses held under `owner`. */
interface Prepared {
  owner: IpamOwner;
  allocation: PodAllocation;
  hostMac: string;
  podMac: string;
  pending: Pending;
}

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
    /**
     * After an ADD was answered, ready the policy maps of the IDs about to be used. Not when an
     * endpoint is begun (PUT pod): its ADD follows, and a new inner map put into the outer one waits
     * out an RCU grace period; the begun endpoint has a spare ID's map already. The policy
     * reconciler publishes them on its own (off the agent's thread): the next ADD waits for that
     * only when it needs the reconciler, not from its start.
     */
    const prewarmSoon = () =>
      setImmediate(
        () =>
          void serial(async () => {
            // Endpoints begun ahead keep theirs too (prewarm drops spares it is not given).
            const begun = manager.list().filter((e) => e.state === 'waiting-for-interface');
            state.prewarm([...begun.map((e) => e.id), ...manager.spareIds(PREWARM_IDS)]);
          }).catch((e) => log.warn({ err: e }, 'prewarm failed')),
      );
    const resources = get(ResourcesT);
    const pendingOf = (p: PendingEndpoint): Pending => {
      const pending: Pending = { t0: performance.now(), p };
      p.identity.then(() => (pending.identityAt = performance.now())).catch(() => {});
      p.programs.then(() => (pending.verifiedAt = performance.now())).catch(() => {});
      return pending;
    };
    const giveBack = (v: Prepared) => {
      ipam.release(v.owner);
      manager.abort(v.pending.p).catch((err) => log.warn({ err }, 'dropping a prepared endpoint failed'));
    };
    // A pod announced before its ADD (PUT pod, as the lab and the bench do): its endpoint begins at
    // once, so identity and verification run while the runtime makes the namespace and calls us.
    const prepared = new PreparedEndpoints<Prepared>({
      ttlMs: PREPARED_TTL_MS,
      begin: (ns, name) => {
        const pod = `${ns}/${name}`;
        const owner: IpamOwner = { containerId: `${PREPARED_OWNER_PREFIX}${pod}`, ifName: 'eth0', pod };
        const allocation = ipam.allocate(owner);
        const hostMac = randomMac();
        const podMac = randomMac();
        try {
          const p = manager.begin({
            containerId: owner.containerId,
            ifName: owner.ifName,
            netns: '',
            podNamespace: ns,
            podName: name,
            ipv4: allocation.ipv4?.ip,
            ipv6: allocation.ipv6?.ip,
            mac: podMac,
            hostIfName: '',
            hostMac,
          });
          return { owner, allocation, hostMac, podMac, pending: pendingOf(p) };
        } catch (err) {
          ipam.release(owner);
          throw err;
        }
      },
      abort: (v) => giveBack(v),
      onError: (err, pod) => log.warn({ err, pod }, 'could not prepare the endpoint ahead of its ADD'),
    });
    resources.onPodChanged(async (ns, name, before) => {
      // Labels (or the service account) may have changed: what was begun may be stale.
      if (before) prepared.discard(ns, name);
      if (resources.pod(ns, name) && !manager.byPod(ns, name)) prepared.prepare(ns, name);
    });
    resources.onNamespaceChanged(async (ns) => prepared.discardNamespace(ns));
    const cfg = get(ConfigT);
    // IPv4 BIG TCP: the node's devices first (as large as they all take), then every new pod's veths
    let bigTcpIpv4: number | undefined;
    if (cfg.enableIpv4BigTcp) {
      bigTcpIpv4 = cfg.devices.length ? setupBigTcpIpv4(cfg.devices) : BIG_TCP_MAX_SIZE;
      if (bigTcpIpv4)
        log.info({ size: bigTcpIpv4, devices: cfg.devices }, 'IPv4 BIG TCP: GSO/GRO packets up to this size');
      else
        log.warn(
          { devices: cfg.devices },
          'IPv4 BIG TCP stays off: a device takes GSO packets of 64 KiB at most',
        );
    }
    const backend = new CniBackend({
      ipam,
      // the VXLAN overlay's 50 bytes come off the pods' MTU
      mtu: overlayMtu(cfg),
      bigTcpIpv4,
      hooks: {
        claimPrepared: (req) => {
          const { podNamespace: ns, podName: name } = podOf(req);
          const v = prepared.claim(ns, name);
          if (!v) return undefined;
          const owner = { containerId: req.containerId, ifName: req.ifName, pod: v.owner.pod };
          const { ep } = v.pending.p;
          // A retried ADD keeps what it has; a second interface of the pod gets its own endpoint.
          if (
            v.owner.ifName !== req.ifName ||
            ipam.get(owner) ||
            manager.byContainer(req.containerId, req.ifName)
          ) {
            giveBack(v);
            return undefined;
          }
          // The addresses move to the container (the same ones: the programs were made with them).
          ipam.release(v.owner);
          let allocation: PodAllocation;
          try {
            allocation = ipam.allocate(owner, { ipv4: v.allocation.ipv4?.ip, ipv6: v.allocation.ipv6?.ip });
          } catch (err) {
            log.warn({ err }, 'prepared addresses could not move to the container');
            giveBack(v);
            return undefined;
          }
          ep.containerId = req.containerId;
          ep.ifName = req.ifName;
          ep.netns = req.netns;
          ep.hostIfName = hostVethName(req.containerId, req.ifName);
          return { allocation, hostMac: v.hostMac, podMac: v.podMac, token: v.pending };
        },
        // Podman does not pass labels; its own state has them (the identity needs them before the
        // endpoint exists). Other runtimes' pods come through the API (PUT pod) beforehand.
        podStarting: async (req) => {
          if (!req.config.podman) return;
          const c = podmanContainer(req.config.podman, req.containerId);
          const pod = podOf(req);
          await resources.setPod(pod.podNamespace, pod.podName, {
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
            : pendingOf(
                manager.begin({
                  ...endpointOf(e),
                  mac: e.podMac,
                  hostIfName: e.hostIfName,
                  hostMac: e.hostMac,
                }),
              ),
        // The tcx hooks are taken while the endpoint is created and its programs verified (their
        // RCU waits overlap that work); the endpoint's programs then replace the placeholder.
        hostLinkReady: (token, ifindex) => {
          const pending = token as Pending;
          const { ep } = pending.p;
          void state
            .prelink(ep, ifindex, (err) => log.warn({ err, endpoint: ep.id }, 'prelink failed'))
            .then(() => (pending.prelinkedAt = performance.now()));
        },
        endpointAborted: (token) =>
          void manager
            .abort((token as Pending).p)
            .catch((e) => log.warn({ err: e }, 'endpoint abort failed')),
        endpointAdded: (e, token) =>
          serial(async () => {
            const pending = token as Pending | undefined;
            const t0 = performance.now();
            let recordedAt = 0;
            // The record is saved while the programs go in; both are done before ADD answers.
            let saved: Promise<void> | undefined;
            const save = () => {
              recordedAt = performance.now();
              saved = persist();
              saved.catch(() => {});
            };
            let ep: Awaited<ReturnType<typeof manager.finish>>;
            try {
              ep = pending
                ? await manager.finish(pending.p, e.plumbing.hostIfindex, save)
                : await manager.create({
                    ...endpointOf(e),
                    mac: e.plumbing.podMac,
                    hostIfName: e.plumbing.hostIfName,
                    hostIfindex: e.plumbing.hostIfindex,
                    hostMac: e.plumbing.hostMac,
                  });
            } catch (err) {
              // A record saved before the failure must not outlive the endpoint.
              if (saved) await saved.catch(() => {});
              await persist().catch(() => {});
              throw err;
            }
            const attachedAt = performance.now();
            await (saved ?? persist());
            const savedAt = performance.now();
            prewarmSoon();
            const since = pending?.t0 ?? t0;
            const rel = (t: number | undefined) => (t ? +(t - since).toFixed(1) : -1);
            const steps = {
              identityMs: rel(pending?.identityAt),
              verifiedMs: rel(pending?.verifiedAt),
              prelinkedMs: rel(pending?.prelinkedAt),
              recordedMs: rel(recordedAt),
              attachedMs: rel(attachedAt),
              savedMs: rel(savedAt),
            };
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
            return steps;
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
    return {
      provide: backend,
      // Addresses held for prepared endpoints by an agent that stopped are free again.
      start: async () => {
        let freed = 0;
        for (const { owner } of ipam.list())
          if (owner.containerId.startsWith(PREPARED_OWNER_PREFIX)) freed += ipam.release(owner) ? 1 : 0;
        if (freed) await ipamFile.save(ipam.export());
      },
      stop: () => prepared.clear(),
      status: () => ({ bigTcp: { ipv4: bigTcpIpv4 ?? 0 } }),
    };
  },
});

/** The pod of a CNI request (a runtime without pods, like podman: namespace default, the container). */
function podOf(e: { containerId: string; podNamespace?: string | undefined; podName?: string | undefined }) {
  return { podNamespace: e.podNamespace ?? 'default', podName: e.podName ?? e.containerId.slice(0, 12) };
}

/** What a CNI request says about the endpoint (pod, addresses), before or after plumbing. */
function endpointOf(e: CniPendingEndpoint | CniEndpoint) {
  return {
    containerId: e.containerId,
    ifName: e.ifName,
    netns: e.netns,
    ...podOf(e),
    ipv4: e.allocation.ipv4?.ip,
    ipv6: e.allocation.ipv6?.ip,
  };
}
