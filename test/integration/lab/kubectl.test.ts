/**
 * `lab get` and `lab apply` behave like kubectl on a real lab: namespace scoping (-n, -A, default
 * "default"), objects by name and type aliases, -o json|yaml|wide|name, NotFound, and apply saying
 * created / configured / unchanged according to what the lab holds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';

const LAB = labName('kctl');

const pod = (name: string, ns: string, labels: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {${labels}}}
spec:
  containers: [{name: c, command: ["sleep", "infinity"]}]
`;

const PODS = [
  'apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: blue}}\n',
  pod('a', 'default', 'app: a'),
  pod('b', 'x', 'app: b'),
].join('---\n');

const CNP = (port: string) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p1, namespace: x}
spec:
  endpointSelector: {matchLabels: {app: b}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: a}}]
    toPorts: [{ports: [{port: "${port}", protocol: TCP}]}]
`;

type List = { kind: string; items: { kind: string; metadata: { name: string; namespace?: string } }[] };
const get = async (...args: string[]) => cliOk(['lab', 'get', ...args], { lab: LAB });
const names = (l: List) => l.items.map((i) => `${i.metadata.namespace ?? ''}/${i.metadata.name}`);

describe('privileged: lab get and apply follow kubectl', () => {
  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB]);
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('apply says created, then unchanged, then configured, as the lab holds the objects', async () => {
    const first = await cliOk(['lab', 'apply', '-f', manifest(`${PODS}---\n${CNP('80')}`)], { lab: LAB });
    assert.match(first, /^namespace\/x created$/m);
    assert.match(first, /^ciliumnetworkpolicy\.cilium\.io\/p1 created$/m);
    assert.match(first, /^pod\/a created/m);
    assert.match(first, /^pod\/b created/m);
    const again = await cliOk(['lab', 'apply', '-f', manifest(`${PODS}---\n${CNP('80')}`)], { lab: LAB });
    assert.deepEqual(again.trim().split('\n').sort(), [
      'ciliumnetworkpolicy.cilium.io/p1 unchanged',
      'namespace/x unchanged',
      'pod/a unchanged',
      'pod/b unchanged',
    ]);
    // The agent was not asked to change anything: its policy revision stayed.
    const rev = () =>
      cliOk(['policy', 'get', '-o', 'json'], { lab: LAB }).then(
        (o) => (JSON.parse(o) as { revision: number }).revision,
      );
    const before = await rev();
    await cliOk(['lab', 'apply', '-f', manifest(CNP('80'))], { lab: LAB });
    assert.equal(await rev(), before, 'unchanged policy not re-imported');
    const changed = await cliOk(
      ['lab', 'apply', '-f', manifest(`${CNP('81')}---\n${pod('a', 'default', 'app: a, tier: web')}`)],
      { lab: LAB },
    );
    assert.match(changed, /^ciliumnetworkpolicy\.cilium\.io\/p1 configured$/m);
    assert.match(changed, /^pod\/a configured$/m);
    assert.ok((await rev()) > before, 'changed policy imported');
    const a = parse(await get('pod', 'a', '-o', 'yaml')) as { metadata: { labels: Record<string, string> } };
    assert.deepEqual(a.metadata.labels, { app: 'a', tier: 'web' });
    const p1 = JSON.parse(await get('cnp', 'p1', '-n', 'x', '-o', 'json')) as {
      spec: { ingress: { toPorts: { ports: { port: string }[] }[] }[] };
    };
    assert.equal(p1.spec.ingress[0]!.toPorts[0]!.ports[0]!.port, '81', 'get returns the applied document');
    // A pod's spec is immutable: the change is refused and nothing else in the file is applied.
    const r = await cli(
      [
        'lab',
        'apply',
        '-f',
        manifest(`${CNP('82')}---\n${pod('b', 'x', 'app: b').replace('sleep", "infinity', 'sleep", "3600')}`),
      ],
      { lab: LAB },
    );
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /pod x\/b: spec: Forbidden: pod updates may not change fields other than metadata/,
    );
    const p1After = JSON.parse(await get('cnp', 'p1', '-n', 'x', '-o', 'json')) as typeof p1;
    assert.equal(p1After.spec.ingress[0]!.toPorts[0]!.ports[0]!.port, '81', 'nothing applied');
  });

  it('scopes namespaced types to "default", -n NS or -A; cluster-scoped types ignore the namespace', async () => {
    assert.deepEqual(names(JSON.parse(await get('pods', '-o', 'json')) as List), ['default/a']);
    assert.deepEqual(names(JSON.parse(await get('po', '-n', 'x', '-o', 'json')) as List), ['x/b']);
    assert.deepEqual(names(JSON.parse(await get('pods', '-A', '-o', 'json')) as List), ['default/a', 'x/b']);
    assert.deepEqual(names(JSON.parse(await get('pods', '--all-namespaces', '-o', 'json')) as List), [
      'default/a',
      'x/b',
    ]);
    assert.deepEqual(names(JSON.parse(await get('ns', '-n', 'x', '-o', 'json')) as List), ['/default', '/x']);
    assert.deepEqual(names(JSON.parse(await get('nodes', '-n', 'x', '-o', 'json')) as List), ['/node1']);
    assert.deepEqual(names(JSON.parse(await get('cnp', '-o', 'json')) as List), []);
    assert.deepEqual(names(JSON.parse(await get('cnp', '-A', '-o', 'json')) as List), ['x/p1']);
    const cep = JSON.parse(await get('cep', '-n', 'x', '-o', 'json')) as List & {
      items: { status: { id: number; identity: { id: number } } }[];
    };
    assert.deepEqual(names(cep), ['x/b']);
    assert.ok(
      cep.items[0]!.status.id > 0 && cep.items[0]!.status.identity.id >= 256,
      'endpoint and identity',
    );
    const empty = await cli(['lab', 'get', 'pods', '-n', 'nothing-here'], { lab: LAB });
    assert.equal(empty.code, 0);
    assert.equal(empty.stdout, '');
    assert.equal(empty.stderr, 'No resources found in nothing-here namespace.\n');
  });

  it('gets objects by name, by TYPE/NAME and in every type spelling; a missing one is NotFound', async () => {
    for (const t of ['pod', 'pods', 'po', 'Pod']) {
      const o = JSON.parse(await get(t, 'a', '-o', 'json')) as { kind: string; metadata: { name: string } };
      assert.equal(o.kind, 'Pod', t);
      assert.equal(o.metadata.name, 'a');
    }
    const node = JSON.parse(await get('no', 'node1', '-o', 'json')) as {
      kind: string;
      spec: { podCIDR: string };
      status: { addresses: { type: string; address: string }[] };
    };
    assert.equal(node.kind, 'Node');
    assert.equal(node.spec.podCIDR, '10.200.0.0/24');
    assert.deepEqual(node.status.addresses[0], { type: 'InternalIP', address: '192.168.211.1' });
    assert.equal(
      await get('pod/a', 'node/node1', 'namespace/x', '-o', 'name'),
      'pod/a\nnode/node1\nnamespace/x\n',
    );
    assert.equal(await get('cnp', '-n', 'x', '-o', 'name'), 'ciliumnetworkpolicy.cilium.io/p1\n');
    const missing = await cli(['lab', 'get', 'pod', 'a', 'zz', '-o', 'name'], { lab: LAB });
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, 'pod/a\n', 'what exists is still printed');
    assert.equal(missing.stderr, 'Error from server (NotFound): pods "zz" not found\n');
    const inOther = await cli(['lab', 'get', 'pod', 'b'], { lab: LAB });
    assert.equal(inOther.code, 1, 'b is in namespace x, not default');
    const across = await cli(['lab', 'get', 'pod', 'a', '-A'], { lab: LAB });
    assert.notEqual(across.code, 0);
    assert.match(across.stderr, /a resource cannot be retrieved by name across all namespaces/);
    const svc = await cli(['lab', 'get', 'svc'], { lab: LAB });
    assert.equal(svc.code, 0);
    assert.equal(svc.stderr, 'No resources found in default namespace.\n');
    const ep = await cli(['lab', 'get', 'endpoints'], { lab: LAB });
    assert.notEqual(ep.code, 0);
    assert.match(ep.stderr, /the lab has no endpoints .*lab get endpointslices/);
    const bad = await cli(['lab', 'get', 'pods', '-o', 'xml'], { lab: LAB });
    assert.match(bad.stderr, /-o: unknown output format "xml" \(json, yaml, wide, name\)/);
  });

  it('prints kubectl tables, with NAMESPACE for -A and more columns for -o wide', async () => {
    const lines = (s: string) => s.trimEnd().split('\n');
    const plain = lines(await get('pods'));
    assert.match(plain[0]!, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    assert.match(plain[1]!, /^a\s+1\/1\s+Running\s+0\s+\d[\dhms]*$/);
    const all = lines(await get('pods', '-A', '-o', 'wide'));
    assert.match(all[0]!, /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE$/);
    assert.match(all[2]!, /^x\s+b\s+1\/1\s+Running\s+0\s+\d[\dhms]*\s+10\.200\.0\.\d+\s+node1$/);
    const ns = lines(await get('namespaces', '--show-labels'));
    assert.match(
      ns[2]!,
      /^x\s+Active\s+\d[\dhms]*\s+kubernetes\.io\/metadata\.name=x,team=blue$|^x\s+Active\s+\d[\dhms]*\s+team=blue,kubernetes\.io\/metadata\.name=x$/,
    );
    const nodes = lines(await get('nodes', '-o', 'wide'));
    assert.match(nodes[0]!, /^NAME\s+STATUS\s+AGE\s+INTERNAL-IP\s+POD-CIDRS/);
    assert.match(
      nodes[1]!,
      /^node1\s+Ready\s+\d[\dhms]*\s+192\.168\.211\.1\s+10\.200\.0\.0\/24,fd00:10:200::\/120\s/,
    );
    const pol = lines(await get('policies', '-A'));
    assert.match(pol[1]!, /^x\s+CiliumNetworkPolicy\s+p1\s+\d[\dhms]*$/);
  });
});
