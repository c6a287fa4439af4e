/** The node-wide load-time constants every datapath object gets (lib/config/node.h). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFS, endpointConstants, nodeConstants } from '../../../src/datapath/index.js';

describe('node constants', () => {
  it('defaults: random selection, the default Maglev table size, seed 0, no conntrack accounting', () => {
    assert.deepEqual(nodeConstants(), {
      MONITOR_AGGREGATION: 1,
      ALLOW_LOCALHOST: 1,
      LB_SELECTION: DEFS.LB_ALGORITHM_RANDOM,
      MAGLEV_TABLE_SIZE: DEFS.LB_MAGLEV_LUT_SIZE,
      HASH_INIT4_SEED: 0,
      ENCAP_IFINDEX: 0,
      CT_ACCOUNTING: 0,
    });
    assert.equal(nodeConstants({ ctAccounting: true }).CT_ACCOUNTING, 1);
  });

  it('maglev selection, the maps’ table size and the cluster’s seed', () => {
    const c = nodeConstants({ lbAlgorithm: 'maglev', lbHashSeed: 0xffffffff }, 251);
    assert.equal(c.LB_SELECTION, DEFS.LB_ALGORITHM_MAGLEV);
    assert.equal(c.MAGLEV_TABLE_SIZE, 251);
    assert.equal(c.HASH_INIT4_SEED, 0xffffffff);
    const ep = { id: 1, identity: 2, mac: '02:00:00:00:00:01', nodeMac: '02:00:00:00:00:02', interface: 3 };
    assert.equal(endpointConstants(ep, 3, { lbAlgorithm: 'maglev' }, 1021).MAGLEV_TABLE_SIZE, 1021);
  });

  it('bad settings are refused naming the setting', () => {
    assert.throws(
      () => nodeConstants({ lbAlgorithm: 'hash' as never }),
      /lbAlgorithm: expected 'random' or 'maglev'/,
    );
    assert.throws(() => nodeConstants({ lbHashSeed: -1 }), /lbHashSeed: expected an integer/);
    assert.throws(() => nodeConstants({ lbHashSeed: 2 ** 32 }), /lbHashSeed/);
    assert.throws(() => nodeConstants({ lbHashSeed: 1.5 }), /lbHashSeed/);
    assert.throws(() => nodeConstants({ encapIfindex: -1 }), /encapIfindex: expected an interface index/);
  });
});
