/**
 * The agent's state files (AgentStateStore): a save is in place for a reader (a restarted agent) as
 * soon as it resolves; the fsyncs follow in the background and syncs() waits for them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AgentStateStore } from '../../../src/agent/state.js';
import { JsonStateFile } from '../../../src/ipam/index.js';

describe('agent state store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'state-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a resolved save is what a new reader (a restarted agent) loads', async () => {
    const store = new AgentStateStore(join(dir, 'a'));
    await store.file<{ n: number }>('endpoints').save({ n: 1 });
    assert.deepEqual(await new JsonStateFile(join(dir, 'a', 'endpoints.json')).load(), { n: 1 });
    await store.syncs();
  });

  it('saves in a row keep their order; syncs() resolves with the last one in place and no temp file', async () => {
    const store = new AgentStateStore(join(dir, 'b'));
    const f = store.file<{ n: number }>('ipam');
    await Promise.all(Array.from({ length: 20 }, (_, n) => f.save({ n })));
    await store.syncs();
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'b', 'ipam.json'), 'utf8')), { n: 19 });
    assert.deepEqual(readdirSync(join(dir, 'b')), ['ipam.json']);
    await store.syncs(); // nothing left to sync: resolves again
  });

  it('a file of its own (no syncLater) is fsynced before save resolves, as before', async () => {
    const f = new JsonStateFile<{ n: number }>(join(dir, 'c', 'x.json'));
    await f.save({ n: 2 });
    assert.deepEqual(await f.load(), { n: 2 });
    await f.syncs(); // nothing deferred
  });
});
