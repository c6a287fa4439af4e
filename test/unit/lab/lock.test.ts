/**
 * The lab's lock (src/lab/lock.ts): one lab mutation at a time across processes, and a lock whose
 * holder died is taken over. Real processes contend for a lock file in a scratch run root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

// The run root is read once when src/common/paths.ts loads: point it at a scratch directory first.
const root = mkdtempSync(join(tmpdir(), 'cts-lock-'));
process.env.CILIUM_TS_RUN_ROOT = root;
const { withLock } = await import('../../../src/lab/lock.js');
const lockModule = new URL('../../../src/lab/lock.js', import.meta.url).href;

/** Another process taking the lab's lock; onHeld runs when it says it holds it. */
function contender(lab: string, onHeld: () => void): { started: Promise<void>; done: Promise<string> } {
  const p = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { withLock } = await import(${JSON.stringify(lockModule)});
       process.stdout.write('waiting\\n');
       await withLock(${JSON.stringify(lab)}, async () => { process.stdout.write('held\\n'); });`,
    ],
    { env: { ...process.env, CILIUM_TS_RUN_ROOT: root }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  let onStart: () => void;
  const started = new Promise<void>((r) => (onStart = r));
  p.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.includes('waiting')) onStart();
    if (out.includes('held')) onHeld();
  });
  const done = new Promise<string>((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`contender exited ${code}: ${out}`)),
    );
  });
  return { started, done };
}

describe('lab lock', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a second process waits until the holder releases, then takes it', async () => {
    const events: string[] = [];
    let other: ReturnType<typeof contender> | undefined;
    await withLock('lk1', async () => {
      other = contender('lk1', () => {
        if (!events.includes('other held')) events.push('other held');
      });
      await other.started;
      // Long enough that the other process has tried the lock several times meanwhile.
      await new Promise((r) => setTimeout(r, 500));
      events.push('released');
    });
    await other!.done;
    assert.deepEqual(events, ['released', 'other held']);
  });

  it('takes over a lock whose holder is gone', async () => {
    mkdirSync(join(root, 'lk2'), { recursive: true });
    // A holder that no longer runs: PID 2^22 + 1 is above Linux's pid_max.
    writeFileSync(join(root, 'lk2', 'lock'), JSON.stringify({ pid: 4_194_305, startTime: 1 }));
    let ran = false;
    await withLock('lk2', async () => {
      ran = true;
    });
    assert.equal(ran, true);
  });

  it('one process doing two things at once takes turns (no waiting on itself)', async () => {
    const events: string[] = [];
    const slow = withLock('lk3', async () => {
      events.push('first in');
      await new Promise((r) => setTimeout(r, 200));
      events.push('first out');
      throw new Error('first failed');
    });
    const second = withLock('lk3', async () => {
      events.push('second in');
      return 2;
    });
    await assert.rejects(slow, /first failed/);
    assert.equal(await second, 2);
    assert.deepEqual(events, ['first in', 'first out', 'second in']);
    // another lock of the lab is not held meanwhile
    const t = Date.now();
    await withLock('lk3', () => withLock('lk3', async () => {}, 'etcd.lock'));
    assert.ok(Date.now() - t < 1000);
  });
});
