/**
 * Hubble UI: how fast the backend aggregates flows, how soon the page shows the map of 10,000
 * flows, and what live updates cost the browser over time. The flows come from a real Hubble
 * server (Observer API on loopback) fed with 100 workloads' flows; the page runs in headless
 * Chromium (Debian's package, driven by playwright-core).
 *
 * - backend: flows/s the UI's aggregation (map + table store + rows) takes on one core, against
 *   hubble observe's compact printing of the same flows (baseline, same run); and flows/s through
 *   the gRPC stream into the backend.
 * - page: time to first map and first rows with 10,000 flows held, against the same page with no
 *   flow (baseline, same run).
 * - live: 1,000 flows/s for --live-seconds (default 150): JS heap and DOM nodes at the start and
 *   every 30 s, growth, frame time p95 and long frames (> 50 ms).
 *
 *   node dist/bench/ui.js [--live-seconds 150]
 */
import { join } from 'node:path';
import { distRoot } from '../src/common/paths.js';
import { formatCompact, HubbleServer, Observer } from '../src/hubble/index.js';
import type { UiFlow } from '../src/hubble/ui/model.js';
import { UiServer } from '../src/hubble/ui/server.js';
import { launchChromium } from '../test/integration/ui/browser.js';
import { flow, pod, WORLD } from '../test/unit/ui/helpers/flows.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const LIVE_SECONDS = arg('--live-seconds', 150);

const WORKLOADS = Array.from({ length: 100 }, (_, i) =>
  pod(`ns${i % 4}`, `w${i}-7d4b9c-x${i}`, { app: `svc-${i}`, 'pod-template-hash': '7d4b9c' }, 3000 + i),
);

/** The i-th flow of a 100-workload mesh: each workload talks to three others and the world. */
function meshFlow(i: number, time?: string): UiFlow {
  const a = i % 100;
  const k = Math.floor(i / 100) % 4;
  const dst = k === 3 ? WORLD : WORKLOADS[(a * 7 + k * 13 + 1) % 100]!;
  const spec = {
    src: WORKLOADS[a]!,
    dst,
    port: k === 3 ? 443 : 8080 + k,
    verdict: (a + k) % 9 === 0 ? ('DROPPED' as const) : ('FORWARDED' as const),
    ...(k === 1 && i % 3 === 0 ? { http: { method: 'GET', url: `/api/v${k}/items` } } : {}),
  };
  const f = flow(spec);
  if (time) f.time = time;
  return f;
}

function nowTime(): string {
  const ms = Date.now();
  return `${new Date(ms).toISOString().slice(0, 19)}.${String(ms % 1000).padStart(3, '0')}000000Z`;
}

