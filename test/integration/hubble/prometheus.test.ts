/**
 * A real Prometheus (Debian's prometheus package, /usr/bin/prometheus) scrapes
 * the Hubble metrics endpoint every second; its query API must return our series.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gauge } from 'prom-client';
import { type MetricsServer, startMetricsServer } from '../../../src/hubble/index.js';
import { type Fixture, startFixture } from './fixture.js';

const PROMETHEUS = '/usr/bin/prometheus';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

describe('Prometheus scrapes the hubble metrics endpoint', () => {
  let fx: Fixture;
  let metrics: MetricsServer;
  let prom: ChildProcess | undefined;
  let promUrl = '';
  let promLog = '';

  before(async () => {
    assert.ok(existsSync(PROMETHEUS), `${PROMETHEUS} missing (apt-get install -y prometheus)`);
    fx = await startFixture();
    // an agent-side series registered in the same registry
    const g = new Gauge({ name: 'cilium_endpoint', help: 'Number of endpoints', registers: [] });
    fx.metrics.register(g);
    g.set(3);
    metrics = await startMetricsServer(fx.metrics.registry, { port: 0 });
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const cfgDir = join(fx.dir, 'prom');
    mkdirSync(join(cfgDir, 'data'), { recursive: true });
    writeFileSync(
      join(cfgDir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: hubble',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${metrics.port}']`,
        '',
      ].join('\n'),
    );
    prom = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(cfgDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(cfgDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prom.stderr?.on('data', (d: Buffer) => {
      promLog = (promLog + d.toString()).slice(-4000);
    });
  });

  after(async () => {
    if (prom && prom.exitCode === null) {
      prom.kill('SIGTERM');
      await new Promise((r) => prom!.once('exit', r));
    }
    await metrics?.close();
    await fx?.close();
  });

  it('serves /metrics in Prometheus text format on loopback', async () => {
    const res = await fetch(metrics.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /# TYPE hubble_flows_processed_total counter/);
    assert.match(text, /hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} 1/);
    assert.equal((await fetch(metrics.url.replace('/metrics', '/other'))).status, 404);
  });

  it("Prometheus's query API returns our series", async () => {
    const query = async (q: string): Promise<PromResult[]> => {
      const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await r.json()) as { status: string; data: { result: PromResult[] } };
      assert.equal(body.status, 'success');
      return body.data.result;
    };
    const deadline = Date.now() + 60_000;
    let flows: PromResult[] = [];
    while (Date.now() < deadline) {
      try {
        flows = await query('hubble_flows_processed_total');
        if (flows.length > 0) break;
      } catch {
        // not up yet
      }
      if (prom?.exitCode !== null) assert.fail(`prometheus exited: ${promLog}`);
      await sleep(500);
    }
    assert.ok(flows.length > 0, `no hubble series scraped within 60 s; prometheus log: ${promLog}`);
    const trace = flows.find((r) => r.metric.type === 'Trace' && r.metric.subtype === 'to-endpoint');
    assert.ok(trace, JSON.stringify(flows));
    assert.equal(trace.metric.verdict, 'FORWARDED');
    assert.equal(trace.metric.job, 'hubble');
    assert.equal(trace.value[1], '2');
    const drops = await query('hubble_drop_total');
    assert.deepEqual(
      drops.map((r) => [r.metric.reason, r.metric.protocol, r.value[1]]),
      [['POLICY_DENIED', 'TCP', '1']],
    );
    const icmp = await query('hubble_icmp_total');
    assert.equal(icmp[0]?.metric.type, 'EchoRequest');
    const port = await query('hubble_port_distribution_total{port="80"}');
    assert.equal(port[0]?.metric.protocol, 'TCP');
    const syn = await query('hubble_tcp_flags_total{flag="SYN"}');
    assert.equal(syn[0]?.metric.family, 'IPv4');
    const ep = await query('cilium_endpoint');
    assert.equal(ep[0]?.value[1], '3');
  });
});
