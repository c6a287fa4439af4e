import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cliPath } from '../../../src/common/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'cts-validate-'));

/** The CLI with a run root where no lab or agent exists. */
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    env: { ...process.env, CILIUM_TS_RUN_ROOT: join(dir, 'run'), CILIUM_TS_LAB: 'nolab' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const GOOD = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
spec:
  endpointSelector:
    matchLabels:
      class: deathstar
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`;

describe('cilium-ts policy validate: no agent needed (like kubectl apply --dry-run=client)', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('there is no agent to ask', () => {
    const r = cli('status');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: cannot reach the agent at .*\/nolab\/node1\/agent\.sock/);
  });

  it('a valid file: "All policies are valid", exit 0', () => {
    const r = cli('policy', 'validate', file('good.yaml', GOOD));
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'All policies are valid\n');
    assert.equal(r.code, 0);
  });

  it('an invalid document: its number in the file, kind, name and field path; exit 1', () => {
    const bad = GOOD.replace('rule1', 'rule2').replace('- fromEndpoints:', '- fromEndpoint:');
    const r = cli('policy', 'validate', file('bad.yaml', `${GOOD}---\n${bad}`));
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      'document 2 (CiliumNetworkPolicy rule2): spec.ingress[0].fromEndpoint: unknown field "fromEndpoint"\n',
    );
    assert.equal(r.stderr, 'Error: 1 problem(s) found\n');
  });

  it('unreadable input is a clear error', () => {
    const missing = cli('policy', 'validate', join(dir, 'none.yaml'));
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `Error: ${join(dir, 'none.yaml')}: no such file\n`);
    const yaml = cli('policy', 'validate', file('broken.yaml', 'a: [\n'));
    assert.equal(yaml.code, 1);
    assert.match(yaml.stderr, /^Error: .*broken\.yaml: document 1: YAML: /);
    const empty = cli('policy', 'validate', file('empty.yaml', '---\n'));
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /empty\.yaml: no policy documents/);
  });
});
