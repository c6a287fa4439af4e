/**
 * An endpoint's tcx hooks taken ahead with the drop-all placeholder (DatapathLoader.prelink, what the
 * agent does as soon as the host veth exists during CNI ADD): nothing passes while it holds them,
 * and loading the endpoint's programs swaps them into the same links (no new link, so no RCU wait).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DatapathLoader, EndpointDatapathConfig } from '../../../src/datapath/index.js';
import { Program, queryTcx } from '../../../src/ebpf/index.js';
import { oneEndpoint } from '../../helpers/one-endpoint.js';
import { cleanupStack, uniquePrefix } from '../../helpers/sys.js';

const isRoot = process.getuid?.() === 0;

describe('prelink: tcx hooks held ahead, then swapped', { skip: !isRoot && 'needs root' }, () => {
  const cleanup = cleanupStack();
  const p = uniquePrefix('plk');
  let nodeNetns = '';
  let ifindex = 0;
  let ep: EndpointDatapathConfig;
  let loader: DatapathLoader;
  let ping: () => boolean;
  const programNames = (dir: 'ingress' | 'egress') =>
    queryTcx(ifindex, dir, nodeNetns).programIds.map((id) => {
      const prog = Program.fromId(id);
      try {
        return prog.name;
      } finally {
        prog.close();
      }
    });

  before(async () => {
    ({ nodeNetns, ifindex, ep, loader, ping } = await oneEndpoint(cleanup, p, 21));
  });
  after(() => cleanup.run());

  it('privileged: the plain veth passes traffic before anything is attached', () => {
    assert.equal(ping(), true);
  });

  it('privileged: prelink holds both hooks with the drop-all program: nothing passes', async () => {
    await loader.prelink(ep, ifindex);
    assert.deepEqual(programNames('ingress'), ['cil_hold_drop']);
    assert.deepEqual(programNames('egress'), ['cil_hold_drop']);
    assert.equal(ping(), false);
  });

  it('privileged: loading the endpoint swaps its programs into the same links', async () => {
    const links = {
      ingress: queryTcx(ifindex, 'ingress', nodeNetns).linkIds,
      egress: queryTcx(ifindex, 'egress', nodeNetns).linkIds,
    };
    loader.writeEndpoint(ep);
    const r = await loader.loadAsync(ep);
    assert.equal(r.replaced, true);
    assert.deepEqual(queryTcx(ifindex, 'ingress', nodeNetns).linkIds, links.ingress);
    assert.deepEqual(queryTcx(ifindex, 'egress', nodeNetns).linkIds, links.egress);
    // (the kernel keeps 15 characters of a program's name)
    assert.deepEqual(programNames('ingress'), ['cil_from_contai']);
    assert.deepEqual(programNames('egress'), ['cil_to_containe']);
  });

  it('privileged: a stale pin (its device gone) is replaced by a new prelink', async () => {
    loader.remove(ep.id);
    assert.deepEqual(queryTcx(ifindex, 'ingress', nodeNetns).linkIds, []);
    await loader.prelink(ep, ifindex);
    await loader.prelink(ep, ifindex); // again: the previous pins let go of their links first
    assert.equal(queryTcx(ifindex, 'ingress', nodeNetns).linkIds.length, 1);
    assert.equal(queryTcx(ifindex, 'egress', nodeNetns).linkIds.length, 1);
  });
});
