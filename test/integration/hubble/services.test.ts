/**
 * Services in flows through the real ingest path (datapath event bytes → Observer.ingest) and the
 * real gRPC server: GetFlows filtered on destination_service/source_service by our client, and the
 * compiled `cilium-ts hubble observe --to-service/--service/--not` run as a process against it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { cliPath } from '../../../src/common/paths.js';
import { type FlowsResponse, type GetFlowsRequestInput, ObserverClient } from '../../../src/hubble/index.js';
import {
  dropEvent,
  PODS,
  packet,
  SERVICES,
  serviceGetter,
  TCP_SYN,
  traceEvent,
} from '../../unit/hubble/helpers/events.js';
import { type Fixture, startFixture } from './fixture.js';

const run = promisify(execFile);
const { tiefighter: tf } = PODS;

async function collect(client: ObserverClient, req: GetFlowsRequestInput): Promise<FlowsResponse[]> {
  const out: FlowsResponse[] = [];
  for await (const r of client.getFlows(req)) out.push(r);
  return out;
}

/** `<verdict>:<summary>` of each flow, oldest first. */
const summaries = (rs: FlowsResponse[]) => rs.map((r) => `${r.flow?.verdict}:${r.flow?.Summary}`);

async function observe(server: string, args: string[]): Promise<string[]> {
  const { stdout } = await run(
    process.execPath,
    [cliPath, 'hubble', 'observe', '--server', server, ...args],
    {
      env: { ...process.env, TZ: 'UTC' },
      timeout: 20_000,
    },
  );
  return stdout.split('\n').filter((l) => l !== '');
}

describe('services in flows over the Observer gRPC API', () => {
  let fx: Fixture;
  let client: ObserverClient;
  before(async () => {
    // the sample events: verdict and trace tiefighter → deathstar pod :80, its SYN-ACK reply, a policy
    // drop xwing → deathstar :80, DNS over IPv6 to the coredns pod, ICMP to the world
    fx = await startFixture({ ...serviceGetter() });
    const s = (n: number) => BigInt(n) * 1_000_000_000n;
    // a SYN to the deathstar ClusterIP before tc-level translation, and one to a service without backends
    fx.observer.ingest(
      traceEvent({
        obsPoint: 5,
        source: tf.ep,
        srcLabel: tf.id,
        dstLabel: 2,
        reason: 0,
        ktimeNs: s(6),
        pkt: packet({
          src: tf.ip,
          dst: SERVICES.deathstar.vip,
          proto: 'tcp',
          sport: 51000,
          dport: 80,
          flags: TCP_SYN,
        }),
      }),
    );
    fx.observer.ingest(
      dropEvent({
        reason: 158,
        source: tf.ep,
        srcLabel: tf.id,
        dstLabel: 2,
        ktimeNs: s(7),
        pkt: packet({
          src: tf.ip,
          dst: SERVICES.admin.vip,
          proto: 'tcp',
          sport: 51001,
          dport: 8080,
          flags: TCP_SYN,
        }),
      }),
    );
    client = new ObserverClient(fx.server.addresses.unix!);
  });
  after(async () => {
    client.close();
    await fx.close();
  });

  it('destination_service filters on the wire; flows arrive with the service decoded', async () => {
    const r = await collect(client, { whitelist: [{ destination_service: ['deathstar'] }] });
    assert.deepEqual(summaries(r), [
      'FORWARDED:TCP Flags: SYN', // policy verdict at the backend
      'FORWARDED:TCP Flags: SYN', // to-endpoint at the backend
      'DROPPED:TCP Flags: SYN', // policy drop of xwing at the backend
      'FORWARDED:TCP Flags: SYN', // to the ClusterIP
      'DROPPED:TCP Flags: SYN', // deathstar-admin has no backend (name prefix "deathstar")
    ]);
    for (const f of r.slice(0, 4))
      assert.deepEqual(f.flow?.destination_service, { name: 'deathstar', namespace: 'default' });
    assert.deepEqual(r[4]!.flow?.destination_service, { name: 'deathstar-admin', namespace: 'default' });
    assert.equal(r[4]!.flow?.drop_reason_desc, 'SERVICE_BACKEND_NOT_FOUND');

    const exact = await collect(client, {
      whitelist: [{ destination_service: ['default/deathstar-admin', 'kube-system/'] }],
    });
    assert.deepEqual(summaries(exact), ['FORWARDED:UDP', 'DROPPED:TCP Flags: SYN']);
    assert.deepEqual(exact[0]!.flow?.destination_service, { name: 'kube-dns', namespace: 'kube-system' });

    const replies = await collect(client, { whitelist: [{ source_service: ['default/deathstar'] }] });
    assert.deepEqual(summaries(replies), ['FORWARDED:TCP Flags: SYN, ACK']);
    assert.equal(replies[0]!.flow?.is_reply, true);

    const rest = await collect(client, { blacklist: [{ destination_service: ['default/'] }] });
    assert.deepEqual(summaries(rest), [
      'FORWARDED:TCP Flags: SYN, ACK',
      'FORWARDED:UDP',
      'FORWARDED:ICMPv4 EchoRequest',
    ]);
  });

  it('a malformed service filter is INVALID_ARGUMENT naming the field', async () => {
    await assert.rejects(
      collect(client, { whitelist: [{ destination_service: ['a/b/c'] }] }),
      (e: { code?: number; details?: string }) => {
        assert.equal(e.code, 3);
        assert.match(e.details ?? '', /destination_service/);
        return true;
      },
    );
  });

  it('cilium-ts hubble observe --to-service, --service and --not --to-service', async () => {
    const server = fx.server.addresses.unix!;
    const json = (await observe(server, ['--to-service', 'default/deathstar-admin', '-o', 'json'])).map(
      (l) => JSON.parse(l) as { destination_service?: unknown; verdict: string },
    );
    assert.equal(json.length, 1);
    assert.deepEqual(json[0]!.destination_service, { name: 'deathstar-admin', namespace: 'default' });
    assert.equal(json[0]!.verdict, 'DROPPED');

    const compact = await observe(server, ['--to-service', 'deathstar', '--since', '2023-11-21T20:01:08Z']);
    assert.deepEqual(compact, [
      'Nov 21 20:01:08.000: default/tiefighter:51000 (ID:1234) -> default/deathstar:80 (world) from-endpoint FORWARDED (TCP Flags: SYN)',
      'Nov 21 20:01:09.000: default/tiefighter:51001 (ID:1234) <> default/deathstar-admin:8080 (world) Service backend not found DROPPED (TCP Flags: SYN)',
    ]);

    // both directions: the requests to deathstar and the reply from it
    const both = await observe(server, ['--service', 'deathstar', '--all', '-o', 'json']);
    assert.equal(both.length, 6);
    assert.equal(both.filter((l) => l.includes('"source_service"')).length, 1);

    const not = await observe(server, ['--not', '--to-service', 'deathstar', '--all', '-o', 'json']);
    assert.deepEqual(
      not.map((l) => (JSON.parse(l) as { Summary: string }).Summary),
      ['TCP Flags: SYN, ACK', 'UDP', 'ICMPv4 EchoRequest'],
    );
  });
});
