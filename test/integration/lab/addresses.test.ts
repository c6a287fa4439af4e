/**
 * Every address `lab up` prints works from where the CLI runs (the root network namespace): the
 * metrics URL answers /metrics and the Hubble address answers the Observer API, through the lab's
 * forwarder, on 127.0.0.1 only; they survive an agent restart and are gone after `lab down`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRoot } from '../../../src/common/paths.js';
import { labNodeAddresses } from '../../../src/lab/forwarder.js';
import { cli, cliOk, labName } from '../../helpers/cli.js';
import { isAlive, waitGone } from '../../helpers/proc.js';

const LAB = labName('addr');

interface Printed {
  metrics: string;
  hubble: string;
  hubbleUnix: string;
  agent: string;
}

function printed(out: string): Printed {
  const field = (re: RegExp) => {
    const m = re.exec(out);
    assert.ok(m, `lab up prints ${re}:\n${out}`);
    return m[1]!;
  };
  return {
    agent: field(/^ {2}node1 agent\s+(\S+)$/m),
    hubble: field(/^ {2}node1 hubble\s+(127\.0\.0\.1:\d+)\b/m),
    hubbleUnix: field(/^ {2}node1 hubble\s+.*(unix:\/\/\S+)$/m),
    metrics: field(/^ {2}node1 metrics\s+(\S+)$/m),
  };
}

const state = () =>
  JSON.parse(readFileSync(join(runRoot, LAB, 'lab.json'), 'utf8')) as {
    nodes: { agentPid: number; forwarder: { pid: number } }[];
  };

async function scrape(url: string): Promise<string> {
  const r = await fetch(url);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  return r.text();
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.on('connect', () => {
      c.destroy();
      resolve(false);
    });
    c.on('error', () => resolve(true));
  });
}

describe('privileged: lab addresses work from the machine', () => {
  let first: Printed;
  before(async () => {
    first = printed(await cliOk(['lab', 'up', '--name', LAB]));
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('the printed metrics URL answers /metrics from the root namespace', async () => {
    assert.match(first.metrics, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await scrape(first.metrics);
    assert.match(text, /^# TYPE cilium_\w+ /m, 'agent metrics');
    assert.match(text, /^# TYPE hubble_\w+ /m, 'Hubble metrics');
  });

  it('the printed Hubble addresses answer the Observer API', async () => {
    for (const server of [first.hubble, first.hubbleUnix]) {
      const st = JSON.parse(await cliOk(['hubble', 'status', '--server', server, '-o', 'json'])) as {
        max_flows?: number | string;
      };
      assert.equal(Number(st.max_flows), 4095, server);
    }
    const eps = await cliOk(['endpoint', 'list', '-o', 'json'], { lab: LAB });
    assert.ok(Array.isArray(JSON.parse(eps)), `agent socket ${first.agent}`);
  });

  it('listens on the loopback only', () => {
    for (const addr of [first.hubble, new URL(first.metrics).host]) {
      const port = addr.split(':')[1]!;
      const ss = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim();
      assert.match(ss, new RegExp(`\\s127\\.0\\.0\\.1:${port}\\s`), ss);
      assert.equal(ss.split('\n').length, 1, `one listener, on 127.0.0.1: ${ss}`);
    }
  });

  it('keeps the same addresses across an agent restart and a lost forwarder; lab get nodes shows them', async () => {
    process.kill(state().nodes[0]!.agentPid, 'SIGKILL');
    const again = printed(await cliOk(['lab', 'up', '--name', LAB]));
    assert.deepEqual(again, first);
    await scrape(first.metrics);
    process.kill(state().nodes[0]!.forwarder.pid, 'SIGKILL');
    await waitGone([state().nodes[0]!.forwarder.pid]);
    const restarted = printed(await cliOk(['lab', 'up', '--name', LAB]));
    assert.deepEqual(restarted, first, 'the free ports are taken again');
    await scrape(first.metrics);
    const wide = await cliOk(['lab', 'get', 'nodes', '-o', 'wide'], { lab: LAB });
    assert.ok(wide.includes(first.metrics) && wide.includes(first.hubble), wide);
    assert.deepEqual(labNodeAddresses(LAB, 'node1'), {
      agent: first.agent,
      hubble: first.hubble,
      hubbleUnix: first.hubbleUnix,
      metrics: first.metrics,
    });
  });

  it('lab down stops the forwarder and closes the ports', async () => {
    const pid = state().nodes[0]!.forwarder.pid;
    await cliOk(['lab', 'down', '--name', LAB]);
    await waitGone([pid]);
    assert.equal(isAlive(pid), false);
    assert.equal(await refused(Number(new URL(first.metrics).port)), true);
    assert.equal(await refused(Number(first.hubble.split(':')[1])), true);
  });
});
