/**
 * The lab's controllers. `reconcile` runs after every change a lab command makes, and the lab's
 * controller process (controller-main.ts) runs it whenever what it observes calls for it:
 *
 * - the kubelet's end of deletion: a terminating pod whose processes exited, or whose grace period
 *   is over, is removed;
 * - the Deployment controller: each Deployment has its replicas of the current template (pods of an
 *   older template are deleted once the new ones are created);
 * - the endpoint controller: EndpointSlices from pods (endpointslices.ts), readiness as observed;
 * - what follows: every agent holds the Services and slices, the cluster DNS records file is
 *   current, the world namespace routes LoadBalancer and external IPs to the nodes.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { distRoot } from '../common/paths.js';
import { run } from '../datapath/linux/index.js';
import { parseIp, parsePrefix, prefixContains } from '../labels/cidr.js';
import { type EndpointSlice, SERVICE_NAME_LABEL } from '../service/types.js';
import { type Log, syncServices } from './agents.js';
import { writeDnsRecords } from './cluster-dns.js';
import {
  deletionOrder,
  generatedName,
  podFromTemplate,
  podTemplateHash,
  randomSuffix,
  replicaSetName,
} from './deployments.js';
import { endpointSlicesFor } from './endpointslices.js';
import { applyPod, finalizeDue, finalizePod, podView, terminatePod } from './pods.js';
import { isRunning, processRef } from './process.js';
import { canonical } from './resources.js';
import { type LabDeployment, type LabPod, type LabState, labDir, podKey, saveLab } from './state.js';

const CONTROLLER_MAIN = join(distRoot, 'src', 'lab', 'controller-main.js');
const UNDERLAY_CIDR = '192.168.211.0/24';

/** Starts the lab's controller process unless the recorded one runs. */
export function ensureController(s: LabState): void {
  if (isRunning(s.controller)) return;
  const out = openSync(join(labDir(s.name), 'controller.log'), 'a');
  const child = spawn(process.execPath, [CONTROLLER_MAIN, s.name], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  child.unref();
  s.controller = processRef(child.pid!);
}

function ownedPods(s: LabState, d: LabDeployment): LabPod[] {
  return Object.values(s.pods).filter(
    (p) => p.namespace === d.namespace && p.owner?.deployment === d.name && !p.deletion,
  );
}

/** A pod name `<base><5 random>` not used in the namespace. */
function freshName(taken: (name: string) => boolean, base: string): string {
  for (;;) {
    const name = generatedName(base, randomSuffix());
    if (!taken(name)) return name;
  }
}

async function reconcileDeployments(s: LabState, log: Log): Promise<void> {
  for (const d of Object.values(s.deployments)) {
    const hash = podTemplateHash(d.manifest.spec.template);
    const owned = ownedPods(s, d);
    const current = owned.filter((p) => p.owner!.templateHash === hash);
    while (current.length < d.replicas) {
      const name = freshName((n) => !!s.pods[podKey(d.namespace, n)], `${replicaSetName(d.name, hash)}-`);
      const m = podFromTemplate(d.manifest, d.namespace, name, hash);
      current.push(await applyPod(s, m, log, { deployment: d.name, templateHash: hash }));
      saveLab(s);
    }
    const ranked = deletionOrder(
      current.map((p) => ({
        pod: p,
        name: p.name,
        node: p.node,
        ready: podView(p).ready,
        createdAt: p.createdAt,
      })),
    );
    for (const r of ranked.slice(0, current.length - d.replicas)) terminatePod(r.pod);
    // The lab has no rolling steps: an older template's pods go once the new ones exist.
    for (const p of owned) if (p.owner!.templateHash !== hash) terminatePod(p);
  }
  for (const p of Object.values(s.pods))
    if (p.owner && !s.deployments[podKey(p.namespace, p.owner.deployment)]) terminatePod(p);
}

/** The EndpointSlices the lab's services should have now (names of new slices are drawn fresh). */
export function desiredEndpointSlices(s: LabState): Record<string, EndpointSlice> {
  const now = new Date().toISOString();
  const pods = Object.values(s.pods).map(podView);
  const next: Record<string, EndpointSlice> = {};
  const all = Object.values(s.endpointSlices);
  for (const { object: svc } of Object.values(s.services)) {
    const ns = svc.metadata.namespace;
    const prev = all.filter(
      (x) => x.metadata.namespace === ns && x.metadata.labels?.[SERVICE_NAME_LABEL] === svc.metadata.name,
    );
    const taken = (n: string) => !!s.endpointSlices[podKey(ns, n)] || !!next[podKey(ns, n)];
    const slices = endpointSlicesFor(svc, pods, prev, {
      now,
      newName: (service) => freshName(taken, `${service}-`),
    });
    for (const x of slices) next[podKey(ns, x.metadata.name)] = x;
  }
  return next;
}

/** The routes the world namespace should have: LoadBalancer and external IPs to the nodes. */
function desiredWorldRoutes(s: LabState): Record<string, string[]> {
  const underlay = parsePrefix(UNDERLAY_CIDR);
  const routes: Record<string, string[]> = {};
  for (const { object: svc } of Object.values(s.services)) {
    const ips = [
      ...(svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip),
      ...(svc.spec.externalIPs ?? []),
    ].filter((ip) => parseIp(ip)?.family === 4 && !prefixContains(underlay, parsePrefix(ip)));
    // With externalTrafficPolicy Local only nodes with a ready local endpoint get the traffic, as a
    // load balancer checking healthCheckNodePort would send it; else every node (ECMP).
    let nodes = s.nodes.map((n) => n.underlayIp);
    if (svc.spec.externalTrafficPolicy === 'Local') {
      const slices = Object.values(s.endpointSlices).filter(
        (x) =>
          x.metadata.namespace === svc.metadata.namespace &&
          x.metadata.labels?.[SERVICE_NAME_LABEL] === svc.metadata.name,
      );
      const local = new Set(
        slices.flatMap((x) => x.endpoints.filter((e) => e.conditions.ready).map((e) => e.nodeName)),
      );
      const withLocal = s.nodes.filter((n) => local.has(n.name)).map((n) => n.underlayIp);
      if (withLocal.length) nodes = withLocal;
    }
    for (const ip of ips) routes[`${ip}/32`] = [...new Set([...(routes[`${ip}/32`] ?? []), ...nodes])].sort();
  }
  return routes;
}

async function syncWorldRoutes(s: LabState): Promise<void> {
  const want = desiredWorldRoutes(s);
  const have = s.worldRoutes ?? [];
  const w = s.world.netns;
  for (const [prefix, nodes] of Object.entries(want)) {
    const entry = `${prefix} ${nodes.join(' ')}`;
    if (have.includes(entry)) continue;
    const via = nodes.length === 1 ? ['via', nodes[0]!] : nodes.flatMap((n) => ['nexthop', 'via', n]);
    await run(['ip', '-n', w, 'route', 'replace', prefix, ...via]);
  }
  for (const entry of have) {
    const prefix = entry.split(' ')[0]!;
    if (!want[prefix]) await run(['ip', '-n', w, 'route', 'del', prefix]).catch(() => {});
  }
  s.worldRoutes = Object.entries(want).map(([p, n]) => `${p} ${n.join(' ')}`);
}

/** Whether the controller has something to do (cheap enough to ask several times a second). */
export function needsReconcile(s: LabState): boolean {
  if (Object.values(s.pods).some((p) => finalizeDue(p))) return true;
  for (const d of Object.values(s.deployments)) {
    const hash = podTemplateHash(d.manifest.spec.template);
    const owned = ownedPods(s, d);
    if (owned.length !== d.replicas || owned.some((p) => p.owner!.templateHash !== hash)) return true;
  }
  return canonical(desiredEndpointSlices(s)) !== canonical(s.endpointSlices);
}

/** Brings everything that follows from the lab's objects up to date (see the file comment). */
export async function reconcile(s: LabState, log: Log): Promise<void> {
  for (const p of Object.values(s.pods)) if (finalizeDue(p)) await finalizePod(s, p, log);
  await reconcileDeployments(s, log);
  for (const p of Object.values(s.pods)) if (finalizeDue(p)) await finalizePod(s, p, log);
  s.endpointSlices = desiredEndpointSlices(s);
  saveLab(s);
  await syncServices(s, log);
  writeDnsRecords(s);
  await syncWorldRoutes(s);
  saveLab(s);
}
