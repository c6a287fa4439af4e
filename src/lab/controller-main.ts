/**
 * The lab's controller process (one per lab, started by `lab up`): a few times a second it looks at
 * the lab as recorded and at its processes, and when something calls for it (a terminating pod
 * whose processes exited or whose grace period is over, a pod whose process ended, a Deployment
 * short of replicas) it takes the lab's lock and reconciles. It also keeps pod network namespaces
 * made ahead (pods.ts SPARE_NETNS), made outside the lock and recorded under it, and applies the
 * manifests `lab apply` sends it (apply-server.ts). It exits when the lab is gone or another
 * controller has replaced it.
 */
import { spawnSync } from 'node:child_process';
import { serveApply } from './apply-server.js';
import { needsReconcile, reconcile } from './controller.js';
import { withLock } from './lock.js';
import { makeSpareNetns, spareNetnsWanted } from './pods.js';
import { isRunning } from './process.js';
import { loadLab, saveLab } from './state.js';

const lab = process.argv[2]!;
const TICK_MS = 250;
const BACKOFF_MS = 5000;
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

function current(): 'mine' | 'gone' | 'other' {
  const s = loadLab(lab);
  if (!s) return 'gone';
  const c = s.controller;
  return c && c.pid !== process.pid && isRunning(c) ? 'other' : 'mine';
}

serveApply(lab, log);

for (;;) {
  await new Promise((r) => setTimeout(r, TICK_MS));
  const who = current();
  if (who !== 'mine') {
    log(who === 'gone' ? 'lab is gone; exiting' : 'replaced by another controller; exiting');
    process.exit(0);
  }
  try {
    const s = loadLab(lab)!;
    const wanted = spareNetnsWanted(s);
    if (wanted > 0) {
      const made = await makeSpareNetns(lab, wanted);
      await withLock(lab, async () => {
        const locked = loadLab(lab);
        if (!locked) {
          for (const name of made) spawnSync('ip', ['netns', 'del', name]);
          return;
        }
        locked.spareNetns = [...(locked.spareNetns ?? []), ...made];
        saveLab(locked);
      });
      // not every tick while `ip netns add` fails: the backoff below
      if (made.length < wanted) throw new Error(`made ${made.length} of ${wanted} pod namespaces ahead`);
    }
    if (!needsReconcile(s)) continue;
    await withLock(lab, async () => {
      const locked = loadLab(lab);
      if (locked) await reconcile(locked, log);
    });
  } catch (e) {
    log(`reconcile failed: ${(e as Error).message}`);
    await new Promise((r) => setTimeout(r, BACKOFF_MS));
  }
}
