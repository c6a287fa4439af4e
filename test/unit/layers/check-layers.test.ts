import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkFile, checkLayers, formatViolation, importsOf } from '../../../scripts/check-layers.js';

const script = fileURLToPath(new URL('../../../scripts/check-layers.js', import.meta.url));

/** A repository with a src/ tree of the given files. */
function fixture(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'cts-layers-'));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, 'src', p)), { recursive: true });
    writeFileSync(join(root, 'src', p), text);
  }
  return root;
}

const rules = (srcPath: string, text: string) => checkFile(srcPath, text).map((v) => v.rule);

describe('layering lint (scripts/check-layers.ts)', () => {
  const roots: string[] = [];
  after(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  it('reads static, re-exported, multi-line, type-only and dynamic imports', () => {
    const refs = importsOf(
      'x.ts',
      [
        "import { a } from './a.js';",
        "import type { B } from './b.js';",
        "import {\n  type C,\n  type D,\n} from './c.js';",
        "import { type E, f } from './e.js';",
        "export * from './g.js';",
        "const h = await import('./h.js');",
      ].join('\n'),
    );
    assert.deepEqual(
      refs.map((r) => [r.specifier, r.typeOnly, r.line]),
      [
        ['./a.js', false, 1],
        ['./b.js', true, 2],
        ['./c.js', true, 3],
        ['./e.js', false, 7],
        ['./g.js', false, 8],
        ['./h.js', false, 9],
      ],
    );
  });

  it('the ebpf library imports nothing of the project', () => {
    assert.match(
      rules('ebpf/map.ts', "import { runRoot } from '../common/paths.js';")[0]!,
      /src\/ebpf .* imports nothing of the project/,
    );
    assert.deepEqual(rules('ebpf/map.ts', "import { Fd } from './fd.js';\nimport koffi from 'koffi';"), []);
  });

  it('pure modules import no I/O, at run time', () => {
    assert.match(
      rules('policy/engine.ts', "import { readFileSync } from 'node:fs';")[0]!,
      /pure .* I\/O module node:fs/,
    );
    assert.match(
      rules('statedb/table.ts', "import { spawn } from 'child_process';")[0]!,
      /I\/O module child_process/,
    );
    assert.match(rules('labels/label.ts', "import koffi from 'koffi';")[0]!, /pure .* imports koffi/);
    assert.match(
      rules('hubble/filter.ts', "import { ObserverServer } from './server.js';")[0]!,
      /pure .* imports src\/hubble\/server\.js, which is not/,
    );
    // Types vanish at run time; crypto and path do no I/O.
    assert.deepEqual(rules('identity/allocator.ts', "import type { Server } from 'node:net';"), []);
    assert.deepEqual(rules('hubble/parser.ts', "import { randomUUID } from 'node:crypto';"), []);
    assert.deepEqual(rules('hubble/layout.ts', "import type { BpfMap } from '../ebpf/index.js';"), []);
    assert.deepEqual(rules('ipam/store.ts', "import { open } from 'node:fs/promises';"), []);
  });

  it('lower layers never import higher ones', () => {
    assert.match(
      rules('datapath/loader.ts', "import { Agent } from '../agent/agent.js';")[0]!,
      /src\/datapath \(layer 2 datapath\) imports src\/agent \(layer 5 agent\)/,
    );
    assert.match(
      rules('policy/engine.ts', "import type { EndpointRecord } from '../endpoint/types.js';")[0]!,
      /lower layers never/,
    );
    assert.match(rules('agent/agent.ts', "import { up } from '../lab/lab.js';")[0]!, /lower layers never/);
    assert.deepEqual(
      rules('cli/agent.ts', "import { up } from '../lab/lab.js';\nimport '../agent/main.js';"),
      [],
    );
    assert.deepEqual(rules('agent/http.ts', "import type { RouteDef } from '../api/types.js';"), []);
  });

  it('only the CLI imports commander; new folders must join a layer', () => {
    assert.match(
      rules('hubble/observe.ts', "import { Command } from 'commander';")[0]!,
      /only src\/cli may import commander/,
    );
    assert.deepEqual(rules('cli/hubble.ts', "import { Command } from 'commander';"), []);
    assert.match(rules('relay/server.ts', '')[0]!, /module "relay" is in no layer/);
  });

  it('fails the lint with file, line and rule for a violating tree', () => {
    const root = fixture({
      'common/paths.ts': "import { join } from 'node:path';\n",
      'policy/engine.ts':
        "import { labels } from '../labels/index.js';\nimport { existsSync } from 'node:fs';\n",
      'labels/index.ts': 'export const labels = 1;\n',
      'datapath/loader.ts': "import { Agent } from '../agent/agent.js';\n",
      'agent/agent.ts': 'export class Agent {}\n',
    });
    roots.push(root);
    assert.deepEqual(checkLayers(root).map(formatViolation), [
      "src/datapath/loader.ts:1: import '../agent/agent.js': src/datapath (layer 2 datapath) imports src/agent (layer 5 agent): lower layers never import higher ones",
      "src/policy/engine.ts:2: import 'node:fs': policy/engine.ts is pure (no I/O) but imports the I/O module node:fs",
    ]);
    const r = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^src\/datapath\/loader\.ts:1: /m);
    assert.match(r.stderr, /check-layers: 2 layering violation\(s\)/);
    const clean = fixture({
      'labels/index.ts': "import { ipv6 } from '../common/ip.js';\n",
      'common/ip.ts': '',
    });
    roots.push(clean);
    assert.equal(spawnSync(process.execPath, [script, clean]).status, 0);
  });
});
