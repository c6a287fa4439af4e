/**
 * The Hubble UI end to end: the Star Wars lab with its L3/L4 policy, real traffic from both ships,
 * the UI the lab started, opened in headless Chromium. The map must show the three workloads, the
 * tiefighter's edge green and the xwing's red; the flows table must filter by verdict and by a
 * clicked edge (with the state in the URL); the policy view must say which rule would have to
 * change for the xwing; with upstream's L7 rule, the edge must sum HTTP requests and response
 * codes and the policy view give the http rule to add. Screenshots go to the test's output folder
 * (UI_TEST_OUTPUT, default <out dir>/test-output/ui).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { distRoot, projectRoot } from '../../../src/common/paths.js';
import { cli, cliOk, labName, manifest, pods, probe } from '../../helpers/cli.js';
import { STARWARS_L7_POLICY } from '../../unit/ui/helpers/flows.js';
import { haveChromium, launchChromium } from './browser.js';

const LAB = labName('ui');
const OUT = process.env.UI_TEST_OUTPUT ?? join(distRoot, 'test-output', 'ui');
const STARWARS = readFileSync(join(projectRoot, 'examples', 'starwars', 'starwars.yaml'), 'utf8');
const POLICY = readFileSync(join(projectRoot, 'examples', 'starwars', 'sw_l3_l4_policy.yaml'), 'utf8');

const TIE_EDGE = '[data-edge][data-source="default/tiefighter"][data-target="default/deathstar"]';
const XWING_EDGE = '[data-edge][data-source="default/xwing"][data-target="default/deathstar"]';

async function rowsOf(page: Page): Promise<{ verdict: string; source: string; destination: string }[]> {
  return (await page.evaluate(
    `[...document.querySelectorAll('#rows .row')].map((r) => ({ verdict: r.dataset.verdict, source: r.dataset.source, destination: r.dataset.destination }))`,
  )) as { verdict: string; source: string; destination: string }[];
}

function text(page: Page, sel: string): Promise<string> {
  return page.evaluate(
    `document.querySelector(${JSON.stringify(sel)})?.textContent ?? ''`,
  ) as Promise<string>;
}

describe('privileged: Hubble UI in headless Chromium on the Star Wars lab', {
  skip: !haveChromium() && 'no chromium',
}, () => {
  let browser: Browser | undefined;
  let page: Page;
  let url = '';

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    const up = await cliOk(['lab', 'up', '--name', LAB, '-f', manifest(STARWARS), '-f', manifest(POLICY)]);
    const m = /hubble ui\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(up);
    assert.ok(m, `lab up prints the UI's URL:\n${up}`);
    url = m[1]!;
    const all = await pods(LAB);
    const ds = [...all.values()].find((p) => p.name.startsWith('deathstar-'))!;
    for (let i = 0; i < 3; i++) {
      assert.equal(await probe(LAB, 'tiefighter', `${ds.ip}:80`), true);
      assert.equal(await probe(LAB, 'xwing', `${ds.ip}:80`, 'tcp', 'default', '300ms'), false);
    }
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await cli(['lab', 'down', '--name', LAB]);
  });

  it('the map shows deathstar, tiefighter and xwing, a green tiefighter edge and a red xwing edge', async () => {
    await page.goto(url);
    await page.waitForSelector('body[data-map-ready]');
    for (const n of ['deathstar', 'tiefighter', 'xwing'])
      await page.waitForSelector(`[data-node="default/${n}"]`, { timeout: 15_000 });
    await page.waitForSelector(`${TIE_EDGE}[data-verdict="forwarded"]`, { timeout: 15_000 });
    await page.waitForSelector(`${XWING_EDGE}[data-verdict="dropped"]`, { timeout: 15_000 });
    // the colours as drawn
    const stroke = (sel: string) =>
      page.evaluate(`getComputedStyle(document.querySelector('${sel} path.line')).stroke`) as Promise<string>;
    assert.equal(await stroke(TIE_EDGE), 'rgb(22, 163, 74)');
    assert.equal(await stroke(XWING_EDGE), 'rgb(220, 38, 38)');
    assert.match(await text(page, `${TIE_EDGE} text.count`), /^TCP\/80 · \d+$/);
    assert.match(page.url(), /namespace=default/);
    await page.screenshot({ path: join(OUT, 'starwars-map.png') });
  });

  it('the flows table filters by verdict, and the filter is in the URL', async () => {
    await page.selectOption('#f-verdict', 'DROPPED');
    await page.waitForFunction(
      `(() => { const r = [...document.querySelectorAll('#rows .row')]; return r.length > 0 && r.every((x) => x.dataset.verdict === 'DROPPED'); })()`,
    );
    const rows = await rowsOf(page);
    assert.ok(rows.every((r) => r.source === 'default/xwing' && r.destination === 'default/deathstar'));
    assert.match(page.url(), /verdict=DROPPED/);
    // a shared URL opens the same view
    const other = await browser!.newPage();
    await other.goto(page.url());
    await other.waitForFunction(
      `(() => { const r = [...document.querySelectorAll('#rows .row')]; return r.length > 0 && r.every((x) => x.dataset.verdict === 'DROPPED'); })()`,
    );
    assert.equal(await other.evaluate(`document.querySelector('#f-verdict').value`), 'DROPPED');
    await other.close();
    await page.click('#clear');
    await page.waitForFunction(
      `[...document.querySelectorAll('#rows .row')].some((x) => x.dataset.verdict === 'FORWARDED')`,
    );
  });

  it('clicking an edge filters the table to its flows', async () => {
    await page.click(`${TIE_EDGE} text.count`);
    await page.waitForFunction(
      `(() => { const r = [...document.querySelectorAll('#rows .row')]; return r.length > 0 && r.every((x) => x.dataset.source === 'default/tiefighter' && x.dataset.destination === 'default/deathstar'); })()`,
    );
    assert.ok((await rowsOf(page)).every((r) => r.verdict === 'FORWARDED'));
    assert.equal(new URL(page.url()).searchParams.get('edge'), 'default/tiefighter TCP default/deathstar:80');
    // the policy view: the rule that allows it
    await page.waitForSelector('#side-body .verdict-ALLOWED');
    // a row's full flow
    await page.click('#rows .row');
    await page.waitForSelector('#detail[open]');
    const flow = JSON.parse(await text(page, '#detail-json')) as {
      source?: { pod_name?: string };
      verdict?: string;
    };
    assert.equal(flow.source?.pod_name, 'tiefighter');
    assert.equal(flow.verdict, 'FORWARDED');
    await page.click('#detail button');
    await page.waitForSelector('#detail:not([open])', { state: 'attached' });
  });

  it('the policy view says which rule would have to change for the dropped edge', async () => {
    await page.click(`${XWING_EDGE} text.count`);
    await page.waitForSelector('#side-body pre.snippet');
    const change = await text(page, '#side-body .change');
    assert.match(
      change,
      /ingress of default\/deathstar is enforced by CiliumNetworkPolicy\/default\/rule1 rule 0/,
    );
    const snippet = await text(page, '#side-body pre.snippet');
    assert.match(snippet, /fromEndpoints:[\s\S]*org: alliance[\s\S]*port: "80"/);
    const rows = await rowsOf(page);
    assert.ok(rows.length > 0 && rows.every((r) => r.verdict === 'DROPPED' && r.source === 'default/xwing'));
    await page.screenshot({ path: join(OUT, 'starwars-dropped-edge.png') });
    // a workload's policies
    await page.click('[data-node="default/deathstar"]');
    await page.waitForFunction(
      `document.querySelector('#side-body')?.textContent?.includes('CiliumNetworkPolicy/default/rule1')`,
    );
  });

  it('with an L7 policy the edge sums HTTP requests and the policy view gives the http rule to add', async () => {
    await cliOk(['lab', 'apply', '-f', manifest(STARWARS_L7_POLICY)], { lab: LAB });
    const ds = [...(await pods(LAB)).values()].find((p) => p.name.startsWith('deathstar-'))!;
    const curl = async (method: string, path: string) =>
      (
        await cli(
          [
            'lab',
            'exec',
            'tiefighter',
            '--',
            'curl',
            '-s',
            '-m',
            '3',
            '-X',
            method,
            `http://${ds.ip}${path}`,
          ],
          {
            lab: LAB,
          },
        )
      ).stdout;
    // paused, the table holds new rows back and counts them
    await page.click('#f-selection');
    await page.waitForFunction(`!document.querySelector('#f-selection').textContent`);
    await page.click('#pause');
    const before = await page.evaluate(`document.querySelector('#rows .row')?.dataset.seq`);
    assert.match(await curl('POST', '/v1/request-landing'), /Ship landed/);
    assert.match(await curl('PUT', '/v1/exhaust-port'), /Access denied/);
    await page.waitForFunction(`/^Resume \\(\\d+\\)$/.test(document.querySelector('#pause').textContent)`);
    assert.equal(await page.evaluate(`document.querySelector('#rows .row')?.dataset.seq`), before);
    await page.click('#pause');
    await page.waitForFunction(
      `document.querySelector('#rows .row')?.dataset.seq !== ${JSON.stringify(before)}`,
    );
    assert.equal(await text(page, '#pause'), 'Pause');
    await page.waitForFunction(
      `document.querySelector(${JSON.stringify(`${TIE_EDGE} text.l7`)})?.textContent?.includes('PUT /v1/exhaust-port')`,
      undefined,
      { timeout: 15_000 },
    );
    const l7 = await text(page, `${TIE_EDGE} text.l7`);
    assert.match(l7, /POST \/v1\/request-landing ×\d+/);
    assert.match(l7, /\[.*200.*403.*\]/);
    await page.click(`${TIE_EDGE} text.count`);
    await page.waitForSelector('#side-body pre.snippet');
    assert.match(await text(page, '#side-body .change'), /deny PUT \/v1\/exhaust-port/);
    assert.match(await text(page, '#side-body pre.snippet'), /method: "PUT"\s+path: "\/v1\/exhaust-port"/);
    await page.waitForFunction(
      `[...document.querySelectorAll('#rows .row span')].some((s) => s.textContent === 'L7_POLICY_DENIED')`,
    );
    await page.screenshot({ path: join(OUT, 'starwars-l7.png') });
    console.log(`# screenshots in ${OUT}`);
  });
});
