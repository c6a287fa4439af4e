/**
 * The proxy's upstream connection leaves from the client's address with a port the kernel picks
 * (src/proxy/sockets.ts transparentConnect): never the client's own port, whose tuple the client's
 * connection holds in the destination's conntrack. In a namespace of its own whose ephemeral range
 * is two ports, each connection that must avoid one of them gets the other.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { distRoot } from '../../../src/common/paths.js';
import { cleanupStack, nodeInNetns, sh, uniquePrefix } from '../../helpers/sys.js';

describe('privileged: the upstream connection never takes the client port', () => {
  const cleanup = cleanupStack();
  after(() => cleanup.run());

  it('with two ephemeral ports, each connection avoiding one gets the other', async () => {
    const ns = `${uniquePrefix('upp')}n`;
    sh('ip', ['netns', 'add', ns]);
    cleanup.add(() => void spawnSync('ip', ['netns', 'del', ns]));
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('nsenter', [
      `--net=/run/netns/${ns}`,
      'sysctl',
      '-q',
      '-w',
      'net.ipv4.ip_local_port_range=40000 40001',
    ]);
    const script = `
      import net from 'node:net';
      import { transparentConnect } from ${JSON.stringify(join(distRoot, 'src/proxy/sockets.js'))};
      // the server closes first: the client side holds no TIME_WAIT, its port is free again
      const server = net.createServer((c) => c.destroy());
      await new Promise((r) => server.listen(8080, '127.0.0.1', r)); // not from the two-port range
      const got = [];
      for (let i = 0; i < 8; i++) {
        const avoid = 40000 + (i % 2);
        const s = transparentConnect({ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: server.address().port }, 0, avoid, 2000);
        await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
        got.push([avoid, s.localPort]);
        await new Promise((r) => { s.on('error', () => {}); s.once('close', r); s.resume(); });
      }
      console.log(JSON.stringify(got));
      server.close();`;
    const p = nodeInNetns(`/run/netns/${ns}`, script);
    cleanup.add(() => void p.kill('SIGKILL'));
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => {
      out += d;
    });
    p.stderr!.on('data', (d) => {
      err += d;
    });
    const code = await new Promise((r) => p.once('close', r));
    assert.equal(code, 0, err);
    const got = JSON.parse(out) as [number, number][];
    assert.equal(got.length, 8);
    for (const [avoid, port] of got) assert.equal(port, avoid === 40000 ? 40001 : 40000, JSON.stringify(got));
  });
});
