/**
 * North-south services in a lab: connections from the lab's world namespace to a NodePort on the
 * node's address, to a LoadBalancer IP and to an externalIP reach the backends through the
 * node's external-device program (bpf_host); externalTrafficPolicy: Local keeps the client's
 * address; loadBalancerSourceRanges refuses clients outside them; a NodePort without backends
 * answers nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('np');

/** A backend that answers each connection with the address it sees the client at, and its own. */
const WHO = `require('net').createServer((s) => s.end(s.remoteAddress.replace('::ffff:', '') + ' ' + s.localAddress.replace('::ffff:', '') + '\\n')).listen(80)`;

const MANIFESTS = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: srv
        command: ["node", "-e", ${JSON.stringify(WHO)}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-ranges}
spec:
  type: LoadBalancer
  loadBalancerSourceRanges: [10.250.0.0/16]
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: nothing}
spec:
  type: NodePort
  selector: {app: nothing-has-this}
  ports: [{port: 80, nodePort: 30082}]
`;

/** From the world namespace: n connections to addr:port, the lines the backends answered. */
async function fromWorld(
  addr: string,
  port: number,
  n = 1,
): Promise<{ answers: string[]; failures: number }> {
  const script = `const net=require('net');(async()=>{const out=[];let fail=0;for(let i=0;i<${n};i++){await new Promise((r)=>{const s=net.connect({host:'${addr}',port:${port}});let d='';s.setTimeout(1500,()=>{s.destroy();fail++;r()});s.on('data',(c)=>d+=c);s.on('error',()=>{fail++;r()});s.on('close',()=>{if(d)out.push(d.trim());r()})})}console.log(JSON.stringify({answers:out,failures:fail}))})()`;
  const r = await cliOk(['lab', 'exec', '--world', '--', 'node', '-e', script], { lab: LAB });
  return JSON.parse(r.trim().split('\n').pop()!) as { answers: string[]; failures: number };
}

interface Svc {
  metadata: { name: string };
  status?: { loadBalancer?: { ingress?: { ip: string }[] } };
}

describe('privileged: NodePort and LoadBalancer from outside the node', () => {
  let nodeIp = '';
  let worldIp = '';
  let lbIp = '';
  let rangesIp = '';

  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '-f', manifest(MANIFESTS)]);
    const nodes = JSON.parse(await cliOk(['lab', 'get', 'nodes', '-o', 'json'], { lab: LAB })) as {
      items: { status: { addresses: { type: string; address: string }[] } }[];
    };
    nodeIp = nodes.items[0]!.status.addresses.find((a) => a.type === 'InternalIP')!.address;
    const svcs = JSON.parse(await cliOk(['lab', 'get', 'svc', '-o', 'json'], { lab: LAB })) as {
      items: Svc[];
    };
    const ingress = (name: string) =>
      svcs.items.find((s) => s.metadata.name === name)!.status!.loadBalancer!.ingress![0]!.ip;
    lbIp = ingress('web-lb');
    rangesIp = ingress('web-ranges');
    worldIp = (await cliOk(['lab', 'exec', '--world', '--', 'ip', '-4', '-o', 'addr', 'show'], { lab: LAB }))
      .split('\n')
      .map((l) => /inet (\d+\.\d+\.\d+\.\d+)\//.exec(l)?.[1])
      .find((ip) => ip && ip !== '127.0.0.1')!;
    await waitFor(
      'backends to answer',
      async () => (await fromWorld(nodeIp, 30080)).answers.length === 1,
      20_000,
      300,
    );
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('a NodePort on the node address reaches both backends', async () => {
    const r = await fromWorld(nodeIp, 30080, 30);
    assert.equal(r.failures, 0);
    const names = new Set(r.answers.map((a) => a.split(' ')[1]));
    assert.equal(names.size, 2, `both backends: ${[...names]}`);
  });

  it('externalTrafficPolicy: Local keeps the client address', async () => {
    const r = await fromWorld(nodeIp, 30081, 5);
    assert.equal(r.failures, 0);
    for (const a of r.answers) assert.equal(a.split(' ')[0], worldIp, `the backend sees the client: ${a}`);
  });

  it('a LoadBalancer IP from the lab pool is reachable from the world', async () => {
    const r = await fromWorld(lbIp, 80, 10);
    assert.equal(r.failures, 0);
    assert.equal(r.answers.length, 10);
  });

  it('loadBalancerSourceRanges refuses a client outside the ranges', async () => {
    const r = await fromWorld(rangesIp, 80, 2);
    assert.equal(r.answers.length, 0);
    assert.equal(r.failures, 2);
  });

  it('a NodePort without backends answers nothing', async () => {
    const r = await fromWorld(nodeIp, 30082, 1);
    assert.equal(r.answers.length, 0);
  });
});
