/**
 * The Hubble UI of a lab of two nodes reads the relay: the Star Wars app spread over both nodes,
 * the policy, real cross-node traffic from both ships; the backend's map (through its HTTP API)
 * has the tiefighter's edge forwarded and the xwing's dropped (the xwing's node forwards the SYN
 * into the overlay, the deathstar's node drops it), and the policy view explains the drop.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projectRoot } from '../../../src/common/paths.js';
import type { MapView } from '../../../src/hubble/ui/model.js';
import { cli, cliOk, labName, manifest, pods, probe } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const LAB = labName('uir');
const read = (f: string) => readFileSync(join(projectRoot, 'examples', 'starwars', f), 'utf8');

async function get<T>(url: string): Promise<T> {
  const r = await fetch(url);
  assert.equal(r.status, 200, `${url}: ${r.status}`);
  return (await r.json()) as T;
}

describe('privileged: Hubble UI through the relay of a two-node lab', () => {
  let url = '';
  before(async () => {
    const up = await cliOk([
      'lab',
      'up',
      '--name',
      LAB,
      '--nodes',
      '2',
      '-f',
      manifest(read('starwars.yaml')),
      '-f',
      manifest(read('sw_l3_l4_policy.yaml')),
    ]);
    const m = /hubble ui\s+(http:\/\/127\.0\.0\.1:\d+\/)\s+\(.*flows from unix:\/\/\S+\/relay\.sock\)/.exec(
      up,
    );
    assert.ok(m, `lab up prints the UI's URL, reading the relay:\n${up}`);
    url = m[1]!;
    const all = [...(await pods(LAB)).values()];
    const node = (name: string) => all.find((p) => p.name === name);
    assert.ok(node('tiefighter') && node('xwing'));
    for (const ds of all.filter((p) => p.name.startsWith('deathstar-'))) {
      assert.equal(await probe(LAB, 'tiefighter', `${ds.ip}:80`), true);
      assert.equal(await probe(LAB, 'xwing', `${ds.ip}:80`, 'tcp', 'default', '300ms'), false);
    }
  });
  after(async () => {
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('maps both nodes’ flows: the tiefighter edge forwarded, the xwing edge dropped, the drop explained', async () => {
    const st = await get<{ source: string; connected: boolean }>(`${url}api/status`);
    assert.match(st.source, /relay\.sock$/);
    assert.ok(st.connected);
    const view = await waitFor(
      'the xwing edge with drops from both deathstar pods',
      async () => {
        const v = await get<MapView>(`${url}api/map?namespace=default`);
        const x = v.edges.find((e) => e.id === 'default/xwing TCP default/deathstar:80');
        return x && x.dropped >= 2 ? v : undefined;
      },
      15_000,
    );
    const edge = (id: string) => view.edges.find((e) => e.id === id)!;
    assert.deepEqual(view.nodes.map((n) => n.id).sort(), [
      'default/deathstar',
      'default/tiefighter',
      'default/xwing',
    ]);
    assert.equal(view.nodes.find((n) => n.id === 'default/deathstar')!.pods.length, 2);
    assert.equal(edge('default/tiefighter TCP default/deathstar:80').verdict, 'forwarded');
    const x = edge('default/xwing TCP default/deathstar:80');
    assert.equal(x.verdict, 'dropped');
    assert.equal(x.forwarded, 0);
    assert.deepEqual(Object.keys(x.dropReasons), ['POLICY_DENIED']);
    const ex = await get<{ verdict: string; change: string }>(
      `${url}api/policy/edge?id=${encodeURIComponent(x.id)}`,
    );
    assert.equal(ex.verdict, 'DENIED');
    assert.match(ex.change, /CiliumNetworkPolicy\/default\/rule1 rule 0/);
  });
});
