/**
 * Codegen and the load-time check over more than one object: bpf_lxc.o plus bpf/test/dp_probe.o, a
 * second object that includes only some feature headers (node config, metrics, events) and declares
 * a map of its own.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildLayoutModel, layoutInputs, layoutsOf } from '../../../src/datapath/codegen/index.js';
import { checkObjectLayouts, layoutDifferences, MAPS, OBJECTS } from '../../../src/datapath/index.js';
import { CollectionSpec } from '../../../src/ebpf/index.js';
import { bpfObject, repoRoot } from '../../helpers/paths.js';

const LXC = bpfObject('bpf_lxc.o');
const PROBE = bpfObject('test/dp_probe.o');

function twoObjectModel() {
  const inputs = layoutInputs(repoRoot);
  return buildLayoutModel({ ...inputs, objects: [LXC, PROBE], displayNames: undefined });
}

describe('datapath objects: codegen over several objects', () => {
  it('the committed layouts describe every datapath object of bpf/ (not bpf/test/)', () => {
    assert.deepEqual(Object.keys(OBJECTS), ['bpf_host', 'bpf_lxc', 'bpf_overlay', 'bpf_sock']);
    assert.deepEqual(layoutInputs(repoRoot).objects, [
      join(repoRoot, 'build/bpf/bpf_host.o'),
      join(repoRoot, 'build/bpf/bpf_lxc.o'),
      join(repoRoot, 'build/bpf/bpf_overlay.o'),
      join(repoRoot, 'build/bpf/bpf_sock.o'),
    ]);
    assert.deepEqual(Object.keys(OBJECTS.bpf_lxc.programs), ['cil_from_container', 'cil_to_container']);
    assert.deepEqual(OBJECTS.bpf_host.programs, { cil_from_netdev: 'tc' });
    assert.deepEqual(OBJECTS.bpf_overlay.programs, { cil_from_overlay: 'tc', cil_to_overlay: 'tc' });
    assert.deepEqual(
      Object.keys(OBJECTS.bpf_overlay.constants).filter((c) => !(c in OBJECTS.bpf_sock.constants)),
      [],
      'bpf_overlay has the node constants only',
    );
    assert.deepEqual(
      Object.keys(MAPS).sort(),
      [
        ...new Set([
          ...OBJECTS.bpf_host.maps,
          ...OBJECTS.bpf_lxc.maps,
          ...OBJECTS.bpf_overlay.maps,
          ...OBJECTS.bpf_sock.maps,
        ]),
      ].sort(),
      'every map belongs to an object',
    );
    for (const o of ['bpf_lxc', 'bpf_host'] as const)
      for (const m of [
        'cilium_lb4_services_v2',
        'cilium_lb4_maglev',
        'cilium_nodeport_nat4',
        'cilium_ct4_global',
      ])
        assert.ok(
          (OBJECTS[o].maps as readonly string[]).includes(m),
          `${o} translates services per packet: ${m}`,
        );
    assert.ok(
      !(OBJECTS.bpf_sock.maps as readonly string[]).includes('cilium_nodeport_nat4'),
      'socket-LB needs no NAT',
    );
    assert.deepEqual(
      // (sorted: the order is the compiler's, by first use)
      Object.keys(OBJECTS.bpf_host.constants)
        .filter((c) => !(c in OBJECTS.bpf_lxc.constants))
        .sort(),
      ['HOST_EP_ID', 'NODEPORT_SNAT_LOCAL', 'NODE_IPV4'],
      'bpf_host has the node constants and its own, no endpoint constants',
    );
    assert.deepEqual(OBJECTS.bpf_sock.programs, {
      cil_sock_release: 'cgroup/sock_release',
      cil_sock4_connect: 'cgroup/connect4',
      cil_sock4_getpeername: 'cgroup/getpeername4',
      cil_sock4_recvmsg: 'cgroup/recvmsg4',
      cil_sock4_sendmsg: 'cgroup/sendmsg4',
      cil_sock6_connect: 'cgroup/connect6',
      cil_sock6_getpeername: 'cgroup/getpeername6',
      cil_sock6_recvmsg: 'cgroup/recvmsg6',
      cil_sock6_sendmsg: 'cgroup/sendmsg6',
    });
    assert.equal(OBJECTS.bpf_lxc.constants.LXC_ID, 2);
    assert.equal(OBJECTS.bpf_lxc.constants.LXC_IPV6, 16);
    assert.equal(OBJECTS.bpf_lxc.constants.MONITOR_AGGREGATION, 4);
  });

  it('one descriptor per map name, shared maps once; each object lists its own maps and constants', () => {
    const model = twoObjectModel();
    assert.deepEqual(
      model.maps.map((m) => m.name).sort(),
      [...OBJECTS.bpf_lxc.maps, 'cilium_probe_packets'].sort(),
    );
    const metrics = model.maps.find((m) => m.name === 'cilium_metrics');
    assert.deepEqual(metrics, MAPS.cilium_metrics);
    assert.deepEqual(Object.keys(model.objects), ['bpf_lxc', 'dp_probe']);
    assert.deepEqual(model.objects.dp_probe, {
      file: 'dp_probe.o',
      programs: { cil_probe: 'tc' },
      maps: [
        'cilium_events',
        'cilium_events_lost',
        'cilium_metrics',
        'cilium_metrics_fwd',
        'cilium_probe_packets',
      ],
      constants: {
        MONITOR_AGGREGATION: 4,
        ALLOW_LOCALHOST: 4,
        LB_SELECTION: 4,
        MAGLEV_TABLE_SIZE: 4,
        HASH_INIT4_SEED: 4,
        ENCAP_IFINDEX: 4,
        CT_ACCOUNTING: 4,
        PROBE_ID: 2,
      },
    });
    assert.deepEqual(model.objects.bpf_lxc, OBJECTS.bpf_lxc);
  });
});

describe('datapath objects: load-time check of any object', () => {
  it('both objects agree with layouts generated from both', () => {
    const layouts = layoutsOf(twoObjectModel());
    for (const o of [LXC, PROBE])
      assert.deepEqual(layoutDifferences(CollectionSpec.fromFile(o), o, layouts), []);
  });

  it('against the committed layouts, the second object differs only by its new map', () => {
    const probe = CollectionSpec.fromFile(PROBE);
    // The maps it shares with bpf_lxc.o match; the ones it does not use are not asked for.
    assert.deepEqual(layoutDifferences(probe, PROBE), [
      'map cilium_probe_packets has no generated descriptor',
    ]);
    assert.deepEqual(layoutDifferences(CollectionSpec.fromFile(LXC), LXC), []);
  });

  it('a shared map declared differently, or a missing program or constant, is named', () => {
    const layouts = layoutsOf(twoObjectModel());
    const probe = CollectionSpec.fromFile(PROBE);
    probe.maps.get('cilium_metrics')!.maxEntries = 10;
    probe.programs.delete('cil_probe');
    probe.variables.delete('PROBE_ID');
    assert.throws(
      () => checkObjectLayouts(probe, 'dp_probe.o', layouts),
      (err: Error & { differences?: string[] }) => {
        assert.deepEqual(err.differences, [
          'map cilium_metrics: max entries 10, generated 65536',
          'program cil_probe is missing',
          'constant PROBE_ID is missing',
        ]);
        return true;
      },
    );
  });
});
