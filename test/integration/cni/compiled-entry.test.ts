/**
 * The compiled plugin entry (cilium-ts-cni): what it forwards to the agent, what it prints, its
 * exit codes, and its fallbacks to the node plugin. The agent side is the real CNI handler over a
 * real unix socket; nothing here touches a network namespace.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { CniBackend, handleCniHttp } from '../../../src/cni/agent-side.js';
import { CNI_VERSION, SUPPORTED_VERSIONS } from '../../../src/cni/types.js';
import { NodeIpam } from '../../../src/ipam/index.js';
import { runEntry } from './entry.js';

const ENTRY = [new URL('../../../src/cni/cilium-ts-cni', import.meta.url).pathname];
const NODE_ENTRY = [process.execPath, new URL('../../../src/cni/plugin.js', import.meta.url).pathname];

describe('CNI compiled entry', () => {
  let dir = '';
  let sock = '';
  let server: Server | undefined;
  let ready = true;
  /** Paths the agent was asked for. */
  let seen: string[] = [];
  const backend = new CniBackend({ ipam: new NodeIpam({ ipv4Cidr: '10.201.0.0/24' }) });

  async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void) {
    server = createServer((req, res) => {
      seen.push(req.url ?? '');
      handler(req, res);
    });
    await new Promise<void>((r) => server!.listen(sock, r));
  }
  /** The real handler; `noExec` plays an agent from before /v1/cni/exec. */
  const agent = (noExec = false) =>
    listen((req, res) => {
      if (noExec && req.url === '/v1/cni/exec') res.writeHead(404).end();
      else void handleCniHttp(req, res, backend, () => ready);
    });
  const conf = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ cniVersion: '0.4.0', name: 'net1', type: 'cilium-ts-cni', agentSocket: sock, ...extra });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cni-entry-'));
    sock = join(dir, 'agent.sock');
  });
  afterEach(async () => {
    if (server) await new Promise((r) => server!.close(r));
    server = undefined;
    seen = [];
    ready = true;
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('forwards only the CNI_* environment and stdin byte for byte', async () => {
    let got: { env: Record<string, string>; stdin: string } | undefined;
    await listen((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        got = JSON.parse(body);
        res.writeHead(200, { 'x-cni-exit': '7', 'content-length': 6 }).end('hello\n');
      });
    });
    // Quotes, backslashes, control characters, non-ASCII, and more than one read's worth.
    const odd = `"q" \\ \t\n\u0001 é 漢 ${'x'.repeat(200_000)}`;
    const stdin = conf({ note: odd });
    const r = await runEntry(ENTRY, { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B="2"', SECRET: 'no' }, stdin);
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'hello\n');
    assert.deepEqual(seen, ['/v1/cni/exec']);
    assert.equal(got!.stdin, stdin);
    assert.deepEqual(got!.env, { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B="2"' });
  });

  it('prints the agent-side errors with their codes and the configuration version', async () => {
    await agent();
    const noCmd = await runEntry(ENTRY, {}, conf());
    assert.equal(noCmd.code, 1);
    assert.deepEqual(JSON.parse(noCmd.stdout), {
      cniVersion: '0.4.0',
      code: 4,
      msg: 'required env variables [CNI_COMMAND] missing',
    });
    const badVersion = await runEntry(ENTRY, { CNI_COMMAND: 'STATUS' }, conf({ cniVersion: '9.9.9' }));
    assert.equal(JSON.parse(badVersion.stdout).code, 1);
    const badIpam = await runEntry(ENTRY, { CNI_COMMAND: 'STATUS' }, conf({ ipam: { type: 'host-local' } }));
    assert.equal(JSON.parse(badIpam.stdout).code, 2);
    assert.match(JSON.parse(badIpam.stdout).details, /ipam\.type="host-local"/);
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_PATH: '/x' };
    const missing = await runEntry(ENTRY, { ...env, CNI_NETNS: `${dir}/no-such-netns` }, conf());
    assert.equal(JSON.parse(missing.stdout).code, 3);
    const noConf = await runEntry(ENTRY, { CNI_COMMAND: 'STATUS' }, '');
    assert.equal(JSON.parse(noConf.stdout).code, 6);
    // A DEL of a container the agent never saw succeeds with no output.
    const del = await runEntry(ENTRY, { ...env, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, conf());
    assert.deepEqual([del.code, del.stdout], [0, '']);
    assert.ok(seen.every((p) => p === '/v1/cni/exec'));
  });

  it('STATUS: 0 when the agent is ready, code 50 when it is not', async () => {
    await agent();
    const ok = await runEntry(ENTRY, { CNI_COMMAND: 'STATUS' }, conf());
    assert.deepEqual([ok.code, ok.stdout], [0, '']);
    ready = false;
    const no = await runEntry(ENTRY, { CNI_COMMAND: 'STATUS' }, conf());
    assert.equal(no.code, 1);
    assert.equal(JSON.parse(no.stdout).code, 50);
  });

  it('VERSION without the agent, the same answer as the node plugin', async () => {
    const v = await runEntry(ENTRY, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    assert.equal(v.code, 0);
    const n = await runEntry(NODE_ENTRY, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    assert.deepEqual(JSON.parse(v.stdout), JSON.parse(n.stdout));
    assert.deepEqual(JSON.parse(v.stdout), {
      cniVersion: CNI_VERSION,
      supportedVersions: [...SUPPORTED_VERSIONS],
    });
  });

  it('an unreachable agent and an agent without /v1/cni/exec go to the node plugin', async () => {
    const down = await runEntry(ENTRY, { CNI_COMMAND: 'STATUS' }, conf());
    assert.equal(JSON.parse(down.stdout).code, 50); // the node plugin: agent unreachable → not available
    await agent(true);
    const old = await runEntry(ENTRY, { CNI_COMMAND: 'STATUS' }, conf());
    assert.deepEqual([old.code, old.stdout], [0, '']);
    assert.deepEqual(seen, ['/v1/cni/exec', '/v1/cni/status']);
  });

  it('an agent that does not answer in time: code 102; a broken answer: code 101', async () => {
    await listen(() => {}); // never answers
    const slow = await runEntry(ENTRY, { CNI_COMMAND: 'STATUS', CILIUM_TS_CNI_TIMEOUT_MS: '300' }, conf());
    assert.equal(slow.code, 1);
    assert.equal(JSON.parse(slow.stdout).code, 102);
    server!.closeAllConnections();
    await new Promise((r) => server!.close(r));
    await listen((_req, res) => res.writeHead(200).end('no exit code'));
    const broken = await runEntry(ENTRY, { CNI_COMMAND: 'STATUS' }, conf());
    assert.equal(JSON.parse(broken.stdout).code, 101);
  });
});
