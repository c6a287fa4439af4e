/**
 * `lab apply` through the lab's controller (src/lab/apply-server.ts, src/cli/lab-apply-client.ts):
 * the controller applies what the command sends (the pod's process is its child), through the
 * full CLI and the installed bundle's fast path alike, with the same output, errors and exit codes
 * as a command applying itself; applies at once take turns; with the controller gone the command
 * applies itself and the controller comes back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { cliBundlePath } from '../../../src/cli/entry.js';
import { applySocketPath } from '../../../src/lab/apply-protocol.js';
import { loadLab } from '../../../src/lab/state.js';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';

const LAB = labName('apc');

const pod = (name: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {app: ${name}}}
spec: {containers: [{name: c, command: ["sleep", "infinity"]}]}
`;

function parentPid(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
}

/** The pid of the pod's process and of the lab's controller now. */
function pids(name: string): { pod: number; controller: number } {
  const s = loadLab(LAB)!;
  const p = Object.values(s.pods).find((x) => x.name === name)!;
  return { pod: p.containers[0]!.pid, controller: s.controller!.pid };
}

/** The installed CLI's entry (the bundle's loader), as a user runs `cilium-ts`. */
function bundled(args: string[], input = '') {
  const r = spawnSync(process.execPath, [cliBundlePath, ...args], {
    env: { ...process.env, CILIUM_TS_LAB: LAB },
    input,
    encoding: 'utf8',
  });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** Until the lab's controller takes connections (it starts listening once its modules are loaded). */
async function controllerListening(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(applySocketPath(LAB));
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('the lab controller does not listen');
}

describe('privileged: lab apply through the lab controller', () => {
  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB]);
    await controllerListening();
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('the controller applies what the command sends (CLI and installed entry alike)', async () => {
    const out = await cliOk(['lab', 'apply', '-f', manifest(pod('a'))], { lab: LAB });
    assert.match(out, /^pod\/a created on node1, IP /m);
    let p = pids('a');
    assert.equal(parentPid(p.pod), p.controller, 'the pod was started by the controller');

    const r = bundled(['lab', 'apply', '-f', '-'], pod('b'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pod\/b created on node1, IP /m);
    p = pids('b');
    assert.equal(parentPid(p.pod), p.controller);
    assert.equal(bundled(['lab', 'apply', '-f', '-', '--name', LAB], pod('b')).stdout, 'pod/b unchanged\n');
  });

  it('errors read as from a command applying itself, and nothing is applied', async () => {
    const bad = `${pod('c')}---\napiVersion: v1\nkind: Pod\nmetadata: {name: d}\nspec: {containers: [{name: c}]}\n`;
    const viaCli = await cli(['lab', 'apply', '-f', manifest(bad)], { lab: LAB });
    const viaBundle = bundled(['lab', 'apply', '-f', '-'], bad);
    for (const r of [viaCli, viaBundle]) {
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(
        r.stderr,
        'Error: pod default/d: spec.containers[0].command: required (the lab runs processes, not images)\n',
      );
    }
    assert.equal(loadLab(LAB)!.pods['default/c'], undefined);
    const yaml = bundled(['lab', 'apply', '-f', '-'], 'a: [\n');
    assert.equal(yaml.code, 1);
    assert.match(yaml.stderr, /^Error: -: document 1: YAML: /);
    const missing = bundled(['lab', 'apply', '-f', '/nonexistent/x.yaml']);
    assert.deepEqual([missing.code, missing.stderr], [1, 'Error: -f /nonexistent/x.yaml: no such file\n']);
  });

  it('applies sent at once take turns with each other', async () => {
    const results = await Promise.all(
      ['e', 'f', 'g'].map((n) => cli(['lab', 'apply', '-f', manifest(pod(n))], { lab: LAB })),
    );
    for (const [i, r] of results.entries()) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^pod/${'efg'[i]} created`, 'm'));
    }
    const ips = ['e', 'f', 'g'].map((n) => loadLab(LAB)!.pods[`default/${n}`]!.ipv4);
    assert.equal(new Set(ips).size, 3);
  });

  it('with the controller gone the command applies itself, and the controller comes back', async () => {
    const before = loadLab(LAB)!.controller!.pid;
    process.kill(before, 'SIGKILL'); // its socket file stays behind, refusing connections
    await new Promise((r) => setTimeout(r, 200));
    const r = bundled(['lab', 'apply', '-f', '-'], pod('h'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pod\/h created/m);
    const now = loadLab(LAB)!.controller!.pid;
    assert.notEqual(now, before);
    assert.notEqual(parentPid(pids('h').pod), now, 'applied by the command itself');
    // the new controller listens again
    await controllerListening();
    assert.match(await cliOk(['lab', 'apply', '-f', manifest(pod('i'))], { lab: LAB }), /^pod\/i created/m);
    assert.equal(parentPid(pids('i').pod), now);
  });
});
