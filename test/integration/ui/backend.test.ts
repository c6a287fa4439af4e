/**
 * The Hubble UI's backend API (docs/hubble-ui.md) against a real Hubble server on loopback: flows
 * ingested by the Observer reach the map and the table through GetFlows, the event stream carries
 * new rows and map changes, bad parameters fail naming the field, and the policy view needs an
 * agent. The page's assets are the ones `npm run build` made.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { distRoot } from '../../../src/common/paths.js';
import { HubbleServer, Observer } from '../../../src/hubble/index.js';
import type { FlowRow, MapView, UiFlow } from '../../../src/hubble/ui/model.js';
import { UiServer, type UiStatus } from '../../../src/hubble/ui/server.js';
import { waitFor } from '../../helpers/wait.js';
import { flow, starwars } from '../../unit/ui/helpers/flows.js';

const assetsDir = join(distRoot, 'ui');
const now = () => new Date().toISOString().replace('Z', '000000Z');
const stamp = (f: UiFlow): UiFlow => ({ ...f, time: now() });

describe('hubble ui backend API over a real Hubble server', () => {
  const observer = new Observer({ nodeName: 'test/node1' });
  let hubble: HubbleServer;
  let ui: UiServer;
  const get = async (path: string) => {
    const r = await fetch(`${ui.url}${path.slice(1)}`);
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  };
  const json = async <T>(path: string): Promise<T> => {
    const r = await get(path);
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    return JSON.parse(r.body) as T;
  };

  before(async () => {
    hubble = await HubbleServer.start({ observer, tcp: '127.0.0.1:0' });
    for (let i = 0; i < 5; i++)
      observer.ingestFlow(stamp(flow({ src: starwars.tiefighter(), dst: starwars.deathstar(i) })));
    for (let i = 0; i < 3; i++)
      observer.ingestFlow(
        stamp(flow({ src: starwars.xwing(), dst: starwars.deathstar(i), verdict: 'DROPPED' })),
      );
    ui = await UiServer.start({ listen: '127.0.0.1:0', server: hubble.addresses.tcp!, assetsDir });
    assert.equal(ui.status().reading, false, 'nothing is read before a page or an API request asks');
    await ui.watch();
    await waitFor('the backend to read the 8 flows', () => ui.flowsSeen >= 8);
  });
  after(async () => {
    await ui?.stop();
    await hubble?.stop();
  });

  it('serves the page and its bundled assets', async () => {
    const page = await get('/');
    assert.match(page.type!, /text\/html/);
    assert.match(page.body, /<script type="module" src="\/assets\/app.js">/);
    for (const a of ['/assets/app.js', '/assets/app.css', '/assets/elk-worker.js']) {
      const r = await get(a);
      assert.equal(r.status, 200, a);
      assert.ok(r.body.length > 100, a);
    }
  });

  it('status, namespaces, map and flows from the Observer API', async () => {
    const st = await json<{ connected: boolean; flowsSeen: number; policy: boolean }>('/api/status');
    assert.deepEqual([st.connected, st.flowsSeen, st.policy], [true, 8, false]);
    assert.deepEqual((await json<{ namespaces: string[] }>('/api/namespaces')).namespaces, ['default']);
    const map = await json<MapView>('/api/map?namespace=default');
    assert.deepEqual(map.edges.map((e) => [e.id, e.verdict, e.flows]).sort(), [
      ['default/tiefighter TCP default/deathstar:80', 'forwarded', 5],
      ['default/xwing TCP default/deathstar:80', 'dropped', 3],
    ]);
    const dropped = await json<{ rows: FlowRow[] }>('/api/flows?namespace=default&verdict=DROPPED');
    assert.equal(dropped.rows.length, 3);
    assert.ok(dropped.rows.every((r) => r.source === 'default/xwing' && r.dropReason === 'POLICY_DENIED'));
    const limited = await json<{ rows: FlowRow[] }>('/api/flows?limit=2');
    assert.equal(limited.rows.length, 2);
    assert.ok(limited.rows[0]!.seq < limited.rows[1]!.seq, 'oldest first');
    const one = await json<UiFlow>(`/api/flows/${dropped.rows[0]!.seq}`);
    assert.equal(one.verdict, 'DROPPED');
    assert.equal(one.source?.pod_name, 'xwing');
  });

  it('the event stream carries new matching rows and the map changes', async () => {
    const { lastSeq, version } = await json<{ lastSeq: number; version: number }>('/api/flows?limit=1');
    const ac = new AbortController();
    const res = await fetch(
      `${ui.url}api/events?namespace=default&verdict=FORWARDED&since=${lastSeq}&version=${version}`,
      { signal: ac.signal },
    );
    assert.match(res.headers.get('content-type')!, /text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    observer.ingestFlow(
      stamp(flow({ src: starwars.xwing(), dst: starwars.deathstar(), verdict: 'DROPPED' })),
    );
    observer.ingestFlow(stamp(flow({ src: starwars.tiefighter(), dst: starwars.deathstar(), port: 443 })));
    await waitFor('a flows event and a map event', async () => {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
      return text.includes('event: flows') && text.includes('event: map') ? true : undefined;
    });
    ac.abort();
    const events = text
      .split('\n\n')
      .filter((b) => b.startsWith('event: '))
      .map((b) => ({
        event: b.slice(7, b.indexOf('\n')),
        data: JSON.parse(b.slice(b.indexOf('data: ') + 6)),
      }));
    const rows = events.filter((e) => e.event === 'flows').flatMap((e) => e.data.rows as FlowRow[]);
    // only the forwarded one: the stream applies its filters
    assert.deepEqual(
      rows.map((r) => [r.source, r.port, r.verdict]),
      [['default/tiefighter', 443, 'FORWARDED']],
    );
    const edges = events
      .filter((e) => e.event === 'map')
      .flatMap((e) => (e.data as MapView).edges.map((x) => x.id));
    assert.ok(edges.includes('default/tiefighter TCP default/deathstar:443'));
    assert.ok(edges.includes('default/xwing TCP default/deathstar:80'));
  });

  it('bad parameters fail naming the field; unknown items are 404; no agent is 503', async () => {
    const bad = await get('/api/flows?verdict=MAYBE');
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).field, 'verdict');
    assert.equal(JSON.parse((await get('/api/flows?limit=0')).body).field, 'limit');
    assert.equal(JSON.parse((await get('/api/flows?label=k8s:a%20in%20(')).body).field, 'label');
    assert.equal((await get('/api/flows/999999')).status, 404);
    assert.equal((await get('/api/nothing')).status, 404);
    assert.equal((await get('/api/policy/node?id=nope')).status, 404);
    const noAgent = await get(`/api/policy/node?id=${encodeURIComponent('default/xwing')}`);
    assert.equal(noAgent.status, 503);
    assert.match(JSON.parse(noAgent.body).error, /agent/);
    await assert.rejects(
      UiServer.start({ listen: 'nohost', server: hubble.addresses.tcp!, assetsDir }),
      (e: Error & { field?: string }) => e.field === '--listen',
    );
    await assert.rejects(
      UiServer.start({ listen: '127.0.0.1:0', server: hubble.addresses.tcp!, assetsDir: '/nonexistent' }),
      /npm run build makes it/,
    );
  });

  it('stops reading when no page is open, and catches up from the ring when asked again', async () => {
    const idle = await UiServer.start({
      listen: '127.0.0.1:0',
      server: hubble.addresses.tcp!,
      assetsDir,
      idleAfterMs: 300,
    });
    try {
      const st0 = (await (await fetch(`${idle.url}api/status`)).json()) as UiStatus;
      assert.equal(st0.reading, true);
      const seen = st0.flowsSeen;
      assert.ok(seen >= 8, `the catch-up read the ring's flows before answering (${seen})`);
      await waitFor('the unwatched backend to stop reading', () => !idle.status().reading);
      for (let i = 0; i < 4; i++)
        observer.ingestFlow(
          stamp(flow({ src: starwars.tiefighter(), dst: starwars.deathstar(i), port: 8080 })),
        );
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(idle.flowsSeen, seen, 'flows are not read while nobody watches');
      const st1 = (await (await fetch(`${idle.url}api/status`)).json()) as UiStatus;
      assert.deepEqual([st1.reading, st1.connected, st1.flowsSeen], [true, true, seen + 4]);
      const map = (await (await fetch(`${idle.url}api/map?namespace=default`)).json()) as MapView;
      assert.ok(
        map.edges.some((e) => e.id === 'default/tiefighter TCP default/deathstar:8080'),
        'the flows of the idle time reach the map',
      );
    } finally {
      await idle.stop();
    }
  });
});
