/**
 * A pod's command is a program run inside the pod's network namespace, never options of the tool
 * that enters it: a command starting with "--net=/proc/1/ns/net" must not reach the root namespace.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRoot } from '../../../src/common/paths.js';
import { cli, cliOk, labName, manifest } from '../../helpers/cli.js';

const LAB = labName('cmd');
const ROOT_NETNS = readlinkSync('/proc/self/ns/net'); // this test runs in the root namespace
// "--net=/proc/1/ns/net" in spirit; PID 1's namespace files may be closed to us inside a container,
// this process's are not, and they name the same root namespace.
const ESCAPE = `--net=/proc/${process.pid}/ns/net`;
const out = (f: string) => join(runRoot, LAB, f); // removed by `lab down`

function pod(name: string, command: string[]): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  containers: [{name: c, command: ${JSON.stringify(command)}}]
`;
}

/** Writes the network namespace the command runs in to a file, then stays up. */
const recordNetns = (file: string) => ['sh', '-c', `readlink /proc/self/ns/net > ${file}; exec sleep 120`];

async function waitForFile(file: string, ms = 3000): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (existsSync(file) && readFileSync(file, 'utf8').trim()) return readFileSync(file, 'utf8').trim();
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

describe('privileged: pod commands run inside the pod namespace', () => {
  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '-f', manifest(pod('inside', recordNetns(out('inside'))))]);
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('a plain command runs in the pod network namespace', async () => {
    const state = JSON.parse(readFileSync(out('lab.json'), 'utf8')) as {
      pods: Record<string, { netns: string }>;
    };
    const podNetns = `net:[${statSync(`/run/netns/${state.pods['default/inside']!.netns}`).ino}]`;
    assert.notEqual(podNetns, ROOT_NETNS);
    assert.equal(await waitForFile(out('inside')), podNetns);
    const viaExec = await cliOk(['lab', 'exec', 'inside', '--', 'readlink', '/proc/self/ns/net'], {
      lab: LAB,
    });
    assert.equal(viaExec.trim(), podNetns, 'lab exec runs there too');
  });

  it('a command starting with --net=<root namespace> does not run in the root namespace', async () => {
    const file = out('escape');
    const r = await cli(['lab', 'apply', '-f', manifest(pod('escape', [ESCAPE, ...recordNetns(file)]))], {
      lab: LAB,
    });
    const seen = await waitForFile(file, 1500);
    assert.notEqual(seen, ROOT_NETNS, 'the command ran in the root network namespace');
    // The lab refuses it the way a runtime does: not an executable, nothing created.
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(
      r.stderr,
      /pod default\/escape: spec\.containers\[0\]\.command\[0\]: "--net=\/proc\/\d+\/ns\/net": executable file not found/,
    );
    const state = JSON.parse(readFileSync(out('lab.json'), 'utf8')) as { pods: Record<string, unknown> };
    assert.deepEqual(Object.keys(state.pods), ['default/inside']);
  });

  it('lab exec passes a command starting with --net=... as the program, not as an option', async () => {
    const r = await cli(['lab', 'exec', 'inside', '--', ESCAPE, 'readlink', '/proc/self/ns/net'], {
      lab: LAB,
    });
    assert.ok(!r.stdout.includes(ROOT_NETNS), `ran in the root namespace: ${r.stdout}`);
    assert.notEqual(r.code, 0, `there is no program called "${ESCAPE}"`);
  });
});
