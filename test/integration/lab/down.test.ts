/**
 * `lab down` signals only processes the lab started: a saved PID that now belongs to an unrelated
 * process (PID reuse after a crash) survives, while a process the lab recorded is stopped with its
 * process group.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runRoot } from '../../../src/common/paths.js';
import { processRef } from '../../../src/lab/process.js';
import { cliOk, labName } from '../../helpers/cli.js';
import { groupMembers, isAlive, waitGone } from '../../helpers/proc.js';
import { cleanupStack } from '../../helpers/sys.js';

/** The start time the lab would record for a process it started (field 22 of /proc/PID/stat). */
const startTime = (pid: number) => processRef(pid).startTime!;

describe('privileged: lab down and recycled PIDs', () => {
  const cleanup = cleanupStack();
  after(() => cleanup.run());

  /** A process in its own process group (as the lab starts agents and containers). */
  function sleeper(): ChildProcess {
    const p = spawn('sleep', ['120'], { detached: true, stdio: 'ignore' });
    cleanup.add(() => {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    });
    return p;
  }

  it('leaves a process alone whose PID the lab state names but which the lab did not start', async () => {
    const lab = labName('down');
    const dir = join(runRoot, lab);
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    // Unrelated processes that got PIDs the lab saved before a crash: the start times differ.
    const strangerAgent = sleeper();
    const strangerContainer = sleeper();
    const legacy = sleeper(); // a state without a start time proves nothing either
    // A process the lab did start: recorded with its real start time; its child shares its group.
    const ours = spawn('sh', ['-c', 'sleep 120 & wait'], { detached: true, stdio: 'ignore' });
    cleanup.add(() => {
      try {
        process.kill(-ours.pid!, 'SIGKILL');
      } catch {
        // stopped by the test
      }
    });
    await new Promise((r) => setTimeout(r, 200));
    const groupOfOurs = groupMembers(ours.pid!).filter((p) => p !== ours.pid);
    assert.equal(groupOfOurs.length, 1, 'the recorded process has a child in its group');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'lab.json'),
      JSON.stringify({
        name: lab,
        createdAt: new Date().toISOString(),
        world: { netns: `cts-${lab}-world`, ip: '192.168.211.254' },
        nodes: [
          {
            name: 'node1',
            netns: `cts-${lab}-node1`,
            underlayIp: '192.168.211.1',
            podCidrV4: '10.200.0.0/24',
            agentPid: strangerAgent.pid,
            agentStartTime: startTime(strangerAgent.pid!) - 1,
          },
        ],
        namespaces: {},
        pods: {
          'default/a': {
            namespace: 'default',
            name: 'a',
            node: 'node1',
            netns: `cts-${lab}-pa`,
            containerId: 'x',
            labels: {},
            containers: [
              {
                name: 'c',
                pid: strangerContainer.pid,
                startTime: startTime(strangerContainer.pid!) + 7,
                log: '/dev/null',
              },
              { name: 'd', pid: legacy.pid, log: '/dev/null' },
              { name: 'e', pid: ours.pid, startTime: startTime(ours.pid!), log: '/dev/null' },
            ],
            createdAt: new Date().toISOString(),
          },
        },
        policies: [],
        nextNode: 0,
      }),
    );
    await cliOk(['lab', 'down', '--name', lab]);
    await waitGone([ours.pid!, ...groupOfOurs]);
    assert.equal(isAlive(ours.pid!), false, 'the recorded process is stopped');
    assert.deepEqual(groupOfOurs.filter(isAlive), [], 'with its process group');
    for (const [what, p] of [
      ['agent PID', strangerAgent],
      ['container PID', strangerContainer],
      ['PID without a start time', legacy],
    ] as const)
      assert.equal(isAlive(p.pid!), true, `the unrelated process behind the saved ${what} survives`);
  });
});
