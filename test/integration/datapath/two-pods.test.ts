/**
 * End-to-end: a node namespace and two pod namespaces plumbed by the CNI's setupEndpoint, the
 * per-endpoint programs loaded and pinned by a child process that then exits, endpoints and policy
 * written through the map wrappers, real TCP between the pods. The pinned links are re-adopted and
 * the programs swapped in place while an established connection keeps flowing.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setupEndpoint, setupNodeRouter } from '../../../src/cni/endpoint-plumbing.js';
import { distRoot } from '../../../src/common/paths.js';
import {
  type DatapathEvent,
  DatapathLoader,
  DEFS,
  decodeEvent,
  type EndpointDatapathConfig,
} from '../../../src/datapath/index.js';
import { queryTcx, type RingBufReader } from '../../../src/ebpf/index.js';
import { type MapEntry, makeKey } from '../../../src/policy/mapstate.js';
import {
  cleanupStack,
  privateBpffs,
  sh,
  tcpConnects,
  tcpServer,
  tcpStream,
  uniquePrefix,
} from '../../helpers/sys.js';

const PORT = 18500;

function allow(identity: number, egress: 0 | 1, proto: number, port: number, cookie: number): MapEntry {
  return {
    key: makeKey(identity, egress, proto, port, port ? 64 : proto ? 48 : 40),
    entry: { deny: false, proxyPort: 0, ruleCookie: cookie },
  };
}

/** Counts "echo" lines a tcpStream child prints. */
function echoCounter(p: ChildProcess): () => number {
  let n = 0;
  p.stdout!.on('data', (d: Buffer) => {
    n += d
      .toString()
      .split('\n')
      .filter((l) => l.startsWith('echo')).length;
  });
  return () => n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds (checked every 50 ms), at most `ms`; a loaded machine starts node slowly. */
async function eventually(cond: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (cond()) return true;
  return cond();
}

describe('e2e: two pods on one node through the datapath', () => {
  const cleanup = cleanupStack();
  const p = uniquePrefix('dpT');
  const nodeNs = `${p}n`;
  const nodeNetns = `/run/netns/${nodeNs}`;
  const podNetns = (x: string) => `/run/netns/${p}${x}`;
  const oct = 100 + (randomBytes(1)[0]! % 100);
  const router = `10.${oct}.0.1`;
  const eps: Record<'a' | 'b', EndpointDatapathConfig> = {} as never;
  let bpffs: string;
  let loader: DatapathLoader;
  let reader: RingBufReader;

  before(async () => {
    bpffs = privateBpffs(cleanup);
    for (const ns of [nodeNs, `${p}a`, `${p}b`]) {
      sh('ip', ['netns', 'add', ns]);
      cleanup.add(() => void spawnSync('ip', ['netns', 'del', ns]));
    }
    sh('ip', ['-n', nodeNs, 'link', 'set', 'lo', 'up']);
    await setupNodeRouter({ nodeNetns, ipv4Router: router });
    const ids = { a: [11, 5001], b: [12, 5002] } as const;
    for (const x of ['a', 'b'] as const) {
      const ip = `10.${oct}.0.${x === 'a' ? 10 : 20}`;
      const r = await setupEndpoint({
        nodeNetns,
        podNetns: podNetns(x),
        ifName: 'eth0',
        hostIfName: `${p}${x.toUpperCase()}`,
        ipv4: { ip, router },
      });
      eps[x] = {
        id: ids[x][0],
        identity: ids[x][1],
        ipv4: ip,
        mac: r.podMac,
        nodeMac: r.hostMac,
        interface: r.hostIfName,
        netns: nodeNetns,
        routerIpv4: router,
      };
    }
  });
  after(async () => {
    try {
      reader?.close();
      if (loader) {
        loader.remove(eps.a.id);
        loader.remove(eps.b.id);
        loader.close();
      }
    } finally {
      await cleanup.run();
    }
  });

  it('a child process loads, pins and exits; the links stay and are listed for adoption', async () => {
    const lib = join(distRoot, 'src/datapath/index.js');
    const script = `
      import { DatapathLoader } from '${lib}';
      const eps = JSON.parse(process.argv[1]);
      const l = DatapathLoader.open({ bpffs: ${JSON.stringify(bpffs)} });
      for (const ep of eps) { l.writeEndpoint(ep); l.load(ep); }
      l.close();
      console.log('loaded');`;
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, JSON.stringify([eps.a, eps.b])],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0, out);

    loader = DatapathLoader.open({ bpffs });
    reader = loader.maps.events.reader();
    const pinned = loader.restore();
    assert.deepEqual(
      pinned.map((e) => e.id),
      [eps.a.id, eps.b.id],
    );
    for (const e of pinned) {
      assert.ok(e.ingress && e.egress);
      assert.ok(e.ingress.ifindex! > 0);
      const q = queryTcx(e.ingress.ifindex!, 'ingress', nodeNetns);
      assert.deepEqual(q.linkIds, [e.ingress.id]);
    }
    assert.equal(loader.maps.endpoints.list().length, 2);
  });

  let stream: ChildProcess;
  let echoes: () => number;

  it('allows TCP between the pods without policy', async () => {
    await tcpServer(podNetns('b'), PORT, cleanup);
    await tcpServer(podNetns('b'), PORT + 1, cleanup);
    assert.equal(await tcpConnects(podNetns('a'), eps.b.ipv4!, PORT, 2000), true);
    stream = tcpStream(podNetns('a'), eps.b.ipv4!, PORT, 20);
    cleanup.add(() => void stream.kill('SIGKILL'));
    echoes = echoCounter(stream);
    assert.ok(await eventually(() => echoes() > 3), 'long-lived connection established');
  });

  it('denies a new connection once a policy lacks the port (drop 133 at the destination); established flows go on', async () => {
    reader.poll(() => {});
    loader.maps.policy.replace(eps.b.id, [allow(eps.a.identity, 0, 6, PORT + 7, 1), allow(0, 1, 0, 0, 0)], {
      ingressEnforced: true,
      egressEnforced: false,
    });
    const before = echoes();
    assert.equal(await tcpConnects(podNetns('a'), eps.b.ipv4!, PORT + 1, 700), false);
    const ev: DatapathEvent[] = [];
    reader.poll((r) => ev.push(decodeEvent(r)));
    const drop = ev.find((e) => e.kind === 'drop' && e.event.hdr.subtype === DEFS.DROP_POLICY);
    assert.ok(drop && drop.kind === 'drop', `drop event 133 (got ${ev.map((e) => e.kind).join(',')})`);
    assert.equal(drop.event.hdr.source, eps.b.id);
    assert.equal(drop.event.srcLabel, eps.a.identity);
    assert.equal(drop.event.dstLabel, eps.b.identity);
    assert.ok(await eventually(() => echoes() > before + 5), 'the established connection kept flowing');
  });

  it('allows it again when the entry is added', async () => {
    const r = loader.maps.policy.apply(
      eps.b.id,
      { upserts: [allow(eps.a.identity, 0, 6, PORT + 1, 2)], deletes: [] },
      { ingressEnforced: true, egressEnforced: false },
    );
    assert.equal(r.created, false);
    assert.equal(await tcpConnects(podNetns('a'), eps.b.ipv4!, PORT + 1, 2000), true);
  });

  it('re-adopts the pinned links and swaps programs in place without interrupting the connection', async () => {
    const beforeIds = loader.restore();
    const n0 = echoes();
    const res = [loader.load(eps.a), loader.load(eps.b)];
    assert.ok(res.every((r) => r.replaced));
    const afterIds = loader.restore();
    for (const [i, e] of afterIds.entries()) {
      assert.equal(e.ingress!.id, beforeIds[i]!.ingress!.id, 'same link');
      assert.notEqual(e.ingress!.progId, beforeIds[i]!.ingress!.progId, 'new program');
    }
    assert.ok(await eventually(() => echoes() > n0 + 5), 'echoes kept arriving across the swap');
    assert.equal(stream.exitCode, null, 'stream still open');
    assert.equal(await tcpConnects(podNetns('a'), eps.b.ipv4!, PORT + 1, 2000), true);
  });

  it('remove() detaches and unpins', () => {
    const ifindex = loader.restore()[0]!.ingress!.ifindex!;
    assert.equal(loader.remove(eps.a.id), true);
    assert.deepEqual(queryTcx(ifindex, 'ingress', nodeNetns).linkIds, []);
    assert.deepEqual(
      loader.restore().map((e) => e.id),
      [eps.b.id],
    );
    assert.equal(loader.remove(eps.a.id), false);
  });
});
