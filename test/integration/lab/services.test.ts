/**
 * Services, Deployments and EndpointSlices in a real two-node lab: Deployment pods named and scaled
 * as Kubernetes does, EndpointSlices following the pods (named target ports per pod, a deleted
 * pod's endpoint terminating through its grace period, then gone), ClusterIP / NodePort /
 * LoadBalancer allocation with duplicates and bad objects refused (nothing applied), `lab get svc`
 * and `lab get endpointslices` as kubectl prints them, and every agent holding the lab's services,
 * also after its restart.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { agentSocketPath } from '../../../src/agent/config.js';
import { AgentApi } from '../../../src/api/client.js';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('svc');
const HASH = '[bcdfghjklmnpqrstvwxz2456789]{1,10}';
const SUFFIX = '[bcdfghjklmnpqrstvwxz2456789]{5}';

const DEPLOY = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec:
      containers:
      - name: srv
        command: ["sleep", "infinity"]
        ports: [{name: http, containerPort: 8080}]
`;

const WEB_SVC = `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`;

const pod = (name: string, ports: string, extra = '', command = '["sleep", "infinity"]') => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {app: web}}
spec:
  nodeName: node1
${extra}  containers:
  - name: c
    command: ${command}
    ports: ${ports}
`;

interface Obj {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}
interface Slice extends Obj {
  ports: { name: string; port: number; protocol: string }[];
  endpoints: {
    addresses: string[];
    conditions: { ready: boolean; serving: boolean; terminating: boolean };
    nodeName: string;
    targetRef: { name: string };
  }[];
}

const get = async <T = Obj>(...args: string[]) =>
  (JSON.parse(await cliOk(['lab', 'get', ...args, '-o', 'json'], { lab: LAB })) as { items: T[] }).items;
const apply = (text: string) => cli(['lab', 'apply', '-f', manifest(text)], { lab: LAB });
const webPods = async () => (await get('pods')).filter((p) => p.metadata.labels?.app === 'web');
const slicesOf = async (service: string) =>
  (await get<Slice>('endpointslices')).filter(
    (s) => s.metadata.labels?.['kubernetes.io/service-name'] === service,
  );
/** Each slice of the service as `ports: pod,pod` (sorted), to compare the whole picture at once. */
const picture = async (service: string) =>
  (await slicesOf(service))
    .map(
      (s) =>
        `${s.ports.map((p) => p.port).join(',') || '-'}: ${s.endpoints
          .map((e) => e.targetRef.name)
          .sort()
          .join(',')}`,
    )
    .sort();

