/**
 * The FQDN cells with the agent's control plane, against in-memory maps: an answer the DNS proxy
 * learns reaches the ipcache and the endpoint's policy map before learn() resolves, only IPs from
 * answers are allowed, expiry takes them away, and a restarted agent keeps them (state/fqdn.json).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { FqdnT } from '../../../src/agent/cells/fqdn.js';
import { DnsProxyT } from '../../../src/agent/cells/fqdn-proxy.js';
import { type AgentCellExtras, EndpointsT, PolicyT } from '../../../src/agent/cells/tokens.js';
import type { AgentConfig } from '../../../src/agent/config.js';
import { configFromFlags } from '../../../src/agent/main.js';
import type { Hive } from '../../../src/hive/hive.js';
import { isLocalIdentity } from '../../../src/identity/index.js';
import { type FakeDatapath, fakeDatapath } from '../agent/fake-targets.js';
import { agentFlags } from '../agent/flags.js';
import { addClient, controlPlane } from './control-plane.js';

const dirs: string[] = [];
const hives: Hive<AgentCellExtras>[] = [];
afterEach(async () => {
  for (const h of hives.splice(0)) await h.stop().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function agent(dp: FakeDatapath, dir: string, overrides: Partial<AgentConfig> = {}) {
  const hive = await controlPlane(dp, dir, overrides);
  hives.push(hive);
  return hive;
}

const client = addClient;

const toFqdns = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'to-example', namespace: 'default' },
  spec: {
    endpointSelector: { matchLabels: { app: 'client' } },
    egress: [
      {
        toFQDNs: [{ matchPattern: '*.example.com' }],
        toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }],
      },
    ],
  },
};

/** Identities the endpoint's policy map allows to TCP 443 (egress). */
function allowed443(dp: FakeDatapath, ep: number): number[] {
  return [...(dp.policy.tries.get(ep)?.values() ?? [])]
    .filter((e) => e.key.egress === 1 && e.key.protocol === 6 && e.key.dport === 443 && !e.entry.deny)
    .map((e) => e.key.identity)
    .sort();
}

/** The identity the ipcache map gives an IP's /32 (undefined: no entry). */
const ipcacheId = (dp: FakeDatapath, ip: string) => dp.ipcache.data.get(`${ip}/32`)?.identity;

