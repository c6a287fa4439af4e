/**
 * Which command lines the installed CLI sends to the lab's controller itself
 * (src/cli/lab-apply-client.ts): exactly `lab apply` with files and a lab name, parsed as the full
 * CLI would; anything else is left to the full CLI.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLabApply } from '../../../src/cli/lab-apply-client.js';

describe('lab apply fast path: command line', () => {
  const lab = process.env.CILIUM_TS_LAB ?? 'default';

  it('takes -f / --filename (one or more files each, - for stdin) and --name / --lab', () => {
    assert.deepEqual(parseLabApply(['lab', 'apply', '-f', 'a.yaml']), { lab, files: ['a.yaml'] });
    assert.deepEqual(parseLabApply(['lab', 'apply', '-f', 'a.yaml', 'b.yaml', '--name', 'x', '-f', '-']), {
      lab: 'x',
      files: ['a.yaml', 'b.yaml', '-'],
    });
    assert.deepEqual(parseLabApply(['lab', 'apply', '--filename=a.yaml', '--lab=y']), {
      lab: 'y',
      files: ['a.yaml'],
    });
    // --name wins over --lab, as in the full CLI; the last of each counts
    assert.deepEqual(parseLabApply(['lab', 'apply', '--lab', 'y', '--name', 'x', '--name', 'z', '-f', 'a']), {
      lab: 'z',
      files: ['a'],
    });
  });

  it('leaves everything else to the full CLI', () => {
    for (const argv of [
      ['lab', 'get', 'pods'],
      ['lab', 'apply'],
      ['lab', 'apply', '-f'],
      ['lab', 'apply', '-f', '--name', 'x'],
      ['lab', 'apply', '-f', 'a.yaml', '--help'],
      ['lab', 'apply', '-h'],
      ['lab', 'apply', 'a.yaml'],
      ['lab', 'apply', '-f', 'a.yaml', '--name'],
      ['lab', 'apply', '-fa.yaml'],
      ['--lab', 'x', 'lab', 'apply', '-f', 'a.yaml'],
      ['lab', 'apply', '-f', 'a.yaml', '-o', 'json'],
    ])
      assert.equal(parseLabApply(argv), undefined, argv.join(' '));
  });
});
