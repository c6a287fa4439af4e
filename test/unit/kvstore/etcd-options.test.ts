/** What the etcd backend and the lab's etcd plan refuse before any connection is made. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EtcdKvStore } from '../../../src/kvstore/etcd.js';
import { KvArgumentError } from '../../../src/kvstore/index.js';
import { createLabEtcd, EtcdLabError, etcdEndpoints, planEtcdCluster } from '../../../src/lab/etcd.js';

describe('etcd options', () => {
  it('refuses bad client options naming the field', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ endpoints: [] }, /^endpoints \[\]: give at least one etcd client URL/],
      [{ endpoints: 'http://127.0.0.1:2379' }, /^endpoints "http/],
      [
        { endpoints: ['https://10.0.0.1:2379'] },
        /^endpoints "https:\/\/10\.0\.0\.1:2379": must be http:\/\/host:port \(TLS is not supported\)/,
      ],
      [{ endpoints: ['http://10.0.0.1'] }, /^endpoints "http:\/\/10\.0\.0\.1": must be http:\/\/host:port/],
      [{ endpoints: ['10.0.0.1:70000'] }, /^endpoints "10\.0\.0\.1:70000"/],
      [{ endpoints: ['10.0.0.1:2379/path'] }, /^endpoints/],
      [
        { endpoints: ['10.0.0.1:2379'], leaseTtlSeconds: 1 },
        /^leaseTtlSeconds 1: must be an integer from 2 to 86400/,
      ],
      [{ endpoints: ['10.0.0.1:2379'], leaseTtlSeconds: 2.5 }, /^leaseTtlSeconds 2\.5/],
      [
        { endpoints: ['10.0.0.1:2379'], requestTimeoutMs: 0 },
        /^requestTimeoutMs 0: must be a positive integer/,
      ],
      [{ endpoints: ['10.0.0.1:2379'], statusIntervalMs: -5 }, /^statusIntervalMs -5/],
    ];
    for (const [opts, message] of bad) {
      assert.throws(
        () => new EtcdKvStore(opts as never),
        (e: unknown) =>
          e instanceof KvArgumentError && e.code === 'invalid-argument' && message.test(e.message),
        JSON.stringify(opts),
      );
    }
  });

  it('plans members with names, addresses, data directories and logs, refusing bad input', () => {
    const c = planEtcdCluster({
      dir: '/run/cilium-ts/lab1',
      token: 'lab1',
      netns: 'cts-lab1-etcd',
      members: [{ ip: '192.168.211.241' }, { ip: '192.168.211.242' }, { ip: '192.168.211.243' }],
    });
    assert.equal(c.netns, 'cts-lab1-etcd');
    assert.deepEqual(
      c.members.map((m) => [m.name, m.ip, m.clientPort, m.peerPort, m.dataDir, m.log]),
      [1, 2, 3].map((i) => [
        `etcd${i}`,
        `192.168.211.24${i}`,
        2379,
        2380,
        `/run/cilium-ts/lab1/etcd${i}.data`,
        `/run/cilium-ts/lab1/etcd${i}.log`,
      ]),
    );
    assert.deepEqual(
      etcdEndpoints(c),
      [1, 2, 3].map((i) => `http://192.168.211.24${i}:2379`),
    );
    const one = planEtcdCluster({
      dir: '/d',
      token: 't',
      members: [{ ip: '127.0.0.1', clientPort: 30001, peerPort: 30002 }],
    });
    assert.equal(one.netns, undefined);
    const bad: [Parameters<typeof planEtcdCluster>[0], RegExp][] = [
      [{ dir: '/d', token: 't', members: [] }, /etcd members: 0; give 1 to 7/],
      [{ dir: '/d', token: 'a b', members: [{ ip: '127.0.0.1' }] }, /etcd token "a b"/],
      [
        { dir: '/d', token: 't', members: [{ ip: '10.0.0.300' }] },
        /members\[0\]\.ip "10\.0\.0\.300": not an IPv4 address/,
      ],
      [
        { dir: '/d', token: 't', members: [{ ip: '127.0.0.1', clientPort: 0 }] },
        /members\[0\]\.clientPort 0: not a port/,
      ],
      [
        { dir: '/d', token: 't', members: [{ ip: '127.0.0.1' }, { ip: '127.0.0.1' }] },
        /members\[1\]: 127\.0\.0\.1:2379 is used twice/,
      ],
    ];
    for (const [plan, message] of bad)
      assert.throws(
        () => planEtcdCluster(plan),
        (e: unknown) => e instanceof EtcdLabError && message.test(e.message),
      );
  });

  it('a lab etcd has an odd number of members (a majority must survive); refused before anything is made', async () => {
    for (const members of [0, 2, 4, 9]) {
      await assert.rejects(
        createLabEtcd({
          lab: 'lab1',
          dir: '/nonexistent/etcd',
          netns: 'cts-lab1-etcd',
          members,
          underlay: { netns: 'cts-lab1-world', bridge: 'br0', prefix: '192.168.211', prefixLen: 24 },
        }),
        new RegExp(`^EtcdLabError: --etcd-members: ${members}; give 1, 3, 5 or 7`),
      );
    }
  });
});
