/**
 * The lab's relay: its command line names every node's Hubble socket as a Peer service, and
 * `hubble observe`/`status` use its socket by default when it exists and no node is picked.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

// The run root is read once when src/common/paths.ts loads: point it at a scratch directory first.
const root = mkdtempSync(join(tmpdir(), 'cts-relay-'));
process.env.CILIUM_TS_RUN_ROOT = root;
const { relayArgs } = await import('../../../src/lab/relay.js');
const { relaySocketPath } = await import('../../../src/lab/state.js');
const { defaultServer } = await import('../../../src/cli/hubble.js');
const { relayOptionsFromFlags } = await import('../../../src/cli/relay.js');

describe('lab relay', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  it("runs `hubble relay` on 127.0.0.1 and the lab's socket, every node a Peer service", () => {
    const nodes = [{ name: 'node1' }, { name: 'node2' }, { name: 'node3' }];
    const args = relayArgs({ name: 'demo', nodes } as never, 0);
    assert.deepEqual(args.slice(0, 2), ['hubble', 'relay']);
    // The relay command itself accepts them (the flags exist and parse).
    const flags = { listen: '', peerService: [] as string[], peer: [] as string[] };
    for (let i = 2; i < args.length; i += 2) {
      const [flag, value] = [args[i]!, args[i + 1]!];
      if (flag === '--listen') flags.listen = value;
      else if (flag === '--unix-socket') Object.assign(flags, { unixSocket: value });
      else if (flag === '--peer-service') flags.peerService.push(value);
      else assert.fail(`unexpected flag ${flag}`);
    }
    const opts = relayOptionsFromFlags({
      ...flags,
      sortBufferLenMax: '100',
      sortBufferDrainTimeout: '1s',
      errorAggregationWindow: '10s',
      retryTimeout: '30s',
    });
    assert.equal(opts.listen, '127.0.0.1:0');
    assert.equal(opts.unixSocket, join(root, 'demo', 'relay.sock'));
    assert.deepEqual(
      opts.peerService,
      nodes.map((n) => `unix://${join(root, 'demo', n.name, 'hubble.sock')}`),
    );
  });

  it('hubble goes through the relay socket when it exists and no node is picked', () => {
    const node1 = `unix://${join(root, 'mn', 'node1', 'hubble.sock')}`;
    mkdirSync(join(root, 'mn'), { recursive: true });
    writeFileSync(join(root, 'mn', 'lab.json'), JSON.stringify({ name: 'mn', nodes: [{ name: 'node1' }] }));
    assert.equal(defaultServer({ lab: 'mn' }, {}), node1, 'no relay socket: the first node');
    writeFileSync(relaySocketPath('mn'), '');
    const relay = `unix://${relaySocketPath('mn')}`;
    assert.equal(defaultServer({ lab: 'mn' }, {}), relay);
    assert.equal(defaultServer({}, { CILIUM_TS_LAB: 'mn' }), relay);
    assert.equal(defaultServer({ lab: 'mn', node: 'node1' }, {}), node1, '--node: that node');
    assert.equal(defaultServer({ lab: 'mn' }, { CILIUM_TS_NODE: 'node1' }), node1, 'CILIUM_TS_NODE too');
    assert.equal(defaultServer({ lab: 'mn', server: '127.0.0.1:1' }, {}), '127.0.0.1:1');
    assert.equal(defaultServer({ lab: 'mn' }, { HUBBLE_SERVER: 'h:2' }), 'h:2');
  });
});
