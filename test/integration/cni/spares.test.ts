/**
 * Program copies verified ahead (DatapathLoader `spares`): the endpoint settings of bpf_lxc live in
 * the copy's `.data.ep` map, so a copy is verified before its endpoint exists and gets the settings
 * written when an endpoint takes it. A copy whose settings were never written drops everything; one
 * taken by an endpoint carries that endpoint's traffic; the loader verifies another in its place.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DatapathLoader,
  ENDPOINT_SETTINGS_SECTION,
  type EndpointDatapathConfig,
  PROG_FROM_CONTAINER,
  PROG_TO_CONTAINER,
} from '../../../src/datapath/index.js';
import { Link } from '../../../src/ebpf/index.js';
import { oneEndpoint } from '../../helpers/one-endpoint.js';
import { cleanupStack, uniquePrefix } from '../../helpers/sys.js';

const isRoot = process.getuid?.() === 0;

/** Waits for `cond` (polling), failing after `ms`. */
async function waitFor(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('spare program copies: verified ahead, settings written at attach', {
  skip: !isRoot && 'needs root',
}, () => {
  const cleanup = cleanupStack();
  const p = uniquePrefix('spr');
  let nodeNetns = '';
  let ifindex = 0;
  let ep: EndpointDatapathConfig;
  let loader: DatapathLoader;
  let ping: () => boolean;

  before(async () => {
    ({ nodeNetns, ifindex, ep, loader, ping } = await oneEndpoint(cleanup, p, 33, {
      spares: 2,
    }));
  });
  after(() => cleanup.run());

  it('rejects a bad spares count, naming the field', () => {
    assert.throws(() => DatapathLoader.open({ bpffs: '/nonexistent', spares: -1 }), /spares/);
  });

  it('privileged: fillSpares verifies the copies ahead', async () => {
    await loader.fillSpares();
    assert.equal(loader.spareCopies, 2);
  });

  it('privileged: a copy whose settings are unset drops everything (fail closed)', async () => {
    assert.equal(ping(), true, 'the plain veth passes traffic');
    const copy = await loader.preload(ep, ifindex); // a spare: settings not written yet
    try {
      const value = copy.map(ENDPOINT_SETTINGS_SECTION).lookup(new Uint8Array(4));
      assert.ok(
        value?.every((b) => b === 0),
        'the settings of a spare are all zero',
      );
      const links = [
        Link.attachTcx({
          program: copy.program(PROG_FROM_CONTAINER),
          direction: 'ingress',
          interface: ifindex,
          netns: nodeNetns,
        }),
        Link.attachTcx({
          program: copy.program(PROG_TO_CONTAINER),
          direction: 'egress',
          interface: ifindex,
          netns: nodeNetns,
        }),
      ];
      try {
        assert.equal(ping(), false);
      } finally {
        for (const l of links) {
          l.detach();
          l.close();
        }
      }
    } finally {
      copy.close();
    }
  });

  it('privileged: an endpoint takes a spare, gets its settings and passes traffic; the spare is replaced', async () => {
    const before = loader.spareCopies;
    const taken = loader.preload(ep, ifindex);
    assert.equal(loader.spareCopies, before - 1, 'a spare is taken');
    const r = await loader.loadAsync(ep, taken);
    assert.equal(r.replaced, false);
    await waitFor(() => ping(), 'the pod answering ping through its programs');
    // the loader verifies new copies in the background
    await waitFor(() => loader.spareCopies === 2, 'the spares being refilled');
    await loader.fillSpares();
    assert.equal(loader.spareCopies, 2);
  });

  it('privileged: a copy taken while it is still being verified is finished and carries the traffic', async () => {
    // a second loader on the same node: its only spare is under verification when it is taken
    const other = DatapathLoader.open({ bpffs: loader.bpffs, spares: 1 });
    try {
      const filled = other.fillSpares();
      assert.equal(other.spareCopies, 1, 'one copy under verification');
      const taken = other.preload(ep, ifindex);
      assert.equal(other.spareCopies, 0, 'the endpoint took it');
      await filled;
      const r = await other.loadAsync(ep, taken);
      assert.equal(r.replaced, true, 'swapped into the links of the earlier load');
      await waitFor(() => ping(), 'the pod answering ping through the copy');
    } finally {
      other.close();
    }
  });
});
