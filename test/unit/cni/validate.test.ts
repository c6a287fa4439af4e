import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentPost } from '../../../src/cni/agent-client.js';
import { AgentTransportError } from '../../../src/cni/agent-client.js';
import { CniError } from '../../../src/cni/errors.js';
import { runPlugin } from '../../../src/cni/plugin-core.js';
import { buildAddResult } from '../../../src/cni/result.js';
import { parseCniArgs, parseInvocation, parseNetConf } from '../../../src/cni/validate.js';

const conf = (o: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: '1.0.0', name: 'ciliumts', type: 'cilium-ts', ...o });
const baseEnv = (cmd: string, extra: Record<string, string | undefined> = {}) => ({
  CNI_COMMAND: cmd,
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/run/netns/pod1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1',
  ...extra,
});

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CniError, `expected CniError, got ${e}`);
    return e.cniCode;
  }
  assert.fail('expected an error');
}

const sampleResult = () =>
  buildAddResult({
    hostInterface: { name: 'lxc0123456789a', mac: '02:00:00:00:00:01' },
    podInterface: { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/run/netns/pod1' },
    ipv4: { ip: '10.200.0.5', gateway: '10.200.0.1' },
    ipv6: { ip: 'fd00:10:200::5', gateway: 'fd00:10:200::1' },
  });

describe('CNI invocation validation', () => {
  it('parses CNI_ARGS', () => {
    assert.deepEqual(parseCniArgs('K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;X=a=b'), {
      K8S_POD_NAMESPACE: 'ns',
      K8S_POD_NAME: 'p',
      X: 'a=b',
    });
    assert.deepEqual(parseCniArgs(''), {});
    assert.equal(
      codeOf(() => parseCniArgs('novalue')),
      4,
    );
  });

  it('ADD: full invocation', () => {
    const inv = parseInvocation(baseEnv('ADD'), conf({ agentSocket: '/run/x.sock', mtu: 1450 }));
    assert.equal(inv.command, 'ADD');
    assert.equal(inv.podNamespace, 'default');
    assert.equal(inv.podName, 'web-1');
    assert.equal(inv.config!.agentSocket, '/run/x.sock');
    assert.deepEqual(inv.cniPath, ['/opt/cni/bin']);
  });

  it('code 4: missing or invalid environment variables, per command', () => {
    assert.equal(
      codeOf(() => parseInvocation({}, conf())),
      4,
    );
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('FROB'), conf())),
      4,
    );
    for (const v of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH']) {
      assert.equal(
        codeOf(() => parseInvocation(baseEnv('ADD', { [v]: undefined }), conf())),
        4,
        v,
      );
      assert.equal(
        codeOf(() =>
          parseInvocation(baseEnv('CHECK', { [v]: undefined }), conf({ prevResult: sampleResult() })),
        ),
        4,
        v,
      );
    }
    // DEL does not need CNI_NETNS
    assert.equal(parseInvocation(baseEnv('DEL', { CNI_NETNS: undefined }), conf()).netns, '');
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('DEL', { CNI_IFNAME: undefined }), conf())),
      4,
    );
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('ADD', { CNI_CONTAINERID: 'bad/id' }), conf())),
      4,
    );
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('ADD', { CNI_IFNAME: 'waytoolonginterfacename' }), conf())),
      4,
    );
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('ADD', { CNI_NETNS: 'relative/path' }), conf())),
      4,
    );
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('ADD', { CNI_ARGS: 'garbage' }), conf())),
      4,
    );
  });

  it('code 6: malformed or empty config', () => {
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('ADD'), '{not json')),
      6,
    );
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('ADD'), '')),
      6,
    );
    assert.equal(
      codeOf(() => parseNetConf('[1,2]')),
      6,
    );
    assert.equal(
      codeOf(() => parseNetConf('null')),
      6,
    );
  });

  it('code 7: invalid network config', () => {
    assert.equal(
      codeOf(() => parseNetConf(JSON.stringify({ name: 'n', type: 't' }))),
      7,
    );
    assert.equal(
      codeOf(() => parseNetConf(conf({ name: undefined }))),
      7,
    );
    assert.equal(
      codeOf(() => parseNetConf(conf({ name: '-bad' }))),
      7,
    );
    assert.equal(
      codeOf(() => parseNetConf(conf({ type: 3 }))),
      7,
    );
    assert.equal(
      codeOf(() => parseNetConf(conf({ agentSocket: 'relative.sock' }))),
      7,
    );
    assert.equal(
      codeOf(() => parseNetConf(conf({ mtu: 'big' }))),
      7,
    );
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('CHECK'), conf())),
      7,
    );
  });

  it('code 1: incompatible versions (and CHECK before 0.4.0)', () => {
    assert.equal(
      codeOf(() => parseNetConf(conf({ cniVersion: '0.2.0' }))),
      1,
    );
    assert.equal(
      codeOf(() => parseNetConf(conf({ cniVersion: '2.0.0' }))),
      1,
    );
    assert.equal(
      codeOf(() => parseInvocation(baseEnv('CHECK'), conf({ cniVersion: '0.3.1', prevResult: {} }))),
      1,
    );
    for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0'])
      assert.equal(parseNetConf(conf({ cniVersion: v })).cniVersion, v);
  });

  it('code 2: unsupported field', () => {
    const e = (() => {
      try {
        parseNetConf(conf({ ipam: { type: 'host-local' } }));
      } catch (err) {
        return err as CniError;
      }
      return undefined;
    })();
    assert.equal(e?.cniCode, 2);
    assert.match(e!.details!, /ipam\.type="host-local"/);
    assert.equal(parseNetConf(conf({ ipam: { type: 'cluster-pool' } })).ipam!.type, 'cluster-pool');
  });
});

