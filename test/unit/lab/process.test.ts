/** Process identity: /proc/PID/stat parsing and recognising a process by PID and start time. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { isRunning, parseProcStat, processRef } from '../../../src/lab/process.js';

describe('lab process identity', () => {
  it('reads state and start time after the last ")", whatever the command name holds', () => {
    const rest = 'S 1 2 2 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456789 1000 10';
    assert.deepEqual(parseProcStat(`42 (sleep) ${rest}`), { state: 'S', startTime: 123456789 });
    assert.deepEqual(parseProcStat(`42 (a) b) (c d) ${rest}`), { state: 'S', startTime: 123456789 });
    assert.equal(parseProcStat('42 sleep S 1'), undefined);
    assert.equal(parseProcStat('42 (x) S 1 2'), undefined, 'too short');
  });

  it('recognises a process by PID and start time, not by PID alone', async () => {
    const p = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const ref = processRef(p.pid!);
      assert.ok(ref.startTime! > 0);
      assert.equal(isRunning(ref), true);
      assert.equal(isRunning({ pid: p.pid!, startTime: ref.startTime! + 1 }), false, 'another start time');
      assert.equal(isRunning({ pid: p.pid! }), false, 'no start time: unproven');
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
      assert.equal(isRunning(ref), false, 'gone');
      assert.equal(isRunning({ pid: 1, startTime: ref.startTime! }), false, 'never PID 1');
    } finally {
      p.kill('SIGKILL');
    }
  });
});
