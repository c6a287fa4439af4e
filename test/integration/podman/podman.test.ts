/**
 * Podman (Debian's 4.3, CNI network backend) runs containers on a lab node through our CNI plugin:
 * `cilium-ts cni install` writes the configuration list and links the plugin, podman itself calls
 * ADD and DEL, the containers' `--label`s become their identity, and a policy by those labels
 * allows and denies. Podman runs with a private configuration, storage root and plugin directory in a
 * temporary folder (the machine's podman configuration is never read or written), and its plugin
 * directory holds only our plugin, so no other network (podman's default bridge) can be set up.
 * Images come from a local root filesystem built from busybox-static (no registry).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRoot } from '../../../src/common/paths.js';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';
import { uniquePrefix } from '../../helpers/sys.js';

const LAB = labName('pdm');
const NET = 'cilium-ts';
const BUSYBOX = '/bin/busybox';
const podmanMissing = ['podman', 'runc'].some((c) => spawnSync(c, ['--version']).status !== 0);
const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : podmanMissing || !existsSync(BUSYBOX)
      ? 'needs podman, runc and busybox-static (scripts/setup.sh installs them)'
      : false;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('podman runs containers through the cilium-ts CNI plugin', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cts-podman-'));
  const prefix = uniquePrefix('pdm');
  const rootfs = join(dir, 'rootfs');
  const storage = join(dir, 'storage');
  const confDir = join(dir, 'net.d');
  const binDir = join(dir, 'bin');
  const agentSocket = join(runRoot, LAB, 'node1', 'agent.sock');

  /** podman with the private configuration and storage (CONTAINERS_CONF, --root, --runroot). */
  function podman(args: string[], timeoutMs = 60_000): Promise<Run> {
    return new Promise((resolve) => {
      const child = spawn(
        'podman',
        ['--root', storage, '--runroot', join(dir, 'run'), '--storage-driver', 'vfs', ...args],
        {
          env: {
            PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
            CONTAINERS_CONF: join(dir, 'containers.conf'),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(t);
        resolve({ code: code ?? 1, stdout, stderr });
      });
    });
  }
  async function podmanOk(args: string[]): Promise<string> {
    const r = await podman(args);
    if (r.code !== 0)
      throw new Error(`podman ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }
  /** A container from the busybox root filesystem on our network, with labels. */
  const run = (name: string, labels: Record<string, string>, cmd: string[], detach = false) =>
    podman([
      'run',
      ...(detach ? ['-d'] : ['--rm']),
      '--network',
      NET,
      '--name',
      `${prefix}-${name}`,
      ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
      '--rootfs',
      rootfs,
      ...cmd,
    ]);
  const fetch = (name: string, labels: Record<string, string>, ip: string) =>
    run(name, labels, [
      // (busybox's own wget -T crashes in the static build.) Under a shell: as the container's PID 1,
      // wget would ignore timeout's signal and a dropped connection would hang until podman is killed.
      '/bin/sh',
      '-c',
      `timeout 3 wget -q -O - http://${ip}:8080/index.html; rc=$?; exit $rc`,
    ]);
  const endpoints = async () =>
    JSON.parse(await cliOk(['endpoint', 'list', '-o', 'json'], { lab: LAB })) as {
      podName: string;
      ipv4?: string;
      identityLabels: string[];
    }[];
  let serverIp = '';

  before(async () => {
    // The root filesystem: busybox-static and its applets, a page to serve.
    for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'www'])
      mkdirSync(join(rootfs, d), { recursive: true });
    copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
    for (const a of ['sh', 'httpd', 'wget', 'sleep', 'timeout'])
      symlinkSync('busybox', join(rootfs, 'bin', a));
    writeFileSync(join(rootfs, 'www', 'index.html'), 'hello from podman\n');
    writeFileSync(
      join(dir, 'containers.conf'),
      [
        // Within this machine's limits (podman asks for 1048576 open files by default).
        '[containers]',
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${binDir}"]`,
        `network_config_dir = "${confDir}"`,
        `default_network = "${NET}"`,
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        // crun refuses a mixed cgroup v1/v2 layout with controllers on the v2 side; runc takes it.
        'runtime = "runc"',
        'events_logger = "file"',
        `events_logfile_path = "${join(dir, 'events.log')}"`,
        'lock_type = "file"',
        `tmp_dir = "${join(dir, 'tmp')}"`,
        '',
      ].join('\n'),
    );
    await cliOk(['lab', 'up', '--name', LAB]);
    await cliOk([
      'cni',
      'install',
      '--dir',
      confDir,
      '--bin-dir',
      binDir,
      '--name',
      NET,
      '--agent-socket',
      agentSocket,
      '--podman-root',
      storage,
    ]);
  });

  after(async () => {
    await podman(['rm', '-af', '-t', '0']);
    await cli(['lab', 'down', '--name', LAB]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('privileged: podman ADD: the container gets an address from the agent and its labels as identity', async () => {
    await podmanOk(['network', 'ls']);
    const r = await run(
      'srv',
      { app: 'srv', tier: 'web' },
      ['/bin/httpd', '-f', '-p', '8080', '-h', '/www'],
      true,
    );
    assert.equal(r.code, 0, r.stderr);
    const inspect = JSON.parse(await podmanOk(['inspect', `${prefix}-srv`])) as {
      NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
    }[];
    serverIp = inspect[0]!.NetworkSettings.Networks[NET]!.IPAddress;
    assert.match(serverIp, /^10\./);
    const ep = (await endpoints()).find((e) => e.podName === `${prefix}-srv`);
    assert.ok(ep, 'the agent has an endpoint for the container');
    assert.equal(ep.ipv4, serverIp);
    assert.ok(ep.identityLabels.includes('k8s:app=srv'), ep.identityLabels.join(','));
    assert.ok(ep.identityLabels.includes('k8s:tier=web'), ep.identityLabels.join(','));
  });

  it('privileged: two podman containers reach each other through the datapath', async () => {
    const r = await fetch('cli1', { app: 'cli' }, serverIp);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from podman\n');
  });

  it('privileged: a policy by podman label allows one client and denies another', async () => {
    await cliOk(
      [
        'lab',
        'apply',
        '-f',
        manifest(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: srv-from-cli, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: srv}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: cli}}]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`),
      ],
      { lab: LAB },
    );
    const allowed = await fetch('cli2', { app: 'cli' }, serverIp);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(allowed.stdout, 'hello from podman\n');
    const denied = await fetch('other', { app: 'other' }, serverIp);
    assert.notEqual(denied.code, 0, 'app=other must not reach the server');
    assert.equal(denied.stdout, '');
  });

  it('privileged: podman network reload (podman calls DEL, then ADD) keeps identity and policy', async () => {
    await podmanOk(['network', 'reload', `${prefix}-srv`]);
    const inspect = JSON.parse(await podmanOk(['inspect', `${prefix}-srv`])) as {
      NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
    }[];
    serverIp = inspect[0]!.NetworkSettings.Networks[NET]!.IPAddress;
    const eps = (await endpoints()).filter((e) => e.podName === `${prefix}-srv`);
    assert.equal(eps.length, 1);
    assert.equal(eps[0]!.ipv4, serverIp);
    assert.ok(eps[0]!.identityLabels.includes('k8s:app=srv'));
    const allowed = await fetch('cli3', { app: 'cli' }, serverIp);
    assert.equal(allowed.stdout, 'hello from podman\n');
    const denied = await fetch('other2', { app: 'other' }, serverIp);
    assert.notEqual(denied.code, 0);
  });

  it('privileged: podman rm: DEL removes the endpoint and releases the address', async () => {
    const before = JSON.parse(await cliOk(['status', '-o', 'json'], { lab: LAB })) as {
      ipam: { ipv4: { used: number } };
    };
    await podmanOk(['rm', '-f', '-t', '0', `${prefix}-srv`]);
    const after = JSON.parse(await cliOk(['status', '-o', 'json'], { lab: LAB })) as {
      ipam: { ipv4: { used: number } };
    };
    assert.equal(after.ipam.ipv4.used, before.ipam.ipv4.used - 1);
    assert.equal(
      (await endpoints()).find((e) => e.podName === `${prefix}-srv`),
      undefined,
    );
    assert.equal(
      (await endpoints()).find((e) => e.ipv4 === serverIp),
      undefined,
    );
  });
});
