import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CniBackend, handleCniHttp } from '../../../src/cni/agent-side.js';
import { hostVethName, setupNodeRouter } from '../../../src/cni/endpoint-plumbing.js';
import { validateResult } from '../../../src/cni/result.js';
import type { CniResult } from '../../../src/cni/types.js';
import { getLink, ip } from '../../../src/datapath/linux/ip.js';
import { deleteNetns } from '../../../src/datapath/linux/netns.js';
import { NodeIpam } from '../../../src/ipam/index.js';
import { isRoot, NetnsFixture } from '../linux/netns-fixture.js';
import { runEntry } from './entry.js';

/** The two plugin entries: the node program, and the compiled one that forwards to the agent. */
const ENTRIES = {
  node: [process.execPath, new URL('../../../src/cni/plugin.js', import.meta.url).pathname],
  compiled: [new URL('../../../src/cni/cilium-ts-cni', import.meta.url).pathname],
} as const;

for (const [entryName, argv] of Object.entries(ENTRIES))
  describe(`CNI plugin end to end, ${entryName} entry (plugin → unix socket → agent backend → netns)`, {
    skip: !isRoot && 'needs root',
  }, () => {
    const plugin = (env: Record<string, string>, stdin: string) => runEntry(argv, env, stdin);
    const fx = new NetnsFixture();
    const ipam = new NodeIpam({ ipv4Cidr: '10.200.5.0/24', ipv6Cidr: 'fd00:10:200::500/120' });
    let node = '';
    let pod = '';
    let dir = '';
    let sock = '';
    let server: Server | undefined;
    let persisted = 0;
    const containerId = 'e2e0123456789abcdef';
    const conf = () =>
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'cilium-ts',
        type: 'cilium-ts',
        agentSocket: sock,
        mtu: 1450,
      });
    const env = (cmd: string, extra: Record<string, string> = {}) => ({
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: pod,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=e2e',
      ...extra,
    });
    let addResult: CniResult | undefined;

    async function startAgent(): Promise<void> {
      const backend = new CniBackend({
        ipam,
        nodeNetns: node,
        hooks: {
          ipamChanged: async () => {
            persisted++;
          },
        },
      });
      server = createServer((req, res) => {
        void handleCniHttp(req, res, backend).then((handled) => {
          if (!handled) res.writeHead(404).end();
        });
      });
      await new Promise<void>((r) => server!.listen(sock, r));
    }
    async function stopAgent(): Promise<void> {
      if (server) await new Promise((r) => server!.close(r));
      server = undefined;
    }

    before(async () => {
      node = await fx.netns('node');
      pod = await fx.netns('pod');
      dir = await mkdtemp(join(tmpdir(), 'cni-e2e-'));
      sock = join(dir, 'agent.sock');
      const r = ipam.routerIPs();
      await setupNodeRouter({ nodeNetns: node, ipv4Router: r.ipv4, ipv6Router: r.ipv6 });
      await startAgent();
    });
    after(async () => {
      await stopAgent();
      await fx.cleanup();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('privileged: VERSION start-up time', async (t) => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await plugin({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
        assert.equal(r.code, 0);
        assert.deepEqual(JSON.parse(r.stdout), {
          cniVersion: '1.0.0',
          supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'],
        });
        times.push(Math.round(r.ms));
      }
      t.diagnostic(`plugin VERSION wall time ms: ${times.join(', ')}`);
    });

    it('privileged: ADD creates the pod interface and prints a valid 1.0.0 result', async (t) => {
      const r = await plugin(env('ADD'), conf());
      t.diagnostic(`plugin ADD wall time ms: ${Math.round(r.ms)}`);
      assert.equal(r.code, 0, r.stdout);
      addResult = JSON.parse(r.stdout) as CniResult;
      assert.deepEqual(validateResult(addResult), []);
      assert.equal(addResult.cniVersion, '1.0.0');
      assert.equal(addResult.interfaces![0]!.name, hostVethName(containerId, 'eth0'));
      assert.deepEqual(addResult.interfaces![1], {
        name: 'eth0',
        mac: addResult.interfaces![1]!.mac,
        sandbox: pod,
        mtu: 1450,
      });
      assert.deepEqual(addResult.ips, [
        { address: '10.200.5.2/32', gateway: '10.200.5.1', interface: 1 },
        { address: 'fd00:10:200::502/128', gateway: 'fd00:10:200::501', interface: 1 },
      ]);
      const podLink = await getLink('eth0', { netns: pod });
      assert.equal(podLink?.address, addResult.interfaces![1]!.mac);
      assert.ok(persisted >= 1);
      // idempotent ADD for the same container + ifName keeps the addresses
      const again = await plugin(env('ADD'), conf());
      assert.equal(again.code, 0, again.stdout);
      assert.deepEqual(JSON.parse(again.stdout).ips, addResult.ips);
    });

    it('privileged: CHECK passes, then reports a broken route with code 104', async () => {
      const chk = JSON.stringify({ ...JSON.parse(conf()), prevResult: addResult });
      const ok = await plugin(env('CHECK'), chk);
      assert.equal(ok.code, 0, ok.stdout);
      assert.equal(ok.stdout, '');
      await ip(['route', 'del', 'default', 'via', '10.200.5.1'], { netns: pod });
      const bad = await plugin(env('CHECK'), chk);
      assert.notEqual(bad.code, 0);
      const e = JSON.parse(bad.stdout);
      assert.equal(e.code, 104);
      assert.match(e.details, /pod route default via 10\.200\.5\.1 dev eth0/);
    });

    it('privileged: DEL removes everything and is idempotent', async () => {
      const r = await plugin(env('DEL'), conf());
      assert.equal(r.code, 0, r.stdout);
      assert.equal(await getLink(hostVethName(containerId, 'eth0'), { netns: node }), undefined);
      assert.equal(ipam.get({ containerId, ifName: 'eth0' }), undefined);
      const again = await plugin(env('DEL'), conf());
      assert.equal(again.code, 0, again.stdout);
    });

    it('privileged: agent down: ADD → 100, DEL → 11 while the netns exists, success once it is gone', async () => {
      await stopAgent();
      const add = await plugin(env('ADD'), conf());
      assert.equal(JSON.parse(add.stdout).code, 100);
      const del = await plugin(env('DEL'), conf());
      assert.equal(del.code, 1);
      assert.equal(JSON.parse(del.stdout).code, 11);
      await deleteNetns(`${fx.prefix}-pod`);
      const del2 = await plugin(env('DEL'), conf());
      assert.equal(del2.code, 0, del2.stdout);
      const st = await plugin({ CNI_COMMAND: 'STATUS' }, conf());
      assert.equal(JSON.parse(st.stdout).code, 50);
    });
  });