function rate(n: number, ms: number): string {
  return `${Math.round((n / ms) * 1000).toLocaleString('en-US')}/s`;
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const assetsDir = join(distRoot, 'ui');

async function main(): Promise<void> {
  console.log('# hubble ui');
  // ---- backend aggregation on one core ----
  const N = 200_000;
  const flows = Array.from({ length: 4096 }, (_, i) => meshFlow(i));
  let t = performance.now();
  let sink = 0;
  for (let i = 0; i < N; i++) sink += formatCompact(flows[i % flows.length]!).length;
  const baseMs = performance.now() - t;
  const observer = new Observer({ nodeName: 'bench/node1', capacity: 65_535 });
  const hubble = await HubbleServer.start({ observer, tcp: '127.0.0.1:0' });
  const offline = await UiServer.start({ listen: '127.0.0.1:0', server: 'unix:///nonexistent', assetsDir });
  t = performance.now();
  for (let i = 0; i < N; i++) offline.ingest(flows[i % flows.length]!);
  const aggMs = performance.now() - t;
  await offline.stop();
  console.log(
    `backend aggregation: ${rate(N, aggMs)} flows (map + store + row), baseline hubble observe compact print ${rate(N, baseMs)}: ratio ${(baseMs / aggMs).toFixed(2)}x (${sink > 0 ? 'map ' : ''}${offline.map.size.nodes} nodes, ${offline.map.size.edges} edges)`,
  );

  // ---- through the Observer API ----
  for (let i = 0; i < 10_000; i++) observer.ingestFlow(meshFlow(i, nowTime()));
  t = performance.now();
  const ui = await UiServer.start({ listen: '127.0.0.1:0', server: hubble.addresses.tcp!, assetsDir });
  void ui.watch();
  await until(() => ui.flowsSeen >= 10_000, 60_000);
  const streamMs = performance.now() - t;
  console.log(
    `backend from the Observer API: 10,000 flows in ${streamMs.toFixed(0)} ms (${rate(10_000, streamMs)})`,
  );

  // ---- page: time to first map ----
  const emptyObserver = new Observer({ nodeName: 'bench/empty' });
  const emptyHubble = await HubbleServer.start({ observer: emptyObserver, tcp: '127.0.0.1:0' });
  const emptyUi = await UiServer.start({
    listen: '127.0.0.1:0',
    server: emptyHubble.addresses.tcp!,
    assetsDir,
  });
  const browser = await launchChromium();
  try {
    const firstMap = async (url: string, label: string) => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const t0 = Date.now();
      await page.goto(`${url}?namespace=`);
      await page.waitForSelector('body[data-map-ready]', { timeout: 60_000 });
      const s = (await page.evaluate(
        '({ map: window.__uiStats.firstMapMs, rows: window.__uiStats.firstRowsMs })',
      )) as { map: number; rows: number };
      const wall = Date.now() - t0;
      const counts = (await page.evaluate(`({
        nodes: document.querySelectorAll('[data-node]').length,
        edges: document.querySelectorAll('[data-edge]').length,
        rows: document.querySelectorAll('#rows .row').length,
      })`)) as { nodes: number; edges: number; rows: number };
      console.log(
        `page ${label}: first rows ${s.rows.toFixed(0)} ms, first map ${s.map.toFixed(0)} ms after navigation (${wall} ms wall); ${counts.nodes} nodes, ${counts.edges} edges drawn, ${counts.rows} table rows in the DOM`,
      );
      return { page, mapMs: s.map };
    };
    const empty = await firstMap(emptyUi.url, 'with no flow (baseline)');
    // frame times of an idle page on this machine now: the baseline for the live phase's
    await new Promise((r) => setTimeout(r, 5000));
    const idle = (await empty.page.evaluate('window.__uiStats.p95()')) as number;
    console.log(`idle page: frame p95 ${idle.toFixed(1)} ms over 5 s`);
    await empty.page.close();
    const full = await firstMap(ui.url, 'with 10,000 flows, 100 workloads');
    console.log(`time to first map: ${(full.mapMs / empty.mapMs).toFixed(2)}x the empty page's`);

    // ---- live updates at 1,000 flows/s ----
    const page = full.page;
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const sample = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      const { metrics } = (await cdp.send('Performance.getMetrics')) as {
        metrics: { name: string; value: number }[];
      };
      const get = (n: string) => metrics.find((m) => m.name === n)?.value ?? 0;
      const frames = (await page.evaluate(
        '({ p95: window.__uiStats.p95(), long: window.__uiStats.longFrames, max: window.__uiStats.maxFrameMs })',
      )) as { p95: number; long: number; max: number };
      return { heapMb: get('JSHeapUsedSize') / 2 ** 20, nodes: get('Nodes'), ...frames };
    };
    const start = await sample();
    console.log(
      `live 0 s: heap ${start.heapMb.toFixed(1)} MiB, ${start.nodes} DOM nodes, frame p95 ${start.p95.toFixed(1)} ms`,
    );
    let sent = 10_000;
    const tick = setInterval(() => {
      const time = nowTime();
      for (let i = 0; i < 50; i++) observer.ingestFlow(meshFlow(sent++, time));
    }, 50);
    const t1 = Date.now();
    let last = start;
    for (let s = 30; s <= LIVE_SECONDS; s += 30) {
      await new Promise((r) => setTimeout(r, Math.max(0, t1 + s * 1000 - Date.now())));
      last = await sample();
      console.log(
        `live ${s} s: heap ${last.heapMb.toFixed(1)} MiB, ${last.nodes} DOM nodes, frame p95 ${last.p95.toFixed(1)} ms, long frames ${last.long}, max ${last.max.toFixed(0)} ms, backend ${ui.flowsSeen.toLocaleString('en-US')} flows`,
      );
    }
    clearInterval(tick);
    const secs = (Date.now() - t1) / 1000;
    console.log(
      `live updates: ${Math.round((sent - 10_000) / secs)} flows/s for ${secs.toFixed(0)} s; frame p95 ${last.p95.toFixed(1)} ms = ${(last.p95 / idle).toFixed(2)}x the idle page's; heap growth ${(last.heapMb - start.heapMb).toFixed(1)} MiB (${((last.heapMb / start.heapMb - 1) * 100).toFixed(0)}%), DOM nodes ${start.nodes} → ${last.nodes}`,
    );
  } finally {
    await browser.close();
    await ui.stop();
    await emptyUi.stop();
    await hubble.stop();
    await emptyHubble.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