describe('privileged: services, deployments and endpoint slices in the lab', () => {
  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '--nodes', '2']);
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('a Deployment runs its replicas as pods named like Kubernetes, on both nodes; scale adds and removes them', async () => {
    const first = await apply(`${DEPLOY(3)}---\n${WEB_SVC}`);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^deployment\.apps\/web created$/m);
    assert.match(first.stdout, /^service\/web created$/m);
    const pods = await webPods();
    assert.equal(pods.length, 3);
    const hash = pods[0]!.metadata.labels!['pod-template-hash']!;
    for (const p of pods) {
      assert.match(p.metadata.name, new RegExp(`^web-${HASH}-${SUFFIX}$`));
      assert.deepEqual(p.metadata.labels, { app: 'web', tier: 'front', 'pod-template-hash': hash });
      assert.ok(p.metadata.name.startsWith(`web-${hash}-`));
    }
    const nodes = new Set(pods.map((p) => (p.spec as { nodeName: string }).nodeName));
    assert.deepEqual([...nodes].sort(), ['node1', 'node2'], 'scheduled round-robin');
    assert.match(await cliOk(['lab', 'get', 'deploy'], { lab: LAB }), /^web\s+3\/3\s+3\s+3\s+\d+s$/m);

    const again = await apply(`${DEPLOY(3)}---\n${WEB_SVC}`);
    assert.deepEqual(again.stdout.trim().split('\n').sort(), [
      'deployment.apps/web unchanged',
      'service/web unchanged',
    ]);

    assert.equal(
      (await cliOk(['lab', 'scale', 'deployment', 'web', '--replicas', '5'], { lab: LAB })).trim(),
      'deployment.apps/web scaled',
    );
    assert.equal((await webPods()).length, 5);
    await cliOk(['lab', 'scale', 'deployment/web', '--replicas', '1'], { lab: LAB });
    await waitFor('4 pods to terminate', async () => (await webPods()).length === 1);
    // Applying the same manifest again keeps the scaled replicas (kubectl apply's three-way merge).
    const kept = await apply(DEPLOY(3));
    assert.equal(kept.stdout.trim(), 'deployment.apps/web unchanged');
    assert.equal((await webPods()).length, 1);
    // A changed replicas field in the manifest does set them.
    assert.match(
      (await apply(DEPLOY(2))).stdout,
      /^deployment\.apps\/web configured\npod\/web-\S+ created on node\d/,
    );
    assert.equal((await webPods()).length, 2);
    const missing = await cli(['lab', 'scale', 'deployment', 'nope', '--replicas', '1'], { lab: LAB });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /deployments\.apps "nope" not found/);
  });

  it('pods on different nodes reach each other through the world, which routes each pod CIDR to its node', async () => {
    const cross = (name: string, node: string) =>
      pod(name, '[]').replace('app: web', 'app: cross').replace('nodeName: node1', `nodeName: ${node}`);
    const both = `${cross('x1', 'node1')}---\n${cross('x2', 'node2')}`;
    assert.equal((await apply(both)).code, 0);
    const x1 = (await get('pods')).find((p) => p.metadata.name === 'x1')!;
    const r = await cli(
      ['lab', 'exec', 'x2', '--', 'ping', '-c', '1', '-W', '2', (x1.status as { podIP: string }).podIP],
      {
        lab: LAB,
      },
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await cliOk(['lab', 'delete', '-f', manifest(both)], { lab: LAB });
  });

  it('EndpointSlices follow pods: named ports per pod, a deleted pod terminating for its grace period, then gone', async () => {
    const deployPods = (await webPods()).map((p) => p.metadata.name).sort();
    assert.equal(deployPods.length, 2);
    assert.deepEqual(await picture('web'), [`8080: ${deployPods.join(',')}`]);
    const r = await apply(
      [
        pod('other', '[{name: http, containerPort: 9090}]'),
        pod('noport', '[{name: metrics, containerPort: 9100}]'),
        pod(
          'slow',
          '[{name: http, containerPort: 8080}]',
          '  terminationGracePeriodSeconds: 15\n',
          `["sh", "-c", "trap '' TERM; exec sleep 1000"]`,
        ),
      ].join('---\n'),
    );
    assert.equal(r.code, 0, r.stderr);
    // The pod without a port named "http" serves no port of the service (a slice with no ports).
    assert.deepEqual(await picture('web'), [
      `-: noport`,
      `8080: ${[...deployPods, 'slow'].sort().join(',')}`,
      '9090: other',
    ]);
    const [slice] = (await slicesOf('web')).filter((s) => s.ports[0]?.port === 8080);
    const slow = slice!.endpoints.find((e) => e.targetRef.name === 'slow')!;
    assert.deepEqual(slow.conditions, { ready: true, serving: true, terminating: false });
    assert.equal(slow.nodeName, 'node1');
    assert.deepEqual(slice!.ports, [{ name: 'http', protocol: 'TCP', port: 8080 }]);

    // Deleting "slow": its process ignores SIGTERM, so it lives out its grace period (15 s, long enough
    // to look at it on a loaded machine) while its endpoint is terminating (not ready, still serving);
    // then SIGKILL, and the endpoint goes.
    const t0 = Date.now();
    const deleting = cli(['lab', 'delete', '-f', manifest(pod('slow', '[]'))], { lab: LAB });
    const terminating = await waitFor(
      'slow to be terminating',
      async () => {
        const e = (await slicesOf('web'))
          .flatMap((s) => s.endpoints)
          .find((x) => x.targetRef.name === 'slow');
        return e?.conditions.terminating ? e : undefined;
      },
      15_000,
    );
    assert.deepEqual(terminating.conditions, { ready: false, serving: true, terminating: true });
    assert.match(await cliOk(['lab', 'get', 'pods', 'slow'], { lab: LAB }), /slow\s+1\/1\s+Terminating/);
    const del = await deleting;
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout.trim(), 'pod "slow" deleted');
    assert.ok(Date.now() - t0 >= 14900, `waited out the grace period (${Date.now() - t0} ms)`);
    assert.deepEqual(await picture('web'), [`-: noport`, `8080: ${deployPods.join(',')}`, '9090: other']);

    // Every agent holds exactly the lab's slices and services.
    const labSlices = (await get<Slice>('endpointslices', '-A')).map(
      (s) => `${s.metadata.namespace}/${s.metadata.name}`,
    );
    for (const node of ['node1', 'node2']) {
      const api = new AgentApi(agentSocketPath(LAB, node));
      assert.deepEqual(Object.keys(await api.endpointSlices()).sort(), labSlices.sort(), node);
      assert.deepEqual(Object.keys(await api.services()).sort(), ['default/web'], node);
    }
    await cliOk(['lab', 'delete', '-f', manifest([pod('other', '[]'), pod('noport', '[]')].join('---\n'))], {
      lab: LAB,
    });
  });

  it('allocates NodePorts in 30000-32767 and refuses a duplicate, applying nothing of the file', async () => {
    const np = (name: string, nodePort?: number) => `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080${nodePort ? `, nodePort: ${nodePort}` : ''}}]
`;
    assert.equal((await apply(`${np('np1', 30080)}---\n${np('np2')}`)).code, 0);
    const svcs = await get('svc');
    const port = (n: string) =>
      (svcs.find((s) => s.metadata.name === n)!.spec as { ports: { nodePort: number }[] }).ports[0]!.nodePort;
    assert.equal(port('np1'), 30080);
    assert.ok(
      port('np2') >= 30000 && port('np2') <= 32767 && port('np2') !== 30080,
      `np2 got ${port('np2')}`,
    );
    const dup = await apply(`${pod('bystander', '[]')}---\n${np('np3', 30080)}`);
    assert.notEqual(dup.code, 0);
    assert.match(
      dup.stderr,
      /The Service "np3" is invalid: spec\.ports\[0\]\.nodePort: Invalid value: 30080: provided port is already allocated/,
    );
    assert.equal((await get('svc')).filter((s) => s.metadata.name === 'np3').length, 0, 'np3 not applied');
    assert.equal((await get('pods')).filter((p) => p.metadata.name === 'bystander').length, 0, 'nor the pod');
  });

  it('a bad Service is refused naming the field; EndpointSlices cannot be applied', async () => {
    const bad = await apply(`${pod('bystander', '[]')}---
apiVersion: v1
kind: Service
metadata: {name: bad}
spec:
  selector: {app: web}
  ports: [{port: 80, protocol: SCTP}]
`);
    assert.notEqual(bad.code, 0);
    assert.match(
      bad.stderr,
      /The Service "bad" is invalid: spec\.ports\[0\]\.protocol: Unsupported value: "SCTP"/,
    );
    assert.equal(
      (await get('pods')).filter((p) => p.metadata.name === 'bystander').length,
      0,
      'nothing applied',
    );
    const slice = await apply(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: []
`);
    assert.notEqual(slice.code, 0);
    assert.match(
      slice.stderr,
      /EndpointSlice \(document 1\): the lab's endpoint controller writes EndpointSlices/,
    );
    const deploy = await apply(DEPLOY(1).replaceAll('app: web', 'app: api'));
    assert.notEqual(deploy.code, 0);
    assert.match(deploy.stderr, /spec\.selector: Invalid value: .*field is immutable/);
  });

  it('lab get svc and endpointslices print kubectl columns; a LoadBalancer gets a pool IP the world routes to the nodes', async () => {
    const r = await apply(`apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec:
  clusterIP: None
  selector: {app: web}
`);
    assert.equal(r.code, 0, r.stderr);
    const svcs = await get('svc');
    const lb = svcs.find((s) => s.metadata.name === 'lb')!;
    const spec = lb.spec as { clusterIP: string; ports: { nodePort: number }[] };
    const ingress = (lb.status as { loadBalancer: { ingress: { ip: string }[] } }).loadBalancer.ingress[0]!
      .ip;
    assert.match(ingress, /^192\.168\.210\.\d+$/);
    assert.match(spec.clusterIP, /^10\.96\.\d+\.\d+$/);
    const table = await cliOk(['lab', 'get', 'svc'], { lab: LAB });
    const lines = table.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/);
    const row = (n: string) => lines.find((l) => l.startsWith(`${n} `))!.split(/\s+/);
    assert.deepEqual(row('lb').slice(0, 5), [
      'lb',
      'LoadBalancer',
      spec.clusterIP,
      ingress,
      `80:${spec.ports[0]!.nodePort}/TCP,53:${spec.ports[1]!.nodePort}/UDP`,
    ]);
    assert.deepEqual(row('headless').slice(0, 5), ['headless', 'ClusterIP', 'None', '<none>', '<none>']);
    assert.deepEqual(row('np1').slice(0, 5).slice(1), ['NodePort', row('np1')[2]!, '<none>', '80:30080/TCP']);
    const wide = await cliOk(['lab', 'get', 'svc', 'lb', '-o', 'wide'], { lab: LAB });
    assert.match(wide, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\s+SELECTOR\n/);
    assert.match(wide, /\sapp=web\n$/);
    const slices = await cliOk(['lab', 'get', 'endpointslices'], { lab: LAB });
    assert.match(slices, /^NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE$/m);
    const podIps = (await webPods()).map((p) => (p.status as { podIP: string }).podIP);
    assert.match(
      slices,
      new RegExp(`^web-${SUFFIX}\\s+IPv4\\s+8080\\s+(${podIps.join('|')}),(${podIps.join('|')})\\s`, 'm'),
    );
    assert.match(slices, new RegExp(`^lb-${SUFFIX}\\s+IPv4\\s+8080,53\\s`, 'm'));
    const all = await cliOk(['lab', 'get', 'svc', '-A'], { lab: LAB });
    assert.match(all.split('\n')[0]!, /^NAMESPACE\s+NAME\s+TYPE/);
    // The world namespace (the outside) routes the LoadBalancer IP to both nodes.
    const route = spawnSync('ip', ['-n', `cts-${LAB}-world`, 'route', 'show', `${ingress}/32`], {
      encoding: 'utf8',
    });
    assert.match(route.stdout, /nexthop via 192\.168\.211\.1 /);
    assert.match(route.stdout, /nexthop via 192\.168\.211\.2 /);
    // externalTrafficPolicy: Local sends the outside only to nodes with a ready local endpoint;
    // external IPs are routed as well.
    const local =
      await apply(`${pod('pinned', '[]').replace('app: web', 'app: pinned').replace('node1', 'node2')}---
apiVersion: v1
kind: Service
metadata: {name: lblocal}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  externalIPs: [203.0.113.7]
  selector: {app: pinned}
  ports: [{port: 80}]
`);
    assert.equal(local.code, 0, local.stderr);
    const localIp = (
      (await get('svc')).find((x) => x.metadata.name === 'lblocal')!.status as {
        loadBalancer: { ingress: { ip: string }[] };
      }
    ).loadBalancer.ingress[0]!.ip;
    const show = (prefix: string) =>
      spawnSync('ip', ['-n', `cts-${LAB}-world`, 'route', 'show', prefix], {
        encoding: 'utf8',
      }).stdout.trim();
    assert.equal(show(`${localIp}/32`), `${localIp} via 192.168.211.2 dev br0`);
    assert.equal(show('203.0.113.7/32'), '203.0.113.7 via 192.168.211.2 dev br0');
    // Deleting the service releases the route.
    await cliOk(['lab', 'delete', '-f', manifest('apiVersion: v1\nkind: Service\nmetadata: {name: lb}\n')], {
      lab: LAB,
    });
    const gone = spawnSync('ip', ['-n', `cts-${LAB}-world`, 'route', 'show', `${ingress}/32`], {
      encoding: 'utf8',
    });
    assert.equal(gone.stdout.trim(), '');
  });

  it('a restarted agent holds the services and slices again', async () => {
    const api = new AgentApi(agentSocketPath(LAB, 'node2'));
    const before = Object.keys(await api.services()).sort();
    // The agent loses one while it is down (its state is stale); the restart brings it back.
    await api.deleteService('default', 'web');
    assert.ok(!Object.keys(await api.services()).includes('default/web'));
    await cliOk(['lab', 'agent', 'restart', 'node2'], { lab: LAB });
    assert.deepEqual(Object.keys(await api.services()).sort(), before);
    const labSlices = (await get<Slice>('endpointslices', '-A')).map(
      (s) => `${s.metadata.namespace}/${s.metadata.name}`,
    );
    assert.deepEqual(Object.keys(await api.endpointSlices()).sort(), labSlices.sort());
  });
});
