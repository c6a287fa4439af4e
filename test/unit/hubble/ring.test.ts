import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_RING_CAPACITY,
  type Flow,
  FlowRing,
  type HubbleEvent,
  Observer,
} from '../../../src/hubble/index.js';
import { PODS, tiefighterSyn } from './helpers/events.js';

function ev(i: number): HubbleEvent {
  const flow = {
    time: new Date(1_700_000_000_000 + i).toISOString(),
    verdict: 'FORWARDED',
    Type: 'L3_L4',
    event_type: { type: 4 },
    Summary: String(i),
  } as Flow;
  return { timeMs: 1_700_000_000_000 + i, sec: 1_700_000_000, nsec: i * 1e6, flow };
}
const ids = (it: Iterable<HubbleEvent>) => [...it].map((e) => Number(e.flow?.Summary));

describe('flow ring', () => {
  it('defaults to upstream capacity 4095 and rejects nonsense', () => {
    assert.equal(new FlowRing().capacity, DEFAULT_RING_CAPACITY);
    assert.equal(DEFAULT_RING_CAPACITY, 4095);
    assert.throws(() => new FlowRing(0), RangeError);
  });

  it('keeps the newest `capacity` events; reads newest-first and oldest-first', () => {
    const r = new FlowRing(4);
    for (let i = 0; i < 3; i++) r.push(ev(i));
    assert.equal(r.size, 3);
    assert.deepEqual(ids(r.oldestFirst()), [0, 1, 2]);
    for (let i = 3; i < 10; i++) r.push(ev(i));
    assert.equal(r.size, 4);
    assert.equal(r.written, 10);
    assert.equal(r.oldestSeq, 6);
    assert.deepEqual(ids(r.oldestFirst()), [6, 7, 8, 9]);
    assert.deepEqual(ids(r.newestFirst()), [9, 8, 7, 6]);
    assert.equal(r.at(5), undefined);
    assert.equal(r.at(10), undefined);
    assert.equal(r.at(7)?.flow?.Summary, '7');
  });

  it('follow yields live events in order and ends on abort', async () => {
    const r = new FlowRing(8);
    r.push(ev(0));
    const ac = new AbortController();
    const got: number[] = [];
    const done = (async () => {
      for await (const e of r.follow({ signal: ac.signal })) {
        got.push(Number(e.flow?.Summary));
        if (got.length === 3) ac.abort();
      }
    })();
    await new Promise((res) => setImmediate(res));
    for (let i = 1; i <= 3; i++) r.push(ev(i));
    await done;
    assert.deepEqual(got, [1, 2, 3]);
  });

  it('a follower overtaken by the producer gets a HUBBLE_RING_BUFFER loss notice with the exact count', async () => {
    const r = new FlowRing(4);
    const it = r.follow({ from: 0 });
    for (let i = 0; i < 10; i++) r.push(ev(i)); // producer never waits
    const first = (await it.next()).value!;
    assert.deepEqual(first.lost?.source, 'HUBBLE_RING_BUFFER');
    assert.equal(first.lost?.num_events_lost, 6);
    const rest: number[] = [];
    for (let i = 0; i < 4; i++) rest.push(Number((await it.next()).value!.flow?.Summary));
    assert.deepEqual(rest, [6, 7, 8, 9]);
    assert.equal(r.followerLost, 6);
    await it.return();
  });
});

describe('observer queries over the ring', () => {
  const obs = new Observer({ nodeName: 'n1', capacity: 100, uuid: false });
  for (let i = 0; i < 50; i++) obs.ingestFlow(ev(i).flow!);
  const collect = async (q: Parameters<Observer['getFlows']>[0]) => {
    const out: number[] = [];
    for await (const e of obs.getFlows(q)) out.push(e.flow ? Number(e.flow.Summary) : -1);
    return out;
  };

  it('last N (oldest first), first N, all', async () => {
    assert.deepEqual(await collect({ number: 3 }), [47, 48, 49]);
    assert.deepEqual(await collect({ number: 3, first: true }), [0, 1, 2]);
    assert.equal((await collect({})).length, 50);
  });

  it('since/until select by flow time', async () => {
    assert.deepEqual(await collect({ sinceMs: 1_700_000_000_045 }), [45, 46, 47, 48, 49]);
    assert.deepEqual(await collect({ sinceMs: 1_700_000_000_010, untilMs: 1_700_000_000_012 }), [10, 11, 12]);
    assert.deepEqual(await collect({ number: 2, untilMs: 1_700_000_000_012 }), [11, 12]);
  });

  it('last N counts only matching flows; loss notices pass and do not count', async () => {
    obs.recordLost(7);
    obs.ingestFlow(ev(50).flow!);
    const out: string[] = [];
    for await (const e of obs.getFlows({ number: 2 }))
      out.push(e.lost ? `lost:${e.lost.num_events_lost}` : e.flow!.Summary!);
    assert.deepEqual(out, ['49', 'lost:7', '50']);
    assert.equal(obs.status().lost_events_datapath, 7);
    obs.recordLostCounter(10);
    obs.recordLostCounter(12);
    assert.equal(obs.status().lost_events_datapath, 7 + 10 + 2);
  });

  it('first with follow is refused', () => {
    assert.throws(() => obs.getFlows({ first: true, follow: true }), /first cannot be used with follow/);
  });

  it('status reports ring and counters', () => {
    const st = obs.status();
    assert.equal(st.max_flows, 100);
    assert.equal(st.seen_flows, 51);
    assert.ok(st.num_flows >= 51);
    assert.ok(st.uptime_ns > 0);
    assert.ok(st.flows_rate > 0);
  });
});

describe('observer: datapath events in the ring', () => {
  it('a flow read from the ring is the flow ingested, as the node knew it then', async () => {
    const ds = PODS.deathstar;
    let dsPod = 'deathstar';
    const obs = new Observer({
      nodeName: 'n1',
      capacity: 10,
      endpointByIp: (ip) =>
        ip === ds.ip
          ? { id: ds.ep, identity: ds.id, namespace: 'default', podName: dsPod, labels: ds.labels }
          : undefined,
    });
    const bytes = tiefighterSyn(40000, 5_000_000n);
    const ingested = obs.ingest(bytes)!;
    bytes.fill(0); // the datapath's ring reuses its space: the observer kept its own copy
    dsPod = 'deathstar-2'; // and the node's state moves on
    const read: Flow[] = [];
    for await (const r of obs.getFlows({ number: 10 })) if (r.flow) read.push(r.flow);
    assert.equal(read.length, 1);
    assert.deepEqual(read[0], ingested);
    assert.equal(read[0]!.uuid, ingested.uuid);
    assert.equal(read[0]!.destination?.pod_name, 'deathstar');
  });
});
