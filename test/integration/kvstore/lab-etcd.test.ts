/**
 * The lab's etcd in namespaces: a three-member cluster in its own namespace on an underlay bridge
 * (as the lab's world namespace has), reached from a node namespace; members stopped and started
 * one at a time; teardown leaves no process, data or namespace. Needs root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { distRoot } from '../../../src/common/paths.js';
import type { EtcdStatus } from '../../../src/kvstore/index.js';
import {
  createLabEtcd,
  destroyEtcd,
  etcdEndpoints,
  memberRunning,
  probeEtcd,
  startEtcd,
  stopEtcd,
} from '../../../src/lab/etcd.js';
import { cleanupStack, sh, uniquePrefix } from '../../helpers/sys.js';

const PROBE = join(distRoot, 'src', 'lab', 'etcd-probe-main.js');

/** The cluster's status as an agent in `netns` sees it (the probe the lab runs, from another namespace). */
function statusFrom(netns: string, endpoints: string[]): EtcdStatus {
  const r = spawnSync('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, PROBE, ...endpoints], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as EtcdStatus;
}

describe('privileged: lab etcd in its own namespace on the underlay', () => {
  it('privileged: three members reachable from a node namespace; one stopped keeps quorum; teardown removes everything', async () => {
    const cleanup = cleanupStack();
    const prefix = uniquePrefix('cte');
    const underlay = `${prefix}u`;
    const nodeNs = `${prefix}n`;
    const etcdNs = `${prefix}e`;
    const dir = mkdtempSync(join(tmpdir(), 'cts-labetcd-'));
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    const net = `10.${150 + (Number.parseInt(prefix.slice(-2), 16) % 100)}.${Number.parseInt(prefix.slice(-4, -2), 16)}`;
    try {
      // The underlay: a bridge in a namespace (the lab's world), and a node attached to it.
      sh('ip', ['netns', 'add', underlay]);
      cleanup.add(() => void spawnSync('ip', ['netns', 'del', underlay]));
      sh('ip', ['-n', underlay, 'link', 'add', 'br0', 'type', 'bridge']);
      sh('ip', ['-n', underlay, 'link', 'set', 'br0', 'up']);
      sh('ip', ['netns', 'add', nodeNs]);
      cleanup.add(() => void spawnSync('ip', ['netns', 'del', nodeNs]));
      sh('ip', [
        'link',
        'add',
        'eth0',
        'netns',
        nodeNs,
        'type',
        'veth',
        'peer',
        'name',
        `${prefix}n`,
        'netns',
        underlay,
      ]);
      sh('ip', ['-n', underlay, 'link', 'set', `${prefix}n`, 'master', 'br0', 'up']);
      sh('ip', ['-n', nodeNs, 'addr', 'add', `${net}.1/24`, 'dev', 'eth0']);
      sh('ip', ['-n', nodeNs, 'link', 'set', 'eth0', 'up']);

      // Whatever happens below, nothing runs in the etcd namespace and it goes.
      cleanup.add(() => {
        for (const pid of spawnSync('ip', ['netns', 'pids', etcdNs], { encoding: 'utf8' }).stdout.split(
          /\s+/,
        ))
          if (pid) process.kill(Number(pid), 'SIGKILL');
        spawnSync('ip', ['netns', 'del', etcdNs]);
      });
      const ips = [`${net}.241`, `${net}.242`, `${net}.243`];
      const etcd = await createLabEtcd({
        lab: prefix,
        dir,
        netns: etcdNs,
        members: 3,
        underlay: { netns: underlay, bridge: 'br0', prefix: net, prefixLen: 24 },
        link: `${prefix}e`,
      });
      cleanup.add(() => destroyEtcd(etcd));
      assert.deepEqual(
        etcd.members.map((m) => m.ip),
        ips,
      );
      const started = await probeEtcd(etcd);
      assert.ok(started.ok, started.line);
      assert.deepEqual(
        etcdEndpoints(etcd),
        ips.map((ip) => `http://${ip}:2379`),
      );
      assert.ok(etcd.members.every(memberRunning));

      const fromNode = statusFrom(nodeNs, etcdEndpoints(etcd));
      assert.match(fromNode.line, /^etcd: 3\/3 connected, has-quorum, leader http:\/\/10\.[0-9.]+:2379$/);

      // A recorded PID whose start time does not match is not the member: it is left alone.
      const stale = structuredClone(etcd);
      stale.members[0]!.startTime! += 1;
      await stopEtcd(stale, { members: ['etcd1'] });
      assert.ok(memberRunning(etcd.members[0]!), 'a mismatching start time is never signalled');

      await stopEtcd(etcd, { members: ['etcd2'] });
      assert.equal(etcd.members[1]!.pid, undefined);
      const degraded = await probeEtcd(etcd);
      assert.match(
        degraded.line,
        /^etcd: 2\/3 connected, has-quorum, leader .* \(http:\/\/[0-9.]+\.242:2379: /,
      );
      const back = await startEtcd(etcd, { members: ['etcd2'] });
      assert.match(back.line, /^etcd: 3\/3 connected, has-quorum/);

      const pids = etcd.members.map((m) => m.pid!);
      await destroyEtcd(etcd);
      assert.ok(
        pids.every((pid) => !existsSync(`/proc/${pid}`) || /\) Z/.test(sh('cat', [`/proc/${pid}/stat`]))),
        'members stopped',
      );
      assert.equal(existsSync(`/run/netns/${etcdNs}`), false, 'namespace deleted');
      assert.ok(
        etcd.members.every((m) => !existsSync(m.dataDir) && !existsSync(m.log)),
        'data removed',
      );
    } finally {
      await cleanup.run();
    }
  });
});
