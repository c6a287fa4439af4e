/**
 * Endpoint programs in tc filters (DatapathLoader `attach: 'tc'`, what the agent uses): clsact and
 * a direct-action cls_bpf filter per direction on the host veth, no tcx link. The placeholder holds
 * them first (nothing passes), the endpoint's programs replace it in place, a reload (new identity)
 * replaces them again, and remove() deletes the filters.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { DatapathLoader, type EndpointDatapathConfig } from '../../../src/datapath/index.js';
import { queryTcx } from '../../../src/ebpf/index.js';
import { oneEndpoint } from '../../helpers/one-endpoint.js';
import { cleanupStack, uniquePrefix } from '../../helpers/sys.js';

const isRoot = process.getuid?.() === 0;

describe('endpoint programs in tc filters', { skip: !isRoot && 'needs root' }, () => {
  const cleanup = cleanupStack();
  const p = uniquePrefix('tca');
  let nodeNs = '';
  let nodeNetns = '';
  let hostIf = '';
  let ifindex = 0;
  let ep: EndpointDatapathConfig;
  let loader: DatapathLoader;
  let ping: () => boolean;
  /** The programs of the bpf filters tc lists on the host veth in one direction (the kernel keeps
   * 15 characters of a program's name). */
  const filters = (dir: 'ingress' | 'egress') => {
    const r = spawnSync('tc', ['-n', nodeNs, 'filter', 'show', 'dev', hostIf, dir], { encoding: 'utf8' });
    return [...r.stdout.matchAll(/ name (\S+) /g)].map((m) => m[1]);
  };

  before(async () => {
    ({ nodeNs, nodeNetns, hostIf, ifindex, ep, loader, ping } = await oneEndpoint(cleanup, p, 44, {
      attach: 'tc',
      spares: 1,
    }));
  });
  after(() => cleanup.run());

  it('rejects an unknown attach mode, naming the field', () => {
    assert.throws(() => DatapathLoader.open({ bpffs: '/nonexistent', attach: 'xdp' as 'tc' }), /attach/);
  });

  it('privileged: prelink holds both directions with the drop-all filter: nothing passes', async () => {
    assert.equal(ping(), true, 'the plain veth passes traffic');
    await loader.prelink(ep, ifindex);
    assert.deepEqual(filters('ingress'), ['cil_hold_drop']);
    assert.deepEqual(filters('egress'), ['cil_hold_drop']);
    assert.equal(ping(), false);
  });

  it("privileged: the endpoint's programs replace the placeholder in the same filters, no tcx link", async () => {
    const r = await loader.loadAsync(ep);
    assert.equal(r.replaced, true);
    assert.deepEqual(filters('ingress'), ['cil_from_contai']);
    assert.deepEqual(filters('egress'), ['cil_to_containe']);
    assert.deepEqual(queryTcx(ifindex, 'ingress', nodeNetns).linkIds, []);
    assert.deepEqual(queryTcx(ifindex, 'egress', nodeNetns).linkIds, []);
    assert.equal(ping(), true);
  });

  it('privileged: loading again (a new identity) replaces the programs in place', async () => {
    const before = (await loader.loadAsync(ep)).ingress.progId;
    ep = { ...ep, identity: 5045 };
    loader.writeEndpoint(ep);
    const r = await loader.loadAsync(ep);
    assert.equal(r.replaced, true);
    assert.notEqual(r.ingress.progId, before);
    assert.deepEqual(filters('ingress'), ['cil_from_contai']);
    assert.equal(ping(), true);
  });

  it('privileged: remove deletes the filters', () => {
    assert.equal(loader.remove(ep.id), true);
    assert.deepEqual(filters('ingress'), []);
    assert.deepEqual(filters('egress'), []);
    assert.equal(loader.remove(ep.id), false);
  });
});
