/**
 * The Star Wars demo's L7 step, as upstream runs it, from the example manifests: with
 * sw_l3_l4_l7_policy.yaml the tiefighter's POST /v1/request-landing through the deathstar
 * Service gets "Ship landed", its PUT /v1/exhaust-port gets "Access denied" from the node's
 * proxy, the xwing is still dropped at L3/L4, and Hubble shows both requests.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Flow } from '../../../src/hubble/types.js';
import { cli, cliOk, labName } from '../../helpers/cli.js';
import { repoRoot } from '../../helpers/paths.js';

const LAB = labName('l7sw');
const example = (f: string) => join(repoRoot, 'examples', 'starwars', f);
const DS = 'deathstar.default.svc.cluster.local';

async function ship(pod: string, method: string, path: string): Promise<{ code: number; out: string }> {
  const r = await cli(['lab', 'exec', pod, '--', 'curl', '-s', '-m', '3', '-X', method, `${DS}${path}`], {
    lab: LAB,
  });
  return { code: r.code, out: r.stdout };
}

/** The node's policy routing rule for packets redirected to its proxies (fwmark -> table 2004). */
const proxyRule = () =>
  spawnSync('nsenter', [`--net=/run/netns/cts-${LAB}-node1`, 'ip', 'rule', 'show'], {
    encoding: 'utf8',
  }).stdout.includes('lookup 2004');

describe('privileged: Star Wars L7', () => {
  let ruleBefore = true;
  before(async () => {
    await cliOk(['lab', 'up', '--name', LAB, '--dns', '-f', example('starwars.yaml')]);
    ruleBefore = proxyRule();
    await cliOk(['lab', 'apply', '-f', example('sw_l3_l4_l7_policy.yaml')], { lab: LAB });
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it("the node has a rule for the proxy's packets once a policy needs the proxy, not before", () => {
    assert.equal(ruleBefore, false, 'no ip rule (route lookups stay on the fast path) without L7 policy');
    assert.equal(proxyRule(), true);
  });

  it('the tiefighter lands, its exhaust-port request is denied, the xwing is dropped', async () => {
    assert.deepEqual(await ship('tiefighter', 'POST', '/v1/request-landing'), {
      code: 0,
      out: 'Ship landed\n',
    });
    assert.deepEqual(await ship('tiefighter', 'PUT', '/v1/exhaust-port'), {
      code: 0,
      out: 'Access denied\r\n',
    });
    assert.notEqual((await ship('xwing', 'POST', '/v1/request-landing')).code, 0);
  });

  it('Hubble shows both requests', async () => {
    const out = await cliOk(
      [
        'hubble',
        'observe',
        '--type',
        'l7',
        '--from-pod',
        'default/tiefighter',
        '-o',
        'json',
        '--last',
        '100',
      ],
      {
        lab: LAB,
      },
    );
    const flows = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Flow);
    const land = flows.find((f) => f.l7?.http?.method === 'POST' && f.l7.type === 'REQUEST');
    const exhaust = flows.find((f) => f.l7?.http?.method === 'PUT' && f.l7.type === 'REQUEST');
    assert.equal(land?.verdict, 'FORWARDED');
    assert.match(land?.l7?.http?.url ?? '', /\/v1\/request-landing$/);
    assert.equal(exhaust?.verdict, 'DROPPED');
    assert.match(exhaust?.l7?.http?.url ?? '', /\/v1\/exhaust-port$/);
    assert.match(exhaust?.destination?.pod_name ?? '', /^deathstar-/);
    const compact = await cliOk(
      ['hubble', 'observe', '--type', 'l7', '--http-status', '403', '--last', '5'],
      { lab: LAB },
    );
    assert.match(
      compact,
      /default\/tiefighter:\d+ \(ID:\d+\) <- default\/deathstar-\S+:80 \(ID:\d+\) http-response DROPPED \(HTTP\/1\.1 403/,
    );
  });
});
