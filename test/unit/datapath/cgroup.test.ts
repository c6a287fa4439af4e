import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cgroup2Mount } from '../../../src/datapath/linux/index.js';

describe('cgroup2Mount', () => {
  it('finds the cgroup2 hierarchy on a unified and on a hybrid host', () => {
    assert.equal(
      cgroup2Mount('sysfs /sys sysfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n'),
      '/sys/fs/cgroup',
    );
    const hybrid = [
      'tmpfs /sys/fs/cgroup tmpfs rw 0 0',
      'cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0',
      'cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0',
    ].join('\n');
    assert.equal(cgroup2Mount(hybrid), '/sys/fs/cgroup/unified');
  });

  it('says so when there is none', () => {
    assert.throws(
      () => cgroup2Mount('cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n'),
      (err: Error & { code?: string }) =>
        err.code === 'failed-precondition' && /cgroup2 is not mounted/.test(err.message),
    );
  });
});
