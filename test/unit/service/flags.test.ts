import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFS } from '../../../src/datapath/maps/generated/layouts.js';
import {
  AFFINITY_TIMEOUT_MASK,
  BACKEND_STATE,
  formatServiceFlags,
  IPPROTO,
  LB_ALGORITHM,
  LB_ALGORITHM_SHIFT,
  LB_SCOPE,
  masterWord,
  SVC_FLAG,
  splitFlags,
} from '../../../src/service/flags.js';

describe('LB numbers agree with the datapath (bpf/lib/defs.h, generated)', () => {
  it('service flags: the low byte is lb_service.flags, the high byte flags2', () => {
    const pairs: [number, number][] = [
      [SVC_FLAG.EXTERNAL_IP, DEFS.SVC_FLAG_EXTERNAL_IP],
      [SVC_FLAG.NODEPORT, DEFS.SVC_FLAG_NODEPORT],
      [SVC_FLAG.EXT_LOCAL_SCOPE, DEFS.SVC_FLAG_EXT_LOCAL_SCOPE],
      [SVC_FLAG.HOSTPORT, DEFS.SVC_FLAG_HOSTPORT],
      [SVC_FLAG.AFFINITY, DEFS.SVC_FLAG_AFFINITY],
      [SVC_FLAG.LOADBALANCER, DEFS.SVC_FLAG_LOADBALANCER],
      [SVC_FLAG.ROUTABLE, DEFS.SVC_FLAG_ROUTABLE],
      [SVC_FLAG.SOURCE_RANGE, DEFS.SVC_FLAG_SOURCE_RANGE],
    ];
    for (const [ours, c] of pairs) assert.deepEqual(splitFlags(ours), { flags: c, flags2: 0 });
    assert.deepEqual(splitFlags(SVC_FLAG.INT_LOCAL_SCOPE), {
      flags: 0,
      flags2: DEFS.SVC_FLAG2_INT_LOCAL_SCOPE,
    });
    assert.deepEqual(splitFlags(SVC_FLAG.TWO_SCOPES), { flags: 0, flags2: DEFS.SVC_FLAG2_TWO_SCOPES });
  });

  it('scopes, backend states, algorithms, the wildcard protocol', () => {
    assert.deepEqual(LB_SCOPE, { external: DEFS.LB_LOOKUP_SCOPE_EXT, internal: DEFS.LB_LOOKUP_SCOPE_INT });
    assert.deepEqual(BACKEND_STATE, {
      active: DEFS.BE_STATE_ACTIVE,
      terminating: DEFS.BE_STATE_TERMINATING,
      quarantined: DEFS.BE_STATE_QUARANTINED,
      maintenance: DEFS.BE_STATE_MAINTENANCE,
    });
    assert.deepEqual(LB_ALGORITHM, { random: DEFS.LB_ALGORITHM_RANDOM, maglev: DEFS.LB_ALGORITHM_MAGLEV });
    assert.equal(LB_ALGORITHM_SHIFT, DEFS.LB_ALGORITHM_SHIFT);
    assert.equal(AFFINITY_TIMEOUT_MASK, DEFS.LB_AFFINITY_TIMEOUT_MASK);
    assert.equal(IPPROTO.ANY, DEFS.LB_PROTO_ANY);
  });

  it('the master word packs the algorithm above a 24-bit timeout', () => {
    assert.equal(masterWord('maglev', 10800), (2 << 24) | 10800);
    assert.equal(masterWord('random', 0), 1 << 24);
    assert.equal(masterWord('maglev', 86400) & AFFINITY_TIMEOUT_MASK, 86400);
  });

  it("flag text in upstream's order", () => {
    assert.equal(formatServiceFlags(0), 'ClusterIP, non-routable');
    assert.equal(
      formatServiceFlags(
        SVC_FLAG.NODEPORT |
          SVC_FLAG.ROUTABLE |
          SVC_FLAG.EXT_LOCAL_SCOPE |
          SVC_FLAG.INT_LOCAL_SCOPE |
          SVC_FLAG.TWO_SCOPES |
          SVC_FLAG.AFFINITY,
      ),
      'NodePort, Local, InternalLocal, two-scopes, sessionAffinity',
    );
    assert.equal(
      formatServiceFlags(
        SVC_FLAG.LOADBALANCER | SVC_FLAG.ROUTABLE | SVC_FLAG.SOURCE_RANGE | SVC_FLAG.SOURCE_RANGE_DENY,
      ),
      'LoadBalancer, check source-range, deny',
    );
    assert.equal(formatServiceFlags(SVC_FLAG.EXTERNAL_IP | SVC_FLAG.ROUTABLE), 'ExternalIPs');
  });
});
