import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPrefix } from '../../../src/labels/index.js';
import {
  type ParsedPolicy,
  PolicyRepository,
  parsePolicies,
  policyRefKey,
} from '../../../src/policy/index.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const doc = (name: string, ns: string, cidrs: string[]) => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name, namespace: ns },
  spec: {
    endpointSelector: {},
    egress: [{ toCIDRSet: cidrs.map((cidr) => ({ cidr, except: [cidr.replace(/\.0\/16$/, '.0/24')] })) }],
  },
});

describe('policy repository bookkeeping', () => {
  it('keeps the listing sorted, the rule order and the CIDR prefixes right through upserts and deletes', () => {
    const r = rng(42);
    const repo = new PolicyRepository();
    const live = new Map<string, ParsedPolicy>();
    let prefixes = repo.cidrPrefixes();
    for (let i = 0; i < 300; i++) {
      const name = `p${Math.floor(r() * 8)}`;
      const ns = `n${Math.floor(r() * 2)}`;
      const key = `${ns}/${name}`;
      if (r() < 0.4 && live.has(key)) {
        const ref = { kind: 'CiliumNetworkPolicy', namespace: ns, name } as const;
        const gone = repo.get(ref)!.policy.rules;
        repo.delete(ref);
        assert.ok(!gone.some((x) => repo.has(x)), 'rules of a deleted policy are gone');
        live.delete(key);
      } else {
        const cidrs = Array.from(
          { length: 1 + Math.floor(r() * 3) },
          () => `10.${Math.floor(r() * 40)}.0.0/16`,
        );
        const policy = parsePolicies([doc(name, ns, cidrs)])[0]!;
        repo.upsert(policy);
        live.set(key, policy);
      }
      const keys = repo.list().map((p) => policyRefKey(p.policy.ref));
      assert.deepEqual(
        keys,
        [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      );
      assert.equal(keys.length, live.size);
      const rules = repo.rules();
      assert.deepEqual(
        rules,
        repo.list().flatMap((p) => p.policy.rules),
      );
      assert.deepEqual(
        [...rules].reverse().sort((a, b) => repo.compareRules(a, b)),
        rules,
      );
      assert.ok(rules.every((x) => repo.has(x)));
      // The prefixes of the policies in place (a CIDR set minus its holes), from scratch.
      const want = new Set<string>();
      for (const p of live.values())
        for (const rule of p.rules)
          for (const pr of rule.egress ?? []) for (const x of pr.cidrPrefixes) want.add(formatPrefix(x));
      const have = repo.cidrPrefixes();
      assert.deepEqual(have.map(formatPrefix).sort(), [...want].sort(), `step ${i}`);
      if (have.map(formatPrefix).join() === prefixes.map(formatPrefix).join())
        assert.equal(have, prefixes, 'an unchanged set of prefixes is the same list');
      prefixes = have;
    }
  });
});