async function until(what: string, test: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('fqdn cells against in-memory maps', () => {
  it('an answer is in the ipcache and the policy map when learn resolves; other IPs stay out', async () => {
    const dp = fakeDatapath();
    const dir = mkdtempSync(join(tmpdir(), 'cts-fqdn-'));
    dirs.push(dir);
    const hive = await agent(dp, dir);
    const ep = await client(hive, dp);
    await hive.get(PolicyT).importPolicies([toFqdns]);
    assert.deepEqual(allowed443(dp, ep.id), [], 'nothing resolved yet: nothing allowed');
    const proxy = hive.get(DnsProxyT);
    await proxy.learn({
      endpointId: ep.id,
      name: 'www.example.com.',
      ips: [{ ip: '192.0.2.10', ttl: 300 }],
      cnames: [],
    });
    const id = ipcacheId(dp, '192.0.2.10');
    assert.ok(id !== undefined && isLocalIdentity(id), 'the IP has a local identity in the ipcache map');
    assert.deepEqual(allowed443(dp, ep.id), [id], 'and the policy map allows it');
    // A name no selector matches: cached, but no identity, nothing allowed.
    await proxy.learn({
      endpointId: ep.id,
      name: 'evil.org.',
      ips: [{ ip: '192.0.2.66', ttl: 300 }],
      cnames: [],
    });
    assert.equal(ipcacheId(dp, '192.0.2.66'), undefined);
    assert.deepEqual(allowed443(dp, ep.id), [id]);
    // A changed answer adds its IP; the previous one lives on for its TTL.
    await proxy.learn({
      endpointId: ep.id,
      name: 'www.example.com.',
      ips: [{ ip: '192.0.2.11', ttl: 1 }],
      cnames: [],
    });
    const id2 = ipcacheId(dp, '192.0.2.11')!;
    assert.deepEqual(allowed443(dp, ep.id), [id, id2].sort());
    assert.deepEqual(hive.get(FqdnT).cache.lookup('www.example.com', Date.now()), [
      '192.0.2.10',
      '192.0.2.11',
    ]);
    // ...until the TTL runs out: the expiry takes the IP out of both maps.
    await until(
      'the expired IP to go',
      () => ipcacheId(dp, '192.0.2.11') === undefined && allowed443(dp, ep.id).length === 1,
    );
    assert.deepEqual(allowed443(dp, ep.id), [id]);
    // The policy going away takes the identities with it.
    await hive
      .get(PolicyT)
      .deletePolicies([{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'to-example' }]);
    await hive.get(EndpointsT).state.flush();
    assert.equal(ipcacheId(dp, '192.0.2.10'), undefined);
  });

  it('a restarted agent allows the same IPs (state/fqdn.json), and a removed endpoint drops its lookups', async () => {
    const dp = fakeDatapath();
    const dir = mkdtempSync(join(tmpdir(), 'cts-fqdn-'));
    dirs.push(dir);
    let hive = await agent(dp, dir);
    const ep = await client(hive, dp);
    await hive.get(PolicyT).importPolicies([toFqdns]);
    await hive.get(DnsProxyT).learn({
      endpointId: ep.id,
      name: 'api.example.com.',
      ips: [{ ip: '198.51.100.7', ttl: 600 }],
      cnames: ['api-lb.example.com.'],
    });
    assert.equal(allowed443(dp, ep.id).length, 1);
    await until('the state file', () => {
      try {
        return readFileSync(join(dir, 'fqdn.json'), 'utf8').includes('198.51.100.7');
      } catch {
        return false;
      }
    });
    hives.splice(hives.indexOf(hive), 1);
    await hive.stop();
    hive = await agent(dp, dir);
    await hive.get(EndpointsT).state.flush();
    const id = ipcacheId(dp, '198.51.100.7');
    assert.ok(id !== undefined, 'the restored IP is in the ipcache');
    assert.deepEqual(allowed443(dp, ep.id), [id], 'and still allowed');
    assert.deepEqual(
      hive
        .get(FqdnT)
        .cache.rows()
        .map((r) => r.name),
      ['api-lb.example.com.', 'api.example.com.'],
    );
    await hive.get(EndpointsT).remove(hive.get(EndpointsT).manager.get(ep.id)!);
    await until('the lookups to go', () => hive.get(FqdnT).cache.rows().length === 0);
    await until('the identity to go', () => ipcacheId(dp, '198.51.100.7') === undefined);
  });
});

describe('fqdn minimum TTL', () => {
  it('--tofqdns-min-ttl keeps IPs of short answers at least that long; a bad value is refused naming the field', async () => {
    const flags = agentFlags({ podCidr: '10.211.0.0/24', hubbleMetrics: 'dns' });
    assert.equal(configFromFlags({ ...flags, tofqdnsMinTtl: '3600' }).fqdnMinTtlSeconds, 3600);
    assert.equal(configFromFlags(flags).fqdnMinTtlSeconds, 0);
    assert.throws(
      () => configFromFlags({ ...flags, tofqdnsMinTtl: '-5' }),
      /--tofqdns-min-ttl -5: expected whole seconds/,
    );
    const dp = fakeDatapath();
    const dir = mkdtempSync(join(tmpdir(), 'cts-fqdn-'));
    dirs.push(dir);
    const hive = await agent(dp, dir, { fqdnMinTtlSeconds: 3600 });
    const ep = await client(hive, dp);
    await hive.get(PolicyT).importPolicies([toFqdns]);
    await hive.get(DnsProxyT).learn({
      endpointId: ep.id,
      name: 'www.example.com.',
      ips: [{ ip: '192.0.2.20', ttl: 1 }],
      cnames: [],
    });
    assert.equal(hive.get(FqdnT).cache.rows()[0]!.ips[0]!.ttl, 3600);
    await new Promise((r) => setTimeout(r, 1200));
    assert.deepEqual(
      allowed443(dp, ep.id),
      [ipcacheId(dp, '192.0.2.20')],
      "still allowed after the answer's TTL",
    );
  });
});