describe('plugin (runPlugin with a fake agent)', () => {
  const calls: Array<{ path: string; body: unknown }> = [];
  const agent =
    (handler: (path: string, body: unknown) => { status: number; body: unknown } | Error): AgentPost =>
    async (path, body) => {
      calls.push({ path, body });
      const r = handler(path, body);
      if (r instanceof Error) throw r;
      return r;
    };
  const exists = () => true;

  it('VERSION prints the supported versions', async () => {
    const out = await runPlugin({ env: { CNI_COMMAND: 'VERSION' }, stdin: '' });
    assert.equal(out.exitCode, 0);
    assert.deepEqual(JSON.parse(out.stdout), {
      cniVersion: '1.0.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'],
    });
  });

  it('ADD forwards the request and prints the result, converted to the config version', async () => {
    calls.length = 0;
    const post = agent(() => ({ status: 200, body: { result: sampleResult() } }));
    const out = await runPlugin({ env: baseEnv('ADD'), stdin: conf(), post, netnsExists: exists });
    assert.equal(out.exitCode, 0, out.stdout);
    assert.deepEqual(JSON.parse(out.stdout), sampleResult());
    assert.equal(calls[0]!.path, '/v1/cni/add');
    const body = calls[0]!.body as Record<string, unknown>;
    assert.equal(body.containerId, 'abc123');
    assert.equal(body.netns, '/run/netns/pod1');
    assert.equal(body.ifName, 'eth0');
    assert.equal(body.podNamespace, 'default');
    assert.equal(body.podName, 'web-1');
    assert.equal((body.config as Record<string, unknown>).name, 'ciliumts');

    const old = await runPlugin({
      env: baseEnv('ADD'),
      stdin: conf({ cniVersion: '0.4.0' }),
      post,
      netnsExists: exists,
    });
    const r = JSON.parse(old.stdout);
    assert.equal(r.cniVersion, '0.4.0');
    assert.deepEqual(
      r.ips.map((i: { version: string }) => i.version),
      ['4', '6'],
    );
  });

  it('ADD: agent error objects pass through; invalid result → 101', async () => {
    const post = agent(() => ({ status: 500, body: { code: 11, msg: 'busy', details: 'restoring' } }));
    const out = await runPlugin({
      env: baseEnv('ADD'),
      stdin: conf({ cniVersion: '0.4.0' }),
      post,
      netnsExists: exists,
    });
    assert.equal(out.exitCode, 1);
    assert.deepEqual(JSON.parse(out.stdout), {
      cniVersion: '0.4.0',
      code: 11,
      msg: 'busy',
      details: 'restoring',
    });
    const bad = agent(() => ({
      status: 200,
      body: { result: { cniVersion: '1.0.0', ips: [{ address: 'nope' }] } },
    }));
    const out2 = await runPlugin({ env: baseEnv('ADD'), stdin: conf(), post: bad, netnsExists: exists });
    assert.equal(JSON.parse(out2.stdout).code, 101);
    const weird = agent(() => ({ status: 502, body: { oops: true } }));
    assert.equal(
      JSON.parse(
        (await runPlugin({ env: baseEnv('ADD'), stdin: conf(), post: weird, netnsExists: exists })).stdout,
      ).code,
      103,
    );
  });

  it('ADD: missing netns → 3; agent unreachable → 100; timeout → 102', async () => {
    const post = agent(() => ({ status: 200, body: {} }));
    const out = await runPlugin({ env: baseEnv('ADD'), stdin: conf(), post, netnsExists: () => false });
    assert.equal(JSON.parse(out.stdout).code, 3);
    const down = agent(() => new AgentTransportError('unreachable', 'ENOENT'));
    assert.equal(
      JSON.parse(
        (await runPlugin({ env: baseEnv('ADD'), stdin: conf(), post: down, netnsExists: exists })).stdout,
      ).code,
      100,
    );
    const slow = agent(() => new AgentTransportError('timeout', 'slow'));
    assert.equal(
      JSON.parse(
        (await runPlugin({ env: baseEnv('ADD'), stdin: conf(), post: slow, netnsExists: exists })).stdout,
      ).code,
      102,
    );
  });

  it('every validation failure prints an error object with a non-zero exit', async () => {
    const cases: Array<[Record<string, string | undefined>, string, number]> = [
      [baseEnv('ADD', { CNI_CONTAINERID: undefined }), conf(), 4],
      [baseEnv('ADD'), '{', 6],
      [baseEnv('ADD'), conf({ cniVersion: '9.9.9' }), 1],
      [baseEnv('ADD'), conf({ name: '' }), 7],
      [baseEnv('ADD'), conf({ ipam: { type: 'dhcp' } }), 2],
    ];
    for (const [env, stdin, code] of cases) {
      const out = await runPlugin({
        env,
        stdin,
        post: agent(() => ({ status: 200, body: {} })),
        netnsExists: exists,
      });
      assert.equal(out.exitCode, 1);
      const o = JSON.parse(out.stdout);
      assert.equal(o.code, code, out.stdout);
      assert.equal(typeof o.msg, 'string');
      assert.equal(typeof o.cniVersion, 'string');
    }
  });

  it('DEL is idempotent: unknown container → success; unreachable → success only if netns is gone, else 11', async () => {
    const unknown = agent(() => ({ status: 404, body: { code: 3, msg: 'unknown container' } }));
    assert.deepEqual(
      await runPlugin({ env: baseEnv('DEL'), stdin: conf(), post: unknown, netnsExists: exists }),
      { exitCode: 0, stdout: '' },
    );
    const down = agent(() => new AgentTransportError('unreachable', 'ECONNREFUSED'));
    assert.deepEqual(
      await runPlugin({ env: baseEnv('DEL'), stdin: conf(), post: down, netnsExists: () => false }),
      {
        exitCode: 0,
        stdout: '',
      },
    );
    assert.deepEqual(
      await runPlugin({
        env: baseEnv('DEL', { CNI_NETNS: '' }),
        stdin: conf(),
        post: down,
        netnsExists: exists,
      }),
      {
        exitCode: 0,
        stdout: '',
      },
    );
    const out = await runPlugin({ env: baseEnv('DEL'), stdin: conf(), post: down, netnsExists: exists });
    assert.equal(out.exitCode, 1);
    assert.equal(JSON.parse(out.stdout).code, 11);
    const okAgent = agent(() => ({ status: 200, body: {} }));
    assert.deepEqual(
      await runPlugin({ env: baseEnv('DEL'), stdin: conf(), post: okAgent, netnsExists: exists }),
      { exitCode: 0, stdout: '' },
    );
  });

  it('CHECK forwards; agent error is printed', async () => {
    calls.length = 0;
    const post = agent(() => ({
      status: 409,
      body: { code: 104, msg: 'route missing', details: 'default via 10.200.0.1' },
    }));
    const out = await runPlugin({
      env: baseEnv('CHECK'),
      stdin: conf({ prevResult: sampleResult() }),
      post,
      netnsExists: exists,
    });
    assert.equal(calls[0]!.path, '/v1/cni/check');
    assert.equal(out.exitCode, 1);
    assert.equal(JSON.parse(out.stdout).code, 104);
  });

  it('STATUS: agent down → 50; GC forwards valid attachments', async () => {
    const down = agent(() => new AgentTransportError('unreachable', 'ENOENT'));
    const st = await runPlugin({ env: { CNI_COMMAND: 'STATUS' }, stdin: conf(), post: down });
    assert.equal(JSON.parse(st.stdout).code, 50);
    calls.length = 0;
    const up = agent(() => ({ status: 200, body: {} }));
    assert.equal((await runPlugin({ env: { CNI_COMMAND: 'STATUS' }, stdin: conf(), post: up })).exitCode, 0);
    const att = [{ containerID: 'abc', ifname: 'eth0' }];
    const gc = await runPlugin({
      env: { CNI_COMMAND: 'GC' },
      stdin: conf({ 'cni.dev/valid-attachments': att }),
      post: up,
    });
    assert.equal(gc.exitCode, 0);
    assert.deepEqual((calls[1]!.body as { validAttachments: unknown }).validAttachments, att);
  });
});
