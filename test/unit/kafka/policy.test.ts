/** `rules.kafka` in policies: accepted into the L7 model as written, bad rules refused naming the field. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parsePolicies, validatePolicies } from '../../../src/policy/index.js';
import { compileKafkaRules, kafkaAllowed } from '../../../src/proxy/kafka/index.js';

const docs = (y: string): unknown[] => parseAllDocuments(y).map((d) => d.toJS());
const cnp = (rules: string, port = '"9092"') => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: kafka, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: kafka}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: empire-hq}}]
    toPorts:
    - ports: [{port: ${port}, protocol: TCP}]
      rules:
        kafka:
${rules}`;

describe('kafka rules in policies', () => {
  it("upstream's demo policy is accepted and its rules reach the L7 model as written", () => {
    const [p] = parsePolicies(
      docs(
        cnp(`        - role: produce
          topic: deathstar-plans
        - role: Produce
          topic: empire-announce
        - apiKey: apiversions
        - {apiKey: metadata, apiVersion: "6", clientID: hq}`),
      ),
    );
    const pr = p!.rules[0]!.ingress![0]!.ports[0]!;
    assert.deepEqual(pr.l7, {
      parser: 'kafka',
      kafka: [
        { role: 'produce', topic: 'deathstar-plans' },
        { role: 'Produce', topic: 'empire-announce' },
        { apiKey: 'apiversions' },
        { apiKey: 'metadata', apiVersion: '6', clientID: 'hq' },
      ],
    });
    // What the proxy compiles from it.
    const rules = compileKafkaRules(pr.l7!.parser === 'kafka' ? pr.l7!.kafka : []);
    const req = (apiKey: number, topics: string[]) => ({
      apiKey,
      apiVersion: 7,
      correlationId: 1,
      clientId: 'x',
      topics,
      topicPartitions: [],
    });
    assert.equal(kafkaAllowed(rules, req(0, ['empire-announce'])), true);
    assert.equal(kafkaAllowed(rules, req(0, ['rebels'])), false);
  });

  it('bad rules are refused, each naming its field', () => {
    const errs = validatePolicies(
      docs(
        cnp(`        - {role: produce, apiKey: fetch}
        - {role: admin}
        - {apiKey: nope}
        - {apiVersion: "v1"}
        - {topic: "a/b"}`),
      ),
    ).map((i) => `${i.path}: ${i.message}`);
    const at = 'spec.ingress[0].toPorts[0].rules.kafka';
    assert.deepEqual(errs, [
      `${at}[0]: role and apiKey cannot both be set`,
      `${at}[1].role: must be produce or consume, got "admin"`,
      `${at}[2].apiKey: unknown API key "nope"`,
      `${at}[3].apiVersion: must be a version number 0-32767, got "v1"`,
      `${at}[4].topic: must be 1-255 characters of [a-zA-Z0-9._-], got "a/b"`,
    ]);
  });

  it('as every L7 rule: a concrete TCP port, no empty list', () => {
    const errs = validatePolicies(docs(cnp('        - {role: produce}', '"0"'))).map(
      (i) => `${i.path}: ${i.message}`,
    );
    assert.equal(errs.length, 1);
    assert.match(errs[0]!, /toPorts\[0\]\.ports\[0\]\.port: L7 rules need a port/);
    const empty = validatePolicies(docs(cnp('          []'))).map((i) => `${i.path}: ${i.message}`);
    assert.match(empty.join('\n'), /rules\.kafka: an empty kafka list allows nothing/);
  });
});
