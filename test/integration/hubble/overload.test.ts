/**
 * Overload: events arrive much faster than a follower consumes. The producer
 * never waits, the server keeps answering, memory stays bounded by the ring,
 * and the follower is told how many events it lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ObserverClient } from '../../../src/hubble/index.js';
import { PODS, packet, TCP_ACK, traceEvent } from '../../unit/hubble/helpers/events.js';
import { type Fixture, startFixture } from './fixture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hubble under overload', () => {
  let fx: Fixture;
  let client: ObserverClient;
  before(async () => {
    fx = await startFixture({ capacity: 1023, ingest: false });
    client = new ObserverClient(fx.server.addresses.unix!);
  });
  after(async () => {
    client.close();
    await fx.close();
  });

  it('stays responsive, bounded and counts what a slow follower lost', async () => {
    const { tiefighter: tf, deathstar: ds } = PODS;
    const event = traceEvent({
      obsPoint: 0,
      source: ds.ep,
      srcLabel: tf.id,
      dstLabel: ds.id,
      reason: 1,
      ktimeNs: 1n,
      pkt: packet({ src: tf.ip, dst: ds.ip, proto: 'tcp', sport: 1234, dport: 80, flags: TCP_ACK }),
    });
    // slow follower: takes 20 ms per response
    const ac = new AbortController();
    let received = 0;
    let lostReported = 0;
    const follower = (async () => {
      for await (const r of client.getFlows({ follow: true }, ac.signal)) {
        if (r.lost_events) lostReported += r.lost_events.num_events_lost;
        else received++;
        await sleep(20);
      }
    })();
    await sleep(200);

    const total = 300_000;
    const heapBefore = process.memoryUsage().heapUsed;
    const statusLatencies: number[] = [];
    let produced = 0;
    const t0 = performance.now();
    while (produced < total) {
      // the agent reads the BPF ring in batches; between batches the event loop runs
      for (let i = 0; i < 5000; i++) fx.observer.ingest(event);
      produced += 5000;
      if (produced % 50_000 === 0) {
        const s = performance.now();
        const st = await client.serverStatus();
        statusLatencies.push(performance.now() - s);
        assert.equal(st.seen_flows, produced);
        assert.equal(st.num_flows, 1023);
      }
      await new Promise((r) => setImmediate(r));
    }
    const elapsed = performance.now() - t0;
    fx.observer.recordLostCounter(42); // the datapath's own lost counter
    await sleep(300);
    ac.abort();
    await follower;
    const heapAfter = process.memoryUsage().heapUsed;
    const st = fx.observer.status();

    const rate = (total / elapsed) * 1000;
    process.stdout.write(
      `# overload: ${total} events in ${elapsed.toFixed(0)} ms (${rate.toFixed(0)}/s), follower got ${received}, told lost ${lostReported}, status p100 ${Math.max(...statusLatencies).toFixed(1)} ms, heap Δ ${((heapAfter - heapBefore) / 1e6).toFixed(1)} MB\n`,
    );
    assert.ok(Math.max(...statusLatencies) < 1000, `ServerStatus took ${Math.max(...statusLatencies)} ms`);
    assert.ok(received < total, 'the follower was slower than the producer');
    assert.ok(lostReported > 0, 'the follower was told about lost events');
    assert.ok(st.lost_events_followers > 0);
    assert.equal(st.lost_events_datapath, 42);
    assert.equal(st.seen_flows, total);
    // the ring holds at most 1023 flows; nothing else grows with the event count
    assert.ok(heapAfter - heapBefore < 64e6, `heap grew ${(heapAfter - heapBefore) / 1e6} MB`);
  });
});
