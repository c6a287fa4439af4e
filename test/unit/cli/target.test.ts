import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

// The run root is read once when src/common/paths.ts loads: point it at a scratch directory first.
const root = mkdtempSync(join(tmpdir(), 'cts-target-'));
process.env.CILIUM_TS_RUN_ROOT = root;
const { resolveTarget } = await import('../../../src/cli/target.js');
const { defaultServer } = await import('../../../src/cli/hubble.js');

describe('CLI node selection (--lab/--node, CILIUM_TS_LAB/CILIUM_TS_NODE)', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  it('options win over the environment; both sockets live in the node run directory', () => {
    const t = resolveTarget({ lab: 'l1', node: 'n3' }, { CILIUM_TS_LAB: 'other', CILIUM_TS_NODE: 'x' });
    assert.deepEqual(t, {
      lab: 'l1',
      node: 'n3',
      runDir: join(root, 'l1', 'n3'),
      agentSocket: join(root, 'l1', 'n3', 'agent.sock'),
      hubbleSocket: join(root, 'l1', 'n3', 'hubble.sock'),
    });
    const e = resolveTarget({}, { CILIUM_TS_LAB: 'l2', CILIUM_TS_NODE: 'n1' });
    assert.equal(e.agentSocket, join(root, 'l2', 'n1', 'agent.sock'));
  });

  it("defaults to the lab's first node, from the lab's state", () => {
    mkdirSync(join(root, 'lab3'), { recursive: true });
    writeFileSync(
      join(root, 'lab3', 'lab.json'),
      JSON.stringify({ name: 'lab3', nodes: [{ name: 'worker-b' }, { name: 'worker-a' }], pods: {} }),
    );
    assert.equal(resolveTarget({ lab: 'lab3' }, {}).node, 'worker-b');
    assert.equal(
      resolveTarget({}, { CILIUM_TS_LAB: 'lab3' }).hubbleSocket,
      join(root, 'lab3', 'worker-b', 'hubble.sock'),
    );
  });

  it('without lab state, the first node directory holding a socket; else node1 of lab default', () => {
    for (const n of ['n2', 'n1', 'n0']) mkdirSync(join(root, 'bare', n), { recursive: true });
    writeFileSync(join(root, 'bare', 'n2', 'agent.sock'), '');
    writeFileSync(join(root, 'bare', 'n1', 'hubble.sock'), '');
    assert.equal(resolveTarget({ lab: 'bare' }, {}).node, 'n1');
    assert.deepEqual([resolveTarget({}, {}).lab, resolveTarget({}, {}).node], ['default', 'node1']);
  });

  it('hubble: --server, then HUBBLE_SERVER, then the picked node', () => {
    assert.equal(defaultServer({ server: 'localhost:4245' }, { HUBBLE_SERVER: 'x:1' }), 'localhost:4245');
    assert.equal(defaultServer({}, { HUBBLE_SERVER: 'unix:///tmp/h.sock' }), 'unix:///tmp/h.sock');
    assert.equal(
      defaultServer({ node: 'n7' }, { CILIUM_TS_LAB: 'l9' }),
      `unix://${join(root, 'l9', 'n7', 'hubble.sock')}`,
    );
  });
});
