/**
 * The overlay device and its programs in a throwaway namespace: the collect-metadata VXLAN device
 * is made, adopted as it is on a second call, and made again when a device of that name is not an
 * external VXLAN device on the port; bpf_overlay attaches to both of its tcx hooks with pinned
 * links, swaps in place on a second attach, and detaches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ipJson } from '../../../src/datapath/linux/index.js';
import {
  ensureOverlayDevice,
  OVERLAY_DEVICE,
  type OverlayError,
  OverlayLoader,
} from '../../../src/datapath/overlay.js';
import { cleanupStack, privateBpffs, sh, uniquePrefix } from '../../helpers/sys.js';

interface Link {
  ifindex: number;
  mtu: number;
  flags: string[];
  linkinfo?: { info_kind?: string; info_data?: { external?: boolean; port?: number; id?: number } };
}

describe('privileged: the overlay device and bpf_overlay', () => {
  const cleanup = cleanupStack();
  const ns = uniquePrefix('ovd');
  const netns = `/run/netns/${ns}`;
  const show = async () =>
    (await ipJson<Link[]>(['-d', 'link', 'show', 'dev', OVERLAY_DEVICE], { netns }))[0]!;
  let bpffs = '';

  before(() => {
    sh('ip', ['netns', 'add', ns]);
    cleanup.add(() => void sh('ip', ['netns', 'del', ns]));
    bpffs = privateBpffs(cleanup);
  });
  after(() => cleanup.run());

  it('makes a collect-metadata VXLAN device on 8472 without ARP, then adopts it', async () => {
    const d = await ensureOverlayDevice({ mtu: 1450, netns });
    assert.equal(d.adopted, false);
    const l = await show();
    assert.equal(l.linkinfo?.info_kind, 'vxlan');
    assert.equal(l.linkinfo?.info_data?.external, true);
    assert.equal(l.linkinfo?.info_data?.port, 8472);
    assert.equal(l.mtu, 1450);
    assert.ok(l.flags.includes('NOARP') && l.flags.includes('UP'));
    const again = await ensureOverlayDevice({ mtu: 1450, netns });
    assert.deepEqual([again.adopted, again.ifindex], [true, d.ifindex]);
  });

  it('replaces a device of that name that is not an external VXLAN device', async () => {
    sh('ip', ['-n', ns, 'link', 'del', OVERLAY_DEVICE]);
    sh('ip', ['-n', ns, 'link', 'add', OVERLAY_DEVICE, 'type', 'vxlan', 'id', '5', 'dstport', '4789']);
    const d = await ensureOverlayDevice({ mtu: 1450, netns });
    assert.equal(d.adopted, false);
    const l = await show();
    assert.deepEqual([l.linkinfo?.info_data?.external, l.linkinfo?.info_data?.port], [true, 8472]);
  });

  it('refuses an MTU it cannot carry, naming the field', async () => {
    await assert.rejects(ensureOverlayDevice({ mtu: 500, netns }), (e: OverlayError) => {
      assert.equal(e.field, 'mtu');
      return true;
    });
  });

  it('attaches bpf_overlay on ingress and egress, swaps it in place, detaches', async () => {
    const { ifindex } = await show();
    using loader = OverlayLoader.open({ bpffs, node: { encapIfindex: ifindex } });
    assert.equal(loader.constants().ENCAP_IFINDEX, ifindex);
    const a = loader.attach(OVERLAY_DEVICE, netns);
    assert.deepEqual(
      [a.ifindex, a.replaced, a.ingress.ifindex, a.egress.ifindex],
      [ifindex, false, ifindex, ifindex],
    );
    const b = loader.attach(OVERLAY_DEVICE, netns);
    assert.equal(b.replaced, true);
    assert.equal(b.ingress.id, a.ingress.id, 'the same link, its program swapped');
    assert.deepEqual(Object.keys(loader.pinned(OVERLAY_DEVICE)).sort(), ['egress', 'ingress']);
    assert.throws(
      () => loader.attach('nosuchdev0', netns),
      (e: OverlayError) => e.field === 'device',
    );
    assert.equal(loader.detach(OVERLAY_DEVICE), true);
    assert.deepEqual(loader.pinned(OVERLAY_DEVICE), {});
  });
});
